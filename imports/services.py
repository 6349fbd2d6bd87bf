"""The life of an uploaded CSV: stored and checked, estimated, imported, enriched, and
written back out with the enriched columns appended.

A CsvImport is a row first and a Celery message second, like an enrichment run: it is
claimed with a conditional UPDATE, so a message delivered twice imports the file once.
"""

import csv
import io
import logging
import shutil
import tempfile
from array import array
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO

from celery import current_app
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from enrichment.fields import FIELDS
from enrichment.models import EnrichmentRun
from enrichment.selectors import current_observations_many, current_values
from enrichment.services import runs_create
from imports.estimates import CsvEstimate, csv_estimate
from imports.models import CsvImport
from leads.csv_import import (
    CsvFormat,
    CsvReader,
    ImportFileError,
    ImportReport,
    column_mapping,
    detect_format,
    import_leads_csv,
)
from leads.export import csv_safe
from leads.models import Company, Lead

logger = logging.getLogger(__name__)

RUN_TASK = "imports.csv_import_run"
RUN_QUEUE = "imports"
# Rows fetched and written per round when writing the enriched copy.
_ENRICHED_CHUNK = 1000
_SOURCE_MAX_LENGTH = Lead._meta.get_field("source").max_length


class ImportStateError(Exception):
    """The import is not in a state that allows what was asked."""


@contextmanager
def _local_path(field_file) -> Iterator[Path]:
    """The stored file as a local path: the file itself on local storage, else a copy."""
    try:
        path = field_file.path
    except NotImplementedError:
        path = None
    if path is not None:
        yield Path(path)
        return
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / "upload.csv"
        with field_file.open("rb") as source, local.open("wb") as target:
            shutil.copyfileobj(source, target)
        yield local


def csv_import_create(
    *,
    file: IO[bytes],
    name: str,
    overrides: Mapping[str, str] | None = None,
    enrich: bool = True,
    source: str = "",
    created_by=None,
) -> CsvImport:
    """Check an uploaded file and store it, not imported yet.

    Raises ImportFileError, storing nothing, when the file cannot be read as CSV, the
    mapping names a column or field that does not exist, or no column identifies a lead.
    """
    try:
        # No folders, no control characters: the name becomes part of a stored path.
        name = get_valid_filename(Path(name or "").name)[:200]
    except SuspiciousFileOperation:
        name = "upload.csv"
    if len(source) > _SOURCE_MAX_LENGTH:
        raise ImportFileError(f"the source is longer than {_SOURCE_MAX_LENGTH} characters")
    overrides = {str(column): str(target) for column, target in (overrides or {}).items()}
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / name
        with local.open("wb") as target:
            shutil.copyfileobj(file, target)
        fmt = detect_format(local)
        mapping = column_mapping(fmt.header, overrides, file_name=name)
        csv_import = CsvImport(
            name=name,
            size=local.stat().st_size,
            encoding=fmt.encoding,
            delimiter=fmt.delimiter,
            header=list(fmt.header),
            mapping=list(mapping.targets),
            overrides=overrides,
            source=source or f"csv:{name}"[:_SOURCE_MAX_LENGTH],
            enrich=enrich,
            notes=list(fmt.notes),
            created_by=created_by,
        )
        with local.open("rb") as stored:
            csv_import.file.save(name, File(stored), save=False)
    csv_import.save()
    return csv_import


def csv_import_estimate(*, csv_import: CsvImport, fields: Sequence[str] = ()) -> CsvEstimate:
    """Dry run: what importing and enriching the file would do; nothing written or spent
    but the estimate itself, kept on the import."""
    with _local_path(csv_import.file) as path:
        estimate = csv_estimate(path=path, mapping=csv_import.overrides, fields=fields)
    CsvImport.objects.filter(id=csv_import.id).update(
        estimate=estimate.as_dict(), estimated_at=timezone.now()
    )
    csv_import.refresh_from_db(fields=["estimate", "estimated_at"])
    return estimate


def csv_import_start(*, csv_import_id: int) -> CsvImport:
    """Queue the import; the message goes out after commit. Raises ImportStateError when
    it was already started."""
    claimed = CsvImport.objects.filter(id=csv_import_id, state=CsvImport.State.UPLOADED).update(
        state=CsvImport.State.QUEUED
    )
    csv_import = CsvImport.objects.get(id=csv_import_id)
    if claimed != 1:
        raise ImportStateError(
            f"import {csv_import_id} is {csv_import.get_state_display().lower()}, "
            "so it cannot be started again"
        )
    transaction.on_commit(
        lambda: current_app.send_task(RUN_TASK, args=[csv_import_id], queue=RUN_QUEUE)
    )
    return csv_import


