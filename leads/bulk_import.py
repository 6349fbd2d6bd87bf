"""Bulk writes for imports: `leads_upsert`'s rules, at tens of thousands of rows a second.

`leads_upsert` builds a model instance per lead and saves through the ORM, which is right
for the API and the lead form and far too slow for a 100k-row file. This module keeps its
rules (normalization, matching by email, else LinkedIn URL, else name at company domain;
repeats merged into the first; blank columns filled, never a value overwritten;
suppressed identities refused; `leads_created` sent in the same transaction) and changes
only how the work is done:

- `BulkNormalizer` gives exactly `lead_input_from_mapping`'s result, but checks the common
  shapes of an email, a LinkedIn URL and a North American phone number with a regular
  expression first, tidies a row's spacing only when a single check of the row finds any
  to tidy, and caches what repeats in a file (the domain of each address and website,
  company phone numbers), so only the unusual values pay for the full validators;
- `leads_bulk_upsert` matches in memory against a few set-based queries, then writes new
  leads with a binary COPY on PostgreSQL (ids drawn from the table's sequence beforehand,
  so each row knows its lead) and `bulk_create` elsewhere, and fills blanks of existing
  leads with one UPDATE that can only fill, so a concurrent writer's value is never
  overwritten.

NUL characters are dropped with the rest of the spacing: PostgreSQL text cannot hold them.
"""

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from email_validator import EmailNotValidError, validate_email

from leads.models import Company, Lead, Suppression
from leads.normalize import (
    InvalidValue,
    identity_hash,
    is_disposable_domain,
    is_webmail_domain,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
    normalize_phone,
)
from leads.services import (
    _LINKEDIN_MAX_LENGTH,
    _MAX_LENGTHS,
    LeadInput,
    _checked_length,
    _identity_check,
)
from leads.signals import leads_created

# Caches live as long as one normalizer (one import): settings read at its start hold
# for the whole file, and memory stays bounded.
_CACHE_SIZE = 65_536
# Rows per statement for the ORM path and for IN lists (SQLite caps bound parameters).
_CHUNK = 500

# The everyday address: dot-atom local part of letters, digits, "_", "+" and "-", and a
# dotted host name. Anything else goes to the full validator.
_SIMPLE_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\Z"
)
# The everyday profile URL, whole: scheme or not, www or a country subdomain, an optional
# trailing slash, no query. Anything else goes to normalize_linkedin_url.
_SIMPLE_LINKEDIN = re.compile(
    r"(?:https?://)?(?:[a-z]{2,3}\.)?linkedin\.com/(?:in|pub)/(?P<slug>[^/?#\s\x00-\x1f\x7f-\x9f]+)/?\Z",
    re.IGNORECASE,
)
# The everyday North American number, whole: "+1" and ten digits, or the ten digits alone,
# grouped 3-3-4 with a space, "." or "-" or nothing between groups, the area code possibly
# in parentheses, after an optional spreadsheet quote. ASCII digits only (phonenumbers
# also reads other scripts' digits; those take the long way).
_SIMPLE_NANP = re.compile(
    r"'?(?P<plus>\+1[ .-]?)?(?:\((?P<area_in_parens>[2-9][0-9]{2})\)|(?P<area>[2-9][0-9]{2}))"
    r"[ .-]?(?P<exchange>[0-9]{3})[ .-]?(?P<line>[0-9]{4})\Z"
)
# RFC 5321 limits email_validator enforces beyond what the domain check covers.
_EMAIL_MAX_LENGTH = 254
_LOCAL_MAX_LENGTH = 64
# The raw values BulkNormalizer.lead_row_of reads, in its order: LeadInput's, and `domain`
# and `website`, other names for the company domain (tried in this order).
RAW_FIELDS = (
    "email",
    "linkedin_url",
    "phone",
    "first_name",
    "last_name",
    "job_title",
    "seniority",
    "department",
    "location",
    "company_domain",
    "domain",
    "website",
)
# The free-text columns and their limits, in the order lead_input_from_mapping checks them.
_TEXT_LIMITS = tuple(
    (name, _MAX_LENGTHS[name])
    for name in ("first_name", "last_name", "job_title", "seniority", "department", "location")
)
_SHORTEST_TEXT_LIMIT = min(limit for _, limit in _TEXT_LIMITS)


