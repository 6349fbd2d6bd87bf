"""PDL's opt-out list (its Subject Request API) suppresses the people it names."""

import pytest
import responses

from enrichment.opt_outs import PDL_REASON, pdl_opt_outs_apply
from enrichment.services import run_execute, runs_create
from enrichment.tasks import pdl_opt_outs_sync
from leads.models import Lead
from providers.models import ProviderCall
from providers.pdl.adapter import PdlProvider
from tests.factories import CompanyFactory, LeadFactory
from tests.providers.vendor_fixtures import load, replay

pytestmark = pytest.mark.django_db

PDL = "https://api.peopledatalabs.com/v5"
# The documented answer is text: a `pdl_id` header line, then one id a line.
# https://docs.peopledatalabs.com/docs/subject-request-api ("Response Format")
SUBJECT_REQUESTS = "pdl_id\n{ids}\n"


@pytest.fixture
def pdl_on(settings):
    settings.SANDBOX_BASE_URL = ""
    settings.PDL_API_KEY = "test-key"
    settings.PDL_BASE_URL = PDL


def _enriched_by_pdl():
    """A lead whose values came from PDL's documented person answer, and that answer's id."""
    lead = LeadFactory(
        first_name="Sean", last_name="Thorne", company=CompanyFactory(domain="pdl.com")
    )
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", f"{PDL}/person/enrich", "pdl", "person_enrich_hit")
        [run] = runs_create(
            lead_ids=[lead.id], trigger="manual", fields=["job_title"], enqueue=False
        )
        assert run_execute(run_id=run.id).state == "done"
    return lead, load("pdl", "person_enrich_hit")["body"]["data"]["id"]


def test_the_adapter_streams_the_opted_out_ids_without_the_header(pdl_on):
    with responses.RequestsMock() as rsps:
        rsps.add(
            "GET",
            f"{PDL}/person/subjectrequest",
            body=SUBJECT_REQUESTS.format(ids="aaa_0000\nbbb_0000"),
            content_type="text/plain",
        )
        ids = list(PdlProvider(PDL).opted_out_ids())
        assert rsps.calls[0].request.headers["X-Api-Key"] == "test-key"
    assert ids == ["aaa_0000", "bbb_0000"]


def test_a_refused_key_is_an_error_not_an_empty_list(pdl_on):
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", f"{PDL}/person/subjectrequest", "pdl", "error_401")
        with pytest.raises(Exception, match="pdl answered 401"):
            list(PdlProvider(PDL).opted_out_ids())


def test_a_person_pdl_lists_is_suppressed_and_never_asked_about_again(pdl_on):
    lead, pdl_id = _enriched_by_pdl()
    bystander = LeadFactory(first_name="Ann", last_name="Lee")

    with responses.RequestsMock() as rsps:
        rsps.add(
            "GET",
            f"{PDL}/person/subjectrequest",
            body=SUBJECT_REQUESTS.format(ids=f"someone_else_0000\n{pdl_id}"),
            content_type="text/plain",
        )
        pdl_opt_outs_sync()

    calls_before = ProviderCall.objects.count()
    [run] = runs_create(lead_ids=[lead.id], trigger="manual", enqueue=False)
    run = run_execute(run_id=run.id)
    assert run.state == "skipped"
    assert run.summary["reason"] == f"suppressed: {PDL_REASON}"
    assert ProviderCall.objects.count() == calls_before
    assert pdl_opt_outs_apply(pdl_ids=["unknown_0000"]) == 0
    assert Lead.objects.get(id=bystander.id).enrichment_status != "skipped"
