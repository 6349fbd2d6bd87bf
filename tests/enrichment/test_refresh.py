"""Scheduled refresh (enrichment/refresh.py): the clock moves, exactly the expired and
unlocked fields are bought again through the real sandbox, and nothing else."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from enrichment import tasks
from enrichment.fields import FIELDS
from enrichment.models import EnrichmentJob, EnrichmentRun, Observation
from enrichment.refresh import expired_value_chunks, leads_stale, refresh_job_create
from enrichment.services import run_execute
from providers.models import ProviderCall
from providers.sandbox.server import company_enrich, person_enrich
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def _confident(record: dict, field: str, at_least: float) -> bool:
    return field in record and record[field]["confidence"] >= at_least


def _well_known_person() -> tuple[str, str]:
    """Return an email and a company domain the sandbox answers with confident values for
    a 90-day person field (phone, location), a 180-day one (LinkedIn URL), and the
    company's 90-day headcount and 180-day name; deterministic, so always the same."""
    person = company = None
    for i in range(5000):
        email = f"pat.doe{i}@refresh-test.io"
        status, body = person_enrich(json.dumps({"email": email}).encode())
        if status == 200 and all(
            _confident(body["person"], field, at_least)
            for field, at_least in [
                ("email", 0.60),
                ("phone", 0.85),
                ("location", 0.70),
                ("linkedin_url", 0.80),
            ]
        ):
            person = email
            break
    for i in range(5000):
        domain = f"refresh-co{i}.com"
        status, body = company_enrich(json.dumps({"domain": domain}).encode())
        if status == 200 and all(
            _confident(body["company"], field, at_least)
            for field, at_least in [("employee_range", 0.70), ("company_name", 0.75)]
        ):
            company = domain
            break
    assert person and company
    return person, company


def _applied_provider_fields(lead) -> set[str]:
    """The lead's and its company's fields whose current value came from a provider or
    a free check (not a person)."""
    observations = Observation.objects.filter(state="applied").exclude(source="manual")
    return set(observations.filter(lead=lead).values_list("field", flat=True)) | set(
        observations.filter(company=lead.company).values_list("field", flat=True)
    )


def _refresh_runs():
    return EnrichmentRun.objects.filter(trigger=EnrichmentRun.Trigger.REFRESH)


@pytest.fixture
def enriched_lead(sandbox, enrich_now):
    """A lead enriched now through the sandbox, with its job title locked by hand (a manual
    value whose own expiry passes with the others: locked all the same)."""
    email, domain = _well_known_person()
    lead = LeadFactory(
        email=email, first_name="Pat", last_name="Doe", company=CompanyFactory(domain=domain)
    )
    (run,) = enrich_now(lead)
    assert run.state == "done"
    Observation.objects.create(
        lead=lead,
        field="job_title",
        value="Head of Testing",
        source="manual",
        state="applied",
        expires_at=timezone.now() + 90 * DAY,
    )
    lead.job_title = "Head of Testing"
    lead.save()
    return lead


def test_past_90_days_it_buys_again_exactly_the_expired_unlocked_fields(enriched_lead, enrich_now):
    lead = enriched_lead
    applied = _applied_provider_fields(lead)
    # The identity was picked so that every kind of field is there to be told apart.
    assert {"email", "phone", "location", "linkedin_url", "employee_range", "company_name"} <= (
        applied
    )
    expected = {f for f in applied if FIELDS[f].fresh_for_days <= 91} - {"job_title"}
    assert {"email", "phone", "location", "employee_range"} <= expected
    assert not expected & {"linkedin_url", "company_name", "job_title"}

    with time_machine.travel(timezone.now() + 75 * DAY):
        # Enriched 16 days before the check: every field of this one is still fresh.
        fresh = LeadFactory(email="sam.fresh@freshco.io", first_name="Sam", last_name="Fresh")
        enrich_now(fresh)
        calls_before = set(ProviderCall.objects.values_list("id", flat=True))

    with time_machine.travel(timezone.now() + 91 * DAY):
        moved_to = timezone.now()
        tasks.refresh_stale()

        (run,) = _refresh_runs()
        assert run.lead_id == lead.id
        assert set(run.fields) == expected
        assert run.job.kind == EnrichmentJob.Kind.REFRESH
        assert run_execute(run_id=run.id).state == "done"

        bought = ProviderCall.objects.exclude(id__in=calls_before)
        assert sorted(bought.values_list("operation", "outcome")) == [
            ("company_enrich", "hit"),
            ("person_enrich", "hit"),
        ]
        assert all(call.credits > 0 for call in bought)
        new = Observation.objects.filter(observed_at__gte=moved_to)
        assert set(new.values_list("field", flat=True)) == expected
        assert set(new.filter(company=lead.company).values_list("field", flat=True)) == {
            f for f in expected if FIELDS[f].entity == "company"
        }
        lead.refresh_from_db()
        assert lead.job_title == "Head of Testing"
        # The renewed values are fresh again; a second tick finds nothing to do.
        tasks.refresh_stale()
        assert _refresh_runs().count() == 1


