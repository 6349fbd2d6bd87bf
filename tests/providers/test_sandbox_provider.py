"""SandboxProvider against the real sandbox over HTTP, and against replayed answers."""

import socket

import pytest
import responses

from providers.base import (
    AuthError,
    Permanent,
    PersonQuery,
    RateLimited,
    Transient,
)
from providers.registry import enabled_providers
from providers.sandbox.adapter import COMPANY_FIELDS, PERSON_FIELDS, SandboxProvider
from providers.sandbox.server import COMPANY_PATH, PERSON_PATH

VENDOR = "http://sandbox.invalid"


def known_person(provider: SandboxProvider) -> PersonQuery:
    for i in range(50):
        query = PersonQuery(first_name="Ada", last_name=f"Lovelace{i}", domain="acme.com")
        if provider.person_enrich(query, idempotency_key=f"probe-{i}").is_hit:
            return query
    raise AssertionError("no known person among 50")


def unknown_person(provider: SandboxProvider) -> PersonQuery:
    for i in range(200):
        query = PersonQuery(email=f"nobody{i}@acme.com")
        if not provider.person_enrich(query, idempotency_key=f"probe-{i}").is_hit:
            return query
    raise AssertionError("no unknown person among 200")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_person_hit(sandbox):
    provider = SandboxProvider(sandbox.url)
    query = known_person(provider)

    answer = provider.person_enrich(query, idempotency_key="run-1")

    assert answer.is_hit
    assert answer.credits == 1
    assert answer.http_status == 200
    fields = {candidate.field: candidate for candidate in answer.candidates}
    assert {"email", "job_title"} <= set(fields) <= set(PERSON_FIELDS)
    assert all(candidate.source == "sandbox" for candidate in answer.candidates)
    assert all(0 <= candidate.confidence <= 1 for candidate in answer.candidates)
    email = fields["email"]
    assert email.value.endswith("@acme.com")
    assert email.verification in {"valid", "accept_all", "unknown"}
    assert all(fields[name].verification == "" for name in fields if name != "email")
    assert set(answer.raw) == {"person", "credits"}
    assert answer.raw["person"]["email"]["value"] == email.value


def test_person_by_email_echoes_it(sandbox):
    provider = SandboxProvider(sandbox.url)
    for i in range(10):
        answer = provider.person_enrich(
            PersonQuery(email=f"jane.doe{i}@acme.com"), idempotency_key=f"run-{i}"
        )
        if answer.is_hit:
            email = next(c for c in answer.candidates if c.field == "email")
            assert email.value == f"jane.doe{i}@acme.com"


def test_company_hit(sandbox):
    provider = SandboxProvider(sandbox.url)
    answers = [
        provider.company_enrich(f"firm{i}.com", idempotency_key=f"run-{i}") for i in range(10)
    ]
    answer = next(answer for answer in answers if answer.is_hit)

    fields = {candidate.field: candidate for candidate in answer.candidates}
    assert {"company_name", "industry", "employee_range", "hq_location"} <= set(fields)
    assert set(fields) <= set(COMPANY_FIELDS)
    assert answer.credits == 1
    if "technologies" in fields:
        assert isinstance(fields["technologies"].value, list)


def test_miss_is_free(sandbox):
    provider = SandboxProvider(sandbox.url)
    query = unknown_person(provider)

    answer = provider.person_enrich(query, idempotency_key="run-miss")

    assert not answer.is_hit
    assert answer.candidates == []
    assert answer.credits == 0
    assert answer.http_status == 404


def test_retry_with_same_idempotency_key_is_not_billed(sandbox):
    provider = SandboxProvider(sandbox.url)
    query = known_person(provider)

    first = provider.person_enrich(query, idempotency_key="run-7-attempt")
    retry = provider.person_enrich(query, idempotency_key="run-7-attempt")

    assert first.credits == 1
    assert retry.credits == 0
    assert retry.candidates == first.candidates


def test_rate_limited_carries_retry_after(start_sandbox):
    server = start_sandbox(rate_limit_per_min=1)
    provider = SandboxProvider(server.url)
    provider.company_enrich("acme.com", idempotency_key="run-1")

    with pytest.raises(RateLimited) as caught:
        provider.company_enrich("acme.com", idempotency_key="run-2")

    assert 1 <= caught.value.retry_after <= 60
    assert caught.value.http_status == 429
    assert caught.value.retryable


def test_injected_failure_is_transient(start_sandbox):
    provider = SandboxProvider(start_sandbox(error_rate=1.0).url)

    with pytest.raises(Transient) as caught:
        provider.person_enrich(PersonQuery(email="jane@acme.com"), idempotency_key="run-1")

    assert caught.value.http_status == 503
    assert caught.value.retryable


