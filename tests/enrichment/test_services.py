"""The pipeline (enrichment/services.py) end to end against the real sandbox over HTTP."""

from datetime import timedelta

import pytest
from django.utils import timezone

from enrichment.fields import FIELDS
from enrichment.models import EnrichmentJob, EnrichmentRun, Observation
from enrichment.services import run_claim, run_execute, run_retry, runs_create
from leads.models import Lead, Suppression
from leads.normalize import identity_hash
from providers.models import ProviderCall, ProviderConfig
from providers.rate_limit import rate_limiter
from providers.sandbox.server import start_in_thread
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_it_enriches_leads_with_provenance_expiry_and_applied_values(sandbox, enrich_now):
    leads = [LeadFactory(company=CompanyFactory(domain=f"acme{i}.com")) for i in range(25)]
    runs = enrich_now(*leads)

    assert {run.state for run in runs} <= {"done", "not_found"}
    assert any(run.state == "done" for run in runs)
    states = set(Observation.objects.values_list("state", flat=True))
    # The sandbox's confidences are spread so all three merge bands are exercised.
    assert {"applied", "pending_review", "discarded"} <= states
    for observation in Observation.objects.filter(source="sandbox"):
        assert observation.provider_call.provider == "sandbox"
        spec = FIELDS[observation.field]
        assert observation.expires_at - observation.observed_at == timedelta(
            days=spec.fresh_for_days
        )
    for lead in Lead.objects.filter(id__in=[lead.id for lead in leads]):
        assert lead.last_enriched_at is not None
        assert lead.enrichment_status in {"enriched", "not_found"}
        applied = {
            o.field: o.value
            for o in lead.observations.filter(state="applied").exclude(source="local")
        }
        for field, value in applied.items():
            assert getattr(lead, FIELDS[field].column) == value
        for pending in lead.observations.filter(state="pending_review"):
            if pending.field not in applied:
                assert getattr(lead, FIELDS[pending.field].column) in ("", None)


def test_find_email_applies_a_confident_address_with_its_verification(sandbox, enrich_now):
    leads = [LeadFactory(company=CompanyFactory(domain=f"findme{i}.io")) for i in range(20)]
    enrich_now(*leads, fields=["email"], trigger=EnrichmentRun.Trigger.FIND_EMAIL)

    found = Lead.objects.filter(id__in=[lead.id for lead in leads], email__isnull=False)
    assert found.exists()
    for lead in found:
        assert lead.email.endswith(f"@{lead.company.domain}")
        observation = lead.observations.get(field="email", state="applied")
        assert observation.confidence >= FIELDS["email"].accept_threshold
        assert lead.email_verification == observation.verification != ""


def test_a_manual_value_is_never_overwritten(sandbox, enrich_now):
    lead = LeadFactory(first_name="Ada", last_name="Byron", job_title="Chief Wizard")
    Observation.objects.create(
        lead=lead,
        field="job_title",
        value="Chief Wizard",
        source="manual",
        state="applied",
        expires_at=timezone.now() + timedelta(days=365),
    )
    enrich_now(lead)
    lead.refresh_from_db()
    assert lead.job_title == "Chief Wizard"
    assert not lead.observations.filter(
        field="job_title", source="sandbox", state__in=["applied", "pending_review"]
    ).exists()


def test_a_suppressed_lead_is_skipped_without_any_call(sandbox, enrich_now):
    lead = LeadFactory(email="gone@acme.com")
    Suppression.objects.create(
        kind="email", identifier_hash=identity_hash("gone@acme.com"), reason="erasure request"
    )
    (run,) = enrich_now(lead)
    assert run.state == "skipped"
    assert "suppressed" in run.summary["reason"]
    assert not ProviderCall.objects.exists()


def test_local_checks_annotate_the_email_for_free(enrich_now, settings):
    settings.SANDBOX_BASE_URL = ""
    lead = LeadFactory(email="info@mailinator.com", company=None)
    (run,) = enrich_now(lead, fields=["email"])
    lead.refresh_from_db()
    assert lead.email_verification == "disposable"
    assert lead.observations.get(source="local").confidence is None
    assert run.state == "not_found"
    assert not ProviderCall.objects.exists()