class LeadRow(NamedTuple):
    """LeadInput's fields as a tuple: what an import builds per row, quicker to create and
    to send between processes. Everything that reads a LeadInput reads it the same way."""

    email: str = ""
    first_name: str = ""
    last_name: str = ""
    company_domain: str = ""
    linkedin_url: str = ""
    phone: str = ""
    job_title: str = ""
    seniority: str = ""
    department: str = ""
    location: str = ""
    owner_id: int | None = None


class BulkNormalizer:
    """`lead_input_from_mapping`, faster on files: same results, same errors."""

    def __init__(self) -> None:
        region = settings.PHONE_DEFAULT_REGION
        # A number written without "+1" is North American only where the region dials +1.
        self._bare_nanp = phonenumbers.country_code_for_region(region) == 1
        self._us_number = _us_number_test()
        self._domain_ok: dict[str, bool] = {}
        self._phone = lru_cache(maxsize=_CACHE_SIZE)(
            lambda raw: _outcome(self._new_phone, raw, region=region)
        )
        self._domain = lru_cache(maxsize=_CACHE_SIZE)(lambda raw: _outcome(normalize_domain, raw))
        self._email_company = lru_cache(maxsize=_CACHE_SIZE)(_company_domain_of_email_domain)

    def email(self, raw: str) -> str:
        match = _SIMPLE_EMAIL.match(raw)
        if (
            match is not None
            and len(raw) <= _EMAIL_MAX_LENGTH
            and len(match["local"]) <= _LOCAL_MAX_LENGTH
        ):
            domain = match["domain"].lower()
            known = self._domain_ok.get(domain)
            if known is None:
                known = self._domain_ok[domain] = _domain_accepts_mail(domain)
            if known:
                return raw.lower()
        return normalize_email(raw)

    def linkedin_url(self, raw: str) -> str:
        match = _SIMPLE_LINKEDIN.match(raw)
        if match is not None:
            return f"https://www.linkedin.com/in/{match['slug'].lower()}"
        return normalize_linkedin_url(raw)

    def phone(self, raw: str) -> str:
        return _unwrap(self._phone(raw))

    def _new_phone(self, raw: str, *, region: str) -> str:
        # Mobile numbers are as unique as the people, so the cache rarely helps them; the
        # everyday North American form skips phonenumbers' parser (most of its cost).
        match = _SIMPLE_NANP.match(raw)
        if match is not None and (match["plus"] or self._bare_nanp):
            national = match["area"] or match["area_in_parens"]
            national += match["exchange"] + match["line"]
            if self._us_number(national):
                return f"+1{national}"
        return normalize_phone(raw, region=region)

    def domain(self, raw: str) -> str:
        return _unwrap(self._domain(raw))

    def lead_input(self, values: Mapping[str, str]) -> LeadInput:
        """Return what `lead_input_from_mapping(values)` returns, or raise what it raises."""
        return LeadInput(*self.lead_row(values))

    def lead_row(self, values: Mapping[str, str]) -> LeadRow:
        """`lead_input`, as a LeadRow."""
        return self._lead_row([tidy(values.get(name)) for name in RAW_FIELDS])

    def lead_row_of(self, raw: Sequence[str]) -> LeadRow:
        """`lead_row` of the values of RAW_FIELDS in that order ("" when absent): what a
        CSV row gives, without building a mapping per row."""
        return self._lead_row(raw if is_tidy(raw) else [tidy(value) for value in raw])

    def _lead_row(self, clean: Sequence[str]) -> LeadRow:
        (
            email,
            linkedin_url,
            phone,
            first_name,
            last_name,
            job_title,
            seniority,
            department,
            location,
            company_domain,
            domain,
            website,
        ) = clean
        # Checked in lead_input_from_mapping's order: a row with several bad values is
        # refused for the same one.
        if email:
            email = self.email(email)
        if linkedin_url:
            linkedin_url = self.linkedin_url(linkedin_url)
            if len(linkedin_url) > _LINKEDIN_MAX_LENGTH:
                _checked_length("linkedin_url", linkedin_url, _LINKEDIN_MAX_LENGTH)
        if phone:
            phone = self.phone(phone)
        texts = (first_name, last_name, job_title, seniority, department, location)
        # One look at the longest value first: it is rarely near the smallest limit.
        if max(map(len, texts)) > _SHORTEST_TEXT_LIMIT:
            for (name, limit), text in zip(_TEXT_LIMITS, texts, strict=True):
                if len(text) > limit:
                    _checked_length(name, text, limit)
        if given := company_domain or domain or website:
            try:
                company_domain = self.domain(given)
            except InvalidValue as exc:
                key = "company_domain" if company_domain else "domain" if domain else "website"
                raise InvalidValue(key, given, exc.reason) from None
        else:
            company_domain = self._email_company(email.rsplit("@", 1)[1]) if email else ""
        if not (email or linkedin_url or (first_name and last_name and company_domain)):
            _identity_check(
                email=email,
                linkedin_url=linkedin_url,
                first_name=first_name,
                last_name=last_name,
                company_domain=company_domain,
            )
        # Built as LeadRow._make builds it, in C: this runs for every row.
        return _new_tuple(
            LeadRow,
            (
                email,
                first_name,
                last_name,
                company_domain,
                linkedin_url,
                phone,
                job_title,
                seniority,
                department,
                location,
                None,
            ),
        )