def test_closed_port_is_transient():
    provider = SandboxProvider(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(Transient):
        provider.company_enrich("acme.com", idempotency_key="run-1")


def test_timeout_is_transient(start_sandbox):
    provider = SandboxProvider(start_sandbox(latency_ms=500).url, timeout=0.1)

    with pytest.raises(Transient, match="timed out"):
        provider.company_enrich("acme.com", idempotency_key="run-1")


def test_wrong_key_is_auth_error(start_sandbox):
    server = start_sandbox(api_key="right-key")

    with pytest.raises(AuthError) as caught:
        SandboxProvider(server.url, api_key="wrong").company_enrich("acme.com", idempotency_key="1")

    assert caught.value.http_status == 401
    assert not caught.value.retryable


def test_key_comes_from_settings(start_sandbox, settings):
    server = start_sandbox(api_key="right-key")
    settings.SANDBOX_API_KEY = "right-key"

    answer = SandboxProvider(server.url).company_enrich("acme.com", idempotency_key="run-1")

    assert answer.http_status in {200, 404}


def test_wrong_base_url_is_permanent_not_a_miss(sandbox):
    provider = SandboxProvider(f"{sandbox.url}/api")

    with pytest.raises(Permanent, match="no such endpoint"):
        provider.company_enrich("acme.com", idempotency_key="run-1")


def test_unanswerable_query_costs_no_call():
    provider = SandboxProvider(VENDOR)

    with responses.RequestsMock(), pytest.raises(Permanent):
        provider.person_enrich(
            PersonQuery(first_name="Ada", last_name="Lovelace"), idempotency_key="1"
        )


def test_registry(sandbox, settings):
    settings.SANDBOX_BASE_URL = ""
    assert enabled_providers() == []

    settings.SANDBOX_BASE_URL = sandbox.url
    [provider] = enabled_providers()

    assert provider.name == "sandbox"
    assert provider.company_enrich("acme.com", idempotency_key="run-1").http_status in {200, 404}


@responses.activate
def test_vendor_values_are_normalized_and_bad_ones_dropped():
    responses.post(
        f"{VENDOR}{PERSON_PATH}",
        json={
            "person": {
                "email": {"value": " Jane.Doe@ACME.com ", "confidence": 0.92},
                "phone": {"value": "not a phone", "confidence": 0.9},
                "job_title": {"value": "  VP   of Sales ", "confidence": 0.8},
                "seniority": {"value": "vp", "confidence": "high"},
                "department": {"value": "Sales", "confidence": 1.5},
                "location": {"value": "", "confidence": 0.7},
                "linkedin_url": {"value": "https://example.com/in/jane", "confidence": 0.9},
                "favourite_color": {"value": "blue", "confidence": 0.9},
            },
            "credits": 1,
        },
    )
    provider = SandboxProvider(VENDOR)

    answer = provider.person_enrich(PersonQuery(email="jane.doe@acme.com"), idempotency_key="k")

    assert [(c.field, c.value, c.verification) for c in answer.candidates] == [
        ("email", "jane.doe@acme.com", "unknown"),
        ("job_title", "VP of Sales", ""),
    ]
    assert answer.credits == 1
    assert "favourite_color" not in answer.raw["person"]
    request = responses.calls[0].request
    assert request.headers["Idempotency-Key"] == "k"
    assert "Authorization" not in request.headers


@responses.activate
def test_vendor_phone_and_profile_are_normalized_and_technologies_cleaned(settings):
    settings.SANDBOX_API_KEY = "secret"
    responses.post(
        f"{VENDOR}{PERSON_PATH}",
        json={
            "person": {
                "phone": {"value": "(212) 734-0123", "confidence": 0.9},
                "linkedin_url": {"value": "linkedin.com/in/Jane-Doe/", "confidence": 0.9},
            },
            "credits": 1,
        },
    )
    responses.post(
        f"{VENDOR}{COMPANY_PATH}",
        json={
            "company": {
                "technologies": {"value": ["AWS", " Stripe ", "AWS", "", 3], "confidence": 0.6}
            },
            "credits": 1,
        },
    )
    provider = SandboxProvider(VENDOR)

    person = provider.person_enrich(PersonQuery(email="jane@acme.com"), idempotency_key="a")
    company = provider.company_enrich("acme.com", idempotency_key="b")

    assert {c.field: c.value for c in person.candidates} == {
        "phone": "+12127340123",
        "linkedin_url": "https://www.linkedin.com/in/jane-doe",
    }
    assert company.candidates[0].value == ["AWS", "Stripe"]
    assert responses.calls[0].request.headers["Authorization"] == "Bearer secret"


@pytest.mark.parametrize(
    ("status", "headers", "body", "error", "attributes"),
    [
        (429, {}, {"error": "slow down"}, RateLimited, {"retry_after": 60.0}),
        (429, {"Retry-After": "7"}, {}, RateLimited, {"retry_after": 7.0}),
        (403, {}, {"error": "forbidden"}, AuthError, {"http_status": 403}),
        (400, {}, {"error": "email is not a valid address"}, Permanent, {"http_status": 400}),
        (502, {}, "<html>Bad gateway</html>", Transient, {"http_status": 502}),
        (200, {}, "<html>Welcome</html>", Transient, {"http_status": 200}),
        (200, {}, {"credits": 1}, Permanent, {"http_status": 200}),
    ],
)
@responses.activate
def test_vendor_failures_map_to_errors(status, headers, body, error, attributes):
    # A string body is a proxy's HTML page.
    kwargs = (
        {"json": body} if isinstance(body, dict) else {"body": body, "content_type": "text/html"}
    )
    responses.post(f"{VENDOR}{COMPANY_PATH}", status=status, headers=headers, **kwargs)

    with pytest.raises(error) as caught:
        SandboxProvider(VENDOR).company_enrich("acme.com", idempotency_key="k")

    for name, value in attributes.items():
        assert getattr(caught.value, name) == value
