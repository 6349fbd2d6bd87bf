"""`manage.py export_lead (--lead ID | --email ADDRESS) [--output PATH]`."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from leads.models import Lead
from leads.normalize import InvalidValue, normalize_email
from privacy.services import lead_access_export


def find_lead(options) -> Lead:
    """Return the lead named by --lead or --email, or raise a CommandError saying why not."""
    if options["lead"] is not None:
        lead = Lead.objects.filter(id=options["lead"]).first()
        if lead is None:
            raise CommandError(f"No lead with id {options['lead']}.")
        return lead
    try:
        email = normalize_email(options["email"])
    except InvalidValue as exc:
        raise CommandError(str(exc)) from None
    lead = Lead.objects.filter(email=email).first()
    if lead is None:
        raise CommandError("No lead with that email.")
    return lead


def add_lead_arguments(parser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--lead", type=int, metavar="ID", help="The lead's id.")
    which.add_argument("--email", metavar="ADDRESS", help="The lead's email address.")


class Command(BaseCommand):
    help = (
        "Print (or write to --output) everything held about a person as JSON, with sources "
        "and dates (GDPR access request). Written to the privacy audit log."
    )

    def add_arguments(self, parser):
        add_lead_arguments(parser)
        parser.add_argument("--output", type=Path, help="Write the JSON here instead.")

    def handle(self, *args, **options):
        lead = find_lead(options)
        data = lead_access_export(lead=lead, actor="manage.py export_lead")
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        if options["output"]:
            options["output"].write_text(text + "\n", encoding="utf-8")
            self.stderr.write(f"Wrote the export of lead {lead.id} to {options['output']}.")
        else:
            self.stdout.write(text)
