"""PdlProvider against People Data Labs' documented answers, replayed with `responses`."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from responses import matchers

from providers.base import (
    AuthError,
    Permanent,
    PersonQuery,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from providers.pdl.adapter import (
    COMPANY_FIELDS,
    PERSON_FIELDS,
    PdlProvider,
    likelihood_confidence,
    retry_after,
)
from tests.providers import vendor_fixtures
from tests.providers.vendor_fixtures import replay

BASE = "https://api.peopledatalabs.com/v5"
PERSON_URL = f"{BASE}/person/enrich"
BULK_URL = f"{BASE}/person/bulk"
COMPANY_URL = f"{BASE}/company/enrich"
KEY = "pdl-test-key-4f1c9b2e7d"
SEAN = PersonQuery(email="sean@peopledatalabs.com")
KEY_HEADER = matchers.header_matcher({"X-Api-Key": KEY})


def provider() -> PdlProvider:
    return PdlProvider(BASE, api_key=KEY)


def by_field(answer) -> dict:
    return {candidate.field: candidate for candidate in answer.candidates}


def test_capabilities():
    pdl = provider()

    assert pdl.name == "pdl"
    assert pdl.operations == {"person_enrich", "company_enrich"}
    assert pdl.fields == set(PERSON_FIELDS) | set(COMPANY_FIELDS)
    assert pdl.person_bulk_size == 100


def test_person_hit_maps_every_field_with_the_likelihood_as_confidence():
    with responses.RequestsMock() as rsps:
        replay(
            rsps,
            "GET",
            PERSON_URL,
            "pdl",
            "person_enrich_hit",
            match=[
                matchers.query_param_matcher({"email": "sean@peopledatalabs.com"}),
                KEY_HEADER,
            ],
        )
        answer = provider().person_enrich(SEAN, idempotency_key="run-1")
        sent = rsps.calls[0].request

    assert answer.http_status == 200
    assert answer.credits == 1
    fields = by_field(answer)
    assert {name: c.value for name, c in fields.items()} == {
        "email": "sean@peopledatalabs.com",
        "phone": "+14155688415",
        "job_title": "co-founder and chief executive officer",
        # job_title_levels ["owner", "cxo"]: the most senior level, in our words.
        "seniority": "c_suite",
        "department": "Operations",
        "location": "san francisco, california, united states",
        "linkedin_url": "https://www.linkedin.com/in/seanthorne",
    }
    # likelihood 9 → 0.9, the same for every field of the matched profile.
    assert {c.confidence for c in answer.candidates} == {0.9}
    assert {c.source for c in answer.candidates} == {"pdl"}
    assert fields["email"].verification == "unknown"
    assert all(c.verification == "" for name, c in fields.items() if name != "email")
    # The key travels in the header, never in the URL.
    assert KEY not in sent.url
    assert "api_key" not in sent.url


def test_person_raw_keeps_only_what_the_candidates_came_from():
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", PERSON_URL, "pdl", "person_enrich_hit")
        answer = provider().person_enrich(SEAN, idempotency_key="run-1")

    assert set(answer.raw) == {"likelihood", "person", "rate_limit"}
    assert answer.raw["likelihood"] == 9
    assert set(answer.raw["person"]) == {
        "id",
        "work_email",
        "mobile_phone",
        "phone_numbers",
        "job_title",
        "job_title_levels",
        "job_title_role",
        "location_name",
        "linkedin_url",
    }
    # Personal addresses, birth year, skills and the rest never reach the ledger.
    assert "gmail.com" not in json.dumps(answer.raw)


def test_rate_limit_headers_are_recorded_for_the_ledger():
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", PERSON_URL, "pdl", "person_enrich_hit")
        answer = provider().person_enrich(SEAN, idempotency_key="run-1")

    assert answer.raw["rate_limit"] == {
        "x-call-credits-spent": 1,
        "x-call-credits-type": "enrich",
        "x-ratelimit-reset": "2022-02-23T20:19:55Z",
        "x-ratelimit-remaining": {"minute": 1200, "day": None, "month": None},
        "x-ratelimit-limit": {"minute": 1201, "day": None, "month": None},
        "x-lifetime-used": 984152,
        "x-totallimit-remaining": 1342,
        "x-totallimit-purchased-remaining": 342,
        "x-totallimit-overages-remaining": 1000,
    }


def test_every_known_identifier_is_sent():
    query = PersonQuery(
        first_name="Sean",
        last_name="Thorne",
        domain="peopledatalabs.com",
        linkedin_url="https://www.linkedin.com/in/seanthorne",
    )
    with responses.RequestsMock() as rsps:
        replay(
            rsps,
            "GET",
            PERSON_URL,
            "pdl",
            "person_enrich_hit",
            match=[
                matchers.query_param_matcher(
                    {
                        "profile": "https://www.linkedin.com/in/seanthorne",
                        "first_name": "Sean",
                        "last_name": "Thorne",
                        "company": "peopledatalabs.com",
                    }
                )
            ],
        )
        answer = provider().person_enrich(query, idempotency_key="run-1")

    assert answer.is_hit


def test_low_likelihood_lands_below_half():
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", PERSON_URL, "pdl", "person_enrich_low_likelihood")
        answer = provider().person_enrich(
            PersonQuery(email="kimberly.patton@wirelessco.example"), idempotency_key="run-1"
        )

    assert answer.is_hit
    assert answer.credits == 1
    assert {c.confidence for c in answer.candidates} == {0.3}
    assert by_field(answer)["seniority"].value == "vp"
    # No job_title_role in the record: no department.
    assert "department" not in by_field(answer)


@pytest.mark.parametrize(
    ("likelihood", "confidence"),
    [(1, 0.1), (2, 0.2), (4, 0.4), (5, 0.5), (7, 0.7), (8, 0.8), (9, 0.9), (10, 0.95)],
)
def test_likelihood_to_confidence(likelihood, confidence):
    assert likelihood_confidence(likelihood) == pytest.approx(confidence)


@pytest.mark.parametrize("likelihood", [None, 0, 11, "9", 9.5, True])
def test_no_confidence_without_a_valid_likelihood(likelihood):
    assert likelihood_confidence(likelihood) is None


def test_free_plan_flags_are_not_values():
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", PERSON_URL, "pdl", "person_enrich_free_plan")
        answer = provider().person_enrich(SEAN, idempotency_key="run-1")

    fields = by_field(answer)
    assert "email" not in fields
    assert "phone" not in fields
    assert fields["job_title"].value == "co-founder and chief executive officer"


def test_not_found_is_a_free_miss():
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", PERSON_URL, "pdl", "person_enrich_not_found")
        answer = provider().person_enrich(SEAN, idempotency_key="run-1")

    assert not answer.is_hit
    assert answer.candidates == []
    assert answer.credits == 0
    assert answer.http_status == 404
    assert answer.raw["error"] == "not_found"
    assert answer.raw["rate_limit"]["x-call-credits-spent"] == 0


def test_a_404_that_is_not_pdls_not_found_is_a_wrong_url():
    with responses.RequestsMock() as rsps:
        rsps.get(PERSON_URL, status=404, body="<html>Not Found</html>")
        with pytest.raises(Permanent) as caught:
            provider().person_enrich(SEAN, idempotency_key="run-1")

    assert caught.value.http_status == 404


@pytest.mark.parametrize(
    "query",
    [
        PersonQuery(),
        PersonQuery(first_name="Sean", last_name="Thorne"),
        PersonQuery(first_name="Sean", domain="peopledatalabs.com"),
    ],
)
def test_unanswerable_person_query_is_refused_before_any_request(query):
    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent):
            provider().person_enrich(query, idempotency_key="run-1")

        assert len(rsps.calls) == 0


def test_bulk_answers_each_query_in_order():
    queries = [
        SEAN,
        PersonQuery(email="nobody@peopledatalabs.com"),
        PersonQuery(first_name="Kimberly", last_name="Patton", domain="wirelessco.example"),
    ]
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", BULK_URL, "pdl", "person_bulk_mixed", match=[KEY_HEADER])
        answers = provider().person_enrich_bulk(queries, idempotency_key="job-1")
        sent = json.loads(rsps.calls[0].request.body)

    assert sent == {
        "requests": [
            {"params": {"email": "sean@peopledatalabs.com"}, "metadata": {"index": 0}},
            {"params": {"email": "nobody@peopledatalabs.com"}, "metadata": {"index": 1}},
            {
                "params": {
                    "first_name": "Kimberly",
                    "last_name": "Patton",
                    "company": "wirelessco.example",
                },
                "metadata": {"index": 2},
            },
        ]
    }
    assert [a.http_status for a in answers] == [200, 404, 200]
    assert [a.credits for a in answers] == [1, 0, 1]
    assert by_field(answers[0])["email"].value == "sean@peopledatalabs.com"
    assert by_field(answers[0])["email"].confidence == 0.95
    assert answers[1].candidates == []
    assert by_field(answers[2])["phone"].value == "+15814854381"
    assert by_field(answers[2])["phone"].confidence == 0.6
    assert all(a.raw["rate_limit"]["x-call-credits-spent"] == 2 for a in answers)


def test_bulk_answers_follow_their_metadata_not_their_position():
    fixture = vendor_fixtures.load("pdl", "person_bulk_mixed")
    queries = [SEAN, PersonQuery(email="nobody@x.com"), PersonQuery(email="kp@x.com")]
    with responses.RequestsMock() as rsps:
        rsps.post(BULK_URL, json=list(reversed(fixture["body"])), status=200)
        answers = provider().person_enrich_bulk(queries, idempotency_key="job-1")

    assert by_field(answers[0])["job_title"].value == "co-founder and chief executive officer"
    assert answers[1].http_status == 404
    assert by_field(answers[2])["job_title"].value == "tax adviser"


def test_bulk_answer_that_does_not_pair_up_is_refused():
    fixture = vendor_fixtures.load("pdl", "person_bulk_mixed")
    with responses.RequestsMock() as rsps:
        rsps.post(BULK_URL, json=fixture["body"][:2], status=200)
        with pytest.raises(Permanent, match="2 entries for 3 requests"):
            provider().person_enrich_bulk([SEAN] * 3, idempotency_key="job-1")


def test_bulk_over_one_hundred_is_refused_without_a_request():
    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent, match="at most 100"):
            provider().person_enrich_bulk([SEAN] * 101, idempotency_key="job-1")

        assert len(rsps.calls) == 0


def test_bulk_with_an_unanswerable_query_is_refused_without_a_request():
    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent, match="query 1"):
            provider().person_enrich_bulk([SEAN, PersonQuery()], idempotency_key="job-1")

        assert len(rsps.calls) == 0


def test_bulk_of_nothing_asks_nothing():
    with responses.RequestsMock() as rsps:
        assert provider().person_enrich_bulk([], idempotency_key="job-1") == []
        assert len(rsps.calls) == 0


def test_bulk_that_answered_nobody_raises_its_failure():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", BULK_URL, "pdl", "person_bulk_out_of_credits")
        with pytest.raises(QuotaExhausted) as caught:
            provider().person_enrich_bulk([SEAN, SEAN], idempotency_key="job-1")

    assert caught.value.http_status == 402


def test_bulk_keeps_paid_answers_when_one_query_fails():
    fixture = vendor_fixtures.load("pdl", "person_bulk_mixed")
    failed = vendor_fixtures.load("pdl", "person_bulk_out_of_credits")["body"][0]
    body = [fixture["body"][0], {**failed, "metadata": {"index": 1}}]
    with responses.RequestsMock() as rsps:
        rsps.post(BULK_URL, json=body, status=200)
        answers = provider().person_enrich_bulk([SEAN, SEAN], idempotency_key="job-1")

    assert answers[0].is_hit
    # That person's failure is PDL's refusal, not a "not found" to reuse for a month.
    assert isinstance(answers[1], QuotaExhausted)
    assert answers[1].http_status == 402
    assert str(answers[1]).startswith("pdl answered 402: payment_required")


def test_bulk_result_without_a_status_fails_that_query_alone():
    fixture = vendor_fixtures.load("pdl", "person_bulk_mixed")
    body = [fixture["body"][0], {"status": "broken", "metadata": {"index": 1}}]
    with responses.RequestsMock() as rsps:
        rsps.post(BULK_URL, json=body, status=200)
        kept, broken = provider().person_enrich_bulk([SEAN, SEAN], idempotency_key="job-1")

    assert kept.is_hit
    assert isinstance(broken, Permanent) and "no HTTP status" in str(broken)


def test_bulk_request_level_failure_is_raised():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", BULK_URL, "pdl", "error_429")
        with pytest.raises(RateLimited):
            provider().person_enrich_bulk([SEAN], idempotency_key="job-1")


def test_company_hit():
    with responses.RequestsMock() as rsps:
        replay(
            rsps,
            "GET",
            COMPANY_URL,
            "pdl",
            "company_enrich_hit",
            match=[matchers.query_param_matcher({"website": "peopledatalabs.com"}), KEY_HEADER],
        )
        answer = provider().company_enrich("peopledatalabs.com", idempotency_key="run-1")

    assert answer.http_status == 200
    assert answer.credits == 1
    assert {name: c.value for name, c in by_field(answer).items()} == {
        "company_name": "People Data Labs",
        "industry": "computer software",
        "employee_range": "51-200",
        "revenue_range": "$50M-$100M",
        "hq_location": "san francisco, california, united states",
        "technologies": ["amazon web services", "python"],
    }
    assert {c.confidence for c in answer.candidates} == {0.8}
    assert answer.raw["company"]["location"] == {
        "name": "san francisco, california, united states",
        "locality": "san francisco",
        "region": "california",
        "country": "united states",
    }
    assert "tags" not in answer.raw["company"]
    assert "street_address" not in json.dumps(answer.raw)
    assert answer.raw["rate_limit"]["x-call-credits-type"] == "enrich_company"


def test_company_without_a_location_name_joins_its_parts():
    fixture = vendor_fixtures.load("pdl", "company_enrich_hit")
    location = {"locality": "san francisco", "country": "united states"}
    body = {**fixture["body"], "location": location}
    with responses.RequestsMock() as rsps:
        rsps.get(COMPANY_URL, json=body, status=200)
        answer = provider().company_enrich("peopledatalabs.com", idempotency_key="run-1")

    assert by_field(answer)["hq_location"].value == "san francisco, united states"


def test_company_not_found_is_a_free_miss():
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", COMPANY_URL, "pdl", "company_enrich_not_found")
        answer = provider().company_enrich("nobody.example", idempotency_key="run-1")

    assert not answer.is_hit
    assert answer.credits == 0
    assert answer.http_status == 404


def test_company_without_a_domain_is_refused_before_any_request():
    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent):
            provider().company_enrich("", idempotency_key="run-1")

        assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("fixture", "error", "status"),
    [
        ("error_400", Permanent, 400),
        ("error_401", AuthError, 401),
        ("error_402", QuotaExhausted, 402),
        ("error_403", AuthError, 403),
        ("error_429", RateLimited, 429),
        ("error_500", Transient, 500),
    ],
)
@pytest.mark.parametrize(
    ("url", "call"),
    [
        (PERSON_URL, lambda pdl: pdl.person_enrich(SEAN, idempotency_key="run-1")),
        (COMPANY_URL, lambda pdl: pdl.company_enrich("acme.com", idempotency_key="run-1")),
    ],
)
def test_statuses_map_to_the_error_vocabulary(fixture, error, status, url, call):
    with responses.RequestsMock() as rsps:
        replay(rsps, "GET", url, "pdl", fixture)
        with pytest.raises(error) as caught:
            call(provider())

    assert type(caught.value) is error
    assert caught.value.http_status == status
    assert str(caught.value).startswith(f"pdl answered {status}: ")
    assert KEY not in str(caught.value)


def test_rate_limited_waits_until_the_documented_reset():
    fixture = vendor_fixtures.load("pdl", "error_429")
    reset = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with responses.RequestsMock() as rsps:
        rsps.get(
            PERSON_URL,
            json=fixture["body"],
            status=429,
            headers={**fixture["headers"], "x-ratelimit-reset": reset},
        )
        with pytest.raises(RateLimited) as caught:
            provider().person_enrich(SEAN, idempotency_key="run-1")

    assert 28 <= caught.value.retry_after <= 30
    assert caught.value.retryable


def test_retry_after_header_wins_over_the_reset():
    fixture = vendor_fixtures.load("pdl", "error_429")
    with responses.RequestsMock() as rsps:
        rsps.get(
            PERSON_URL,
            json=fixture["body"],
            status=429,
            headers={**fixture["headers"], "Retry-After": "12"},
        )
        with pytest.raises(RateLimited) as caught:
            provider().person_enrich(SEAN, idempotency_key="run-1")

    assert caught.value.retry_after == 12


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({}, 60, 60),
        ({"x-ratelimit-reset": "2022-02-23T20:19:55Z"}, 0, 0),
        ({"x-ratelimit-reset": "not a time"}, 60, 60),
    ],
)
def test_retry_after_reading(headers, low, high):
    assert low <= retry_after(headers) <= high


def test_retry_after_reads_an_epoch_reset_too():
    # PDL's own JavaScript SDK reads the header as a number.
    reset = datetime.now(UTC).timestamp() + 20

    assert 18 <= retry_after({"x-ratelimit-reset": str(reset)}) <= 20


def test_connection_failure_is_transient():
    with responses.RequestsMock() as rsps:
        rsps.get(PERSON_URL, body=requests.ConnectionError("connection refused"))
        with pytest.raises(Transient):
            provider().person_enrich(SEAN, idempotency_key="run-1")


def test_gateway_error_page_is_transient():
    with responses.RequestsMock() as rsps:
        rsps.post(BULK_URL, status=502, body="<html>502 Bad Gateway</html>")
        with pytest.raises(Transient) as caught:
            provider().person_enrich_bulk([SEAN], idempotency_key="job-1")

    assert caught.value.http_status == 502


def test_key_echoed_by_the_vendor_never_reaches_the_message():
    body = {"status": 401, "error": {"type": "authentication_error", "message": f"bad key {KEY}"}}
    with responses.RequestsMock() as rsps:
        rsps.get(PERSON_URL, json=body, status=401)
        with pytest.raises(ProviderError) as caught:
            provider().person_enrich(SEAN, idempotency_key="run-1")

    assert KEY not in str(caught.value)
    assert "[api key]" in str(caught.value)


def test_default_key_comes_from_settings(settings):
    settings.PDL_API_KEY = "from-settings"

    assert PdlProvider(BASE).client.api_key == "from-settings"
