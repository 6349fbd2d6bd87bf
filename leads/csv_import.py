"""Import leads from the CSV files people really have: CRM and data-vendor exports.

Reading: the encoding is detected (UTF-8 with or without a byte-order mark, UTF-16 with
one, else Windows-1252 or Latin-1 with a note), the delimiter is sniffed from the header
line (comma, semicolon or tab) and the csv module reads quoted delimiters and newlines.
Columns are mapped automatically from the header names of Apollo, HubSpot, Salesforce and
LinkedIn Sales Navigator export tools (HEADER_ALIASES; their sources are listed in
tests/imports/fixtures/README.md), and a caller may override any column ("Work Email" →
email, "Notes" → ignore).

Writing: rows are normalized and upserted in batches through `leads.bulk_import` (COPY on
PostgreSQL), so a bad row is reported and skipped instead of aborting the file, and every
batch commits on its own: an interrupted import can simply be run again, its already
imported rows then count as duplicates. A thread reads and normalizes the next rows while
a batch is being written, and the first batches are small, so the database starts early.

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
import gc
import io
import multiprocessing
import queue
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from leads.bulk_import import (
    RAW_FIELDS,
    BulkItem,
    BulkNormalizer,
    LeadRow,
    leads_bulk_upsert,
    tidy,
)
from leads.normalize import InvalidValue

# What a column can be mapped to. The identity and the enrichable lead fields, plus:
# `full_name` is split into first and last name when the file has no such columns;
# `city`, `state` and `country` are joined into the location when it has no location
# column; `website` and `company_domain` both give the company's domain; `company_name`
# names a company that has no name yet.
TARGETS: dict[str, str] = {
    "email": "Email address (identity)",
    "linkedin_url": "LinkedIn profile URL (identity)",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name, split into first and last name when those are missing",
    "company_domain": "Company domain",
    "website": "Company website (its domain is the company domain)",
    "company_name": "Company name",
    "phone": "Phone number",
    "job_title": "Job title",
    "seniority": "Seniority",
    "department": "Department",
    "location": "Location",
    "city": "City (joined into the location)",
    "state": "State or region (joined into the location)",
    "country": "Country (joined into the location)",
}
IGNORE = "ignore"

# Header spellings, compared after _header_key (lowercase letters and digits only, so
# "Person Linkedin Url", "person_linkedin_url" and "personLinkedinUrl" are one). Within a
# target the earlier spelling wins when a file has several: a direct line before the
# switchboard, the profile URL before a Sales Navigator URL. Sources: the fixture README.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "emailaddress",
        "workemail",
        "businessemail",
        "professionalemail",
        "primaryemail",
    ),
    "linkedin_url": (
        "linkedinprofileurl",  # PhantomBuster linkedInProfileUrl
        "defaultprofileurl",  # PhantomBuster
        "personlinkedinurl",  # Apollo
        "linkedinurl",  # HubSpot, Evaboot
        "linkedin",
        "linkedinprofile",
        "profilelink",
        "profileurl",  # PhantomBuster: a Sales Navigator URL when nothing better exists
        "profile",  # Dux-Soup
    ),
    "first_name": ("firstname", "givenname", "first", "fname"),
    "last_name": ("lastname", "surname", "familyname", "last", "lname"),
    "full_name": ("fullname", "name", "contactname", "leadname"),
    "company_domain": ("companydomain", "companydomainname", "domain"),
    "website": ("website", "companywebsite", "websiteurl", "companywebsiteurl", "web"),
    "company_name": (
        "companyname",
        "company",
        "companyaccount",  # Salesforce report "Company / Account"
        "account",
        "accountname",
        "organization",
        "organizationname",
        "companynameforemails",  # Apollo
    ),
    "phone": (
        "workdirectphone",  # Apollo
        "directphone",
        "mobilephone",
        "mobile",
        "mobilephonenumber",
        "firstphone",  # Apollo: its best number for the person
        "phone",
        "phonenumber",
        "telephone",
        "workphone",
        "businessphone",
        "corporatephone",  # Apollo: the switchboard, the last resort
    ),
    "job_title": ("jobtitle", "title", "position", "job", "role", "designation"),
    "seniority": ("seniority", "senioritylevel", "managementlevel"),
    "department": ("department", "departments", "function", "jobfunction"),
    "location": ("location", "personlocation", "contactlocation", "geo"),
    "city": ("city", "personcity"),
    "state": ("state", "stateregion", "stateprovince", "province", "region"),
    "country": ("country", "countryregion", "personcountry"),
}
_ALIAS_INDEX: dict[str, tuple[str, int]] = {
    alias: (target, rank)
    for target, aliases in HEADER_ALIASES.items()
    for rank, alias in enumerate(aliases)
}

_DELIMITERS = (",", ";", "\t")
_DECODE_CHUNK = 1024 * 1024
_DEFAULT_BATCH = 25_000
_FIRST_BATCH = 1_000
_LOCATION_CACHE_SIZE = 65_536
# Where RowValues.raw puts the fields it composes.
_LINKEDIN = RAW_FIELDS.index("linkedin_url")
_FIRST_NAME = RAW_FIELDS.index("first_name")
_LAST_NAME = RAW_FIELDS.index("last_name")
_LOCATION = RAW_FIELDS.index("location")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (or the mapping asked for is wrong)."""