def test_fresh_fields_are_not_paid_for_again_and_the_company_once_per_domain(sandbox, enrich_now):
    company = CompanyFactory(domain="shared-co.com")
    first, second = LeadFactory(company=company), LeadFactory(company=company)
    enrich_now(first)
    enrich_now(second)
    paid = ProviderCall.objects.filter(operation="company_enrich").exclude(outcome="cached")
    assert paid.count() == 1
    (again,) = enrich_now(first)
    # Everything it learned is fresh; what is not (a miss) comes from the ledger's cache.
    assert again.state in {"skipped", "not_found", "done"}
    person_paid = ProviderCall.objects.filter(operation="person_enrich").exclude(outcome="cached")
    assert person_paid.count() == 2


def test_a_repeated_lookup_inside_its_ttl_is_served_from_the_cache(sandbox, enrich_now):
    lead = LeadFactory(company=CompanyFactory(domain="cachey.com"))
    enrich_now(lead)
    Observation.objects.filter(lead=lead).update(expires_at=timezone.now())
    Observation.objects.filter(company=lead.company).update(expires_at=timezone.now())
    enrich_now(lead)
    cached = ProviderCall.objects.filter(outcome="cached")
    assert cached.count() >= 1
    assert all(call.credits == 0 and call.cached_from_id for call in cached)


def test_values_served_from_the_cache_are_dated_when_they_were_bought(sandbox, enrich_now):
    lead = LeadFactory(company=CompanyFactory(domain="cachey.com"))
    enrich_now(lead)
    bought = timezone.now() - timedelta(days=20)
    ProviderCall.objects.update(created_at=bought)
    Observation.objects.update(expires_at=timezone.now())

    (again,) = enrich_now(lead)

    served = Observation.objects.filter(run=again, provider_call__outcome="cached")
    assert served.exists()
    for observation in served:
        assert observation.observed_at == bought
        fresh_for = timedelta(days=FIELDS[observation.field].fresh_for_days)
        assert observation.expires_at == bought + fresh_for
    # What the run's own paid calls said is dated now.
    paid = Observation.objects.filter(run=again).exclude(provider_call__outcome="cached")
    assert all(o.observed_at > bought + timedelta(days=19) for o in paid)


def test_a_run_is_claimed_once():
    lead = LeadFactory()
    (run,) = runs_create(lead_ids=[lead.id], trigger="manual", enqueue=False)
    assert run_claim(run_id=run.id) is not None
    assert run_claim(run_id=run.id) is None
    assert EnrichmentRun.objects.get(id=run.id).attempts == 1


def test_a_second_run_is_not_created_while_one_is_in_flight():
    lead = LeadFactory()
    assert len(runs_create(lead_ids=[lead.id], trigger="manual", enqueue=False)) == 1
    assert runs_create(lead_ids=[lead.id], trigger="manual", enqueue=False) == []


def test_a_transient_error_queues_the_run_again_then_kills_it_at_the_cap(settings, enrich_now):
    failing = start_in_thread(error_rate=1.0)
    settings.SANDBOX_BASE_URL = failing.url
    settings.ENRICHMENT_MAX_ATTEMPTS = 2
    try:
        lead = LeadFactory()
        (run,) = enrich_now(lead)
        assert run.state == "queued"
        assert run.available_at > timezone.now()
        assert "503" in run.last_error
        EnrichmentRun.objects.filter(id=run.id).update(available_at=timezone.now())
        run = run_execute(run_id=run.id)
        assert run.state == "dead"
        assert "gave up after 2 attempts" in run.last_error
        lead.refresh_from_db()
        assert lead.enrichment_status == "failed"
        assert ProviderCall.objects.filter(outcome="error").count() == 2
    finally:
        failing.stop()