_new_tuple = tuple.__new__


def tidy(value: object) -> str:
    """`leads.services._clean` of one value ("" for None): spacing collapsed, NUL removed."""
    return " ".join(str(value).replace("\x00", "").split()) if value else ""


def is_tidy(values: Sequence[str]) -> bool:
    """Whether tidy() leaves every one of these strings as it is: no NUL, no whitespace
    but single spaces inside a value. Nearly every row of a file is, and a few scans of
    the joined row cost less than tidying its values one by one."""
    joined = "\x01".join(values)
    return (
        "\x00" not in joined
        and " \x01" not in joined
        and "\x01 " not in joined
        and " ".join(joined.split()) == joined
    )


def _outcome(function, raw: str, **kwargs) -> tuple[str, InvalidValue | None]:
    # Errors are cached too: a file repeats its bad values as often as its good ones.
    try:
        return function(raw, **kwargs), None
    except InvalidValue as exc:
        return "", exc


def _unwrap(outcome: tuple[str, InvalidValue | None]) -> str:
    value, error = outcome
    if error is not None:
        raise InvalidValue(error.field, error.value, error.reason)
    return value


def _us_number_test() -> Callable[[str], bool]:
    """Return a test of whether ten digits are a valid US number, as phonenumbers decides:
    its `_number_type_helper` for the US region is not UNKNOWN when the number fits the
    general pattern and the pattern of any number type (each one's possible lengths
    permitting), which here are two compiled regular expressions instead of a dozen
    lookups per number.

    Valid for the US is valid for `is_valid_number` too: the US is the first region of +1
    and has no leading digits, so phonenumbers tries it first. A number this refuses (a
    Canadian one, a bad one) goes to `normalize_phone`, for its answer and its reason.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("US")
    types = (
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    )

    def fits_ten_digits(desc) -> bool:
        return (
            desc is not None
            and bool(desc.national_number_pattern)
            and (not desc.possible_length or 10 in desc.possible_length)
        )

    general = metadata.general_desc
    patterns = [desc.national_number_pattern for desc in types if fits_ten_digits(desc)]
    if not fits_ten_digits(general) or not patterns:
        return lambda national: False
    general_pattern = re.compile(general.national_number_pattern)
    typed_pattern = re.compile("|".join(f"(?:{pattern})" for pattern in patterns))
    return lambda national: bool(
        general_pattern.fullmatch(national) and typed_pattern.fullmatch(national)
    )


def _domain_accepts_mail(domain: str) -> bool:
    """Whether email_validator accepts this domain as it is written (lowercase)."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return False
    return checked.domain == domain


def _company_domain_of_email_domain(domain: str) -> str:
    # The tail of leads.services._company_domain, for an address already validated.
    try:
        company_domain = normalize_domain(domain)
    except InvalidValue:
        return ""
    if is_webmail_domain(company_domain) or is_disposable_domain(company_domain):
        return ""
    return company_domain