def csv_import_claim(*, csv_import_id: int) -> bool:
    """Take a queued import for this worker; also one whose worker died long ago."""
    now = timezone.now()
    lost = now - timedelta(seconds=settings.CSV_IMPORT_TIME_LIMIT_SECONDS + 60)
    claimed = CsvImport.objects.filter(
        Q(state=CsvImport.State.QUEUED) | Q(state=CsvImport.State.RUNNING, started_at__lt=lost),
        id=csv_import_id,
    ).update(state=CsvImport.State.RUNNING, started_at=now)
    return claimed == 1


def _counters(report: ImportReport) -> dict:
    return {
        "rows_total": report.total,
        "rows_created": report.created,
        "rows_updated": report.updated,
        "rows_duplicate": report.duplicate,
        "rows_invalid": report.invalid,
        "rows_suppressed": report.suppressed,
        "progress": report.fraction,
    }


def csv_import_run(*, csv_import_id: int, enqueue: bool = True) -> CsvImport | None:
    """Import the file (claimed first; None if another worker has it), keep which lead
    each row became and the error report, then start enrichment: of every lead in the
    file when the import asks for it, else of the new leads when ENRICH_ON_CREATE is on,
    in one EnrichmentJob. `enqueue=False` creates the runs without sending them."""
    if not csv_import_claim(csv_import_id=csv_import_id):
        return None
    try:
        return _run(CsvImport.objects.get(id=csv_import_id), enqueue=enqueue)
    except Exception as exc:
        # A bug or unreadable storage must end this import visibly, not leave it running.
        logger.exception("CSV import %s failed", csv_import_id)
        CsvImport.objects.filter(id=csv_import_id).update(
            state=CsvImport.State.FAILED,
            error=f"The import failed unexpectedly ({type(exc).__name__}); see the logs.",
            finished_at=timezone.now(),
        )
        return CsvImport.objects.get(id=csv_import_id)


def _run(csv_import: CsvImport, *, enqueue: bool) -> CsvImport:
    csv_import_id = csv_import.id
    row_leads = array("q")

    def on_rows(pairs: list[tuple[int, int]]) -> None:
        for row_number, lead_id in pairs:
            index = row_number - 2
            if index >= len(row_leads):
                row_leads.extend([0] * (index + 1 - len(row_leads)))
            row_leads[index] = lead_id

    def progress(report: ImportReport) -> None:
        CsvImport.objects.filter(id=csv_import_id).update(**_counters(report))

    error = ""
    with tempfile.TemporaryDirectory() as folder, _local_path(csv_import.file) as path:
        report_path = Path(folder) / "errors.csv"
        try:
            report = import_leads_csv(
                path=path,
                source=csv_import.source,
                report_path=report_path,
                mapping=csv_import.overrides,
                origin=f"csv-import:{csv_import.id}",
                notify=False,
                progress=progress,
                on_rows=on_rows,
            )
        except ImportFileError as exc:
            # The rows before a broken line are imported and reported: keep their record.
            error = str(exc)
            csv_import.refresh_from_db()
            report = None
        if report_path.exists():
            with report_path.open("rb") as stream:
                name = f"{csv_import.id}-errors.csv"
                csv_import.error_report.save(name, File(stream), save=False)

    created = report.created_ids if report is not None else set()
    job = _enrichment_start(csv_import, row_leads, created, enqueue=enqueue)
    if report is not None:
        for name, value in _counters(report).items():
            setattr(csv_import, name, value)
        csv_import.notes = report.notes
    csv_import.row_leads = row_leads.tobytes()
    csv_import.enrichment_job = job
    csv_import.error = error
    csv_import.state = CsvImport.State.FAILED if error else CsvImport.State.DONE
    csv_import.finished_at = timezone.now()
    csv_import.save()
    return csv_import


def _enrichment_start(csv_import: CsvImport, row_leads: array, created: set[int], *, enqueue: bool):
    if csv_import.enrich:
        lead_ids = list(dict.fromkeys(lead_id for lead_id in row_leads if lead_id))
        trigger = EnrichmentRun.Trigger.BULK
    elif settings.ENRICH_ON_CREATE:
        # What the on-create hook would have done, in one job instead of one per batch.
        lead_ids = sorted(created)
        trigger = EnrichmentRun.Trigger.CREATE
    else:
        return None
    if not lead_ids:
        return None
    runs = runs_create(
        lead_ids=lead_ids,
        trigger=trigger,
        description=f"CSV import #{csv_import.id} ({csv_import.name})",
        enqueue=enqueue,
    )
    return runs[0].job if runs else None


