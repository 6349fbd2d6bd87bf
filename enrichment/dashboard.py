"""The staff dashboard: is enrichment working, what did it fill, what did it cost, what is
stuck. Charts are inline SVG drawn on the server (the app is self-hosted and offline).

Mounted at /dashboard/ by config.urls (`include("enrichment.dashboard")`).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from enrichment.dashboard_selectors import (
    DayOutcomes,
    ProviderSpend,
    completeness,
    credits_per_provider,
    queue_depth,
    review_queue_size,
    runs_by_state,
    success_rate,
)
from enrichment.models import EnrichmentRun
from enrichment.services import run_retry

# --- Chart geometry ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class ColumnChart:
    """Stacked columns, one per day, with an optional dashed line (a budget)."""

    width: int
    height: int
    plot_top: int
    plot_bottom: int
    rects: list[Rect]
    labels: list[Label]
    ticks: list[Label]
    line_y: float | None
    line_label: str


_CHART_WIDTH = 520
_CHART_HEIGHT = 170
_PAD_LEFT = 34
_PAD_TOP = 12
_PAD_BOTTOM = 22


def _nice_max(value: float) -> float:
    """Round the scale's top up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _short_number(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def column_chart(
    columns: list[tuple[str, list[tuple[float, str, str]]]],
    *,
    line: float | None = None,
    line_label: str = "",
) -> ColumnChart:
    """Lay out stacked columns: each column is (label, [(value, css class, title), …])."""
    top_value = max([sum(v for v, _, _ in parts) for _, parts in columns] + [line or 0, 0])
    scale_top = _nice_max(top_value)
    plot_height = _CHART_HEIGHT - _PAD_TOP - _PAD_BOTTOM
    plot_bottom = _PAD_TOP + plot_height
    slot = (_CHART_WIDTH - _PAD_LEFT) / max(len(columns), 1)
    bar_width = max(slot * 0.62, 2)
    label_step = 1 if len(columns) <= 8 else 2
    rects, labels = [], []
    for index, (label, parts) in enumerate(columns):
        x = _PAD_LEFT + index * slot + (slot - bar_width) / 2
        y = plot_bottom
        for value, css, title in parts:
            height = plot_height * value / scale_top
            if height <= 0:
                continue
            y -= height
            rects.append(
                Rect(round(x, 1), round(y, 1), round(bar_width, 1), round(height, 1), css, title)
            )
        # A label on every column up to eight, then on every other one back from the last.
        if (len(columns) - 1 - index) % label_step == 0:
            labels.append(Label(round(x + bar_width / 2, 1), _CHART_HEIGHT - 6, label))
    ticks = [
        Label(
            _PAD_LEFT - 6,
            round(plot_bottom - plot_height * share, 1),
            _short_number(scale_top * share),
        )
        for share in (0, 0.5, 1)
    ]
    line_y = None
    if line is not None and line > 0:
        line_y = round(plot_bottom - plot_height * line / scale_top, 1)
    return ColumnChart(
        width=_CHART_WIDTH,
        height=_CHART_HEIGHT,
        plot_top=_PAD_TOP,
        plot_bottom=plot_bottom,
        rects=rects,
        labels=labels,
        ticks=ticks,
        line_y=line_y,
        line_label=line_label,
    )


def _day_label(day) -> str:
    return f"{day.day} {day:%b}" if day.day == 1 else str(day.day)


def _outcomes_chart(days: list[DayOutcomes]) -> ColumnChart:
    return column_chart(
        [
            (
                _day_label(d.day),
                [
                    (d.done, "c-done", f"{d.day:%d %b}: {d.done} found data"),
                    (d.not_found, "c-miss", f"{d.day:%d %b}: {d.not_found} found nothing"),
                    (d.failed, "c-fail", f"{d.day:%d %b}: {d.failed} failed"),
                ],
            )
            for d in days
        ]
    )


def _spend_chart(spend: ProviderSpend) -> ColumnChart:
    budget = spend.daily_budget
    return column_chart(
        [
            (
                _day_label(day),
                [
                    (
                        float(credits),
                        "c-over" if budget is not None and credits >= budget else "c-spend",
                        f"{day:%d %b}: {credits:g} credits",
                    )
                ],
            )
            for day, credits in spend.days
        ],
        line=float(budget) if budget is not None else None,
        line_label=f"daily budget {budget:g}" if budget is not None else "",
    )


def _share(part: Decimal | int, whole: Decimal | int | None) -> float | None:
    return float(part) / float(whole) if whole else None


# --- Views ------------------------------------------------------------------------------


@require_GET
@staff_member_required
def enrichment_dashboard(request: HttpRequest) -> HttpResponse:
    rate = success_rate(days=14)
    spends = credits_per_provider(days=14)
    runs = runs_by_state()
    context = {
        "rate": rate,
        "rate_chart": _outcomes_chart(rate.days),
        "completeness": completeness(),
        "spends": [
            {
                "spend": spend,
                "chart": _spend_chart(spend),
                "month_share": _share(spend.month_spent, spend.monthly_budget),
            }
            for spend in spends
        ],
        "runs": runs,
        "runs_max": max([count for _, _, count in runs.items()] + [1]),
        "queue": queue_depth(),
        "review_size": review_queue_size(),
        "review_cap": 10_000,
        "can_retry": request.user.has_perm("enrichment.change_enrichmentrun"),
    }
    return render(request, "enrichment/dashboard.html", context)


@require_POST
@staff_member_required
@permission_required("enrichment.change_enrichmentrun", raise_exception=True)
def dead_runs_retry(request: HttpRequest) -> HttpResponse:
    """Queue dead runs again: the one given, or every dead run."""
    dead = EnrichmentRun.objects.filter(state=EnrichmentRun.State.DEAD)
    run_id = request.POST.get("run")
    if run_id:
        dead = dead.filter(id=run_id if run_id.isdigit() else 0)
    retried = 0
    for pk in dead.values_list("id", flat=True):
        try:
            run_retry(run_id=pk)
        except ValueError:
            # Another admin retried it a moment ago.
            continue
        retried += 1
    messages.success(request, f"Queued {retried} dead run{'s' if retried != 1 else ''} again.")
    return redirect("dashboard:index")


app_name = "dashboard"
urlpatterns = [
    path("", enrichment_dashboard, name="index"),
    path("retry-dead/", dead_runs_retry, name="retry_dead"),
]