# --- Matching and writing ----------------------------------------------------------------

# Columns of LeadInput that fill a blank Lead column of the same name (as leads.services).
_FILLABLE = ("first_name", "last_name", "phone", "job_title", "seniority", "department", "location")


class BulkItem(NamedTuple):
    """One normalized row: the lead, and the company name the row gave, if any."""

    lead: LeadInput | LeadRow
    company_name: str = ""


@dataclass(slots=True)
class BulkResult:
    """What `leads_bulk_upsert` did: as `leads.services.UpsertResult`, plus `lead_ids`,
    the lead each input became (None for a suppressed input), in input order."""

    lead_ids: list[int | None]
    created: list[int]
    updated: list[int]
    unchanged: list[int]
    duplicate: int
    suppressed_positions: list[int] = field(default_factory=list)

    @property
    def suppressed(self) -> int:
        return len(self.suppressed_positions)


_UNCHANGED: frozenset[str] = frozenset()


class Target:
    """One lead inputs resolve to: a row already in the database, or one to create."""

    __slots__ = (
        "changed",
        "company_id",
        "department",
        "domain",
        "email",
        "first_name",
        "id",
        "job_title",
        "last_name",
        "linkedin_url",
        "location",
        "new",
        "owner_id",
        "phone",
        "seniority",
        "touched",
    )

    # Positional and explicit: one is built per row of a file.
    def __init__(
        self,
        new: bool,
        lead_id: int | None,
        email: str,
        first_name: str,
        last_name: str,
        linkedin_url: str,
        phone: str,
        job_title: str,
        seniority: str,
        department: str,
        location: str,
        owner_id: int | None,
        company_id: int | None,
        domain: str,
    ) -> None:
        self.new = new
        self.id = lead_id
        self.email = email
        self.first_name = first_name
        self.last_name = last_name
        self.linkedin_url = linkedin_url
        self.phone = phone
        self.job_title = job_title
        self.seniority = seniority
        self.department = department
        self.location = location
        self.owner_id = owner_id
        self.company_id = company_id
        self.domain = domain
        self.touched = False
        # Most targets never change: they share one empty set until mark() gives them one.
        self.changed: set[str] | frozenset[str] = _UNCHANGED

    def mark(self, name: str) -> None:
        """Record that `name` (a column, "company" or "owner") was filled."""
        if self.changed is _UNCHANGED:
            self.changed = set()
        self.changed.add(name)

    @classmethod
    def from_input(cls, item: LeadInput | LeadRow) -> "Target":
        return cls(
            True,
            None,
            item.email,
            item.first_name,
            item.last_name,
            item.linkedin_url,
            item.phone,
            item.job_title,
            item.seniority,
            item.department,
            item.location,
            item.owner_id,
            None,
            item.company_domain,
        )


def _name_key(first_name: str, last_name: str, domain: str) -> tuple[str, str, str] | None:
    if first_name and last_name and domain:
        return (first_name.lower(), last_name.lower(), domain)
    return None


