"""Several runs executed together (runs_execute_batch): bulk requests, same outcomes."""

import pytest
import responses

from enrichment.models import EnrichmentRun, Observation
from enrichment.services import run_execute, runs_create, runs_execute_batch
from leads.models import Lead
from providers.base import PersonQuery
from providers.models import ProviderCall
from providers.sandbox.adapter import SandboxProvider
from providers.sandbox.server import (
    COMPANY_BULK_PATH,
    COMPANY_PATH,
    PERSON_BULK_PATH,
    PERSON_PATH,
)
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


def _leads(count, prefix):
    return [
        LeadFactory(
            first_name=f"ann{i}",
            last_name="lee",
            company=CompanyFactory(domain=f"{prefix}{i}.com"),
        )
        for i in range(count)
    ]


def _runs(leads, **kwargs):
    return runs_create(
        lead_ids=[lead.id for lead in leads], trigger="bulk", enqueue=False, **kwargs
    )


def test_person_lookups_of_a_batch_go_out_in_one_bulk_request(sandbox):
    runs = _runs(_leads(12, "bulkco"), fields=["job_title", "email"])
    sandbox.requests.clear()
    sandbox.billed.clear()

    finished = runs_execute_batch(run_ids=[run.id for run in runs])

    assert sorted(run.id for run in finished) == sorted(run.id for run in runs)
    assert {run.state for run in finished} <= {"done", "not_found"}
    assert sandbox.requests[PERSON_BULK_PATH] == 1
    assert sandbox.requests[PERSON_PATH] == 0
    # The ledger cannot tell a bulk answer from a single one: one row per lead, credits
    # on the rows that paid, and the vendor billed each person once.
    calls = ProviderCall.objects.filter(operation="person_enrich")
    assert calls.count() == 12
    assert sum(call.credits for call in calls) == sum(sandbox.billed.values())
    assert max(sandbox.billed.values()) == 1
    # Each lead got its own person's answer, not a neighbour's from the same request.
    provider = SandboxProvider(sandbox.url)
    titles = Observation.objects.filter(source="sandbox", field="job_title")
    assert titles.count() > 0
    for observation in titles.select_related("lead__company"):
        lead = observation.lead
        alone = provider.person_enrich(
            PersonQuery(first_name=lead.first_name, last_name="lee", domain=lead.company.domain),
            idempotency_key=f"check-{lead.id}",
        )
        assert observation.value in [c.value for c in alone.candidates if c.field == "job_title"]


def test_a_batch_reaches_the_same_values_as_runs_executed_one_by_one(sandbox):
    alone = _leads(8, "same")
    for run in _runs(alone):
        run_execute(run_id=run.id)
    expected = {
        lead.company.domain: (lead.email, lead.job_title, lead.phone, lead.enrichment_status)
        for lead in Lead.objects.filter(id__in=[lead.id for lead in alone])
    }
    # The same people again as new leads at the same companies: the cache answers the batch.
    Lead.objects.filter(id__in=[lead.id for lead in alone]).delete()
    twins = [
        LeadFactory(first_name=f"ann{i}", last_name="lee", company=lead.company)
        for i, lead in enumerate(alone)
    ]
    sandbox.requests.clear()
    runs_execute_batch(run_ids=[run.id for run in _runs(twins)])

    assert sum(sandbox.requests.values()) == 0, "answers already bought were bought again"
    got = {
        lead.company.domain: (lead.email, lead.job_title, lead.phone, lead.enrichment_status)
        for lead in Lead.objects.filter(id__in=[lead.id for lead in twins])
    }
    assert got == expected


def test_duplicates_in_one_batch_are_bought_once(sandbox):
    company = CompanyFactory(domain="twins.com")
    url = "https://www.linkedin.com/in/ann-lee-twin"
    first = LeadFactory(first_name="Ann", last_name="Lee", company=company, linkedin_url=url)
    second = LeadFactory(first_name="Ann", last_name="Lee", company=company, linkedin_url=url)
    runs = _runs([first, second], fields=["job_title"])
    sandbox.requests.clear()
    sandbox.billed.clear()

    runs_execute_batch(run_ids=[run.id for run in runs])

    outcomes = sorted(
        ProviderCall.objects.filter(operation="person_enrich").values_list("outcome", flat=True)
    )
    assert outcomes in (["cached", "hit"], ["cached", "miss"])
    assert max(sandbox.billed.values(), default=1) == 1
    assert sandbox.requests[PERSON_PATH] + sandbox.requests[PERSON_BULK_PATH] == 1


