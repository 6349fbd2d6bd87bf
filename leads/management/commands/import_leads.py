"""`manage.py import_leads PATH`: import a CSV of leads and say what happened to each row."""

import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads.csv_import import (
    TARGETS,
    ImportFileError,
    ImportReport,
    import_leads_csv,
    parse_mapping_overrides,
)
from leads.models import Lead

_SOURCE_MAX_LENGTH = Lead._meta.get_field("source").max_length
_BAR_WIDTH = 30
_BAR_EVERY_SECONDS = 0.2


class ProgressBar:
    """A one-line bar on a terminal, redrawn in place; silent when the stream is not one
    (a log file or a pipe gets the summary only). `stream` is a command's OutputWrapper."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self.drawn_at = 0.0

    def update(self, report: ImportReport, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.drawn_at < _BAR_EVERY_SECONDS):
            return
        self.drawn_at = now
        filled = round(_BAR_WIDTH * report.fraction)
        rate = report.total / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {report.fraction:4.0%} "
            f"{report.total} rows, {rate:,.0f} rows/s",
            style_func=str,
            ending="\n" if final else "",
        )
        self.stream.flush()


class Command(BaseCommand):
    help = (
        "Import leads from a CSV file (comma, semicolon or tab separated, with a header row; "
        "Apollo, HubSpot, Salesforce and Sales Navigator tool exports are mapped "
        "automatically). Invalid rows are skipped and written to a report next to the file."
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
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help=f"Map a column by hand, repeatable; FIELD is one of {', '.join(TARGETS)}, "
            "or ignore. For example --map 'Work Email=email' --map 'Notes=ignore'.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=min(os.cpu_count() or 1, 2),
            help="Processes that normalize rows while this one writes (default: 2 where "
            "there are 2 cores; 1 does everything in this process).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Write nothing: read and check the file, then print how many rows are new, "
            "known, duplicate, invalid or suppressed, and what enriching them would cost "
            "per provider.",
        )
        parser.add_argument(
            "--fields",
            nargs="+",
            default=[],
            help="With --dry-run: estimate for these enrichable fields only (default: all).",
        )

    def handle(self, *args, path: Path, source: str | None, report: Path | None, **options):
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file")
        try:
            overrides = parse_mapping_overrides(options["map"])
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        if options["dry_run"]:
            self._dry_run(path, overrides, options["fields"])
            return
        source = source or f"csv:{path.name}"[:_SOURCE_MAX_LENGTH]
        if len(source) > _SOURCE_MAX_LENGTH:
            raise CommandError(f"--source is longer than {_SOURCE_MAX_LENGTH} characters")
        report_path = report or path.with_name(f"{path.stem}.invalid.csv")
        if report_path.resolve() == path.resolve():
            raise CommandError("--report must not be the file being imported")
        if not report_path.parent.is_dir():
            raise CommandError(f"{report_path.parent} (the --report folder) does not exist")

        bar = ProgressBar(self.stderr)
        try:
            result = import_leads_csv(
                path=path,
                source=source,
                report_path=report_path,
                mapping=overrides,
                progress=bar.update,
                workers=max(options["workers"], 1),
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        bar.update(result, final=True)

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

    def _dry_run(self, path: Path, overrides: dict[str, str], fields: list[str]) -> None:
        # The estimate walks enrichment's gate and waterfall, which `leads` must not import
        # at module level: the command is the one place where both meet.
        from imports.estimates import csv_estimate

        try:
            estimate = csv_estimate(path=path, mapping=overrides, fields=fields)
        except (ImportFileError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for line in estimate.lines():
            self.stdout.write(line)
