"""`manage.py export_leads [--output PATH]`: every lead as CSV, streamed."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads.export import leads_csv_chunks
from leads.models import Lead


class Command(BaseCommand):
    help = (
        "Export leads as CSV (UTF-8, comma separated) to a file or standard output, in "
        "constant memory; cells that a spreadsheet would run as formulas are neutralized."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="The file to write (default: stdout).")
        parser.add_argument(
            "--status",
            choices=Lead.EnrichmentStatus.values,
            help="Only leads with this enrichment status.",
        )

    def handle(self, *args, output: Path | None, status: str | None, **options) -> None:
        leads = Lead.objects.all()
        if status:
            leads = leads.filter(enrichment_status=status)
        if output is not None and not output.parent.is_dir():
            raise CommandError(f"{output.parent} (the --output folder) does not exist")
        stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            for piece in leads_csv_chunks(leads):
                stream.write(piece)
        finally:
            if output is not None:
                stream.close()