def test_a_failed_bulk_request_is_each_runs_error_and_nobody_pays(sandbox):
    runs = _runs(_leads(5, "failco"), fields=["job_title"])
    sandbox.error_rate = 1.0
    try:
        finished = runs_execute_batch(run_ids=[run.id for run in runs])
    finally:
        sandbox.error_rate = 0.0

    # 503 is transient: each run goes back to the queue for a later attempt.
    assert {run.state for run in finished} == {"queued"}
    assert {run.last_error for run in finished} == {
        "sandbox answered 503: sandbox injected failure"
    }
    calls = ProviderCall.objects.filter(operation="person_enrich")
    assert calls.count() == 5
    assert set(calls.values_list("outcome", flat=True)) == {"error"}
    assert sum(call.credits for call in calls) == 0


def test_a_run_claimed_elsewhere_is_left_alone(sandbox):
    runs = _runs(_leads(3, "claimed"), fields=["job_title"])
    EnrichmentRun.objects.filter(id=runs[0].id).update(state="running")

    finished = runs_execute_batch(run_ids=[run.id for run in runs])

    assert sorted(run.id for run in finished) == sorted(run.id for run in runs[1:])
    assert EnrichmentRun.objects.get(id=runs[0].id).state == "running"


PDL_BULK = "https://api.peopledatalabs.com/v5/person/bulk"


@responses.activate
def test_pdl_answers_a_batch_through_its_bulk_endpoint(settings):
    settings.SANDBOX_BASE_URL = ""
    settings.PDL_API_KEY = "test-key"
    leads = _leads(3, "pdlco")
    hit = {
        "status": 200,
        "likelihood": 9,
        "data": {"full_name": "ann lee", "job_title": "vp of sales", "work_email": None},
    }
    miss = {"status": 404, "error": {"type": "not_found", "message": "No records were found"}}
    responses.add(responses.POST, PDL_BULK, json=[hit, miss, hit], status=200)

    finished = runs_execute_batch(run_ids=[run.id for run in _runs(leads, fields=["job_title"])])

    assert len(responses.calls) == 1
    by_lead = {run.lead_id: run.state for run in finished}
    assert [by_lead[lead.id] for lead in leads] == ["done", "not_found", "done"]
    titles = dict(
        Lead.objects.filter(id__in=[lead.id for lead in leads]).values_list("id", "job_title")
    )
    assert titles[leads[0].id] and not titles[leads[1].id]
    assert ProviderCall.objects.filter(provider="pdl", outcome="hit").count() == 2
    assert ProviderCall.objects.filter(provider="pdl", outcome="miss", credits=0).count() == 1


def test_company_lookups_go_out_in_one_bulk_request_billed_per_company(sandbox):
    runs = _runs(_leads(4, "coonly"), fields=["industry"])
    sandbox.requests.clear()
    sandbox.billed.clear()
    finished = runs_execute_batch(run_ids=[run.id for run in runs])
    assert sandbox.requests[COMPANY_BULK_PATH] == 1
    assert sandbox.requests[COMPANY_PATH] == sandbox.requests[PERSON_BULK_PATH] == 0
    # Each company is billed as if asked alone, once, and its row in the ledger says so.
    assert sorted(sandbox.billed.values()) == [1, 1, 1, 1]
    rows = ProviderCall.objects.filter(operation="company_enrich")
    assert sorted(rows.values_list("outcome", flat=True)) == ["hit"] * 4
    assert sum(row.credits for row in rows) == 4
    assert {run.state for run in finished} <= {"done", "not_found"} and len(finished) == 4


def test_a_batch_run_again_writes_no_second_copy_of_what_waits_or_was_set_aside(sandbox):
    leads = _leads(12, "again")
    runs_execute_batch(run_ids=[run.id for run in _runs(leads)])
    held = ["pending_review", "discarded"]
    first = Observation.objects.filter(state__in=held).count()
    assert first > 0, "nothing to review or discard: the test would prove nothing"
    sandbox.requests.clear()

    again = runs_execute_batch(run_ids=[run.id for run in _runs(leads)])

    assert sum(sandbox.requests.values()) == 0, "the rerun was answered from the cache"
    assert Observation.objects.filter(state__in=held).count() == first
    # The rerun still reports what waits for a reviewer.
    assert sum(run.summary.get("pending_review", 0) for run in again) == (
        Observation.objects.filter(state="pending_review").count()
    )