def _header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


# --- Reading the file ---------------------------------------------------------------------


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


class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it, for a progress fraction."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.consumed += len(data)
        return len(data)


@dataclass(frozen=True)
class CsvFormat:
    """How a file is written: what the reader needs to read it again the same way."""

    encoding: str
    delimiter: str
    header: tuple[str, ...]
    notes: tuple[str, ...] = ()


def detect_format(path: Path) -> CsvFormat:
    """Return the file's encoding, delimiter and header; raise ImportFileError when it
    cannot be read as CSV text with a header row."""
    notes: list[str] = []
    encoding = _detect_encoding(path, notes)
    try:
        with path.open(encoding=encoding, newline="") as stream:
            delimiter = _sniff_delimiter(stream.readline())
            stream.seek(0)
            header = next(csv.reader(stream, delimiter=delimiter), [])
    except csv.Error as exc:
        raise ImportFileError(f"{path.name} cannot be read as CSV in its header: {exc}") from exc
    if not any(name.strip() for name in header):
        raise ImportFileError(f"{path.name} is empty: the first line must name the columns")
    if any("\x00" in name for name in header):
        raise ImportFileError(f"{path.name} has a NUL character in its header: it is not text")
    return CsvFormat(encoding, delimiter, tuple(header), tuple(notes))


class CsvReader:
    """The records of a file after its header, with their row numbers and read progress."""

    def __init__(self, path: Path, fmt: CsvFormat) -> None:
        self.path = path
        self.fmt = fmt
        self.size = path.stat().st_size
        self._raw = path.open("rb")
        self._counter = _CountingReader(self._raw)
        text = io.TextIOWrapper(io.BufferedReader(self._counter), encoding=fmt.encoding, newline="")
        self._reader = csv.reader(text, delimiter=fmt.delimiter)
        next(self._reader, None)

    @property
    def fraction(self) -> float:
        return min(self._counter.consumed / self.size, 1.0) if self.size else 1.0

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (row number, cells) for every record, blank ones included; the header is
        row 1. A quoted newline does not shift the numbers: a record is one row."""
        yield from enumerate(self._reader, start=2)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> "CsvReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- Mapping columns ----------------------------------------------------------------------


def parse_mapping_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """Turn `["Work Email=email", "Notes=ignore"]` into a {column: target} dict."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.rpartition("=")
        if not sep or not column.strip():
            raise ImportFileError(f"{pair!r} is not COLUMN=FIELD (for example 'Work Email=email')")
        overrides[column.strip()] = target.strip()
    return overrides


