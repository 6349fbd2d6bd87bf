"""`manage.py erase_lead (--lead ID | --email ADDRESS) --reason TEXT [--yes]`."""

from django.core.management.base import BaseCommand, CommandError

from privacy.management.commands.export_lead import add_lead_arguments, find_lead
from privacy.services import lead_erase


class Command(BaseCommand):
    help = (
        "Erase a person (GDPR erasure request): the lead, its observations and runs, the "
        "ledger payloads that identify them; their identities are suppressed (hashed) so "
        "they are never imported or enriched again. Written to the privacy audit log."
    )

    def add_arguments(self, parser):
        add_lead_arguments(parser)
        parser.add_argument(
            "--reason", required=True, help="Why (kept in the audit log), e.g. a ticket number."
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **options):
        lead = find_lead(options)
        if not options["yes"]:
            answer = input(f"Erase lead {lead.id} ({lead}) for good? Type 'erase' to confirm: ")
            if answer.strip() != "erase":
                raise CommandError("Not confirmed; nothing was erased.")
        result = lead_erase(lead=lead, actor="manage.py erase_lead", reason=options["reason"])
        self.stdout.write(
            f"Erased lead {result.lead_id}: {result.observations_deleted} observation(s), "
            f"{result.runs_deleted} run(s), {result.provider_calls_blanked} ledger payload(s) "
            f"blanked, {result.suppressed_identities} identit(y/ies) newly suppressed."
        )
