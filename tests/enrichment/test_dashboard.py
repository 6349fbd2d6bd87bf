"""The staff dashboard: its numbers (enrichment/dashboard_selectors.py), its charts and who
may see it and retry dead runs (enrichment/dashboard.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.services import user_role_set
from enrichment.dashboard import column_chart
from enrichment.dashboard_selectors import (
    completeness,
    credits_per_provider,
    queue_depth,
    review_queue_size,
    runs_by_state,
    success_rate,
)
from enrichment.models import EnrichmentRun
from providers.models import ProviderCall, ProviderConfig
from tests.factories import CompanyFactory, LeadFactory, ObservationFactory

pytestmark = pytest.mark.django_db


def _run(state: str, *, days_ago: int = 0, **extra) -> EnrichmentRun:
    lead = extra.pop("lead", None) or LeadFactory()
    run = EnrichmentRun.objects.create(lead=lead, trigger="manual", state=state, **extra)
    if state in EnrichmentRun.TERMINAL_STATES:
        EnrichmentRun.objects.filter(id=run.id).update(
            finished_at=timezone.now() - timedelta(days=days_ago)
        )
    return run


def test_success_rate_counts_found_against_everything_attempted_per_day():
    for _ in range(3):
        _run("done")
    _run("not_found")
    _run("failed", days_ago=1)
    _run("dead", days_ago=1)
    _run("skipped")  # asked nobody: not counted
    _run("done", days_ago=30)  # outside the window
    rate = success_rate(days=14)
    assert len(rate.days) == 14
    today, yesterday = rate.days[-1], rate.days[-2]
    assert (today.done, today.not_found, today.failed) == (3, 1, 0)
    assert (yesterday.done, yesterday.failed) == (0, 2)
    assert (rate.done, rate.attempted) == (3, 6)
    assert rate.rate == pytest.approx(0.5)


def test_completeness_tells_filled_before_enrichment_from_filled_now():
    company = CompanyFactory(domain="engine.io", industry="Rail")
    imported = LeadFactory(company=company, phone="+442079460001")
    enriched = LeadFactory(company=company, phone="+442079460002")
    LeadFactory(company=company)
    ObservationFactory(lead=enriched, field="phone", value="+442079460002", state="applied")
    ObservationFactory(
        lead=imported, field="phone", value="+442079460001", source="manual", state="applied"
    )
    ObservationFactory(lead=None, company=company, field="industry", value="Rail", state="applied")
    rows = {row.field: row for row in completeness()}
    phone = rows["phone"]
    assert (phone.total, phone.filled, phone.enriched, phone.before) == (3, 2, 1, 1)
    assert phone.after_share == pytest.approx(2 / 3)
    assert phone.before_share == pytest.approx(1 / 3)
    industry = rows["industry"]
    assert (industry.total, industry.filled, industry.before) == (1, 1, 0)
    assert rows["email"].filled == 0


def test_credits_per_provider_per_day_beside_the_budget():
    ProviderConfig.objects.create(
        provider="hunter", daily_credit_budget=Decimal(5), monthly_credit_budget=Decimal(100)
    )
    for credits, days_ago in ((3, 0), (4, 0), (2, 1)):
        call = ProviderCall.objects.create(
            provider="hunter",
            operation="email_find",
            lookup_key_hash="x",
            outcome="hit",
            credits=Decimal(credits),
        )
        ProviderCall.objects.filter(id=call.id).update(
            created_at=timezone.now() - timedelta(days=days_ago)
        )
    ProviderCall.objects.create(provider="pdl", operation="p", lookup_key_hash="y", credits=0)
    (hunter,) = credits_per_provider(days=14)
    assert hunter.provider == "hunter"
    assert hunter.days[-1][1] == Decimal(7)
    assert hunter.days[-2][1] == Decimal(2)
    assert hunter.total == Decimal(9)
    assert hunter.days_over_budget == 1
    assert hunter.daily_budget == Decimal(5)


def test_runs_by_state_queue_depth_and_review_size():
    dead = _run("dead")
    _run("queued", available_at=timezone.now() - timedelta(seconds=1))
    _run("queued", available_at=timezone.now() + timedelta(hours=1))
    _run("running")
    runs = runs_by_state()
    assert runs.counts["dead"] == 1
    assert runs.dead == [dead]
    assert ("queued", "Queued", 2) in runs.items()
    assert queue_depth() == type(queue_depth())(due=1, deferred=1, running=1)
    for _ in range(4):
        ObservationFactory()
    assert review_queue_size(cap=2) == 3  # cap + 1: "more than 2"
    assert review_queue_size() == 4


def test_column_chart_scales_bars_and_draws_the_budget_line():
    chart = column_chart(
        [("1", [(10, "c-spend", "a")]), ("2", [(5, "c-spend", "b"), (5, "c-over", "c")])],
        line=20,
        line_label="daily budget 20",
    )
    first, second_low, second_high = chart.rects
    assert first.height == pytest.approx(second_low.height + second_high.height)
    # The scale tops out at 20 (the budget), so the line sits at the top of the plot.
    assert chart.line_y == pytest.approx(chart.plot_top)
    assert first.height == pytest.approx((chart.plot_bottom - chart.plot_top) / 2)
    assert second_high.y + second_high.height == pytest.approx(second_low.y)


def _login(client, role):
    user = get_user_model().objects.create_user(role.lower(), password="pw")
    user_role_set(user=user, role=role)
    client.force_login(user)
    return user


def test_the_dashboard_is_for_staff_with_charts(client):
    _run("done")
    _login(client, Role.SDR)
    assert client.get(reverse("dashboard:index")).status_code == 302
    client.logout()
    _login(client, Role.REVIEWER)
    response = client.get(reverse("dashboard:index"))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<svg") >= 1
    assert "Success rate" in html and "100%" in html
    assert "Completeness per field" in html


def test_only_an_admin_retries_dead_runs(client):
    dead = _run("dead")
    _login(client, Role.REVIEWER)
    assert client.post(reverse("dashboard:retry_dead")).status_code == 403
    dead.refresh_from_db()
    assert dead.state == "dead"
    client.logout()
    _login(client, Role.ADMIN)
    page = client.get(reverse("dashboard:index")).content.decode()
    assert "Retry every dead run" in page
    response = client.post(reverse("dashboard:retry_dead"), {"run": dead.pk})
    assert response.status_code == 302
    dead.refresh_from_db()
    assert (dead.state, dead.attempts) == ("queued", 0)