class Matcher:
    """Email, else LinkedIn URL, else name at company domain: the lead an input belongs to.

    The index holds the leads found in the database and the ones created earlier in the
    same call, so a repeat inside a file and a lead already stored are found the same way.
    """

    def __init__(self) -> None:
        self.by_email: dict[str, Target] = {}
        self.by_linkedin: dict[str, Target] = {}
        self.by_name: dict[tuple[str, str, str], Target] = {}
        # Leads already loaded from the database, so a later batch reuses their targets.
        self.by_id: dict[int, Target] = {}

    def add(self, target: Target, name_key: tuple[str, str, str] | None) -> None:
        """Index the target; `name_key` is its _name_key (callers often have it already)."""
        if target.email:
            self.by_email.setdefault(target.email.lower(), target)
        if target.linkedin_url:
            self.by_linkedin.setdefault(target.linkedin_url, target)
        if name_key:
            self.by_name.setdefault(name_key, target)

    def add_loaded(self, target: Target) -> None:
        self.add(target, _name_key(target.first_name, target.last_name, target.domain))

    def find(self, item: LeadInput, name_key: tuple[str, str, str] | None) -> Target | None:
        """The target of the input whose _name_key is `name_key`, or None."""
        if item.email and item.email in self.by_email:
            return self.by_email[item.email]
        if item.linkedin_url and item.linkedin_url in self.by_linkedin:
            return self.by_linkedin[item.linkedin_url]
        return self.by_name.get(name_key) if name_key else None

    def fill(self, target: Target, item: LeadInput) -> None:
        """Copy the input's values into the target's blanks; never overwrite a value."""
        # find() tries the email first, so an email that gets here belongs to no other lead.
        if item.email and not target.email:
            target.email = item.email
            target.mark("email")
        if (
            item.linkedin_url
            and not target.linkedin_url
            and self.by_linkedin.get(item.linkedin_url) in (None, target)
        ):
            # A profile that already belongs to another lead stays there.
            target.linkedin_url = item.linkedin_url
            target.mark("linkedin_url")
        for name in _FILLABLE:
            value = getattr(item, name)
            if value and not getattr(target, name):
                setattr(target, name, value)
                target.mark(name)
        if item.company_domain and not target.domain:
            target.domain = item.company_domain
            target.mark("company")
        if item.owner_id is not None and target.owner_id is None:
            target.owner_id = item.owner_id
            target.mark("owner")
        self.add_loaded(target)


@dataclass(slots=True)
class Plan:
    """What a batch would do, decided in memory before anything is written."""

    targets: list[Target | None]  # per input; None when suppressed
    existing: list[Target]
    new: list[Target]
    duplicate: int
    suppressed_positions: list[int]
    company_names: dict[str, str]


def _chunks(values: Sequence) -> Iterable[Sequence]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _json_list(values: Iterable[str]) -> str:
    # PostgreSQL gets a whole batch of keys as one JSON text parameter: one string to send
    # and parse, where thousands of placeholders or a client-built array literal cost more
    # than the query itself.
    return json.dumps(list(values))


_IN_JSON = "(SELECT jsonb_array_elements_text(%s::jsonb))"


def suppressed_hashes(hashes: Iterable[str]) -> set[str]:
    """Return which of these identity hashes are on the suppression list."""
    wanted = sorted(set(hashes))
    if not wanted:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT identifier_hash FROM leads_suppression WHERE identifier_hash IN "
                "(SELECT jsonb_array_elements_text(%s::jsonb))",
                [_json_list(wanted)],
            )
            return {row[0] for row in cursor.fetchall()}
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(
            Suppression.objects.filter(identifier_hash__in=chunk).values_list(
                "identifier_hash", flat=True
            )
        )
    return found


_EXISTING_COLUMNS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "linkedin_url",
    "phone",
    "job_title",
    "seniority",
    "department",
    "location",
    "owner_id",
    "company_id",
    "company__domain",
)


# The same columns for the PostgreSQL queries, which take a whole batch in one array.
_EXISTING_SQL = (
    "SELECT l.id, l.email, l.first_name, l.last_name, l.linkedin_url, l.phone, l.job_title, "
    "l.seniority, l.department, l.location, l.owner_id, l.company_id, c.domain "
    "FROM leads_lead l LEFT JOIN leads_company c ON c.id = l.company_id WHERE "
)


def _existing_rows_postgresql(emails, linkedins, last_names, domains) -> list[tuple]:
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        if emails:
            cursor.execute(f"{_EXISTING_SQL} l.email IN {_IN_JSON}", [_json_list(emails)])
            rows += cursor.fetchall()
        if linkedins:
            cursor.execute(f"{_EXISTING_SQL} l.linkedin_url IN {_IN_JSON}", [_json_list(linkedins)])
            rows += cursor.fetchall()
        if last_names:
            cursor.execute(
                f"{_EXISTING_SQL} lower(l.last_name) IN {_IN_JSON} AND c.domain IN {_IN_JSON}",
                [_json_list(last_names), _json_list(domains)],
            )
            rows += cursor.fetchall()
    return rows


