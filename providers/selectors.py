"""Reads about providers: what they spent against their budgets."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from providers.ledger import credits_spent
from providers.models import ProviderConfig


@dataclass(frozen=True)
class BudgetUse:
    provider: str
    period: str  # "today" or "this month"
    spent: Decimal
    budget: Decimal

    @property
    def share(self) -> float:
        return float(self.spent / self.budget) if self.budget else 1.0

    @property
    def alert(self) -> bool:
        return self.share >= settings.PROVIDER_BUDGET_ALERT_AT


def budget_uses(config: ProviderConfig) -> list[BudgetUse]:
    """Return the provider's spend against each budget it has."""
    now = timezone.now()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    uses = []
    if config.daily_credit_budget is not None:
        spent = credits_spent(provider=config.provider, since=day)
        uses.append(BudgetUse(config.provider, "today", spent, config.daily_credit_budget))
    if config.monthly_credit_budget is not None:
        spent = credits_spent(provider=config.provider, since=day.replace(day=1))
        uses.append(BudgetUse(config.provider, "this month", spent, config.monthly_credit_budget))
    return uses


def budget_alerts() -> list[BudgetUse]:
    """Return every budget at or past its alert share (80% by default)."""
    return [
        use for config in ProviderConfig.objects.all() for use in budget_uses(config) if use.alert
    ]
