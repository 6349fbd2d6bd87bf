"""Dry run for a CSV file: what importing and enriching it would do, before anything is
written or spent.

The file is read and normalized exactly as an import would (same mapping, same rules), and
its rows are matched against the database without writing: rows repeating an identity seen
earlier in the file are duplicates, rows whose email or LinkedIn URL is suppressed would be
refused, the rest become new leads or match known ones. The enrichment estimate then walks
the pipeline's gate and first waterfall step as `enrichment.estimates` does: known leads
through `lead_plan`, new ones from what the row gives. A new lead has no observations yet,
so, as in the pipeline, every wanted field is looked for, and its identities decide
whether there is anything to look up with.
"""

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from enrichment.estimates import Estimate
from enrichment.fields import COMPANY_FIELDS, FIELDS, LEAD_FIELDS
from enrichment.selectors import current_observations, fields_needing_data, lead_plan
from enrichment.waterfall import field_orders, next_provider
from leads.bulk_import import BulkItem, Matcher, Target, plan_batch, suppressed_hashes
from leads.csv_import import CsvReader, column_mapping, detect_format, normalized_rows
from leads.models import Company, Lead
from leads.normalize import InvalidValue, identity_hash, is_webmail_domain, person_name_key
from providers.base import PersonQuery
from providers.ledger import lookup_key_hash
from providers.models import ProviderCall
from providers.registry import enabled_providers

_BATCH = 5000
_CHUNK = 500


