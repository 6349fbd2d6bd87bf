"""Write paths for leads and companies: normalize what comes in, then create or complete.

Every way a lead enters Leadsmith (CSV import, API, the lead form) goes through
`leads_upsert`, so matching, suppression and the `leads_created` hook behave the same
whatever the door.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from leads.models import Company, Lead, Suppression
from leads.normalize import (
    InvalidValue,
    email_domain,
    identity_hash,
    is_disposable_domain,
    is_webmail_domain,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
    normalize_phone,
    person_name_key,
)
from leads.signals import leads_created

# Free-text columns are checked against the model's limits here, so one long value is an
# invalid row instead of a database error that would roll back its whole batch.
_MAX_LENGTHS = {
    name: Lead._meta.get_field(name).max_length
    for name in ("first_name", "last_name", "job_title", "seniority", "department", "location")
}
_LINKEDIN_MAX_LENGTH = Lead._meta.get_field("linkedin_url").max_length

# Fields of LeadInput that fill a blank Lead column of the same name.
_FILLABLE = (
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "seniority",
    "department",
    "location",
)

# SQLite caps bound parameters per statement; PostgreSQL plans long IN lists badly.
_QUERY_CHUNK = 500


@dataclass(frozen=True, slots=True)
class LeadInput:
    """One lead as it arrives, already normalized; an empty string means "not given"."""

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


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What `leads_upsert` did with its inputs.

    `created`, `updated` and `unchanged` hold lead ids, one per lead the call touched (an
    existing lead is `updated` when at least one blank column was filled). `duplicate`
    counts inputs that repeated an identity already seen earlier in the same call and were
    merged into it; `suppressed` counts inputs refused, whose positions in `inputs` are
    `suppressed_positions`.
    """

    created: list[int]
    updated: list[int]
    unchanged: list[int]
    duplicate: int
    suppressed: int
    suppressed_positions: list[int] = field(default_factory=list)


def _clean(values: Mapping[str, str], key: str) -> str:
    # Collapse inner runs of whitespace too: "Ada  Lovelace" and "Ada Lovelace" are one name.
    # NUL goes: PostgreSQL text cannot hold it, and no one types it (broken exports do).
    return " ".join(str(values.get(key) or "").replace("\x00", "").split())


def _checked_length(field_name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidValue(field_name, value, f"it is longer than {limit} characters")
    return value


def _company_domain(values: Mapping[str, str], email: str) -> str:
    for key in ("company_domain", "domain", "website"):
        raw = _clean(values, key)
        if raw:
            try:
                return normalize_domain(raw)
            except InvalidValue as exc:
                raise InvalidValue(key, raw, exc.reason) from None
    if not email:
        return ""
    try:
        domain = normalize_domain(email_domain(email))
    except InvalidValue:
        # The address itself is valid; its domain just cannot name a company.
        return ""
    if is_webmail_domain(domain) or is_disposable_domain(domain):
        return ""
    return domain


def _identity_check(
    *, email: str, linkedin_url: str, first_name: str, last_name: str, company_domain: str
) -> None:
    """Raise InvalidValue unless the record can be told apart: an email, a LinkedIn URL, or
    first name, last name and company domain."""
    if email or linkedin_url or (first_name and last_name and company_domain):
        return
    given = ", ".join(
        f"{name}={value}"
        for name, value in (
            ("first_name", first_name),
            ("last_name", last_name),
            ("company_domain", company_domain),
        )
        if value
    )
    raise InvalidValue(
        "identity",
        given or "nothing",
        "a lead needs an email, a LinkedIn URL, or first name + last name + company domain",
    )


def lead_input_from_mapping(values: Mapping[str, str]) -> LeadInput:
    """Normalize one raw record (keys are LeadInput field names, plus `website` and
    `domain` as other names for the company domain) into a LeadInput.

    Raises InvalidValue naming the field, the value and the reason when a value cannot be
    normalized or the record has no identity: it needs an email, a LinkedIn URL, or first
    name, last name and company domain.
    """
    raw_email = _clean(values, "email")
    email = normalize_email(raw_email) if raw_email else ""
    raw_linkedin = _clean(values, "linkedin_url")
    linkedin_url = normalize_linkedin_url(raw_linkedin) if raw_linkedin else ""
    _checked_length("linkedin_url", linkedin_url, _LINKEDIN_MAX_LENGTH)
    raw_phone = _clean(values, "phone")
    phone = normalize_phone(raw_phone) if raw_phone else ""
    texts = {
        name: _checked_length(name, _clean(values, name), limit)
        for name, limit in _MAX_LENGTHS.items()
    }
    company_domain = _company_domain(values, email)

    _identity_check(
        email=email,
        linkedin_url=linkedin_url,
        first_name=texts["first_name"],
        last_name=texts["last_name"],
        company_domain=company_domain,
    )
    return LeadInput(
        email=email,
        linkedin_url=linkedin_url,
        phone=phone,
        company_domain=company_domain,
        **texts,
    )


def company_get_or_create(*, domain: str) -> Company:
    """Return the Company for a domain (any form normalize_domain accepts), creating it."""
    # get_or_create already tries the INSERT in a savepoint and falls back to a GET on
    # IntegrityError, so two workers racing for one domain both end with the same row.
    company, _ = Company.objects.get_or_create(domain=normalize_domain(domain))
    return company


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _QUERY_CHUNK):
        yield values[start : start + _QUERY_CHUNK]


