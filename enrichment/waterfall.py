"""Which provider to ask next: each field has its own ordered list of providers.

A field's order comes from its WaterfallSteps, or else from the providers' own positions
(ProviderConfig), or else from the registry. One provider usually answers many fields at
once, so the next provider is the first one not yet asked in the order of the most
important field still unsatisfied (fields in the order enrichment.fields lists them).
"""

from collections.abc import Sequence

from common.cached_tables import CachedTable
from enrichment.fields import FIELDS
from enrichment.models import WaterfallStep
from providers.base import Provider
from providers.registry import provider_configs

# field -> {provider: position}
_STEPS = CachedTable(
    "waterfall_steps",
    models=(WaterfallStep,),
    load=lambda: _steps_by_field(WaterfallStep.objects.all()),
)


def _steps_by_field(steps) -> dict[str, dict[str, int]]:
    by_field: dict[str, dict[str, int]] = {}
    for step in steps:
        by_field.setdefault(step.field, {})[step.provider] = step.position
    return by_field


def field_orders(providers: Sequence[Provider]) -> dict[str, list[Provider]]:
    """Return, for every field, the enabled providers that can fill it, in waterfall order."""
    configs = provider_configs()
    enabled = [p for p in providers if configs.get(p.name) is None or configs[p.name].enabled]
    registry_rank = {p.name: rank for rank, p in enumerate(enabled)}

    def default_rank(provider: Provider) -> tuple[int, int]:
        config = configs.get(provider.name)
        return (config.position if config else 100, registry_rank[provider.name])

    steps = _STEPS.get()
    orders = {}
    for field in FIELDS:
        able = [p for p in enabled if field in p.fields]
        if field in steps:
            listed = steps[field]
            able = sorted((p for p in able if p.name in listed), key=lambda p: listed[p.name])
        else:
            able.sort(key=default_rank)
        orders[field] = able
    return orders


def next_provider(
    remaining: Sequence[str], orders: dict[str, list[Provider]], asked: set[str]
) -> Provider | None:
    """Return the provider to ask next for the remaining fields, or None when none is left."""
    for field in FIELDS:
        if field not in remaining:
            continue
        for provider in orders.get(field, []):
            if provider.name not in asked:
                return provider
    return None