@dataclass
class CsvEstimate:
    """What a file would do: row outcomes, and the enrichment of the leads it names."""

    rows: int = 0
    invalid: int = 0
    duplicates: int = 0
    suppressed: int = 0
    new_leads: int = 0
    existing_leads: int = 0
    enrichment: Estimate = field(default_factory=Estimate)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        enrichment = self.enrichment
        credits = enrichment.credits
        return {
            "rows": self.rows,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "new_leads": self.new_leads,
            "existing_leads": self.existing_leads,
            "leads_to_enrich": enrichment.leads - sum(enrichment.skipped.values()),
            "skipped": dict(sorted(enrichment.skipped.items())),
            "cached": enrichment.cached,
            "providers": {
                provider: {
                    "person_lookups": enrichment.person_lookups[provider],
                    "company_lookups": enrichment.company_lookups[provider],
                    "credits": credits[provider],
                }
                for provider in sorted(credits)
            },
            "credits": sum(credits.values()),
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        """The report as `import_leads --dry-run` prints it."""
        data = self.as_dict()
        lines = [
            f"Dry run: {self.rows} row(s); nothing was written or spent.",
            f"  new leads {self.new_leads} / known leads {self.existing_leads} / "
            f"duplicate rows {self.duplicates} / invalid rows {self.invalid} / "
            f"suppressed rows {self.suppressed}",
            f"  leads that would be enriched: {data['leads_to_enrich']}",
        ]
        lines += [f"  skipped ({reason}): {count}" for reason, count in data["skipped"].items()]
        lines.append(f"  answered from the cache: {data['cached']}")
        for provider, spend in data["providers"].items():
            lines.append(
                f"  {provider}: {spend['person_lookups']} person and "
                f"{spend['company_lookups']} company lookup(s), about {spend['credits']:g} "
                "credit(s)"
            )
        if not data["providers"]:
            lines.append("  no paid lookups")
        lines += [f"  note: {note}" for note in self.notes]
        return lines


def csv_estimate(
    *, path: Path, mapping: dict[str, str] | None = None, fields: Sequence[str] = ()
) -> CsvEstimate:
    """Read the file as an import would and estimate its import and enrichment.

    Raises ImportFileError as the import would, and ValueError for an unknown field.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; known: {sorted(FIELDS)}")
    fmt = detect_format(path)
    columns = column_mapping(fmt.header, mapping, file_name=path.name)
    estimate = CsvEstimate(notes=list(fmt.notes))
    # One matcher over the whole file, so a repeat in a later batch is still a repeat.
    matcher = Matcher()
    existing: dict[int, Target] = {}
    new: list[Target] = []

    def plan(batch: list[BulkItem]) -> None:
        if not batch:
            return
        result = plan_batch(batch, matcher=matcher)
        estimate.suppressed += len(result.suppressed_positions)
        estimate.duplicates += result.duplicate
        existing.update((t.id, t) for t in result.existing if t.touched)
        new.extend(result.new)
        batch.clear()

    batch: list[BulkItem] = []
    with CsvReader(path, fmt) as reader:
        try:
            for _, _, item in normalized_rows(reader, columns):
                if item is None:
                    continue
                estimate.rows += 1
                if isinstance(item, InvalidValue):
                    estimate.invalid += 1
                    continue
                batch.append(item)
                if len(batch) >= _BATCH:
                    plan(batch)
        except csv.Error as exc:
            # The import would stop at the same line: estimate what comes before it.
            estimate.notes.append(
                f"{path.name} cannot be read as CSV at line {reader.line_num}: {exc}; an "
                "import stops there, so only the rows before it are counted"
            )
        plan(batch)
    estimate.new_leads = len(new)
    estimate.existing_leads = len(existing)
    estimate.enrichment = _enrichment(sorted(existing), new, list(fields) or list(FIELDS))
    return estimate


@dataclass
class _Lookup:
    counter: str  # "person" or "company"
    provider: str
    operation: str
    keys: list[str]
    wanted: list[str]


def _enrichment(existing_ids: list[int], new: list[Target], wanted: list[str]) -> Estimate:
    """Walk the gate and the first waterfall step for known and new leads alike, sharing
    one set of company domains so a company is counted once however many leads share it."""
    orders = field_orders(enabled_providers())
    estimate = Estimate()
    domains_seen: set[str] = set()
    lookups: list[_Lookup] = []

    def walk(keys, lead_wanted, domain, company_wanted, skip_reason) -> None:
        estimate.leads += 1
        lead_wanted = lead_wanted if keys else []
        company_wanted = [] if not domain or domain in domains_seen else company_wanted
        if skip_reason or not (lead_wanted or company_wanted):
            estimate.skipped[skip_reason.split(":")[0] or "company already counted"] += 1
            return
        if lead_wanted:
            provider = next_provider(lead_wanted, orders, asked=set())
            if provider is not None:
                lookups.append(_Lookup("person", provider.name, "person_enrich", keys, lead_wanted))
        if company_wanted:
            domains_seen.add(domain)
            provider = next_provider(company_wanted, orders, asked=set())
            if provider is not None:
                lookups.append(
                    _Lookup(
                        "company",
                        provider.name,
                        "company_enrich",
                        [f"domain:{domain}"],
                        company_wanted,
                    )
                )

    for start in range(0, len(existing_ids), _CHUNK):
        chunk = existing_ids[start : start + _CHUNK]
        for lead in Lead.objects.filter(id__in=chunk).select_related("company").order_by("id"):
            plan = lead_plan(lead, wanted)
            walk(
                plan.query.lookup_keys(),
                plan.lead_wanted,
                lead.company.domain if lead.company else "",
                plan.company_wanted,
                plan.skip_reason,
            )

    lead_fields = [name for name in wanted if name in LEAD_FIELDS]
    company_fields = [name for name in wanted if name in COMPANY_FIELDS]
    company_wanted = _company_wanted({t.domain for t in new if t.domain}, company_fields)
    suppressed = suppressed_hashes(
        identity_hash(value)
        for t in new
        for value in (person_name_key(t.first_name, t.last_name, t.domain), t.domain)
        if value
    )
    for target in new:
        name_key = person_name_key(target.first_name, target.last_name, target.domain)
        identities = (name_key, target.domain)
        skip = (
            "suppressed"
            if any(value and identity_hash(value) in suppressed for value in identities)
            else ""
        )
        query = PersonQuery(
            email=target.email,
            first_name=target.first_name,
            last_name=target.last_name,
            domain=target.domain,
            linkedin_url=target.linkedin_url,
        )
        keys = query.lookup_keys()
        wanted_here = company_wanted.get(target.domain, [])
        if not skip and not (lead_fields or wanted_here):
            skip = "every wanted field is still fresh or locked"
        elif not skip and not keys and not wanted_here:
            skip = "nothing to look up"
        walk(keys, lead_fields, target.domain, wanted_here, skip)

    for lookup, cached in zip(lookups, _cached(lookups), strict=True):
        if cached:
            estimate.cached += 1
        elif lookup.counter == "person":
            estimate.person_lookups[lookup.provider] += 1
        else:
            estimate.company_lookups[lookup.provider] += 1
    return estimate


def _company_wanted(domains: set[str], company_fields: list[str]) -> dict[str, list[str]]:
    """Return, per domain of a new lead, the company fields the pipeline would look for."""
    wanted: dict[str, list[str]] = {}
    known: dict[str, Company] = {}
    ordered = sorted(domains)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        known.update((c.domain, c) for c in Company.objects.filter(domain__in=chunk))
    for domain in ordered:
        # Free-mail domains say nothing about a company: the pipeline never buys them.
        if is_webmail_domain(domain):
            wanted[domain] = []
        elif domain in known:
            company = known[domain]
            wanted[domain] = fields_needing_data(
                company, company_fields, current_observations(company)
            )
        else:
            wanted[domain] = list(company_fields)
    return wanted


def _cached(lookups: list[_Lookup]) -> list[bool]:
    """Whether the ledger would answer each lookup from its cache, in a few queries.

    The rule is `providers.ledger.reusable_answer`'s: a hit younger than the freshness of
    the wanted fields, or a miss younger than PROVIDER_MISS_TTL_DAYS, for any of the keys.
    """
    now = timezone.now()
    miss_after = now - timedelta(days=settings.PROVIDER_MISS_TTL_DAYS)
    groups: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    hashed = []
    for lookup in lookups:
        days = max(FIELDS[name].fresh_for_days for name in lookup.wanted)
        hashes = [lookup_key_hash(key) for key in lookup.keys]
        hashed.append((lookup.provider, lookup.operation, days, hashes))
        groups[(lookup.provider, lookup.operation, days)].update(hashes)
    answered: dict[tuple[str, str, int], set[str]] = {}
    for (provider, operation, days), hashes in groups.items():
        fresh = Q(outcome=ProviderCall.Outcome.HIT, created_at__gte=now - timedelta(days=days)) | Q(
            outcome=ProviderCall.Outcome.MISS, created_at__gte=miss_after
        )
        ordered = sorted(hashes)
        found: set[str] = set()
        for start in range(0, len(ordered), _CHUNK):
            found.update(
                ProviderCall.objects.filter(
                    fresh,
                    provider=provider,
                    operation=operation,
                    lookup_key_hash__in=ordered[start : start + _CHUNK],
                ).values_list("lookup_key_hash", flat=True)
            )
        answered[(provider, operation, days)] = found
    return [
        any(h in answered[(provider, operation, days)] for h in hashes)
        for provider, operation, days, hashes in hashed
    ]
