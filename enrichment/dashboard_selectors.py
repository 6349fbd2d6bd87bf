"""Reads behind the dashboard: success rate, completeness, spend against budget, runs and
the queue. Each is a handful of aggregate queries, whatever the number of leads."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from enrichment.fields import COMPANY_FIELDS, FIELDS, LEAD_FIELDS
from enrichment.local_checks import SOURCE as LOCAL_SOURCE
from enrichment.models import EnrichmentRun, Observation
from enrichment.selectors import MANUAL_SOURCE
from leads.models import Company, Lead
from providers.models import ProviderCall, ProviderConfig

# Outcomes that count for the success rate: a skipped run asked nobody anything.
_SUCCESS = EnrichmentRun.State.DONE
_ATTEMPTED = (
    EnrichmentRun.State.DONE,
    EnrichmentRun.State.NOT_FOUND,
    EnrichmentRun.State.FAILED,
    EnrichmentRun.State.DEAD,
)
# Sources that are not enrichment: a person, or a free check of a value already there.
_NOT_ENRICHMENT = (MANUAL_SOURCE, LOCAL_SOURCE)


def _days(days: int) -> list[date]:
    today = timezone.localdate()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


@dataclass
class DayOutcomes:
    day: date
    done: int = 0
    not_found: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.done + self.not_found + self.failed

    @property
    def rate(self) -> float | None:
        return self.done / self.attempted if self.attempted else None


@dataclass
class SuccessRate:
    days: list[DayOutcomes]

    @property
    def done(self) -> int:
        return sum(d.done for d in self.days)

    @property
    def attempted(self) -> int:
        return sum(d.attempted for d in self.days)

    @property
    def rate(self) -> float | None:
        return self.done / self.attempted if self.attempted else None


def success_rate(*, days: int = 14) -> SuccessRate:
    """Return finished runs per day: found something, found nothing, failed (or dead)."""
    window = _days(days)
    by_day = {day: DayOutcomes(day) for day in window}
    rows = (
        EnrichmentRun.objects.filter(finished_at__gte=_start_of(window[0]), state__in=_ATTEMPTED)
        .annotate(day=TruncDate("finished_at"))
        .values("day", "state")
        .annotate(n=Count("id"))
    )
    for row in rows:
        outcome = by_day.get(row["day"])
        if outcome is None:
            continue
        if row["state"] == _SUCCESS:
            outcome.done += row["n"]
        elif row["state"] == EnrichmentRun.State.NOT_FOUND:
            outcome.not_found += row["n"]
        else:
            outcome.failed += row["n"]
    return SuccessRate(days=list(by_day.values()))


@dataclass(frozen=True)
class Completeness:
    """How many records have a field filled now, and how many had it without enrichment."""

    field: str
    label: str
    total: int
    filled: int
    enriched: int

    @property
    def before(self) -> int:
        return max(self.filled - self.enriched, 0)

    @property
    def before_share(self) -> float:
        return self.before / self.total if self.total else 0.0

    @property
    def after_share(self) -> float:
        return self.filled / self.total if self.total else 0.0


def _filled(name: str) -> Q:
    column = FIELDS[name].column
    if name == "technologies":
        return ~Q(**{column: []})
    return Q(**{f"{column}__isnull": False}) & ~Q(**{column: ""})


def completeness() -> list[Completeness]:
    """Return, per field, the share filled before enrichment (imported or typed in) and now.

    "Enriched" counts the records whose current value came from a provider; the rest of
    what is filled was there before (or set by hand).
    """
    result = []
    kinds = ((Lead, LEAD_FIELDS, "lead"), (Company, COMPANY_FIELDS, "company"))
    for model, names, subject in kinds:
        counts = model.objects.aggregate(
            total=Count("id"), **{name: Count("id", filter=_filled(name)) for name in names}
        )
        enriched = dict(
            Observation.objects.filter(
                **{f"{subject}__isnull": False}, state__in=Observation.CURRENT_STATES
            )
            .exclude(source__in=_NOT_ENRICHMENT)
            .values("field")
            .annotate(n=Count(f"{subject}_id", distinct=True))
            .values_list("field", "n")
        )
        for name in names:
            result.append(
                Completeness(
                    field=name,
                    label=FIELDS[name].label,
                    total=counts["total"],
                    filled=counts[name],
                    enriched=min(enriched.get(name, 0), counts[name]),
                )
            )
    return result


@dataclass
class ProviderSpend:
    provider: str
    daily_budget: Decimal | None
    monthly_budget: Decimal | None
    days: list[tuple[date, Decimal]] = field(default_factory=list)
    month_spent: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return sum((credits for _, credits in self.days), Decimal(0))

    @property
    def peak(self) -> Decimal:
        return max((credits for _, credits in self.days), default=Decimal(0))

    @property
    def days_over_budget(self) -> int:
        if self.daily_budget is None:
            return 0
        return sum(credits >= self.daily_budget for _, credits in self.days)


def credits_per_provider(*, days: int = 14) -> list[ProviderSpend]:
    """Return the credits each provider spent each day, beside its daily and monthly budget."""
    window = _days(days)
    month_start = _start_of(window[-1].replace(day=1))
    since = min(_start_of(window[0]), month_start)
    configs = {c.provider: c for c in ProviderConfig.objects.all()}
    rows = (
        ProviderCall.objects.filter(created_at__gte=since, credits__gt=0)
        .annotate(day=TruncDate("created_at"))
        .values("provider", "day")
        .annotate(credits=Sum("credits"))
    )
    spent: dict[str, dict[date, Decimal]] = {}
    for row in rows:
        spent.setdefault(row["provider"], {})[row["day"]] = row["credits"]
    result = []
    for provider in sorted(set(spent) | set(configs)):
        config = configs.get(provider)
        per_day = spent.get(provider, {})
        result.append(
            ProviderSpend(
                provider=provider,
                daily_budget=config.daily_credit_budget if config else None,
                monthly_budget=config.monthly_credit_budget if config else None,
                days=[(day, per_day.get(day, Decimal(0))) for day in window],
                month_spent=sum(
                    (c for d, c in per_day.items() if d >= month_start.date()), Decimal(0)
                ),
            )
        )
    return result


@dataclass(frozen=True)
class RunStates:
    counts: dict[str, int]
    labels: dict[str, str]
    dead: list[EnrichmentRun]

    def items(self) -> list[tuple[str, str, int]]:
        return [(state, self.labels[state], self.counts.get(state, 0)) for state in self.labels]


def runs_by_state(*, dead_shown: int = 10) -> RunStates:
    """Return how many runs are in each state, and the latest dead ones (retryable)."""
    counts = dict(EnrichmentRun.objects.values_list("state").annotate(n=Count("id")))
    dead = list(
        EnrichmentRun.objects.filter(state=EnrichmentRun.State.DEAD)
        .select_related("lead")
        .order_by("-finished_at", "-id")[:dead_shown]
    )
    return RunStates(counts=counts, labels=dict(EnrichmentRun.State.choices), dead=dead)


@dataclass(frozen=True)
class QueueDepth:
    due: int  # queued and due now: waiting for a free worker
    deferred: int  # queued for later: a budget, a rate limit, a retry backoff
    running: int

    @property
    def total(self) -> int:
        return self.due + self.deferred + self.running


def queue_depth() -> QueueDepth:
    """Return the runs waiting for a worker, waiting for later, and in progress now."""
    now = timezone.now()
    counts = EnrichmentRun.objects.filter(
        state__in=[EnrichmentRun.State.QUEUED, EnrichmentRun.State.RUNNING]
    ).aggregate(
        due=Count("id", filter=Q(state=EnrichmentRun.State.QUEUED, available_at__lte=now)),
        deferred=Count("id", filter=Q(state=EnrichmentRun.State.QUEUED, available_at__gt=now)),
        running=Count("id", filter=Q(state=EnrichmentRun.State.RUNNING)),
    )
    return QueueDepth(**counts)


def review_queue_size(*, cap: int = 10_000) -> int:
    """Return how many values wait for review, counted up to `cap` (cap + 1 means more)."""
    return Observation.objects.filter(state=Observation.State.PENDING_REVIEW)[: cap + 1].count()
