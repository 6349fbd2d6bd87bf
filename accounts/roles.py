"""The three roles and what each may do. A role is a Group of the same name.

- SDR: sees and enriches leads, edits lead and company fields.
- Reviewer: everything an SDR does, and works the review queue (admin; needs staff status).
- Admin: every permission (providers, waterfall, thresholds, budgets, users, runs).

`roles_sync` only adds permissions, never removes them: an admin may grant a role more in
the admin, and the next migrate leaves that alone.
"""

from django.apps import apps as global_apps
from django.db.models import Q


class Role:
    SDR = "SDR"
    REVIEWER = "Reviewer"
    ADMIN = "Admin"


ROLES = (Role.SDR, Role.REVIEWER, Role.ADMIN)
# Roles that work in the Django admin (the review queue, configuration).
STAFF_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})

_SDR_PERMISSIONS = (
    "leads.view_lead",
    "leads.change_lead",
    "leads.view_company",
    "leads.change_company",
    "enrichment.view_observation",
    "enrichment.view_enrichmentrun",
    # Starting a run (Find Email, Re-enrich) creates one.
    "enrichment.add_enrichmentrun",
)
ROLE_PERMISSIONS: dict[str, tuple[str, ...] | None] = {
    Role.SDR: _SDR_PERMISSIONS,
    Role.REVIEWER: (
        *_SDR_PERMISSIONS,
        "enrichment.view_reviewitem",
        # Approve, reject and correct.
        "enrichment.change_reviewitem",
    ),
    # None: every permission there is.
    Role.ADMIN: None,
}


def _permission_filter(names: tuple[str, ...]) -> Q:
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    return query


def roles_sync(*, apps=global_apps, using: str = "default") -> None:
    """Create the role groups and give each at least its permissions (those that exist)."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.using(using).get_or_create(name=role)
        permissions = permission_model.objects.using(using)
        if names is not None:
            permissions = permissions.filter(_permission_filter(names))
        group.permissions.add(*permissions)


def roles_sync_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """Sync once per migrate: after the last app's signal, when every permission exists."""
    with_models = [c for c in global_apps.get_app_configs() if c.models_module is not None]
    if with_models and sender is with_models[-1]:
        roles_sync(using=using)