def test_a_rate_limited_run_waits_for_retry_after(settings, enrich_now):
    limited = start_in_thread(rate_limit_per_min=1)
    settings.SANDBOX_BASE_URL = limited.url
    try:
        first, second = (
            LeadFactory(company=None, email="a@one.com"),
            LeadFactory(company=None, email="b@two.com"),
        )
        enrich_now(first, fields=["job_title"])
        (run,) = enrich_now(second, fields=["job_title"])
        assert run.state == "queued"
        assert run.available_at > timezone.now() + timedelta(seconds=0.5)
        assert ProviderCall.objects.filter(outcome="rate_limited").count() == 1
    finally:
        limited.stop()


def test_job_counters_follow_the_runs(sandbox, enrich_now):
    leads = [LeadFactory() for _ in range(3)]
    runs = enrich_now(*leads)
    job = EnrichmentJob.objects.get()
    assert job.total == job.done == 3
    assert job.enriched + job.not_found + job.skipped + job.failed == 3
    assert job.finished_at is not None
    assert all(run.job_id == job.id for run in runs)


def test_a_lead_skipped_for_fresh_data_stays_enriched(sandbox, enrich_now):
    lead = LeadFactory(company=CompanyFactory(domain="fresh-co.com"))
    enrich_now(lead)
    for field in FIELDS:
        if FIELDS[field].entity == "lead":
            Observation.objects.get_or_create(
                lead=lead,
                field=field,
                source="manual",
                state="applied",
                defaults={"value": "x", "expires_at": timezone.now() + timedelta(days=30)},
            )
    (run,) = enrich_now(lead, fields=["job_title", "phone"])
    assert run.state == "skipped"
    assert "fresh" in run.summary["reason"]
    lead.refresh_from_db()
    assert lead.enrichment_status == "enriched"


def test_a_dead_run_can_be_retried_from_the_start(settings, enrich_now):
    failing = start_in_thread(error_rate=1.0)
    settings.SANDBOX_BASE_URL = failing.url
    settings.ENRICHMENT_MAX_ATTEMPTS = 1
    try:
        (run,) = enrich_now(LeadFactory())
        assert run.state == "dead"
        retried = run_retry(run_id=run.id)
        assert (retried.state, retried.attempts) == ("queued", 0)
        with pytest.raises(ValueError, match="not dead or failed"):
            run_retry(run_id=run.id)
    finally:
        failing.stop()


def test_a_run_waits_for_the_budget_without_spending_an_attempt(sandbox, enrich_now):
    ProviderConfig.objects.create(provider="sandbox", daily_credit_budget=0)
    (run,) = enrich_now(LeadFactory(company=None, email="budget@acme.com"), fields=["job_title"])
    assert (run.state, run.attempts) == ("queued", 0)
    assert "budget" in run.last_error
    assert run.available_at > timezone.now() + timedelta(minutes=1)
    assert not ProviderCall.objects.exclude(outcome="quota_exhausted").exists()

    # Saved as the admin saves it: the workers hold provider settings until they change.
    config = ProviderConfig.objects.get(provider="sandbox")
    config.daily_credit_budget = 10
    config.save()
    EnrichmentRun.objects.filter(id=run.id).update(available_at=timezone.now())
    run = run_execute(run_id=run.id)
    assert run.state in {"done", "not_found"}
    assert run.attempts == 1


def test_a_paused_provider_holds_the_run_back_for_every_worker(sandbox, enrich_now):
    rate_limiter().pause("sandbox", seconds=120)
    (run,) = enrich_now(LeadFactory(company=None, email="paused@acme.com"), fields=["job_title"])
    assert (run.state, run.attempts) == ("queued", 0)
    assert run.available_at > timezone.now() + timedelta(seconds=100)
    assert not ProviderCall.objects.exists()


def test_a_disabled_provider_is_not_asked(sandbox, enrich_now):
    ProviderConfig.objects.create(provider="sandbox", enabled=False)
    (run,) = enrich_now(LeadFactory(company=None, email="off@acme.com"), fields=["job_title"])
    assert run.state == "not_found"
    assert not ProviderCall.objects.exists()
