"""NetrowsProvider against the answers Netrows' guide shows, replayed with `responses`."""

import json

import pytest
import responses

from providers.base import (
    AuthError,
    Permanent,
    PersonQuery,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from providers.netrows.adapter import NetrowsProvider
from tests.providers.vendor_fixtures import replay

BASE = "https://api.netrows.invalid"
PROFILE = f"{BASE}/v1/people/profile"
KEY = "netrows-test-key-1a2b3c"
LINKEDIN = "https://www.linkedin.com/in/jane-doe"
JANE = PersonQuery(linkedin_url=LINKEDIN)


def provider() -> NetrowsProvider:
    return NetrowsProvider(BASE, api_key=KEY)


def test_profile_hit():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", PROFILE, "netrows", "profile_hit")
        answer = provider().person_enrich(JANE, idempotency_key="run-1")
        request = rsps.calls[0].request

    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(request.body) == {"linkedin_url": LINKEDIN}
    assert answer.is_hit
    assert answer.credits == 1
    assert answer.http_status == 200
    fields = {candidate.field: candidate for candidate in answer.candidates}
    assert {name: (c.value, c.confidence) for name, c in fields.items()} == {
        "job_title": ("VP of Sales", 0.8),
        "location": ("Austin, Texas, United States", 0.7),
        "company_name": ("Acme Analytics", 0.7),
        "employee_range": ("51-200", 0.6),
        "industry": ("Computer Software", 0.6),
    }
    assert all(c.source == "netrows" and c.verification == "" for c in answer.candidates)
    # Skills have no Leadsmith field: neither proposed nor kept.
    assert answer.raw == {
        "profile": {
            "job_title": "VP of Sales",
            "company_name": "Acme Analytics",
            "company_size": "51-200",
            "industry": "Computer Software",
            "location": "Austin, Texas, United States",
        },
        "credits": 1,
    }


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        (PersonQuery(email="jane@acme.com"), {"email": "jane@acme.com"}),
        (
            PersonQuery(email="jane@acme.com", linkedin_url=LINKEDIN, first_name="Jane"),
            {"linkedin_url": LINKEDIN, "email": "jane@acme.com"},
        ),
    ],
)
def test_sends_what_the_guide_sends(query, sent):
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", PROFILE, "netrows", "profile_hit")
        provider().person_enrich(query, idempotency_key="run-1")
        assert json.loads(rsps.calls[0].request.body) == sent


def test_neither_linkedin_url_nor_email_is_refused_before_any_request():
    query = PersonQuery(first_name="Jane", last_name="Doe", domain="acme.com")

    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent, match="LinkedIn URL or an email"):
            provider().person_enrich(query, idempotency_key="run-1")
        assert len(rsps.calls) == 0


def test_not_found_is_a_miss():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", PROFILE, "netrows", "profile_not_found")
        answer = provider().person_enrich(JANE, idempotency_key="run-1")

    assert not answer.is_hit
    assert answer.http_status == 404
    # Netrows bills each call and nothing says a 404 is free: counted, not assumed away.
    assert answer.credits == 1
    assert answer.raw == {"error": "Profile not found"}


def test_not_found_with_any_body_is_a_miss():
    with responses.RequestsMock() as rsps:
        rsps.post(PROFILE, status=404, body="Not Found", content_type="text/plain")
        answer = provider().person_enrich(JANE, idempotency_key="run-1")

    assert not answer.is_hit
    assert answer.raw == {}


def test_rate_limited_waits_as_retry_after_says():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", PROFILE, "netrows", "profile_rate_limited")
        with pytest.raises(RateLimited) as caught:
            provider().person_enrich(JANE, idempotency_key="run-1")

    assert caught.value.retry_after == 20
    assert caught.value.http_status == 429
    assert caught.value.retryable


def test_rate_limited_without_retry_after_waits_a_minute():
    with responses.RequestsMock() as rsps:
        rsps.post(PROFILE, status=429, json={"error": "Rate limit exceeded"})
        with pytest.raises(RateLimited) as caught:
            provider().person_enrich(JANE, idempotency_key="run-1")

    assert caught.value.retry_after == 60


def test_server_error_is_transient():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", PROFILE, "netrows", "profile_server_error")
        with pytest.raises(Transient) as caught:
            provider().person_enrich(JANE, idempotency_key="run-1")

    assert caught.value.http_status == 503
    assert caught.value.retryable


# The guide shows no answer for these; each is read as HTTP defines the status.
@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthError), (403, AuthError), (402, QuotaExhausted), (400, Permanent)],
)
def test_other_statuses(status, error):
    with responses.RequestsMock() as rsps:
        rsps.post(PROFILE, status=status, json={"error": "no"})
        with pytest.raises(error) as caught:
            provider().person_enrich(JANE, idempotency_key="run-1")

    assert type(caught.value) is error
    assert caught.value.http_status == status
    assert not caught.value.retryable
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("fixture", ["profile_rate_limited", "profile_server_error"])
def test_key_never_in_an_error_message(fixture):
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", PROFILE, "netrows", fixture)
        with pytest.raises(ProviderError) as caught:
            provider().person_enrich(JANE, idempotency_key="run-1")

    assert KEY not in str(caught.value)


def test_200_that_is_not_an_object_is_permanent():
    with responses.RequestsMock() as rsps:
        rsps.post(PROFILE, json=[{"job_title": "VP of Sales"}])
        with pytest.raises(Permanent) as caught:
            provider().person_enrich(JANE, idempotency_key="run-1")

    assert caught.value.http_status == 200


def test_key_comes_from_settings(settings):
    settings.NETROWS_API_KEY = "from-settings"

    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", PROFILE, "netrows", "profile_not_found")
        NetrowsProvider(BASE).person_enrich(JANE, idempotency_key="run-1")
        assert rsps.calls[0].request.headers["Authorization"] == "Bearer from-settings"


def test_capabilities():
    netrows = provider()

    assert netrows.name == "netrows"
    assert netrows.operations == {"person_enrich"}
    assert netrows.person_bulk_size == 1
    assert netrows.fields == {
        "job_title",
        "location",
        "company_name",
        "employee_range",
        "industry",
    }
