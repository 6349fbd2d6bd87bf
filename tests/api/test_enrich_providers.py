"""POST /api/leads/{id}/enrich/ with `providers`: the run asks only those providers.

Hunter is replayed from its documented v2 answers; the sandbox is a real HTTP server, let
through the mock, so a request the run should not make would really reach it and count.
"""

import pytest
import responses

from enrichment.models import EnrichmentRun
from enrichment.services import run_execute
from providers.models import ProviderCall, ProviderConfig
from providers.registry import PROVIDER_NAMES
from tests.factories import CompanyFactory, LeadFactory
from tests.providers.vendor_fixtures import replay

pytestmark = pytest.mark.django_db

HUNTER = "https://api.hunter.io/v2"


@pytest.fixture
def hunter(settings, sandbox):
    """Sandbox and Hunter both enabled; Hunter's HTTP replayed, the sandbox's let through."""
    settings.HUNTER_API_KEY = "test-hunter-key"
    settings.HUNTER_BASE_URL = HUNTER
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(sandbox.url)
        replay(rsps, "GET", f"{HUNTER}/email-finder", "hunter", "email_finder_hit")
        replay(rsps, "GET", f"{HUNTER}/email-verifier", "hunter", "email_verifier_valid")
        replay(rsps, "GET", f"{HUNTER}/domain-search", "hunter", "domain_search_no_emails")
        yield rsps


def _alexis():
    return LeadFactory(
        first_name="Alexis", last_name="Ohanian", company=CompanyFactory(domain="reddit.com")
    )


def _sandbox_requests(sandbox) -> int:
    return sum(sandbox.requests.values())


def _enrich(client, lead, body):
    response = client.post(f"/api/leads/{lead.id}/enrich/", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def test_a_run_limited_to_hunter_asks_only_hunter(sdr, sandbox, hunter):
    lead = _alexis()
    before = _sandbox_requests(sandbox)
    body = _enrich(sdr, lead, {"providers": ["hunter"]})
    assert body["providers"] == ["hunter"]
    assert EnrichmentRun.objects.get(id=body["id"]).providers == ["hunter"]

    run = run_execute(run_id=body["id"])

    assert run.state == "done"
    assert _sandbox_requests(sandbox) == before
    assert len(hunter.calls) >= 1
    assert set(ProviderCall.objects.values_list("provider", flat=True)) == {"hunter"}
    lead.refresh_from_db()
    assert lead.email == "alexis@reddit.com"
    assert sdr.get(f"/api/runs/{run.id}/").json()["providers"] == ["hunter"]


def test_without_providers_the_same_run_also_asks_the_sandbox(sdr, sandbox, hunter):
    # The contrast that gives the test above its meaning: the sandbox has fields to offer
    # (seniority, department, location) that Hunter cannot fill.
    lead = _alexis()
    before = _sandbox_requests(sandbox)
    body = _enrich(sdr, lead, {})
    assert body["providers"] == []
    run_execute(run_id=body["id"])
    assert _sandbox_requests(sandbox) > before
    assert set(ProviderCall.objects.values_list("provider", flat=True)) == {"hunter", "sandbox"}


def test_an_unknown_provider_is_a_400_naming_the_known_ones(sdr, sandbox):
    lead = _alexis()
    response = sdr.post(f"/api/leads/{lead.id}/enrich/", {"providers": ["clearbit"]}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert '"clearbit" is not a provider' in body["message"]
    for name in PROVIDER_NAMES:
        assert name in body["message"]
    assert not EnrichmentRun.objects.exists()


def test_a_known_provider_that_is_not_enabled_is_a_400_naming_the_enabled_ones(
    sdr, sandbox, settings
):
    settings.HUNTER_API_KEY = ""
    lead = _alexis()
    response = sdr.post(
        f"/api/leads/{lead.id}/enrich/", {"providers": ["sandbox", "hunter"]}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {"providers": ["hunter is not enabled here; enabled: sandbox."]}
    assert not EnrichmentRun.objects.exists()


def test_a_provider_switched_off_in_the_admin_is_not_enabled(sdr, sandbox):
    ProviderConfig.objects.create(provider="sandbox", enabled=False)
    lead = _alexis()
    response = sdr.post(f"/api/leads/{lead.id}/enrich/", {"providers": ["sandbox"]}, format="json")
    assert response.status_code == 400
    assert "sandbox is not enabled here; enabled: none." in response.json()["message"]


def test_providers_must_be_a_list_of_names(sdr, sandbox):
    lead = _alexis()
    for bad in ("sandbox", [None], [["sandbox"]]):
        response = sdr.post(f"/api/leads/{lead.id}/enrich/", {"providers": bad}, format="json")
        assert response.status_code == 400, bad
        assert response.json()["code"] == "invalid"
    assert not EnrichmentRun.objects.exists()