def test_past_30_days_only_the_email_verification_is_bought_again(enriched_lead):
    lead = enriched_lead
    calls_before = set(ProviderCall.objects.values_list("id", flat=True))
    with time_machine.travel(timezone.now() + 31 * DAY):
        moved_to = timezone.now()
        tasks.refresh_stale()
        (run,) = _refresh_runs()
        assert run.fields == ["email"]
        run_execute(run_id=run.id)

        bought = ProviderCall.objects.exclude(id__in=calls_before)
        assert list(bought.values_list("operation", "outcome")) == [("person_enrich", "hit")]
        new = Observation.objects.filter(observed_at__gte=moved_to)
        assert set(new.values_list("field", flat=True)) == {"email"}
        email = new.filter(state="applied", source="sandbox").get()
        assert email.verification
        assert email.expires_at == email.observed_at + 30 * DAY
        lead.refresh_from_db()
        assert lead.email_verification == email.verification


def test_a_field_no_provider_renews_is_asked_again_only_after_the_retry_period(settings):
    settings.SANDBOX_BASE_URL = ""
    settings.ENRICHMENT_REFRESH_RETRY_DAYS = 30
    lead = LeadFactory(email="kim.gone@oldco.io")
    Observation.objects.create(
        lead=lead,
        field="phone",
        value="+14155550100",
        confidence=0.9,
        source="sandbox",
        state="applied",
        observed_at=timezone.now() - 100 * DAY,
        expires_at=timezone.now() - 10 * DAY,
    )
    job = refresh_job_create()
    (run,) = job.runs.all()
    assert run.fields == ["phone"]
    run_execute(run_id=run.id)
    # No provider could say anything: the value stays, expired, and is not asked again
    # at every tick.
    assert refresh_job_create() is None
    with time_machine.travel(timezone.now() + 31 * DAY):
        assert list(leads_stale(now=timezone.now())) == [lead.id]


def test_locked_superseded_and_fresh_values_are_never_selected():
    now = timezone.now()
    lead = LeadFactory()

    def observe(field, value, state, expires_at, observed_at=now - 100 * DAY):
        Observation.objects.create(
            lead=lead,
            field=field,
            value=value,
            confidence=0.9,
            source="sandbox",
            state=state,
            observed_at=observed_at,
            expires_at=expires_at,
        )

    # Approved by a reviewer: a lock, whatever its age.
    observe("phone", "+14155550100", "approved", now - DAY)
    # An old value that a newer one replaced as current.
    observe("location", "Old", "applied", now - DAY)
    observe("location", "New", "applied", now + 90 * DAY, observed_at=now)
    # Waiting for review: not a current value.
    observe("seniority", "vp", "pending_review", now - DAY)
    assert list(expired_value_chunks(now=now)) == []
    assert refresh_job_create() is None
    # The control: the same lead with one value that did expire is selected.
    observe("department", "Sales", "applied", now - DAY)
    assert leads_stale(now=now) == {lead.id: ["department"]}


def test_the_pace_is_bounded_by_the_runs_still_waiting():
    now = timezone.now()
    leads = [LeadFactory() for _ in range(5)]
    for lead in leads:
        Observation.objects.create(
            lead=lead,
            field="department",
            value="Sales",
            confidence=0.9,
            source="sandbox",
            state="applied",
            observed_at=now - 100 * DAY,
            expires_at=now - DAY - timedelta(minutes=lead.id),
        )
    first = refresh_job_create(max_queued=2)
    assert first.total == 2
    # The oldest expiry first.
    assert set(first.runs.values_list("lead_id", flat=True)) == {leads[-1].id, leads[-2].id}
    assert refresh_job_create(max_queued=2) is None
    EnrichmentRun.objects.filter(job=first).update(state="done")
    second = refresh_job_create(max_queued=2)
    assert second.total == 2
    third = refresh_job_create(max_queued=10)
    assert third.total == 1
    assert _refresh_runs().count() == 5


def test_chunks_walk_every_expired_value_once_in_expiry_order():
    now = timezone.now()
    leads = [LeadFactory() for _ in range(7)]
    for index, lead in enumerate(leads):
        Observation.objects.create(
            lead=lead,
            field="location",
            value="Somewhere",
            confidence=0.9,
            source="sandbox",
            state="applied",
            observed_at=now - 100 * DAY,
            # Four share one expiry: the id breaks the tie across a chunk boundary.
            expires_at=now - DAY * (1 + min(index, 3)),
        )
    chunks = list(expired_value_chunks(now=now, chunk_size=3))
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    values = [value for chunk in chunks for value in chunk]
    assert len({value.id for value in values}) == 7
    assert [(v.expires_at, v.id) for v in values] == sorted((v.expires_at, v.id) for v in values)
    assert len(leads_stale(now=now, limit=4, chunk_size=3)) == 4