@dataclass(frozen=True)
class ColumnMapping:
    """Which column feeds which target: `targets[i]` is column i's target ("" if none),
    `manual[i]` whether the caller chose it."""

    header: tuple[str, ...]
    targets: tuple[str, ...]
    manual: tuple[bool, ...] = ()

    def columns(self) -> dict[str, list[int]]:
        """Return, per target, its columns in the order they are tried."""
        ranked: dict[str, list[tuple[int, int]]] = {}
        manual = self.manual or (False,) * len(self.header)
        for index, (name, target) in enumerate(zip(self.header, self.targets, strict=True)):
            if target:
                alias = _ALIAS_INDEX.get(_header_key(name))
                # Columns chosen by hand come first, then by alias rank, then file order.
                rank = -1 if manual[index] or not alias else alias[1]
                ranked.setdefault(target, []).append((rank, index))
        return {target: [i for _, i in sorted(pairs)] for target, pairs in ranked.items()}

    def as_dict(self) -> dict[str, str]:
        return {name: target for name, target in zip(self.header, self.targets, strict=True)}

    def ignored(self) -> list[str]:
        return [
            name.strip()
            for name, target in zip(self.header, self.targets, strict=True)
            if not target and name.strip()
        ]


def column_mapping(
    header: Sequence[str], overrides: Mapping[str, str] | None = None, *, file_name: str = "file"
) -> ColumnMapping:
    """Map each column automatically by its name, then apply the caller's overrides.

    Raises ImportFileError when an override names a column the file lacks or a target
    that does not exist, or when no column can identify a lead.
    """
    targets = [
        _ALIAS_INDEX[_header_key(name)][0] if _header_key(name) in _ALIAS_INDEX else ""
        for name in header
    ]
    manual = [False] * len(header)
    for column, target in (overrides or {}).items():
        target = target.strip().lower()
        if target in ("", IGNORE, "-"):
            target = ""
        elif target not in TARGETS:
            raise ImportFileError(
                f"{target!r} (for column {column!r}) is not a field; use one of "
                f"{', '.join(TARGETS)} or {IGNORE}"
            )
        matches = [i for i, name in enumerate(header) if name.strip() == column.strip()] or [
            i for i, name in enumerate(header) if name.strip().lower() == column.strip().lower()
        ]
        if not matches:
            found = ", ".join(repr(name) for name in header)
            raise ImportFileError(
                f"the mapping names column {column!r}, which {file_name} does not have "
                f"(its columns: {found})"
            )
        for index in matches:
            targets[index] = target
            manual[index] = True
    mapping = ColumnMapping(tuple(header), tuple(targets), tuple(manual))
    mapped = set(targets)
    has_name = {"first_name", "last_name"} <= mapped or "full_name" in mapped
    has_domain = bool(mapped & {"company_domain", "website"})
    if not (mapped & {"email", "linkedin_url"} or (has_name and has_domain)):
        found = ", ".join(repr(name) for name in header) or "none"
        raise ImportFileError(
            f"{file_name} has no column identifying a lead: it needs an email column, a "
            "LinkedIn URL column, or first name + last name + company domain (or website) "
            f"columns (headers found: {found}); map one by hand if its name is unusual"
        )
    return mapping


def _first_filled(cells: list[str], indexes: list[int]) -> str:
    for index in indexes:
        if index < len(cells) and cells[index].strip():
            return cells[index]
    return ""


_LINKEDIN_PROFILE = re.compile(r"linkedin\.com/(in|pub)/", re.IGNORECASE)


