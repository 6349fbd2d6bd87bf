"""Import leads from a CSV file exported by a CRM, a spreadsheet or a data vendor.

The file is read in one streaming pass and upserted in batches through
`leads.services.leads_upsert`, so a bad row is reported and skipped instead of aborting
the file, and every batch commits on its own: an interrupted import can simply be run
again, its already imported rows then count as duplicates.

Counting is per data row, so `created + updated + duplicate + invalid + suppressed` is
the number of non-blank rows:

- created: the row brought a lead that did not exist;
- updated: the row is the file's first for a lead that existed before the import, and
  that lead had at least one blank column filled (by this row or by later repeats);
- duplicate: the row added no lead: it repeats an identity seen earlier in the file
  (its new values are still merged into that lead's blanks), or it is the first row for
  a lead that existed before the import and the file had nothing to add to it;
- invalid: a value could not be normalized, or the row has no identity;
- suppressed: the row's email or LinkedIn URL is on the suppression list.

Invalid and suppressed rows go to the report CSV with their row number (the header is
row 1, the first data row 2, as a spreadsheet shows them), the reason, and their cells.
"""

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from leads.normalize import InvalidValue
from leads.services import LeadInput, lead_input_from_mapping, leads_upsert

# Header spellings seen in CRM and vendor exports, after _header_key: lowercase, with
# "_" and "-" read as spaces. Keys are lead_input_from_mapping's.
HEADER_ALIASES: dict[str, str] = {
    "email": "email",
    "e mail": "email",
    "email address": "email",
    "e mail address": "email",
    "work email": "email",
    "business email": "email",
    "first name": "first_name",
    "firstname": "first_name",
    "given name": "first_name",
    "last name": "last_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family name": "last_name",
    "company domain": "company_domain",
    "domain": "domain",
    "website": "website",
    "company website": "website",
    "linkedin": "linkedin_url",
    "linkedin url": "linkedin_url",
    "person linkedin url": "linkedin_url",
    "linkedin profile": "linkedin_url",
    "phone": "phone",
    "phone number": "phone",
    "mobile": "phone",
    "mobile phone": "phone",
    "title": "job_title",
    "job title": "job_title",
    "seniority": "seniority",
    "department": "department",
    "location": "location",
    "city": "location",
}

_DELIMITERS = (",", ";", "\t")
_DECODE_CHUNK = 1024 * 1024


class ImportFileError(Exception):
    """The file as a whole cannot be imported; nothing was written."""


@dataclass(slots=True)
class ImportReport:
    """Row counts of one import (see the module docstring for what each one means)."""

    created: int = 0
    updated: int = 0
    duplicate: int = 0
    invalid: int = 0
    suppressed: int = 0
    total: int = 0
    encoding: str = "utf-8"
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)


def _header_key(header: str) -> str:
    return " ".join(header.replace("_", " ").replace("-", " ").lower().split())


