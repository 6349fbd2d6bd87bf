"""/api/leads/: list with filters, upsert one or many, manual edits, delete, enrich."""

from datetime import timedelta

import pytest
from django.utils import timezone

from enrichment.models import EnrichmentRun, Observation
from leads.models import Lead, Suppression
from leads.normalize import identity_hash
from tests.factories import CompanyFactory, LeadFactory, ObservationFactory

pytestmark = pytest.mark.django_db


def _ids(response):
    return [lead["id"] for lead in response.json()["results"]]


def test_list_filters_by_normalized_email_and_domain(sdr):
    ada = LeadFactory(email="ada@acme.com", company=CompanyFactory(domain="acme.com"))
    LeadFactory(email="bob@other.com", company=CompanyFactory(domain="other.com"))
    assert _ids(sdr.get("/api/leads/", {"email": " Ada@ACME.com "})) == [ada.id]
    assert _ids(sdr.get("/api/leads/", {"domain": "https://www.acme.com/about"})) == [ada.id]
    assert _ids(sdr.get("/api/leads/", {"email": "not an email"})) == []


def test_list_filters_by_status_updated_since_and_stale(sdr):
    old = LeadFactory(enrichment_status="enriched")
    fresh = LeadFactory(enrichment_status="new")
    Lead.objects.filter(id=old.id).update(updated_at=timezone.now() - timedelta(days=10))
    ObservationFactory(lead=old, state="applied", expires_at=timezone.now() - timedelta(days=1))
    ObservationFactory(lead=fresh, state="applied")
    assert _ids(sdr.get("/api/leads/", {"status": "enriched"})) == [old.id]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert _ids(sdr.get("/api/leads/", {"updated_since": since})) == [fresh.id]
    assert _ids(sdr.get("/api/leads/", {"stale": "true"})) == [old.id]
    assert _ids(sdr.get("/api/leads/", {"stale": "false"})) == [fresh.id]