class RowValues:
    """Turns a row's cells into the raw values `BulkNormalizer` reads."""

    def __init__(self, mapping: ColumnMapping) -> None:
        self.columns = columns = mapping.columns()
        self.width = width = len(mapping.header)
        # Per field of RAW_FIELDS, its columns in the order they are tried.
        self._sources = [columns.get(name, []) for name in RAW_FIELDS]
        self._linkedin = columns.get("linkedin_url", [])
        self._full_name = columns.get("full_name", [])
        self._places = [columns[key] for key in ("city", "state", "country") if key in columns]
        self._company = columns.get("company_name", [])
        # City, state and country repeat together: each distinct trio is joined once.
        self._locations: dict[tuple[str, ...], str] = {}
        # A row of the header's width is read by position, each field from its first
        # column (column `width` is a blank added at the row's end), and only a field
        # whose first column is blank tries its others. Not with several LinkedIn
        # columns, whose choice is by content.
        self._by_position = len(self._linkedin) <= 1
        self._field_columns = [indexes[0] if indexes else width for indexes in self._sources]
        self._more_columns = [
            (position, indexes[1:])
            for position, indexes in enumerate(self._sources)
            if len(indexes) > 1
        ]
        self._place_columns = [indexes[0] for indexes in self._places]
        self._places_elsewhere = any(len(indexes) > 1 for indexes in self._places)
        self._full_name_column = self._full_name[0] if self._full_name else width
        self._company_column = self._company[0] if self._company else width

    def __call__(self, cells: list[str]) -> tuple[dict[str, str], str]:
        """Return (lead values by field name, company name)."""
        raw, company_name = self._read(cells)
        return {name: value for name, value in zip(RAW_FIELDS, raw, strict=True) if value}, (
            company_name
        )

    def raw(self, cells: list[str]) -> tuple[list[str], str]:
        """Return (the values of RAW_FIELDS in order, "" when not given; company name).

        A value may keep surrounding whitespace, or be whitespace only: BulkNormalizer
        tidies it, to "" in the second case, as it would a value not given.
        """
        if not self._by_position or len(cells) != self.width:
            return self._read(cells)
        # The same reading as _read's, by position: this runs for every row.
        cell = [*cells, ""].__getitem__
        raw = list(map(cell, self._field_columns))
        for position, others in self._more_columns:
            value = raw[position]
            if not value or value.isspace():
                raw[position] = _first_filled(cells, others)
        if self._full_name and not (raw[_FIRST_NAME].strip() or raw[_LAST_NAME].strip()):
            name = cell(self._full_name_column)
            if len(self._full_name) > 1 and not name.strip():
                name = _first_filled(cells, self._full_name)
            first, _, last = name.strip().partition(" ")
            raw[_FIRST_NAME], raw[_LAST_NAME] = first, last
        if self._places and not raw[_LOCATION].strip():
            if self._places_elsewhere:
                places = tuple(_first_filled(cells, indexes) for indexes in self._places)
            else:
                places = tuple(map(cell, self._place_columns))
            raw[_LOCATION] = self._location(places)
        company_name = cell(self._company_column)
        if len(self._company) > 1 and not company_name.strip():
            company_name = _first_filled(cells, self._company)
        return raw, tidy(company_name)

    def _read(self, cells: list[str]) -> tuple[list[str], str]:
        size = len(cells)
        raw = []
        # The first filled column of each field wins.
        for indexes in self._sources:
            value = ""
            for index in indexes:
                if index < size:
                    cell = cells[index]
                    if cell and not cell.isspace():
                        value = cell
                        break
            raw.append(value)
        if len(self._linkedin) > 1:
            # Sales Navigator tools give a profile URL and a Sales Navigator one: the
            # profile wins wherever it sits, a lone Sales Navigator URL is reported.
            filled = [cells[i] for i in self._linkedin if i < size and cells[i].strip()]
            profiles = [url for url in filled if _LINKEDIN_PROFILE.search(url)]
            raw[_LINKEDIN] = (profiles or filled or [""])[0]
        if self._full_name and not (raw[_FIRST_NAME] or raw[_LAST_NAME]):
            first, _, last = _first_filled(cells, self._full_name).strip().partition(" ")
            raw[_FIRST_NAME], raw[_LAST_NAME] = first, last
        if self._places and not raw[_LOCATION]:
            raw[_LOCATION] = self._location(
                tuple(_first_filled(cells, indexes) for indexes in self._places)
            )
        return raw, tidy(_first_filled(cells, self._company))

    def _location(self, places: tuple[str, ...]) -> str:
        location = self._locations.get(places)
        if location is None:
            if len(self._locations) >= _LOCATION_CACHE_SIZE:
                self._locations.clear()
            parts = [part.strip() for part in places]
            location = self._locations[places] = ", ".join(part for part in parts if part)
        return location