def _existing_rows_orm(emails, linkedins, last_names, domains) -> list[tuple]:
    rows: list[tuple] = []
    base = Lead.objects.values_list(*_EXISTING_COLUMNS)
    for chunk in _chunks(emails):
        rows += base.filter(email__in=chunk)
    for chunk in _chunks(linkedins):
        rows += base.filter(linkedin_url__in=chunk)
    for last_chunk in _chunks(last_names):
        for domain_chunk in _chunks(domains):
            rows += base.alias(last_lower=Lower("last_name")).filter(
                last_lower__in=last_chunk, company__domain__in=domain_chunk
            )
    return rows


def _existing_targets(
    inputs: Sequence[LeadInput], name_keys: Iterable[tuple[str, str, str] | None]
) -> list[Target]:
    """Load, in a few set-based queries, every lead any input could match (`name_keys`:
    the inputs' _name_key)."""
    # Sets, in no order: a query takes its keys in any order.
    emails = {item.email for item in inputs if item.email}
    linkedins = {item.linkedin_url for item in inputs if item.linkedin_url}
    name_keys = set(name_keys)
    name_keys.discard(None)
    last_names = {key[1] for key in name_keys}
    domains = {key[2] for key in name_keys}
    load = _existing_rows_postgresql if connection.vendor == "postgresql" else _existing_rows_orm
    rows: dict[int, tuple] = {}
    for row in load(*(list(keys) for keys in (emails, linkedins, last_names, domains))):
        by_identity = row[1] in emails or row[4] in linkedins
        # A lead found only by its last name and domain must match the whole name key.
        if by_identity or _name_key(row[2], row[3], row[12] or "") in name_keys:
            rows[row[0]] = row
    # Rows are (id, email, first, last, linkedin, phone, title, seniority, department,
    # location, owner id, company id, domain), as _EXISTING_COLUMNS.
    return [
        Target(False, row[0], row[1] or "", *row[2:12], row[12] or "")
        for row in sorted(rows.values())
    ]


def plan_batch(items: Sequence[BulkItem], *, matcher: Matcher | None = None) -> Plan:
    """Decide, without writing, which lead each input becomes.

    `matcher` carries identities across calls (a dry run over a whole file).
    """
    inputs = [item.lead for item in items]
    refused: set[int] = set()
    # With nothing suppressed, no identity needs hashing to be compared.
    if Suppression.objects.exists():
        hashes = {
            position: {identity_hash(v) for v in (item.email, item.linkedin_url) if v}
            for position, item in enumerate(inputs)
        }
        suppressed = suppressed_hashes(h for values in hashes.values() for h in values)
        refused = {position for position, values in hashes.items() if values & suppressed}
    # Computed once per input: matching, loading and indexing all need it.
    name_keys = [_name_key(i.first_name, i.last_name, i.company_domain) for i in inputs]
    matcher = matcher or Matcher()
    existing = []
    wanted = [i for i in range(len(inputs)) if i not in refused] if refused else range(len(inputs))
    for loaded in _existing_targets([inputs[i] for i in wanted], [name_keys[i] for i in wanted]):
        target = matcher.by_id.get(loaded.id)
        if target is None:
            target = matcher.by_id[loaded.id] = loaded
            matcher.add_loaded(target)
        existing.append(target)

    targets: list[Target | None] = []
    new: list[Target] = []
    duplicate = 0
    company_names: dict[str, str] = {}
    for position, (item, name_key) in enumerate(zip(inputs, name_keys, strict=True)):
        if refused and position in refused:
            targets.append(None)
            continue
        target = matcher.find(item, name_key)
        if target is None:
            target = Target.from_input(item)
            new.append(target)
            matcher.add(target, name_key)
        else:
            if target.touched:
                duplicate += 1
            matcher.fill(target, item)
        target.touched = True
        targets.append(target)
        name = items[position].company_name
        if name and item.company_domain and item.company_domain not in company_names:
            company_names[item.company_domain] = name
    return Plan(
        targets=targets,
        existing=existing,
        new=new,
        duplicate=duplicate,
        suppressed_positions=sorted(refused),
        company_names=company_names,
    )


