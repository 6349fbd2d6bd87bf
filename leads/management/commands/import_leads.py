"""`manage.py import_leads PATH`: import a CSV of leads and say what happened to each row."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads.csv_import import ImportFileError, import_leads_csv
from leads.models import Lead

_SOURCE_MAX_LENGTH = Lead._meta.get_field("source").max_length
_BATCH_SIZE = 1000


class Command(BaseCommand):
    help = (
        "Import leads from a CSV file (comma, semicolon or tab separated, with a header row). "
        "Invalid rows are skipped and written to a report next to the file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The CSV file to import.")
        parser.add_argument(
            "--source",
            help="Stored as each new lead's source (default: csv:<file name>).",
        )
        parser.add_argument(
            "--report",
            type=Path,
            help="Where to write invalid rows (default: <name>.invalid.csv next to the file).",
        )

    def handle(self, *args, path: Path, source: str | None, report: Path | None, **options):
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file")
        source = source or f"csv:{path.name}"[:_SOURCE_MAX_LENGTH]
        if len(source) > _SOURCE_MAX_LENGTH:
            raise CommandError(f"--source is longer than {_SOURCE_MAX_LENGTH} characters")
        report_path = report or path.with_name(f"{path.stem}.invalid.csv")
        if report_path.resolve() == path.resolve():
            raise CommandError("--report must not be the file being imported")
        if not report_path.parent.is_dir():
            raise CommandError(f"{report_path.parent} (the --report folder) does not exist")

        def progress(rows: int) -> None:
            # Only files bigger than one batch take long enough to need a sign of life.
            if rows >= _BATCH_SIZE:
                self.stderr.write(f"{rows} rows…")

        try:
            result = import_leads_csv(
                path=path,
                source=source,
                report_path=report_path,
                batch_size=_BATCH_SIZE,
                progress=progress,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc

        for note in result.notes:
            self.stderr.write(self.style.WARNING(note))
        counts = (
            f"created {result.created} / updated {result.updated} / "
            f"duplicate {result.duplicate} / invalid {result.invalid}"
        )
        if result.suppressed:
            counts += f" / suppressed {result.suppressed}"
        self.stdout.write(counts)
        if result.report_path:
            self.stdout.write(f"Rows not imported, with reasons: {result.report_path}")