# --- Importing ----------------------------------------------------------------------------


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
    delimiter: str = ","
    mapping: dict[str, str] = field(default_factory=dict)
    fraction: float = 0.0
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    created_ids: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Tally:
    """What the batches so far did, for counting rows across batch boundaries."""

    rows: int = 0
    created: set[int] = field(default_factory=set)
    filled: set[int] = field(default_factory=set)


class ErrorReport:
    """The invalid-row CSV, opened only when the first row has to go into it."""

    def __init__(self, path: Path | None, header: Sequence[str], delimiter: str) -> None:
        self.path = path
        self.header = list(header)
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


class RowNormalizer:
    """One row's cells to a BulkItem, the InvalidValue that rejects it, or None if blank."""

    def __init__(self, mapping: ColumnMapping, delimiter: str) -> None:
        self.normalizer = BulkNormalizer()
        self.row_values = RowValues(mapping)
        self.width = len(mapping.header)
        self.delimiter = delimiter

    def __call__(self, cells: list[str]) -> BulkItem | InvalidValue | None:
        joined = "".join(cells)
        if not joined or joined.isspace():
            return None
        width = self.width
        extra = [cell for cell in cells[width:] if cell.strip()]
        if extra:
            return InvalidValue(
                "row",
                self.delimiter.join(extra),
                f"it has {len(cells)} cells but the header names {width} columns "
                "(an unquoted delimiter?)",
            )
        raw, company_name = self.row_values.raw(cells)
        try:
            lead = self.normalizer.lead_row_of(raw)
        except InvalidValue as exc:
            return exc
        return BulkItem(lead, company_name)


# Rows handed to a normalizing process at a time, and chunks in flight per process: enough
# to keep the processes busy, few enough that a big file is never read ahead into memory.
_PARALLEL_CHUNK = 2000
_IN_FLIGHT_PER_WORKER = 8
_WORKER_TIMEOUT_SECONDS = 300
_worker_normalizer: RowNormalizer | None = None


def _worker_start(mapping: ColumnMapping, delimiter: str) -> None:
    global _worker_normalizer
    _worker_normalizer = RowNormalizer(mapping, delimiter)
    # A process that only normalizes makes no reference cycles worth collecting (see
    # _cycle_collection_paused); it ends with the import.
    gc.disable()


def _worker_normalize(rows: list[list[str]]) -> list:
    # Plain tuples travel back: pickle handles a named tuple through a Python call per
    # object at each end, several times the cost of the tuple itself. InvalidValue does
    # not pickle at all (its constructor takes three arguments): its parts travel.
    return [
        item
        if item is None
        else (item.field, str(item.value), item.reason)
        if isinstance(item, InvalidValue)
        else (*item.lead, item.company_name)
        for item in map(_worker_normalizer, rows)
    ]


# Named tuples built the way their _make builds them, in C, skipping __new__'s argument
# handling: this runs for every row.
_new_tuple = tuple.__new__
_ROW_WIDTH = len(LeadRow._fields)


def _from_worker(item) -> BulkItem | InvalidValue | None:
    if item is None:
        return None
    if len(item) == 3:
        return InvalidValue(*item)
    return _new_tuple(BulkItem, (_new_tuple(LeadRow, item[:_ROW_WIDTH]), item[_ROW_WIDTH]))


