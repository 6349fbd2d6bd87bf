"""Dry run: what enriching a selection of leads would cost, before anything is spent.

It walks the same gate and waterfall as the pipeline, reading only: for each lead the
first provider its wanted fields would go to, whether the ledger would answer from its
cache, and one company lookup per domain however many leads share it. Later providers in
a waterfall are asked only when the first falls short, so the estimate is the first pass.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings

from enrichment.fields import FIELDS
from enrichment.selectors import lead_plan
from enrichment.waterfall import field_orders, next_provider
from leads.models import Lead
from providers.ledger import lookup_key_hash, reusable_answer
from providers.registry import enabled_providers

# What one lookup is expected to cost when a provider does not say otherwise.
EXPECTED_CREDITS_PER_LOOKUP = 1.0


@dataclass
class Estimate:
    leads: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason → leads
    person_lookups: Counter = field(default_factory=Counter)  # provider → paid lookups
    company_lookups: Counter = field(default_factory=Counter)  # provider → paid lookups
    cached: int = 0

    @property
    def credits(self) -> Counter:
        return Counter(
            {
                provider: (self.person_lookups[provider] + self.company_lookups[provider])
                * EXPECTED_CREDITS_PER_LOOKUP
                for provider in set(self.person_lookups) | set(self.company_lookups)
            }
        )


def enrichment_estimate(*, lead_ids: Sequence[int], fields: Sequence[str] = ()) -> Estimate:
    """Return how many leads would go to which provider and the credits expected."""
    wanted = list(fields) or list(FIELDS)
    orders = field_orders(enabled_providers())
    miss_ttl = timedelta(days=settings.PROVIDER_MISS_TTL_DAYS)
    estimate = Estimate()
    domains_seen: set[str] = set()
    for lead in Lead.objects.filter(id__in=lead_ids).select_related("company").iterator():
        estimate.leads += 1
        plan = lead_plan(lead, wanted)
        company = lead.company
        lead_wanted = plan.lead_wanted if plan.query.lookup_keys() else []
        company_wanted = (
            [] if company is None or company.domain in domains_seen else (plan.company_wanted)
        )
        if plan.skip_reason or not (lead_wanted or company_wanted):
            estimate.skipped[plan.skip_reason.split(":")[0] or "company already counted"] += 1
            continue
        if lead_wanted:
            provider = next_provider(lead_wanted, orders, asked=set())
            if provider is not None:
                _count(
                    estimate,
                    estimate.person_lookups,
                    provider.name,
                    "person_enrich",
                    plan.query.lookup_keys(),
                    lead_wanted,
                    miss_ttl,
                )
        if company_wanted:
            domains_seen.add(company.domain)
            provider = next_provider(company_wanted, orders, asked=set())
            if provider is not None:
                _count(
                    estimate,
                    estimate.company_lookups,
                    provider.name,
                    "company_enrich",
                    [f"domain:{company.domain}"],
                    company_wanted,
                    miss_ttl,
                )
    return estimate


def _count(estimate, counter, provider, operation, keys, wanted, miss_ttl) -> None:
    cached = reusable_answer(
        provider=provider,
        operation=operation,
        key_hashes=[lookup_key_hash(key) for key in keys],
        hit_ttl=timedelta(days=max(FIELDS[name].fresh_for_days for name in wanted)),
        miss_ttl=miss_ttl,
    )
    if cached is not None:
        estimate.cached += 1
    else:
        counter[provider] += 1