def _company_rows(domains: Sequence[str]) -> list[tuple[int, str, str]]:
    """Return (id, domain, name) of the companies at these domains."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, domain, name FROM leads_company WHERE domain IN "
                "(SELECT jsonb_array_elements_text(%s::jsonb))",
                [_json_list(domains)],
            )
            return cursor.fetchall()
    rows: list[tuple[int, str, str]] = []
    for chunk in _chunks(domains):
        rows += Company.objects.filter(domain__in=chunk).values_list("id", "domain", "name")
    return rows


def _companies(domains: set[str], names: dict[str, str], now) -> dict[str, int]:
    """Return a company id per domain, creating the missing companies and naming the
    unnamed ones the file gave a name for."""
    wanted = sorted(domains | set(names))
    found = {domain: (pk, name) for pk, domain, name in _company_rows(wanted)}
    missing = [domain for domain in wanted if domain not in found]
    if missing:
        rows = [(domain, names.get(domain, "")[:255]) for domain in missing]
        if connection.vendor == "postgresql":
            # A concurrent import creating one of these domains meanwhile makes this COPY
            # fail with IntegrityError, and the batch is planned again (leads_bulk_upsert).
            ids = _copy_rows(Company, ("domain", "name"), rows, now)
        else:
            companies = [Company(domain=domain, name=name) for domain, name in rows]
            Company.objects.bulk_create(companies, batch_size=_CHUNK)
            ids = [company.pk for company in companies]
        found.update((row[0], (pk, row[1])) for row, pk in zip(rows, ids, strict=True))
    unnamed = [
        (names[domain][:255], now, domain)
        for domain in sorted(names)
        if domain in found and not found[domain][1]
    ]
    if unnamed:
        with connection.cursor() as cursor:
            # Only a blank name is filled, whoever else writes meanwhile.
            cursor.executemany(
                "UPDATE leads_company SET name = %s, updated_at = %s "
                "WHERE domain = %s AND name = ''",
                unnamed,
            )
    return {domain: pk for domain, (pk, _) in found.items()}


def _copy_rows(model, columns: Sequence[str], rows: list[tuple], now) -> list[int]:
    """COPY rows (values for `columns`, attribute names) into the model's table with ids
    drawn from its sequence beforehand, so each row knows its id; return the ids in order.

    Every other column gets the model's default, as the model's constructor would give
    it: a column added to the model later is written correctly without a change here.
    """
    table = model._meta.db_table
    with connection.cursor() as cursor:
        # The sequence is looked up once: pg_get_serial_sequence inside the nextval() call
        # would run for every row and cost more than drawing the ids.
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (sequence,) = cursor.fetchone()
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, len(rows)]
        )
        ids = [row[0] for row in cursor.fetchall()]
        # The binary format sends each value as the column's own type: psycopg encodes a
        # row in C, with none of the text format's escaping, and the server parses no text.
        cursor.execute(
            "SELECT attname, atttypid FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [table],
        )
        type_of = dict(cursor.fetchall())
    by_name = {f.attname: f for f in model._meta.concrete_fields if not f.primary_key}
    others = [f for name, f in by_name.items() if name not in columns]
    fixed = tuple(
        now
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        else f.get_db_prep_save(f.get_default(), connection)
        for f in others
    )
    fields = [model._meta.pk, *(by_name[c] for c in columns), *others]
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    statement = f"COPY {quote(table)} ({names}) FROM STDIN (FORMAT BINARY)"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.set_types([type_of[f.column] for f in fields])
        write = copy.write_row
        for pk, row in zip(ids, rows, strict=True):
            write((pk, *row, *fixed))
    return ids


_LEAD_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "linkedin_url",
    "phone",
    "job_title",
    "seniority",
    "department",
    "location",
    "company_id",
    "owner_id",
    "source",
)


def _lead_values(target: Target, source: str) -> tuple:
    """The values of _LEAD_COLUMNS for a new lead."""
    return (
        target.email or None,
        target.first_name,
        target.last_name,
        target.linkedin_url,
        target.phone,
        target.job_title,
        target.seniority,
        target.department,
        target.location,
        target.company_id,
        target.owner_id,
        source,
    )


def _copy_new_leads(new: list[Target], source: str, now) -> None:
    rows = [_lead_values(target, source) for target in new]
    for target, lead_id in zip(new, _copy_rows(Lead, _LEAD_COLUMNS, rows, now), strict=True):
        target.id = lead_id


def _create_new_leads(new: list[Target], source: str) -> None:
    leads = [
        Lead(**dict(zip(_LEAD_COLUMNS, _lead_values(target, source), strict=True)))
        for target in new
    ]
    Lead.objects.bulk_create(leads, batch_size=_CHUNK)
    for target, lead in zip(new, leads, strict=True):
        target.id = lead.pk


# Fills blanks only; the text columns in the order of _FILL_COLUMNS.
_FILL_COLUMNS = ("linkedin_url", *_FILLABLE)
_FILL_SQL = (
    "UPDATE leads_lead SET email = COALESCE(email, %s), "
    "linkedin_url = CASE WHEN linkedin_url = '' THEN %s ELSE linkedin_url END, "
    "first_name = CASE WHEN first_name = '' THEN %s ELSE first_name END, "
    "last_name = CASE WHEN last_name = '' THEN %s ELSE last_name END, "
    "phone = CASE WHEN phone = '' THEN %s ELSE phone END, "
    "job_title = CASE WHEN job_title = '' THEN %s ELSE job_title END, "
    "seniority = CASE WHEN seniority = '' THEN %s ELSE seniority END, "
    "department = CASE WHEN department = '' THEN %s ELSE department END, "
    "location = CASE WHEN location = '' THEN %s ELSE location END, "
    "company_id = COALESCE(company_id, %s), owner_id = COALESCE(owner_id, %s), "
    "updated_at = %s WHERE id = %s"
)


def _fill_existing(changed: list[Target], now) -> None:
    """Fill the blanks the batch found: an UPDATE that cannot overwrite a value."""
    rows = [
        (
            target.email if "email" in target.changed else None,
            *(getattr(target, name) if name in target.changed else "" for name in _FILL_COLUMNS),
            target.company_id if "company" in target.changed else None,
            target.owner_id if "owner" in target.changed else None,
            now,
            target.id,
        )
        for target in changed
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_FILL_SQL, rows)


def _write(items: Sequence[BulkItem], source: str, origin: str, notify: bool) -> BulkResult:
    plan = plan_batch(items)
    now = timezone.now()
    changed = [t for t in plan.existing if t.touched and t.changed]
    company_ids = _companies(
        {t.domain for t in plan.new if t.domain}
        | {t.domain for t in changed if "company" in t.changed},
        plan.company_names,
        now,
    )
    for target in [*plan.new, *changed]:
        if target.domain and (target.new or "company" in target.changed):
            target.company_id = company_ids[target.domain]
    if plan.new:
        if connection.vendor == "postgresql":
            _copy_new_leads(plan.new, source, now)
        else:
            _create_new_leads(plan.new, source)
    if changed:
        _fill_existing(changed, now)
    created = [t.id for t in plan.new]
    if created and notify:
        # Receivers (enrichment runs) write in this same transaction: all or nothing.
        leads_created.send(sender=Lead, lead_ids=created, origin=origin)
    return BulkResult(
        lead_ids=[t.id if t is not None else None for t in plan.targets],
        created=created,
        updated=[t.id for t in changed],
        unchanged=[t.id for t in plan.existing if t.touched and not t.changed],
        duplicate=plan.duplicate,
        suppressed_positions=plan.suppressed_positions,
    )


def leads_bulk_upsert(
    *, items: Sequence[BulkItem], source: str, origin: str, notify: bool = True
) -> BulkResult:
    """Create new leads and fill the blank columns of existing ones, in one transaction,
    by `leads_upsert`'s rules (see the module docstring); also name companies that have
    no name yet from the rows' company names.

    `notify=False` leaves `leads_created` unsent, for a caller that starts enrichment of
    the whole batch itself.
    """
    try:
        with transaction.atomic():
            return _write(items, source, origin, notify)
    except IntegrityError:
        # A concurrent writer inserted one of our new emails between our read and our
        # write; read again and that row is simply matched.
        with transaction.atomic():
            return _write(items, source, origin, notify)