def _name_key(first_name: str, last_name: str, domain: str) -> tuple[str, str, str] | None:
    if first_name and last_name and domain:
        return (first_name.lower(), last_name.lower(), domain)
    return None


def _suppressed_positions(inputs: Sequence[LeadInput]) -> list[int]:
    hashes_by_position = {
        position: {identity_hash(v) for v in (item.email, item.linkedin_url) if v}
        for position, item in enumerate(inputs)
    }
    all_hashes = sorted(set().union(*hashes_by_position.values()))
    suppressed: set[str] = set()
    for chunk in _chunks(all_hashes):
        suppressed.update(
            Suppression.objects.filter(identifier_hash__in=chunk).values_list(
                "identifier_hash", flat=True
            )
        )
    return [position for position, hashes in hashes_by_position.items() if hashes & suppressed]


class _Target:
    """One lead the call resolves inputs to: an existing row, or a new one to create."""

    def __init__(self, lead: Lead, domain: str, *, new: bool) -> None:
        self.lead = lead
        self.domain = domain
        self.new = new
        self.touched = False
        self.changed: set[str] = set()


class _Matcher:
    """Finds the lead an input belongs to: by email, else LinkedIn URL, else name at company.

    Keys of existing leads and of leads created earlier in the same call live in one index,
    so a repeat inside the call and a match in the database are found the same way.
    """

    def __init__(self) -> None:
        self.by_email: dict[str, _Target] = {}
        self.by_linkedin: dict[str, _Target] = {}
        self.by_name: dict[tuple[str, str, str], _Target] = {}

    def add(self, target: _Target) -> None:
        lead = target.lead
        if lead.email:
            self.by_email.setdefault(lead.email.lower(), target)
        if lead.linkedin_url:
            self.by_linkedin.setdefault(lead.linkedin_url, target)
        key = _name_key(lead.first_name, lead.last_name, target.domain)
        if key:
            self.by_name.setdefault(key, target)

    def find(self, item: LeadInput) -> _Target | None:
        if item.email and item.email in self.by_email:
            return self.by_email[item.email]
        if item.linkedin_url and item.linkedin_url in self.by_linkedin:
            return self.by_linkedin[item.linkedin_url]
        key = _name_key(item.first_name, item.last_name, item.company_domain)
        return self.by_name.get(key) if key else None

    def owner_of_linkedin(self, url: str) -> _Target | None:
        return self.by_linkedin.get(url)


