"""HunterProvider against Hunter's documented answers, replayed with `responses`."""

import logging

import pytest
import requests
import responses
from responses import matchers

from providers.base import (
    AuthError,
    NotReady,
    Permanent,
    PersonQuery,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Suppressed,
    Transient,
)
from providers.hunter.adapter import COMPANY_FIELDS, PERSON_FIELDS, HunterProvider
from tests.providers import vendor_fixtures

BASE_URL = "https://api.hunter.io/v2"
FINDER = f"{BASE_URL}/email-finder"
VERIFIER = f"{BASE_URL}/email-verifier"
DOMAIN_SEARCH = f"{BASE_URL}/domain-search"
API_KEY = "hunter-secret-4f9a1c"
ALEXIS = PersonQuery(first_name="Alexis", last_name="Ohanian", domain="reddit.com")


@pytest.fixture
def provider(settings) -> HunterProvider:
    # The finder's max_duration follows the timeout: pin it so the request is known.
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 10.0
    return HunterProvider(BASE_URL, API_KEY)


def query_is(params: dict[str, str]):
    return matchers.query_param_matcher({**params, "api_key": API_KEY})


def by_field(answer) -> dict:
    return {candidate.field: candidate for candidate in answer.candidates}


def test_finder_hit_as_documented(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(
            rsps,
            "GET",
            FINDER,
            "hunter",
            "email_finder_hit",
            match=[
                query_is(
                    {
                        "domain": "reddit.com",
                        "first_name": "Alexis",
                        "last_name": "Ohanian",
                        "max_duration": "8",
                    }
                )
            ],
        )

        answer = provider.person_enrich(ALEXIS, idempotency_key="run-1")

    fields = by_field(answer)
    assert set(fields) == {"email", "job_title"}
    assert fields["email"].value == "alexis@reddit.com"
    assert fields["email"].confidence == pytest.approx(0.97)
    assert fields["email"].verification == "valid"
    assert fields["job_title"].value == "Cofounder"
    assert fields["job_title"].confidence == pytest.approx(0.97)
    assert fields["job_title"].verification == ""
    assert all(candidate.source == "hunter" for candidate in answer.candidates)
    assert answer.credits == 1
    assert answer.http_status == 200
    assert "sources" not in answer.raw
    assert answer.raw == {
        "endpoint": "email-finder",
        "email": "alexis@reddit.com",
        "score": 97,
        "verification": "valid",
        "position": "Cofounder",
        "linkedin_url": None,
        "phone_number": None,
    }


def test_finder_hit_with_every_person_field(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", FINDER, "hunter", "email_finder_hit_profile")

        answer = provider.person_enrich(ALEXIS, idempotency_key="run-1")

    fields = by_field(answer)
    assert set(fields) == set(PERSON_FIELDS)
    # One match, one score: every value it carries has Hunter's confidence in the match.
    assert all(candidate.confidence == pytest.approx(0.84) for candidate in answer.candidates)
    assert fields["email"].verification == "accept_all"
    assert fields["linkedin_url"].value == "https://www.linkedin.com/in/alexisohanian"
    assert fields["phone"].value == "+14155550132"
    assert fields["job_title"].value == "Cofounder"
    assert answer.credits == 1


def test_finder_without_a_verification_status_says_unknown(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", FINDER, "hunter", "email_finder_unverified")

        answer = provider.person_enrich(ALEXIS, idempotency_key="run-1")

    (email,) = answer.candidates
    assert email.verification == "unknown"
    assert email.confidence == pytest.approx(0.71)
    assert answer.credits == 1


def test_finder_miss_is_an_empty_free_answer(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", FINDER, "hunter", "email_finder_miss")

        answer = provider.person_enrich(ALEXIS, idempotency_key="run-1")

    assert not answer.is_hit
    assert answer.candidates == []
    assert answer.credits == 0
    assert answer.http_status == 200


def test_finder_by_linkedin_handle(provider):
    query = PersonQuery(linkedin_url="https://www.linkedin.com/in/alexisohanian")
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(
            rsps,
            "GET",
            FINDER,
            "hunter",
            "email_finder_hit",
            match=[query_is({"linkedin_handle": "alexisohanian", "max_duration": "8"})],
        )

        answer = provider.person_enrich(query, idempotency_key="run-1")

    assert by_field(answer)["email"].value == "alexis@reddit.com"


@pytest.mark.parametrize(
    ("timeout", "max_duration"),
    [(4.0, "3"), (10.0, "8"), (15.0, "13"), (30.0, "20")],
)
def test_finder_asks_hunter_to_answer_before_our_timeout(timeout, max_duration):
    provider = HunterProvider(BASE_URL, API_KEY, timeout=timeout)
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(
            rsps,
            "GET",
            FINDER,
            "hunter",
            "email_finder_hit",
            match=[
                matchers.query_param_matcher({"max_duration": max_duration}, strict_match=False)
            ],
        )

        assert provider.person_enrich(ALEXIS, idempotency_key="run-1").is_hit


def test_person_known_by_email_only_is_verified(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(
            rsps,
            "GET",
            VERIFIER,
            "hunter",
            "email_verifier_valid",
            match=[query_is({"email": "patrick@stripe.com"})],
        )

        answer = provider.person_enrich(
            PersonQuery(email="patrick@stripe.com"), idempotency_key="run-1"
        )

    (email,) = answer.candidates
    assert (email.field, email.value) == ("email", "patrick@stripe.com")
    assert email.verification == "valid"
    assert answer.raw["endpoint"] == "email-verifier"


@pytest.mark.parametrize(
    "query",
    [
        PersonQuery(),
        PersonQuery(first_name="Alexis", last_name="Ohanian"),
        PersonQuery(first_name="Alexis", domain="reddit.com"),
        PersonQuery(last_name="Ohanian", domain="reddit.com"),
    ],
)
def test_unanswerable_person_is_refused_before_any_request(provider, query):
    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent):
            provider.person_enrich(query, idempotency_key="run-1")

        assert len(rsps.calls) == 0


def test_verify_and_company_without_input_are_refused_before_any_request(provider):
    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent):
            provider.email_verify("", idempotency_key="run-1")
        with pytest.raises(Permanent):
            provider.company_enrich("", idempotency_key="run-1")

        assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("fixture", "status", "confidence", "credits"),
    [
        ("email_verifier_valid", "valid", 1.0, 0.5),
        ("email_verifier_invalid", "invalid", 0.04, 0.5),
        ("email_verifier_accept_all", "accept_all", 0.72, 0.5),
        # Hunter charges only valid, invalid and accept_all verdicts.
        ("email_verifier_webmail", "webmail", 0.5, 0),
        ("email_verifier_disposable", "disposable", 0.5, 0),
        ("email_verifier_unknown", "unknown", 0.38, 0),
    ],
)
def test_verifier_statuses(provider, fixture, status, confidence, credits):
    expected = vendor_fixtures.load("hunter", fixture)["body"]["data"]["email"]
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(
            rsps, "GET", VERIFIER, "hunter", fixture, match=[query_is({"email": expected})]
        )

        answer = provider.email_verify(expected, idempotency_key="run-1")

    (email,) = answer.candidates
    assert email.field == "email"
    assert email.value == expected
    assert email.verification == status
    assert email.confidence == pytest.approx(confidence)
    assert answer.credits == credits
    assert answer.http_status == 200
    assert answer.raw == {
        "endpoint": "email-verifier",
        "email": expected,
        "status": status,
        "score": round(confidence * 100),
    }


def test_verification_in_progress_is_not_ready(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", VERIFIER, "hunter", "email_verifier_in_progress")

        with pytest.raises(NotReady) as caught:
            provider.email_verify("patrick@stripe.com", idempotency_key="run-1")

    assert caught.value.retryable
    assert caught.value.http_status == 202
    assert caught.value.retry_after == 60


def test_verification_in_progress_honours_a_retry_after(provider):
    fixture = vendor_fixtures.load("hunter", "email_verifier_in_progress")
    with responses.RequestsMock() as rsps:
        rsps.add(
            "GET",
            VERIFIER,
            json=fixture["body"],
            status=fixture["status"],
            headers={"Retry-After": "7"},
        )

        with pytest.raises(NotReady) as caught:
            provider.email_verify("patrick@stripe.com", idempotency_key="run-1")

    assert caught.value.retry_after == 7


def test_failed_verification_is_transient(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", VERIFIER, "hunter", "email_verifier_failed")

        with pytest.raises(Transient) as caught:
            provider.email_verify("patrick@stripe.com", idempotency_key="run-1")

    assert not isinstance(caught.value, NotReady)
    assert caught.value.http_status == 222


def test_domain_search_gives_company_name_and_keeps_the_pattern(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(
            rsps,
            "GET",
            DOMAIN_SEARCH,
            "hunter",
            "domain_search",
            match=[query_is({"domain": "intercom.com", "limit": "1"})],
        )

        answer = provider.company_enrich("intercom.com", idempotency_key="run-1")

    (name,) = answer.candidates
    assert (name.field, name.value, name.confidence) == ("company_name", "Intercom", 0.8)
    assert name.source == "hunter"
    assert answer.raw["pattern"] == "{first}"
    assert answer.raw["accept_all"] is True
    assert answer.raw["emails_returned"] == 1
    assert "emails" not in answer.raw
    assert answer.credits == 1
    assert answer.http_status == 200


def test_domain_search_company_fields(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", DOMAIN_SEARCH, "hunter", "domain_search_company")

        answer = provider.company_enrich("intercom.com", idempotency_key="run-1")

    fields = by_field(answer)
    assert set(fields) == set(COMPANY_FIELDS)
    assert {name: candidate.value for name, candidate in fields.items()} == {
        "company_name": "Intercom",
        "industry": "Software Development",
        "employee_range": "1001-5000",
        "hq_location": "San Francisco, CA, US",
        "technologies": ["amazon-web-services", "intercom", "marketo", "react"],
    }
    assert {candidate.confidence for candidate in answer.candidates} == {0.8}


def test_domain_search_without_addresses_is_free(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", DOMAIN_SEARCH, "hunter", "domain_search_no_emails")

        answer = provider.company_enrich("tiny-startup.io", idempotency_key="run-1")

    assert [candidate.value for candidate in answer.candidates] == ["Tiny Startup"]
    assert answer.raw["pattern"] is None
    assert answer.credits == 0


CALLS = {
    "email-finder": (FINDER, lambda p: p.person_enrich(ALEXIS, idempotency_key="k")),
    "email-verifier": (VERIFIER, lambda p: p.email_verify("pc@stripe.com", idempotency_key="k")),
    "domain-search": (DOMAIN_SEARCH, lambda p: p.company_enrich("stripe.com", idempotency_key="k")),
}
# (fixture, error, whether asking again later can help)
ERRORS = [
    ("error_400_wrong_params", Permanent, False),
    ("error_401_unauthorized", AuthError, False),
    # Hunter's 403 is its rate limit, its 429 the plan's quota: wait, or stop asking.
    ("error_403_rate_limit", RateLimited, True),
    ("error_404_not_found", Permanent, False),
    ("error_422_unprocessable", Permanent, False),
    ("error_429_usage_limit", QuotaExhausted, False),
    ("error_451_claimed_email", Suppressed, False),
    ("error_500_server", Transient, True),
]


@pytest.mark.parametrize("endpoint", CALLS)
@pytest.mark.parametrize(("fixture", "error", "retryable"), ERRORS)
def test_statuses_map_to_the_error_vocabulary(provider, endpoint, fixture, error, retryable):
    url, call = CALLS[endpoint]
    status = vendor_fixtures.load("hunter", fixture)["status"]
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", url, "hunter", fixture)

        with pytest.raises(error) as caught:
            call(provider)

    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert caught.value.http_status == status
    assert str(caught.value).startswith(f"hunter {endpoint} answered {status}")


def test_rate_limit_without_retry_after_waits_a_minute(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", FINDER, "hunter", "error_403_rate_limit")

        with pytest.raises(RateLimited) as caught:
            provider.person_enrich(ALEXIS, idempotency_key="run-1")

    assert caught.value.retry_after == 60


def test_rate_limit_honours_a_retry_after(provider):
    fixture = vendor_fixtures.load("hunter", "error_403_rate_limit")
    with responses.RequestsMock() as rsps:
        rsps.add("GET", FINDER, json=fixture["body"], status=403, headers={"Retry-After": "3"})

        with pytest.raises(RateLimited) as caught:
            provider.person_enrich(ALEXIS, idempotency_key="run-1")

    assert caught.value.retry_after == 3


def test_documented_error_ids_are_named(provider):
    with responses.RequestsMock() as rsps:
        vendor_fixtures.replay(rsps, "GET", FINDER, "hunter", "error_451_claimed_email")

        with pytest.raises(Suppressed) as caught:
            provider.person_enrich(ALEXIS, idempotency_key="run-1")

    assert str(caught.value) == "hunter email-finder answered 451 (claimed_email)"


def test_success_without_data_is_permanent(provider):
    with responses.RequestsMock() as rsps:
        rsps.add("GET", FINDER, json={"meta": {}}, status=200)

        with pytest.raises(Permanent) as caught:
            provider.person_enrich(ALEXIS, idempotency_key="run-1")

    assert caught.value.http_status == 200


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError, requests.Timeout], ids=["connection", "timeout"]
)
def test_network_failures_are_transient(provider, failure):
    with responses.RequestsMock() as rsps:
        rsps.add("GET", FINDER, body=failure(f"{FINDER}?api_key={API_KEY} failed"))

        with pytest.raises(Transient) as caught:
            provider.person_enrich(ALEXIS, idempotency_key="run-1")

    assert caught.value.retryable
    assert caught.value.http_status is None


def _recorded(rsps: responses.RequestsMock, url: str, fixture: str) -> None:
    vendor_fixtures.replay(rsps, "GET", url, "hunter", fixture)


def _network_failure(failure: type[requests.RequestException]):
    def add(rsps: responses.RequestsMock, url: str, _fixture: str) -> None:
        # The library's own message carries the full URL, key included.
        rsps.add("GET", url, body=failure(f"{url}?api_key={API_KEY}: connection refused"))

    return add


KEY_LEAK_CASES = [(fixture, _recorded) for fixture, _, _ in ERRORS] + [
    ("email_verifier_in_progress", _recorded),
    ("email_verifier_failed", _recorded),
    ("connection", _network_failure(requests.ConnectionError)),
    ("timeout", _network_failure(requests.Timeout)),
]


@pytest.mark.parametrize("endpoint", CALLS)
@pytest.mark.parametrize(("fixture", "add"), KEY_LEAK_CASES)
def test_api_key_never_appears_in_an_error(provider, caplog, endpoint, fixture, add):
    url, call = CALLS[endpoint]
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as rsps:
        add(rsps, url, fixture)

        with pytest.raises(ProviderError) as caught:
            call(provider)

        assert rsps.calls[0].request.params["api_key"] == API_KEY

    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value.args)
    # A traceback would print the library's exception: it must be left out of the chain.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    assert API_KEY not in caplog.text