def csv_import_enrichment_progress(csv_import: CsvImport) -> dict[str, int]:
    """Return the enrichment counters of the import's job (zeros before it has one)."""
    job = csv_import.enrichment_job
    names = ("total", "done", "enriched", "not_found", "failed", "skipped")
    return {name: getattr(job, name) if job else 0 for name in names}


# --- The enriched copy ----------------------------------------------------------------------

ENRICHED_SUFFIXES = ("", "_confidence", "_source")
EXTRA_COLUMNS = ("email_verification", "enrichment_status", "lead_id")


def enriched_columns(header: Sequence[str]) -> list[str]:
    """Return the columns appended to the original ones: value, confidence and source of
    each enrichable field, then the email's verification, the lead's enrichment status
    and its id; all prefixed `enriched_` if one would repeat an original column name."""
    names = [f"{name}{suffix}" for name in FIELDS for suffix in ENRICHED_SUFFIXES]
    names += EXTRA_COLUMNS
    if set(names) & set(header):
        names = [f"enriched_{name}" for name in names]
    return names


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _enriched_cells(lead: Lead | None, lead_obs, company_obs) -> list[str]:
    width = len(FIELDS) * len(ENRICHED_SUFFIXES) + len(EXTRA_COLUMNS)
    if lead is None:
        return [""] * width
    values = current_values(lead, lead_obs.get(lead.id, {}))
    company: Company | None = lead.company
    if company is not None:
        values |= current_values(company, company_obs.get(company.id, {}))
    cells = []
    for name in FIELDS:
        current = values.get(name)
        if current is None:
            cells += ["", "", ""]
        else:
            cells += [_cell(current.value), _cell(current.confidence), current.source]
    return [*cells, lead.email_verification, lead.enrichment_status, str(lead.id)]


def enriched_csv_chunks(*, csv_import: CsvImport) -> Iterator[str]:
    """Yield the enriched copy in pieces: the original rows in their order, in the file's
    delimiter, with the enriched columns appended; cells a spreadsheet would run as a
    formula are neutralized. The rows are read again from the stored file, so memory
    stays flat however long it is.

    Raises ImportStateError, at once, unless the import is done.
    """
    if csv_import.state != CsvImport.State.DONE:
        raise ImportStateError(
            f"import {csv_import.id} is {csv_import.get_state_display().lower()}: the "
            "enriched file exists once it is done"
        )
    return _enriched_chunks(csv_import)


def _enriched_chunks(csv_import: CsvImport) -> Iterator[str]:
    fmt = CsvFormat(csv_import.encoding, csv_import.delimiter, tuple(csv_import.header))
    lead_ids = csv_import.lead_ids()
    header = list(fmt.header)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=fmt.delimiter)
    # A byte-order mark tells spreadsheets the file is UTF-8.
    buffer.write("\ufeff")
    writer.writerow([csv_safe(cell) for cell in [*header, *enriched_columns(header)]])
    with _local_path(csv_import.file) as path, CsvReader(path, fmt) as reader:
        chunk: list[tuple[list[str], int]] = []
        for row_number, cells in reader.records():
            index = row_number - 2
            chunk.append((cells, lead_ids[index] if index < len(lead_ids) else 0))
            if len(chunk) >= _ENRICHED_CHUNK:
                yield _write_chunk(writer, buffer, chunk, len(header))
        if chunk:
            yield _write_chunk(writer, buffer, chunk, len(header))
    if buffer.tell():
        yield buffer.getvalue()


def _write_chunk(writer, buffer: io.StringIO, chunk, width: int) -> str:
    ids = {lead_id for _, lead_id in chunk if lead_id}
    leads = Lead.objects.select_related("company").in_bulk(ids)
    lead_obs = current_observations_many("lead", leads)
    company_obs = current_observations_many(
        "company", {lead.company_id for lead in leads.values() if lead.company_id}
    )
    for cells, lead_id in chunk:
        original = (cells + [""] * width)[:width]
        enriched = _enriched_cells(leads.get(lead_id), lead_obs, company_obs)
        writer.writerow([csv_safe(cell) for cell in [*original, *enriched]])
    chunk.clear()
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def enriched_csv_write(*, csv_import: CsvImport, out: IO[str]) -> None:
    """Write the enriched copy (see enriched_csv_chunks) to a text stream."""
    for piece in enriched_csv_chunks(csv_import=csv_import):
        out.write(piece)