def _existing_targets(inputs: Sequence[LeadInput]) -> list[_Target]:
    """Load, in a few bulk queries, every lead any input could match."""
    emails = sorted({item.email for item in inputs if item.email})
    linkedins = sorted({item.linkedin_url for item in inputs if item.linkedin_url})
    name_keys = {
        key
        for item in inputs
        if (key := _name_key(item.first_name, item.last_name, item.company_domain))
    }
    last_names = sorted({key[1] for key in name_keys})
    domains = sorted({key[2] for key in name_keys})

    base = Lead.objects.select_related("company")
    found: dict[int, Lead] = {}
    for chunk in _chunks(emails):
        found.update((lead.pk, lead) for lead in base.filter(email__in=chunk))
    for chunk in _chunks(linkedins):
        found.update((lead.pk, lead) for lead in base.filter(linkedin_url__in=chunk))
    for last_chunk in _chunks(last_names):
        for domain_chunk in _chunks(domains):
            candidates = base.alias(last_lower=Lower("last_name")).filter(
                last_lower__in=last_chunk, company__domain__in=domain_chunk
            )
            found.update(
                (lead.pk, lead)
                for lead in candidates
                if _name_key(lead.first_name, lead.last_name, lead.company.domain) in name_keys
            )
    return [
        _Target(lead, lead.company.domain if lead.company else "", new=False)
        for lead in sorted(found.values(), key=lambda lead: lead.pk)
    ]


def _fill(target: _Target, item: LeadInput, matcher: _Matcher) -> None:
    """Copy the input's values into the target's blank columns; never overwrite a value."""
    lead = target.lead
    # find() tries the email first, so an email that gets here belongs to no other lead.
    if item.email and not lead.email:
        lead.email = item.email
        target.changed.add("email")
    if (
        item.linkedin_url
        and not lead.linkedin_url
        and matcher.owner_of_linkedin(item.linkedin_url) in (None, target)
    ):
        # A profile that already belongs to another lead stays there: two leads sharing
        # one would be the same person twice.
        lead.linkedin_url = item.linkedin_url
        target.changed.add("linkedin_url")
    for name in _FILLABLE:
        value = getattr(item, name)
        if value and not getattr(lead, name):
            setattr(lead, name, value)
            target.changed.add(name)
    if item.company_domain and not target.domain:
        target.domain = item.company_domain
        target.changed.add("company")
    if item.owner_id is not None and lead.owner_id is None:
        lead.owner_id = item.owner_id
        target.changed.add("owner")
    matcher.add(target)


def _companies_by_domain(domains: set[str]) -> dict[str, Company]:
    """Return a Company for each domain, creating the missing ones in bulk."""
    wanted = sorted(domains)
    found: dict[str, Company] = {}
    for chunk in _chunks(wanted):
        found.update((c.domain, c) for c in Company.objects.filter(domain__in=chunk))
    missing = [Company(domain=domain) for domain in wanted if domain not in found]
    if missing:
        # ignore_conflicts: a concurrent import may create the same domain in between; the
        # re-read below picks up whichever row won.
        Company.objects.bulk_create(missing, ignore_conflicts=True, batch_size=_QUERY_CHUNK)
        for chunk in _chunks([c.domain for c in missing]):
            found.update((c.domain, c) for c in Company.objects.filter(domain__in=chunk))
    return found


