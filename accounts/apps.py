from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from accounts import backends  # noqa: F401  (connects its receivers in every process)
        from accounts.roles import roles_sync_after_migrate

        # After every migrate (and every test-database flush), so permissions of models
        # added later reach the roles too.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="accounts.roles_sync")