def _decodes_as(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes, checked in chunks so a big file is never in memory."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_DECODE_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _detect_encoding(path: Path, notes: list[str]) -> str:
    with path.open("rb") as stream:
        head = stream.read(4096)
    if head.startswith(b"PK\x03\x04"):
        raise ImportFileError(
            f"{path.name} is a zip archive (an Excel .xlsx workbook?), not a CSV file: "
            "save it as CSV UTF-8 and import that"
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        if not _decodes_as(path, "utf-16"):
            raise ImportFileError(
                f"{path.name} starts with a UTF-16 byte-order mark but is not valid UTF-16: "
                "save it as CSV UTF-8 and import that"
            )
        return "utf-16"
    if b"\x00" in head:
        raise ImportFileError(
            f"{path.name} contains NUL bytes, so it is not UTF-8 text (UTF-16 without a "
            "byte-order mark, or a binary file): save it as CSV UTF-8 and import that"
        )
    if _decodes_as(path, "utf-8-sig"):
        return "utf-8-sig"
    # cp1252 is what Excel on Windows writes; latin-1 maps every byte, so it always decodes.
    encoding = "cp1252" if _decodes_as(path, "cp1252") else "latin-1"
    notes.append(
        f"{path.name} is not valid UTF-8; read it as {encoding} instead. Check accented "
        "names in the imported leads, or save the file as CSV UTF-8 and import it again."
    )
    return encoding


def _sniff_delimiter(header_line: str) -> str:
    # The header line decides: it is the line least likely to hold quoted delimiters, and
    # csv.Sniffer guesses wrong on data full of "; " inside quoted job titles.
    counts = {delimiter: header_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _column_map(header: list[str], path: Path, notes: list[str]) -> dict[str, list[int]]:
    """Return, per lead_input_from_mapping key, the indexes of the columns that feed it."""
    columns: dict[str, list[int]] = {}
    ignored = []
    for index, name in enumerate(header):
        key = HEADER_ALIASES.get(_header_key(name))
        if key:
            columns.setdefault(key, []).append(index)
        elif name.strip():
            ignored.append(name.strip())
    has_domain = any(key in columns for key in ("company_domain", "domain", "website"))
    has_name = "first_name" in columns and "last_name" in columns and has_domain
    if not ("email" in columns or "linkedin_url" in columns or has_name):
        found = ", ".join(repr(name) for name in header) or "none"
        raise ImportFileError(
            f"{path.name} has no column identifying a lead: it needs an email column, a "
            "LinkedIn URL column, or first name + last name + company domain columns "
            f"(headers found: {found})"
        )
    if ignored:
        notes.append(f"Columns not imported: {', '.join(ignored)}.")
    return columns


def _values(cells: list[str], columns: dict[str, list[int]]) -> dict[str, str]:
    # Several columns may feed one key (say "phone" and "mobile"): the first filled wins.
    return {
        key: next((cells[i] for i in indexes if i < len(cells) and cells[i].strip()), "")
        for key, indexes in columns.items()
    }


@dataclass(slots=True)
class _Tally:
    """What the batches so far did, for counting rows across batch boundaries."""

    rows: int = 0
    created: set[int] = field(default_factory=set)
    filled: set[int] = field(default_factory=set)


class _Report:
    """The invalid-row CSV, opened only when the first row has to go into it."""

    def __init__(self, path: Path | None, header: list[str], delimiter: str) -> None:
        self.path = path
        self.header = header
        self.delimiter = delimiter
        self.stream: IO[str] | None = None
        self.writer = None

    def write(self, rows: list[tuple[int, str, list[str]]]) -> None:
        if self.path is None or not rows:
            return
        if self.writer is None:
            # utf-8-sig and the input's delimiter: the report opens cleanly in the same
            # spreadsheet, and once fixed it can be imported as it is.
            self.stream = self.path.open("w", encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.stream, delimiter=self.delimiter)
            self.writer.writerow(["row_number", "reason", *self.header])
        for row_number, reason, cells in sorted(rows, key=lambda row: row[0]):
            padded = cells + [""] * (len(self.header) - len(cells))
            self.writer.writerow([row_number, reason, *padded])

    def close(self) -> Path | None:
        if self.stream is None:
            return None
        self.stream.close()
        return self.path


def _records(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells) for each non-blank data row; the header was row 1."""
    for row_number, cells in enumerate(reader, start=2):
        if any(cell.strip() for cell in cells):
            yield row_number, cells


def import_leads_csv(
    *,
    path: Path,
    source: str,
    report_path: Path | None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the leads in a CSV file; see the module docstring for the counting rules.

    Raises ImportFileError, before importing anything, when the file cannot be read as
    CSV text or has no column that identifies a lead; and, after importing the rows before
    it, at a line the csv module cannot parse. `report_path` receives the invalid
    and suppressed rows (only created when there are some; None writes no report).
    `progress` is called with the number of rows handled after each batch.
    """
    report = ImportReport()
    report.encoding = _detect_encoding(path, report.notes)
    with path.open(encoding=report.encoding, newline="") as stream:
        delimiter = _sniff_delimiter(stream.readline())
        stream.seek(0)
        reader = csv.reader(stream, delimiter=delimiter)
        header = next(reader, [])
        if not any(name.strip() for name in header):
            raise ImportFileError(f"{path.name} is empty: the first line must name the columns")
        columns = _column_map(header, path, report.notes)
        rejected = _Report(report_path, header, delimiter)
        tally = _Tally()
        batch: list[tuple[int, list[str], LeadInput]] = []
        failures: list[tuple[int, str, list[str]]] = []

        def flush() -> None:
            if batch:
                _import_batch(batch, source, path, report, tally, failures)
            rejected.write(failures)
            batch.clear()
            failures.clear()
            if progress is not None:
                progress(report.total)

        try:
            for row_number, cells in _records(reader):
                report.total += 1
                extra = [cell for cell in cells[len(header) :] if cell.strip()]
                try:
                    if extra:
                        raise InvalidValue(
                            "row",
                            delimiter.join(extra),
                            f"it has {len(cells)} cells but the header names {len(header)} "
                            "columns (an unquoted delimiter?)",
                        )
                    item = lead_input_from_mapping(_values(cells, columns))
                except InvalidValue as exc:
                    report.invalid += 1
                    failures.append((row_number, str(exc), cells))
                    continue
                batch.append((row_number, cells, item))
                if len(batch) >= batch_size:
                    flush()
            flush()
        except csv.Error as exc:
            # Typically an unclosed quote that swallowed the rest of the file: keep what
            # came before it, and say where to look.
            flush()
            raise ImportFileError(
                f"{path.name} cannot be read as CSV at line {reader.line_num}: {exc}; "
                f"the {report.total} rows before it were imported or reported"
            ) from exc
        finally:
            report.report_path = rejected.close()
    return report


def _import_batch(
    batch: list[tuple[int, list[str], LeadInput]],
    source: str,
    path: Path,
    report: ImportReport,
    tally: _Tally,
    failures: list[tuple[int, str, list[str]]],
) -> None:
    result = leads_upsert(
        inputs=[item for _, _, item in batch], source=source, origin=f"csv:{path.name}"
    )
    for position in result.suppressed_positions:
        row_number, cells, _ = batch[position]
        failures.append((row_number, "its email or LinkedIn URL is suppressed", cells))
    report.suppressed += result.suppressed
    tally.rows += len(batch) - result.suppressed
    tally.created.update(result.created)
    tally.filled.update(lead_id for lead_id in result.updated if lead_id not in tally.created)
    # Counted over the whole file, not per batch, so that a lead met in two batches counts
    # exactly as if both rows had been in one: every upserted row that neither created a
    # lead nor is the one row standing for a filled pre-existing lead is a duplicate.
    report.created = len(tally.created)
    report.updated = len(tally.filled)
    report.duplicate = tally.rows - report.created - report.updated