def _upsert(inputs: Sequence[LeadInput], source: str, origin: str) -> UpsertResult:
    suppressed_positions = _suppressed_positions(inputs)
    refused = set(suppressed_positions)
    matcher = _Matcher()
    existing = _existing_targets([item for i, item in enumerate(inputs) if i not in refused])
    for target in existing:
        matcher.add(target)

    new_targets: list[_Target] = []
    duplicate = 0
    for position, item in enumerate(inputs):
        if position in refused:
            continue
        target = matcher.find(item)
        if target is None:
            lead = Lead(
                email=item.email or None,
                first_name=item.first_name,
                last_name=item.last_name,
                linkedin_url=item.linkedin_url,
                phone=item.phone,
                job_title=item.job_title,
                seniority=item.seniority,
                department=item.department,
                location=item.location,
                owner_id=item.owner_id,
                source=source,
            )
            target = _Target(lead, item.company_domain, new=True)
            new_targets.append(target)
            matcher.add(target)
        else:
            if target.touched:
                duplicate += 1
            _fill(target, item, matcher)
        target.touched = True

    changed = [t for t in existing if t.touched and t.changed]
    companies = _companies_by_domain(
        {t.domain for t in new_targets if t.domain}
        | {t.domain for t in changed if "company" in t.changed}
    )
    for target in [*new_targets, *changed]:
        if target.domain and (target.new or "company" in target.changed):
            target.lead.company = companies[target.domain]

    # Both backends Leadsmith runs on return the new primary keys from bulk_create.
    Lead.objects.bulk_create([t.lead for t in new_targets], batch_size=_QUERY_CHUNK)
    if changed:
        now = timezone.now()
        for target in changed:
            # bulk_update skips auto_now, so the edit time is set by hand.
            target.lead.updated_at = now
        columns = sorted(set().union(*(t.changed for t in changed)) | {"updated_at"})
        Lead.objects.bulk_update([t.lead for t in changed], columns, batch_size=_QUERY_CHUNK)

    created = [t.lead.pk for t in new_targets]
    if created:
        # Receivers (enrichment runs) write in this same transaction: all or nothing.
        leads_created.send(sender=Lead, lead_ids=created, origin=origin)
    return UpsertResult(
        created=created,
        updated=[t.lead.pk for t in changed],
        unchanged=[t.lead.pk for t in existing if t.touched and not t.changed],
        duplicate=duplicate,
        suppressed=len(suppressed_positions),
        suppressed_positions=suppressed_positions,
    )


def leads_upsert(*, inputs: Sequence[LeadInput], source: str, origin: str) -> UpsertResult:
    """Create new leads and fill the blank columns of existing ones, in one transaction.

    An input matches an existing lead by email, else by LinkedIn URL, else by first name,
    last name and company domain (case-insensitively). A value already in a lead's column
    is never overwritten. Inputs repeating an identity seen earlier in the call are merged
    into the first. Suppressed emails and LinkedIn URLs are refused. `leads_created` is
    sent inside the transaction with the ids of the new leads; `origin` says what created
    them (for example "csv:leads.csv" or "api").
    """
    try:
        with transaction.atomic():
            return _upsert(inputs, source, origin)
    except IntegrityError:
        # A concurrent writer inserted one of our new emails between our read and our
        # INSERT (PostgreSQL, READ COMMITTED); read again and that row is simply matched.
        with transaction.atomic():
            return _upsert(inputs, source, origin)


def lead_create(*, values: Mapping[str, str], source: str, origin: str) -> Lead:
    """Normalize one raw record and upsert it; return the new lead or the one it matched.

    Raises InvalidValue when a value is invalid, the record has no identity, or its
    identity is suppressed.
    """
    item = lead_input_from_mapping(values)
    result = leads_upsert(inputs=[item], source=source, origin=origin)
    if result.suppressed:
        email_suppressed = (
            bool(item.email)
            and Suppression.objects.filter(identifier_hash=identity_hash(item.email)).exists()
        )
        if email_suppressed:
            raise InvalidValue("email", item.email, "it is on the suppression list")
        raise InvalidValue("linkedin_url", item.linkedin_url, "it is on the suppression list")
    (lead_id,) = result.created or result.updated or result.unchanged
    return Lead.objects.select_related("company").get(pk=lead_id)


def lead_identities(lead: Lead) -> list[tuple[str, str]]:
    """Return (suppression kind, normalized identifier) for every identity the lead has."""
    domain = lead.company.domain if lead.company_id else ""
    identities = [
        (Suppression.Kind.EMAIL, lead.email or ""),
        (Suppression.Kind.LINKEDIN, lead.linkedin_url),
        (Suppression.Kind.NAME, person_name_key(lead.first_name, lead.last_name, domain)),
    ]
    return [(kind, value) for kind, value in identities if value]


def lead_suppress(*, lead: Lead, reason: str) -> int:
    """Put every identity of the lead on the suppression list (hashed); return how many
    entries are new. An identity already listed keeps its first reason."""
    written = 0
    for kind, value in lead_identities(lead):
        _, created = Suppression.objects.get_or_create(
            identifier_hash=identity_hash(value), defaults={"kind": kind, "reason": reason}
        )
        written += created
    return written