def test_a_bad_filter_value_is_a_400_naming_it(sdr):
    response = sdr.get("/api/leads/", {"updated_since": "last tuesday"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "updated_since" in body["errors"]
    assert body["message"].startswith("The request has invalid values: updated_since:")


def test_list_pages_with_a_cursor_and_loses_nothing_when_leads_arrive(sdr):
    leads = [LeadFactory() for _ in range(5)]
    first = sdr.get("/api/leads/", {"page_size": 2}).json()
    assert [lead["id"] for lead in first["results"]] == [leads[4].id, leads[3].id]
    LeadFactory()  # arrives between pages: must not shift the next page
    second = sdr.get(first["next"]).json()
    assert [lead["id"] for lead in second["results"]] == [leads[2].id, leads[1].id]


def test_create_one_is_201_then_200_for_the_same_normalized_email(sdr):
    response = sdr.post(
        "/api/leads/",
        {"email": "Ada@Acme.com", "first_name": "Ada", "phone": "(415) 555-0132"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada@acme.com"
    assert body["company_domain"] == "acme.com"
    assert body["phone"] == "+14155550132"
    again = sdr.post("/api/leads/", {"email": "ADA@acme.com", "job_title": "CTO"}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert again.json()["job_title"] == "CTO"
    assert Lead.objects.count() == 1


def test_create_one_invalid_is_a_400_naming_the_field(sdr):
    response = sdr.post("/api/leads/", {"email": "nobody@", "phone": "x"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["errors"]
    response = sdr.post("/api/leads/", {"first_name": "Ada"}, format="json")
    assert response.status_code == 400
    assert "identity" in response.json()["errors"]
    assert not Lead.objects.exists()


def test_create_a_list_answers_per_item_and_one_bad_item_costs_nothing(sdr):
    existing = LeadFactory(email="old@acme.com", job_title="")
    Suppression.objects.create(
        kind="email", identifier_hash=identity_hash("gone@acme.com"), reason="erasure"
    )
    items = [
        {"email": "new@acme.com", "first_name": "Nia"},
        {"email": "not-an-email"},
        {"email": "OLD@acme.com", "job_title": "Head of Sales"},
        {"email": "new@acme.com", "last_name": "Okafor"},
        "a string, not an object",
        {"email": "gone@acme.com"},
        {"email": "old@acme.com"},
        {"first_name": "x" * 200, "email": "long@acme.com"},
    ]
    response = sdr.post("/api/leads/", items, format="json")
    assert response.status_code == 207
    body = response.json()
    statuses = [item["status"] for item in body["results"]]
    assert statuses == [
        "created",
        "invalid",
        "updated",
        "duplicate",
        "invalid",
        "suppressed",
        "duplicate",
        "invalid",
    ]
    assert [item["index"] for item in body["results"]] == list(range(len(items)))
    results = body["results"]
    new = Lead.objects.get(email="new@acme.com")
    assert results[0]["lead_id"] == results[3]["lead_id"] == new.id
    assert new.last_name == "Okafor"
    assert results[2]["lead_id"] == results[6]["lead_id"] == existing.id
    assert results[1]["errors"][0]["field"] == "email"
    assert results[7]["errors"][0]["field"] == "first_name"
    assert body["counts"] == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "duplicate": 2,
        "suppressed": 1,
        "invalid": 3,
    }
    existing.refresh_from_db()
    assert existing.job_title == "Head of Sales"


def test_create_a_list_too_long_or_empty_is_a_400(sdr):
    too_many = [{"email": f"p{i}@acme.com"} for i in range(1001)]
    response = sdr.post("/api/leads/", too_many, format="json")
    assert response.status_code == 400
    assert "at most 1000" in response.json()["message"]
    assert sdr.post("/api/leads/", [], format="json").status_code == 400
    assert not Lead.objects.exists()


def test_a_field_set_through_the_api_is_manual_and_locked(sdr):
    lead = LeadFactory(job_title="Engineer")
    response = sdr.patch(
        f"/api/leads/{lead.id}/",
        {"job_title": "VP Engineering", "phone": "+44 20 7946 0958", "first_name": " Ada "},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["job_title"] == "VP Engineering"
    assert body["phone"] == "+442079460958"
    assert body["first_name"] == "Ada"
    manual = Observation.objects.get(lead=lead, field="job_title", state="applied")
    assert manual.source == "manual"
    assert manual.decided_by == sdr.api_key.user


def test_a_bad_manual_value_changes_nothing(sdr):
    lead = LeadFactory(job_title="Engineer")
    LeadFactory(email="taken@acme.com")
    response = sdr.patch(
        f"/api/leads/{lead.id}/", {"job_title": "CTO", "email": "taken@acme.com"}, format="json"
    )
    assert response.status_code == 400
    assert "already the email of lead" in response.json()["message"]
    lead.refresh_from_db()
    assert lead.job_title == "Engineer"
    assert not Observation.objects.filter(lead=lead).exists()
    assert sdr.patch(f"/api/leads/{lead.id}/", {}, format="json").status_code == 400


def test_read_and_delete(admin):
    lead = LeadFactory(email="ada@acme.com")
    assert admin.get(f"/api/leads/{lead.id}/").json()["email"] == "ada@acme.com"
    assert admin.delete(f"/api/leads/{lead.id}/").status_code == 204
    response = admin.get(f"/api/leads/{lead.id}/")
    assert response.status_code == 404
    assert f"no lead with id {lead.id}" in response.json()["message"]


def test_enrich_answers_202_with_the_run_and_reuses_one_in_flight(sdr, settings):
    lead = LeadFactory(email="ada@acme.com")
    response = sdr.post(
        f"/api/leads/{lead.id}/enrich/", {"fields": ["job_title", "phone"]}, format="json"
    )
    assert response.status_code == 202
    run = EnrichmentRun.objects.get(lead=lead)
    assert response.json()["id"] == run.id
    assert response.json()["state"] == "queued"
    assert run.fields == ["job_title", "phone"]
    again = sdr.post(f"/api/leads/{lead.id}/enrich/")
    assert again.status_code == 202
    assert again.json()["id"] == run.id
    assert sdr.get(f"/api/runs/{run.id}/").json()["lead_id"] == lead.id


def test_enrich_refuses_unknown_fields(sdr):
    lead = LeadFactory()
    response = sdr.post(f"/api/leads/{lead.id}/enrich/", {"fields": ["shoe_size"]}, format="json")
    assert response.status_code == 400
    assert "fields" in response.json()["errors"]
    assert not EnrichmentRun.objects.exists()


def test_lead_observations_include_the_company_ones(sdr):
    lead = LeadFactory()
    mine = ObservationFactory(lead=lead)
    company = ObservationFactory(
        lead=None, company=lead.company, field="industry", value="Software"
    )
    ObservationFactory()  # someone else's
    response = sdr.get(f"/api/leads/{lead.id}/observations/")
    assert response.status_code == 200
    assert {o["id"] for o in response.json()["results"]} == {mine.id, company.id}


def test_export_holds_everything_with_sources_and_dates(admin):
    lead = LeadFactory(email="ada@acme.com")
    ObservationFactory(lead=lead, field="job_title", value="CTO", source="pdl")
    response = admin.get(f"/api/leads/{lead.id}/export/")
    assert response.status_code == 200
    body = response.json()
    assert body["lead"]["email"] == "ada@acme.com"
    (observation,) = body["observations"]
    assert observation["source"] == "pdl"
    assert observation["value"] == "CTO"
    assert observation["observed_at"]


def test_erase_removes_the_person_and_keeps_them_out(admin, sdr):
    lead = LeadFactory(email="ada@acme.com")
    response = admin.post(f"/api/leads/{lead.id}/erase/", {"reason": "ticket 42"}, format="json")
    assert response.status_code == 200
    assert response.json()["lead_id"] == lead.id
    assert not Lead.objects.filter(id=lead.id).exists()
    again = sdr.post("/api/leads/", {"email": "ada@acme.com"}, format="json")
    assert again.status_code == 400
    assert "suppression list" in again.json()["message"]


def test_erase_needs_a_reason_and_an_admin(admin, sdr):
    lead = LeadFactory()
    assert admin.post(f"/api/leads/{lead.id}/erase/", {}, format="json").status_code == 400
    assert (
        sdr.post(f"/api/leads/{lead.id}/erase/", {"reason": "x"}, format="json").status_code == 403
    )
    assert sdr.get(f"/api/leads/{lead.id}/export/").status_code == 403
    assert Lead.objects.filter(id=lead.id).exists()