def normalized_rows(
    reader: CsvReader, mapping: ColumnMapping, *, workers: int = 1
) -> Iterator[tuple[int, list[str], BulkItem | InvalidValue | None]]:
    """Yield (row number, cells, item) per record, in file order: a BulkItem, the
    InvalidValue that rejected the row, or None for a blank row.

    Normalizing is most of an import's work: with `workers` > 1 it runs in that many
    forked processes while this one reads and writes. Only for a process without other
    threads (a management command), as fork copies no thread but the caller's.
    """
    if workers > 1 and threading.active_count() > 1:
        # A fork copies only this thread: a lock another thread held (logging's, say)
        # stays locked forever in the child. Running in a threaded process (a web or
        # Celery process, a test session), it normalizes here instead.
        workers = 1
    if workers <= 1:
        normalize = RowNormalizer(mapping, reader.fmt.delimiter)
        for row_number, cells in reader.records():
            yield row_number, cells, normalize(cells)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(
        workers, initializer=_worker_start, initargs=(mapping, reader.fmt.delimiter)
    ) as pool:
        pending: deque = deque()
        records = reader.records()
        broken: csv.Error | None = None
        while True:
            while broken is None and len(pending) < workers * _IN_FLIGHT_PER_WORKER:
                chunk: list[tuple[int, list[str]]] = []
                try:
                    for record in records:
                        chunk.append(record)
                        if len(chunk) >= _PARALLEL_CHUNK:
                            break
                except csv.Error as exc:
                    # The rows before the broken line still go through, then the error.
                    broken = exc
                if not chunk:
                    break
                rows = [cells for _, cells in chunk]
                pending.append((chunk, pool.apply_async(_worker_normalize, (rows,))))
                if len(chunk) < _PARALLEL_CHUNK:
                    break
            if not pending:
                if broken is not None:
                    raise broken
                return
            chunk, result = pending.popleft()
            # A bounded wait: a worker that died must fail the import, not hang it.
            items = result.get(timeout=_WORKER_TIMEOUT_SECONDS)
            for (row_number, cells), item in zip(chunk, items, strict=True):
                yield row_number, cells, _from_worker(item)


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cycle collector for an import. A batch keeps tens of thousands of
    rows, leads and targets alive while millions of short-lived objects come and go, so
    the collector keeps rescanning live objects for cycles there are hardly any of: a
    fifth of the import's CPU, measured. Reference counting still frees everything else,
    and the collector runs again afterwards (it finds the odd cycle, such as a rejected
    row's exception and its traceback)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


# Rows the reading thread hands over at a time.
_HANDOVER_ROWS = 1000


class _Failure:
    """What the reading thread raised, carried to the importing thread to raise there."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def _read_ahead(rows: Iterator, *, rows_ahead: int) -> Iterator:
    """Yield what `rows` yields, produced by a thread that runs up to about `rows_ahead`
    rows ahead, so the file is read and normalized while this thread waits for the
    database (psycopg releases the GIL while it waits): the two overlap instead of
    taking turns. An exception raised by `rows` is raised here, after every row before
    it.

    The first row is taken in this thread: whatever `rows` sets up on its first step
    (normalized_rows forks its processes) happens while no other thread exists.
    """
    first = next(rows, _END)
    if first is _END:
        return
    handover: queue.Queue = queue.Queue(maxsize=max(rows_ahead // _HANDOVER_ROWS, 2))
    stop = threading.Event()

    def put(item) -> bool:
        # Gives up when the importing thread has stopped taking rows (it failed).
        while not stop.is_set():
            try:
                handover.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        chunk: list = []
        try:
            for row in rows:
                chunk.append(row)
                if len(chunk) >= _HANDOVER_ROWS:
                    if not put(chunk):
                        return
                    chunk = []
            if put(chunk):
                put(_END)
        except BaseException as exc:  # raised again in the importing thread
            if put(chunk):
                put(_Failure(exc))
        finally:
            rows.close()

    thread = threading.Thread(target=produce, name="csv-import-reader", daemon=True)
    thread.start()
    try:
        yield first
        while (chunk := handover.get()) is not _END:
            if isinstance(chunk, _Failure):
                raise chunk.error
            yield from chunk
    finally:
        stop.set()
        thread.join()


def import_leads_csv(
    *,
    path: Path,
    source: str,
    report_path: Path | None,
    mapping: Mapping[str, str] | None = None,
    origin: str | None = None,
    notify: bool = True,
    batch_size: int = _DEFAULT_BATCH,
    progress: Callable[[ImportReport], None] | None = None,
    on_rows: Callable[[list[tuple[int, int]]], None] | None = None,
    workers: int = 1,
) -> ImportReport:
    """Import the leads in a CSV file; see the module docstring for the counting rules.

    `mapping` overrides the automatic column mapping ({column: target or "ignore"}).
    Raises ImportFileError, before importing anything, when the file cannot be read as
    CSV text, the mapping is wrong, or no column identifies a lead; and, after importing
    the rows before it, at a line the csv module cannot parse. `report_path` receives the
    invalid and suppressed rows (only created when there are some; None writes no report).
    `progress` gets the report after each batch; `on_rows` gets (row number, lead id) for
    each row that became a lead. `notify=False` sends no `leads_created` (see
    `leads_bulk_upsert`); `origin` defaults to "csv:<file name>". `workers` > 1
    normalizes in that many processes (see `normalized_rows`).
    """
    fmt = detect_format(path)
    report = ImportReport(encoding=fmt.encoding, delimiter=fmt.delimiter, notes=list(fmt.notes))
    columns = column_mapping(fmt.header, mapping, file_name=path.name)
    report.mapping = columns.as_dict()
    if ignored := columns.ignored():
        report.notes.append(f"Columns not imported: {', '.join(ignored)}.")
    origin = origin or f"csv:{path.name}"
    rejected = ErrorReport(report_path, fmt.header, fmt.delimiter)
    tally = _Tally(created=report.created_ids)
    batch: list[tuple[int, list[str], BulkItem]] = []
    failures: list[tuple[int, str, list[str]]] = []

    with _cycle_collection_paused(), CsvReader(path, fmt) as reader:

        def flush() -> None:
            if batch:
                _import_batch(batch, source, origin, notify, report, tally, failures, on_rows)
            rejected.write(failures)
            batch.clear()
            failures.clear()
            report.fraction = reader.fraction
            if progress is not None:
                progress(report)

        # The first batches are small and double up to batch_size: the database starts
        # writing after a moment instead of after a whole batch has been normalized.
        limit = min(_FIRST_BATCH, batch_size)
        try:
            normalized = normalized_rows(reader, columns, workers=workers)
            # closing(): the reading thread has stopped before the file closes, also when
            # a batch fails.
            with closing(_read_ahead(normalized, rows_ahead=batch_size)) as rows:
                for row_number, cells, item in rows:
                    if item is None:
                        continue
                    report.total += 1
                    if isinstance(item, InvalidValue):
                        report.invalid += 1
                        failures.append((row_number, str(item), cells))
                        continue
                    batch.append((row_number, cells, item))
                    if len(batch) >= limit:
                        flush()
                        limit = min(limit * 2, batch_size)
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
    batch: list[tuple[int, list[str], BulkItem]],
    source: str,
    origin: str,
    notify: bool,
    report: ImportReport,
    tally: _Tally,
    failures: list[tuple[int, str, list[str]]],
    on_rows: Callable[[list[tuple[int, int]]], None] | None,
) -> None:
    result = leads_bulk_upsert(
        items=[item for _, _, item in batch], source=source, origin=origin, notify=notify
    )
    for position in result.suppressed_positions:
        row_number, cells, _ = batch[position]
        failures.append((row_number, "its email or LinkedIn URL is suppressed", cells))
    if on_rows is not None:
        on_rows(
            [
                (row_number, lead_id)
                for (row_number, _, _), lead_id in zip(batch, result.lead_ids, strict=True)
                if lead_id is not None
            ]
        )
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
