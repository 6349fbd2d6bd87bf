"""Reads behind the API: filtered lists and the usage report. No writes here."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from enrichment.models import EnrichmentJob, EnrichmentRun, Observation
from leads.models import Company, Lead
from providers.models import ProviderCall, ProviderConfig
from providers.registry import enabled_providers
from providers.selectors import BudgetUse, budget_uses


def leads_all() -> QuerySet[Lead]:
    return Lead.objects.select_related("company")


def leads_stale(queryset: QuerySet[Lead], *, stale: bool) -> QuerySet[Lead]:
    """Keep the leads with (stale=True) or without (False) a current value past its expiry,
    on the lead itself or on its company."""
    now = timezone.now()
    current = Observation.objects.filter(state__in=Observation.CURRENT_STATES, expires_at__lte=now)
    expired = Exists(current.filter(lead=OuterRef("pk"))) | Exists(
        current.filter(company=OuterRef("company_id"))
    )
    return queryset.filter(expired) if stale else queryset.exclude(expired)


def companies_all() -> QuerySet[Company]:
    return Company.objects.all()


def runs_all() -> QuerySet[EnrichmentRun]:
    return EnrichmentRun.objects.all()


def jobs_all() -> QuerySet[EnrichmentJob]:
    return EnrichmentJob.objects.all()


def observations_all() -> QuerySet[Observation]:
    return Observation.objects.select_related("decided_by")


def lead_observations(lead: Lead) -> QuerySet[Observation]:
    """Everything stated about the lead and about its company."""
    about = Q(lead=lead)
    if lead.company_id:
        about |= Q(company_id=lead.company_id)
    return observations_all().filter(about)


def provider_names_enabled() -> list[str]:
    """Return the providers a run may ask now: configured (their key or URL set) and not
    switched off in the admin, in the registry's order."""
    off = set(ProviderConfig.objects.filter(enabled=False).values_list("provider", flat=True))
    return [provider.name for provider in enabled_providers() if provider.name not in off]


def lead_run_in_flight(lead: Lead) -> EnrichmentRun | None:
    return (
        EnrichmentRun.objects.filter(
            lead=lead, state__in=[EnrichmentRun.State.QUEUED, EnrichmentRun.State.RUNNING]
        )
        .order_by("-created_at")
        .first()
    )


@dataclass(frozen=True)
class UsageDay:
    day: date
    provider: str
    calls: int
    credits: Decimal


def usage_by_day(*, since: date, until: date) -> list[UsageDay]:
    """Return the calls and credits of each provider on each day (UTC) in [since, until]."""
    start = datetime.combine(since, time.min, tzinfo=timezone.get_current_timezone())
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=start.tzinfo)
    rows = (
        ProviderCall.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at"))
        .values("day", "provider")
        .annotate(calls=Count("id"), credits=Sum("credits"))
        .order_by("day", "provider")
    )
    return [
        UsageDay(
            day=row["day"],
            provider=row["provider"],
            calls=row["calls"],
            credits=row["credits"] or Decimal(0),
        )
        for row in rows
    ]


def budgets_all() -> list[BudgetUse]:
    return [use for config in ProviderConfig.objects.all() for use in budget_uses(config)]
