"""The waterfall across real adapters: Hunter replayed from its documented answers, the
sandbox over real HTTP."""

import pytest
import responses

from enrichment.models import WaterfallStep
from enrichment.waterfall import field_orders, next_provider
from leads.models import Suppression
from providers.models import ProviderCall, ProviderConfig
from providers.rate_limit import rate_limiter
from providers.registry import enabled_providers
from tests.factories import CompanyFactory, LeadFactory
from tests.providers.vendor_fixtures import replay

pytestmark = pytest.mark.django_db

HUNTER = "https://api.hunter.io/v2"


@pytest.fixture
def hunter(settings):
    settings.HUNTER_API_KEY = "test-hunter-key"
    settings.HUNTER_BASE_URL = HUNTER
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        if settings.SANDBOX_BASE_URL:
            rsps.add_passthru(settings.SANDBOX_BASE_URL)
        yield rsps


def alexis():
    return LeadFactory(
        first_name="Alexis", last_name="Ohanian", company=CompanyFactory(domain="reddit.com")
    )


def test_each_field_follows_its_own_order(sandbox, hunter):
    WaterfallStep.objects.create(field="email", provider="hunter", position=0)
    WaterfallStep.objects.create(field="email", provider="sandbox", position=1)
    ProviderConfig.objects.create(provider="hunter", position=50)
    orders = field_orders(enabled_providers())
    assert [p.name for p in orders["email"]] == ["hunter", "sandbox"]
    # Fields without steps use the providers' positions: hunter (50) before sandbox (100).
    assert [p.name for p in orders["job_title"]] == ["hunter", "sandbox"]
    assert "sandbox" in [p.name for p in orders["seniority"]]
    assert "hunter" not in [p.name for p in orders["seniority"]]
    assert next_provider(["seniority"], orders, asked=set()).name == "sandbox"


def test_a_confident_first_provider_ends_the_waterfall_for_its_field(hunter, enrich_now):
    replay(hunter, "GET", f"{HUNTER}/email-finder", "hunter", "email_finder_hit")
    lead = alexis()
    (run,) = enrich_now(lead, fields=["email"])
    lead.refresh_from_db()
    assert run.state == "done"
    assert lead.email == "alexis@reddit.com"
    assert lead.email_verification == "valid"
    assert list(ProviderCall.objects.values_list("provider", "outcome")) == [("hunter", "hit")]


def test_an_opted_out_person_is_suppressed_and_never_sent_again(hunter, enrich_now):
    replay(hunter, "GET", f"{HUNTER}/email-finder", "hunter", "error_451_claimed_email")
    lead = alexis()
    (run,) = enrich_now(lead)
    assert run.state == "skipped"
    assert "suppressed" in run.summary["reason"]
    assert Suppression.objects.filter(kind="name").count() == 1
    (again,) = enrich_now(lead)
    assert again.state == "skipped"
    assert len(hunter.calls) == 1


def test_a_provider_out_of_quota_is_paused_and_the_next_one_is_asked(sandbox, hunter, enrich_now):
    replay(hunter, "GET", f"{HUNTER}/email-finder", "hunter", "error_429_usage_limit")
    ProviderConfig.objects.create(provider="hunter", position=0)
    (run,) = enrich_now(alexis(), fields=["email", "job_title"])
    calls = list(ProviderCall.objects.order_by("id").values_list("provider", "outcome"))
    assert calls[0] == ("hunter", "quota_exhausted")
    assert calls[1][0] == "sandbox"
    # Either the sandbox filled the fields, or the run waits for Hunter: never a failure
    # and never an attempt spent on a vendor's quota.
    assert run.state in {"done", "not_found", "queued"}
    if run.state == "queued":
        assert run.attempts == 0
    with pytest.raises(Exception, match="paused"):
        rate_limiter().try_acquire("hunter", per_minute=None, max_wait=1)
