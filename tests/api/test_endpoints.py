"""Observations and the review queue, companies, runs, jobs, usage."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from enrichment.models import EnrichmentJob, Observation
from providers.models import ProviderCall, ProviderConfig
from tests.factories import CompanyFactory, LeadFactory, ObservationFactory

pytestmark = pytest.mark.django_db


def test_the_review_queue_lists_pending_observations(sdr):
    pending = ObservationFactory()
    ObservationFactory(state="applied")
    response = sdr.get("/api/observations/", {"state": "pending_review"})
    assert response.status_code == 200
    assert [o["id"] for o in response.json()["results"]] == [pending.id]
    assert sdr.get(f"/api/observations/{pending.id}/").json()["value"] == "VP of Sales"


def test_approve_applies_the_value(reviewer):
    observation = ObservationFactory(field="job_title", value="CFO")
    response = reviewer.post(f"/api/observations/{observation.id}/approve/")
    assert response.status_code == 200
    assert response.json()["state"] == "approved"
    observation.lead.refresh_from_db()
    assert observation.lead.job_title == "CFO"


def test_reject_records_the_reason_and_a_second_decision_is_a_409(reviewer):
    observation = ObservationFactory()
    response = reviewer.post(
        f"/api/observations/{observation.id}/reject/", {"reason": "wrong person"}, format="json"
    )
    assert response.status_code == 200
    observation.refresh_from_db()
    assert observation.state == Observation.State.REJECTED
    assert observation.reason == "wrong person"
    again = reviewer.post(f"/api/observations/{observation.id}/approve/")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert "not pending review" in again.json()["message"]


def test_companies_are_read_only(sdr):
    company = CompanyFactory(domain="acme.com", name="Acme")
    assert sdr.get("/api/companies/").json()["results"][0]["domain"] == "acme.com"
    assert sdr.get(f"/api/companies/{company.id}/").json()["name"] == "Acme"
    response = sdr.post("/api/companies/", {"domain": "x.com"}, format="json")
    assert response.status_code == 405
    assert "allowed: GET" in response.json()["message"]


def test_a_job_shows_its_counters_and_progress(sdr):
    job = EnrichmentJob.objects.create(kind="bulk", total=4, done=3, enriched=2, failed=1)
    body = sdr.get(f"/api/jobs/{job.id}/").json()
    assert body["total"] == 4
    assert body["done"] == 3
    assert body["enriched"] == 2
    assert body["progress"] == 0.75
    assert body["finished_at"] is None


def test_usage_sums_credits_per_provider_per_day(sdr):
    now = timezone.now()
    for provider, credits, when in [
        ("hunter", "1.0", now),
        ("hunter", "0.5", now),
        ("pdl", "2.0", now),
        ("hunter", "1.0", now - timedelta(days=2)),
        ("hunter", "9.0", now - timedelta(days=60)),
    ]:
        call = ProviderCall.objects.create(
            provider=provider,
            operation="person_enrich",
            lookup_key_hash="x" * 64,
            outcome="hit",
            credits=Decimal(credits),
        )
        ProviderCall.objects.filter(id=call.id).update(created_at=when)
    ProviderConfig.objects.create(provider="hunter", daily_credit_budget=Decimal("10"))
    body = sdr.get("/api/usage/").json()
    today = now.date().isoformat()
    days = {(d["day"], d["provider"]): (d["calls"], d["credits"]) for d in body["days"]}
    assert days[(today, "hunter")] == (2, 1.5)
    assert days[(today, "pdl")] == (1, 2.0)
    assert days[((now - timedelta(days=2)).date().isoformat(), "hunter")] == (1, 1.0)
    assert len(days) == 3
    assert body["budgets"][0]["provider"] == "hunter"
    assert body["budgets"][0]["spent"] == 1.5
    narrow = sdr.get("/api/usage/", {"since": today, "until": today}).json()
    assert len(narrow["days"]) == 2


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2025-02-01", "until": "2025-01-01"},
        {"since": "2020-01-01", "until": "2025-01-01"},
        {"since": "yesterday"},
        {"until": "9999-12-31"},
    ],
)
def test_usage_refuses_bad_ranges(sdr, query):
    response = sdr.get("/api/usage/", query)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_lead_observations_of_a_missing_lead_is_a_404(sdr):
    lead = LeadFactory()
    lead_id = lead.id
    lead.delete()
    assert sdr.get(f"/api/leads/{lead_id}/observations/").status_code == 404
