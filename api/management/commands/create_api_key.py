"""manage.py create_api_key NAME --role sdr|reviewer|admin"""

from django.core.management.base import BaseCommand, CommandError

from api.models import ApiKey
from api.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key for an integration and print it once; only a hash is kept, so a "
        "lost key is replaced, not recovered."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. 'crm-sync'. Unique.")
        parser.add_argument("--role", required=True, choices=ApiKey.Role.values)

    def handle(self, *args, name: str, role: str, **options):
        try:
            issued = api_key_create(name=name, role=role)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"Created API key {issued.api_key.name!r} (role {role}, prefix "
            f"{issued.api_key.prefix}). It is shown this once; store it now:"
        )
        self.stdout.write(issued.key)
