"""Upkeep of the ledger and the budgets: writes that are not a provider call."""

import logging
from datetime import datetime

from django.core.cache import cache
from django.core.mail import mail_admins
from django.db.models import Q
from django.utils import timezone

from providers.models import ProviderCall
from providers.selectors import BudgetUse, budget_alerts

logger = logging.getLogger(__name__)

# Rows updated per statement, so a large purge never holds many row locks for long.
_PURGE_BATCH = 5000


def provider_payloads_expire(*, hits_before: datetime, misses_before: datetime) -> int:
    """Drop the stored answers of hits and misses the cache can no longer serve (older
    than the longest TTL it uses); return how many rows lost theirs.

    The rows stay: they are also the spend record (outcome, credits, status, duration).
    """
    expired = ProviderCall.objects.filter(
        Q(outcome=ProviderCall.Outcome.HIT, created_at__lt=hits_before)
        | Q(outcome=ProviderCall.Outcome.MISS, created_at__lt=misses_before),
        response__isnull=False,
    )
    purged = 0
    while ids := list(expired.values_list("id", flat=True)[:_PURGE_BATCH]):
        purged += ProviderCall.objects.filter(id__in=ids).update(response=None)
    if purged:
        logger.info("cache purge: dropped %s expired ledger payload(s)", purged)
    return purged


def _alert_key(use: BudgetUse, now: datetime) -> str:
    period = now.strftime("%Y-%m-%d") if use.period == "today" else now.strftime("%Y-%m")
    level = "reached" if use.share >= 1 else "near"
    return f"providers:budget-alert:{use.provider}:{use.period}:{period}:{level}"


def budget_alerts_notify(*, now: datetime | None = None) -> list[BudgetUse]:
    """Log every budget at or past its alert share; mail the admins about the ones not
    mailed yet in this budget period. Return the newly mailed ones."""
    now = now or timezone.now()
    fresh = []
    for use in budget_alerts():
        logger.warning(
            "budget alert: %s has spent %s of %s credits %s (%.0f%%)",
            use.provider,
            use.spent,
            use.budget,
            use.period,
            use.share * 100,
        )
        # cache.add is atomic on Redis: one mail per provider, period and level, however
        # many beat ticks see it. It outlives the longest period (a month).
        if cache.add(_alert_key(use, now), True, timeout=32 * 24 * 3600):
            fresh.append(use)
    if fresh:
        lines = [
            f"- {use.provider}: {use.spent} of {use.budget} credits {use.period} ({use.share:.0%})"
            for use in fresh
        ]
        mail_admins(
            f"Provider budget alert: {', '.join(sorted({use.provider for use in fresh}))}",
            "These provider budgets are at or past their alert share; when one is reached, "
            "paid calls to that provider wait for the next day or month.\n\n"
            + "\n".join(lines)
            + "\n\nAdmin → Providers → Provider settings to change them.\n",
        )
    return fresh
