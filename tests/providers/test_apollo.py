"""ApolloProvider against Apollo's documented answers, replayed with `responses`."""

import json

import pytest
import responses

from providers.apollo.adapter import COMPANY_FIELDS, PERSON_FIELDS, ApolloProvider
from providers.base import (
    AuthError,
    Permanent,
    PersonQuery,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from tests.providers import vendor_fixtures
from tests.providers.vendor_fixtures import replay

BASE = "https://api.apollo.invalid/api/v1"
MATCH = f"{BASE}/people/match"
BULK = f"{BASE}/people/bulk_match"
ORGANIZATION = f"{BASE}/organizations/enrich"
KEY = "apollo-test-key-9f8e7d"

TIM = PersonQuery(first_name="Tim", last_name="Zheng", domain="apollo.io")


def provider() -> ApolloProvider:
    return ApolloProvider(BASE, api_key=KEY)


def by_field(answer) -> dict:
    fields = [candidate.field for candidate in answer.candidates]
    assert len(fields) == len(set(fields)), "one candidate per field"
    return {candidate.field: candidate for candidate in answer.candidates}


def test_person_hit():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", "people_match_hit")
        answer = provider().person_enrich(TIM, idempotency_key="run-1")
        request = rsps.calls[0].request

    assert request.headers["x-api-key"] == KEY
    assert KEY not in request.url
    assert json.loads(request.body) == {
        "first_name": "Tim",
        "last_name": "Zheng",
        "domain": "apollo.io",
    }
    assert answer.is_hit
    assert answer.credits == 1
    assert answer.http_status == 200
    fields = by_field(answer)
    assert set(fields) <= set(PERSON_FIELDS)
    assert all(candidate.source == "apollo" for candidate in answer.candidates)
    assert (fields["email"].value, fields["email"].confidence) == ("tim@apollo.io", 0.95)
    assert fields["email"].verification == "valid"
    assert (fields["job_title"].value, fields["job_title"].confidence) == ("Founder & CEO", 0.8)
    assert fields["seniority"].value == "founder"
    assert fields["department"].value == "C Suite"
    assert fields["location"].value == "San Francisco, California, United States"
    assert fields["linkedin_url"].value == "https://www.linkedin.com/in/tim-zheng-677ba010"
    assert all(fields[name].verification == "" for name in fields if name != "email")
    # A person answer proposes the person's fields; the company's come from company_enrich.
    assert not set(fields) & set(COMPANY_FIELDS)


def test_person_raw_keeps_only_what_is_used_and_the_rate_limit_windows():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", "people_match_hit")
        answer = provider().person_enrich(TIM, idempotency_key="run-1")

    assert set(answer.raw) == {"person", "credits", "rate_limit"}
    assert set(answer.raw["person"]) == {
        "email",
        "email_status",
        "title",
        "seniority",
        "departments",
        "city",
        "state",
        "country",
        "linkedin_url",
    }
    assert answer.raw["rate_limit"] == {
        "x-minute-requests-left": 998,
        "x-hourly-requests-left": 187,
        "x-24-hour-requests-left": 587,
    }


@pytest.mark.parametrize("fixture", ["people_match_no_person", "people_match_person_null"])
def test_200_without_a_person_is_a_free_miss(fixture):
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", fixture)
        answer = provider().person_enrich(
            PersonQuery(email="nobody@apollo.io"), idempotency_key="run-1"
        )

    assert not answer.is_hit
    assert answer.credits == 0
    assert answer.http_status == 200
    assert answer.raw["person"] is None


def replay_person(rsps, **changes) -> None:
    """Register the documented hit with the person's fields changed."""
    fixture = vendor_fixtures.load("apollo", "people_match_hit")
    rsps.post(MATCH, json={"person": {**fixture["body"]["person"], **changes}})


@pytest.mark.parametrize(
    ("status", "confidence", "verification"),
    [
        ("verified", 0.95, "valid"),
        ("guessed", 0.6, "unknown"),
        ("extrapolated", 0.6, "unknown"),
        ("unverified", 0.6, "unknown"),
        ("something_new", 0.5, "unknown"),
    ],
)
def test_email_confidence_follows_email_status(status, confidence, verification):
    with responses.RequestsMock() as rsps:
        replay_person(rsps, email_status=status)
        email = by_field(provider().person_enrich(TIM, idempotency_key="1"))["email"]

    assert (email.confidence, email.verification) == (confidence, verification)


@pytest.mark.parametrize(
    "changes",
    [
        {"email_status": "unavailable"},
        {"email_status": "bounced"},
        {"email": None, "email_status": None},
        {"email": "email_not_unlocked@domain.com"},
    ],
)
def test_no_usable_email_proposes_none_but_keeps_the_rest(changes):
    with responses.RequestsMock() as rsps:
        replay_person(rsps, **changes)
        answer = provider().person_enrich(TIM, idempotency_key="1")

    fields = by_field(answer)
    assert "email" not in fields
    assert "job_title" in fields
    assert answer.credits == 1


def test_phone_is_the_first_valid_number_that_normalizes():
    # The entries of the reference's example: Apollo calls all three valid, but the first is
    # in an unassigned US area code.
    numbers = [
        {"raw_number": "(123) 555-0158", "sanitized_number": "+11235550158", "position": 0,
         "status": "valid_number", "dnc_status": None},
        {"raw_number": "(415) 555-0199", "sanitized_number": "+14155550199", "position": 1,
         "status": "no_status", "dnc_status": None},
        {"raw_number": "+1-415-555-0121", "sanitized_number": "+14155550121", "position": 2,
         "status": "valid_number", "dnc_status": None},
    ]  # fmt: skip
    with responses.RequestsMock() as rsps:
        replay_person(rsps, phone_numbers=numbers)
        answer = provider().person_enrich(TIM, idempotency_key="1")

    phone = by_field(answer)["phone"]
    assert (phone.value, phone.confidence) == ("+14155550121", 0.8)
    assert answer.raw["person"]["phone_numbers"][2] == {
        "sanitized_number": "+14155550121",
        "status": "valid_number",
    }


def test_bulk_answers_line_up_with_the_queries():
    queries = [
        PersonQuery(email="marcus.ellery@apollo.io"),
        PersonQuery(email="nobody@apollo.io"),
        PersonQuery(linkedin_url="https://www.linkedin.com/in/brian-calderwood-9d4f2a7b"),
    ]
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", BULK, "apollo", "people_bulk_match_hit")
        answers = provider().person_enrich_bulk(queries, idempotency_key="batch-1")
        request = rsps.calls[0].request

    assert request.headers["x-api-key"] == KEY
    assert json.loads(request.body) == {
        "details": [
            {"email": "marcus.ellery@apollo.io"},
            {"email": "nobody@apollo.io"},
            {"linkedin_url": "https://www.linkedin.com/in/brian-calderwood-9d4f2a7b"},
        ]
    }
    marcus, nobody, brian = answers
    assert by_field(marcus)["email"].value == "marcus.ellery@apollo.io"
    assert not nobody.is_hit
    assert by_field(brian)["email"].value == "brian.calderwood@apollo.io"
    assert by_field(brian)["department"].value == "Marketing"
    assert by_field(brian)["location"].value == "Atlanta, Georgia, United States"
    # credits_consumed (2) is shared by the two people found; the miss is free.
    assert [answer.credits for answer in answers] == [1, 0, 1]
    assert all(answer.http_status == 200 for answer in answers)
    assert all(answer.raw["rate_limit"]["x-minute-requests-left"] == 995 for answer in answers)


def test_bulk_of_more_than_ten_is_refused_before_any_request():
    queries = [PersonQuery(email=f"p{i}@apollo.io") for i in range(11)]

    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent, match="at most 10"):
            provider().person_enrich_bulk(queries, idempotency_key="batch-1")
        assert len(rsps.calls) == 0


def test_bulk_with_an_unanswerable_query_is_refused_before_any_request():
    queries = [PersonQuery(email="a@apollo.io"), PersonQuery(first_name="Ada", last_name="L")]

    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent, match="person 1"):
            provider().person_enrich_bulk(queries, idempotency_key="batch-1")
        assert len(rsps.calls) == 0


def test_empty_bulk_asks_nothing():
    with responses.RequestsMock() as rsps:
        assert provider().person_enrich_bulk([], idempotency_key="batch-1") == []
        assert len(rsps.calls) == 0


def test_a_match_that_is_not_an_object_fails_its_query_alone():
    """The matches line up with the queries: the others are answers Apollo billed."""
    hit = vendor_fixtures.load("apollo", "people_bulk_match_hit")["body"]
    hit["matches"][1] = "not a person"
    queries = [PersonQuery(email=f"p{i}@apollo.io") for i in range(3)]

    with responses.RequestsMock() as rsps:
        rsps.add("POST", BULK, json=hit)
        marcus, broken, brian = provider().person_enrich_bulk(queries, idempotency_key="b-1")

    assert by_field(marcus)["email"].value == "marcus.ellery@apollo.io"
    assert by_field(brian)["email"].value == "brian.calderwood@apollo.io"
    assert isinstance(broken, Permanent) and "not an object" in str(broken)
    assert broken.http_status == 200


def test_bulk_answer_with_the_wrong_number_of_matches_is_permanent():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", BULK, "apollo", "people_bulk_match_hit")
        with pytest.raises(Permanent, match="other than 2 matches") as caught:
            provider().person_enrich_bulk(
                [PersonQuery(email="a@apollo.io"), PersonQuery(email="b@apollo.io")],
                idempotency_key="batch-1",
            )

    assert caught.value.http_status == 200


def test_unanswerable_query_costs_no_call():
    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent):
            provider().person_enrich(
                PersonQuery(first_name="Tim", last_name="Zheng"), idempotency_key="1"
            )
        assert len(rsps.calls) == 0


def test_rate_limited_waits_as_retry_after_says():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", "people_match_rate_limited")
        with pytest.raises(RateLimited) as caught:
            provider().person_enrich(TIM, idempotency_key="1")

    assert caught.value.retry_after == 30
    assert caught.value.http_status == 429
    assert caught.value.retryable
    assert "600 times per hour" in str(caught.value)


def test_rate_limited_without_retry_after_waits_for_the_empty_hourly_window():
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", "people_match_hourly_limit")
        with pytest.raises(RateLimited) as caught:
            provider().person_enrich(TIM, idempotency_key="1")

    assert caught.value.retry_after == 3600


@pytest.mark.parametrize(
    ("method", "url", "fixture", "error", "status"),
    [
        ("POST", MATCH, "people_match_unauthorized", AuthError, 401),
        ("GET", ORGANIZATION, "organization_enrich_forbidden", AuthError, 403),
        ("POST", MATCH, "people_match_insufficient_credits", QuotaExhausted, 422),
        ("POST", BULK, "people_bulk_match_missing_details", Permanent, 400),
        ("POST", BULK, "people_bulk_match_unknown_error", Permanent, 422),
        ("POST", MATCH, "people_match_rate_limited", RateLimited, 429),
    ],
)
def test_errors_map_to_the_vocabulary_and_never_carry_the_key(method, url, fixture, error, status):
    with responses.RequestsMock() as rsps:
        replay(rsps, method, url, "apollo", fixture)
        with pytest.raises(ProviderError) as caught:
            if url == MATCH:
                provider().person_enrich(TIM, idempotency_key="1")
            elif url == BULK:
                provider().person_enrich_bulk([TIM], idempotency_key="1")
            else:
                provider().company_enrich("apollo.io", idempotency_key="1")

    assert type(caught.value) is error
    assert caught.value.http_status == status
    assert KEY not in str(caught.value)


def test_server_error_is_transient():
    with responses.RequestsMock() as rsps:
        rsps.post(MATCH, status=502, body="<html>Bad Gateway</html>", content_type="text/html")
        with pytest.raises(Transient) as caught:
            provider().person_enrich(TIM, idempotency_key="1")

    assert caught.value.http_status == 502
    assert caught.value.retryable
    assert KEY not in str(caught.value)


def test_company_hit():
    with responses.RequestsMock() as rsps:
        replay(
            rsps,
            "GET",
            ORGANIZATION,
            "apollo",
            "organization_enrich_hit",
            match=[responses.matchers.query_param_matcher({"domain": "apollo.io"})],
        )
        answer = provider().company_enrich("apollo.io", idempotency_key="run-1")
        request = rsps.calls[0].request

    assert request.headers["x-api-key"] == KEY
    assert answer.credits == 1
    assert answer.http_status == 200
    fields = by_field(answer)
    assert set(fields) == set(COMPANY_FIELDS)
    assert fields["company_name"].value == "Apollo.io"
    assert fields["industry"].value == "information technology & services"
    assert fields["employee_range"].value == "1001-5000"
    assert fields["revenue_range"].value == "$100M-$500M"
    assert fields["hq_location"].value == "San Francisco, California, United States"
    assert fields["technologies"].value == ["Hubspot", "Salesforce", "Stripe", "WordPress.org"]
    assert all(0 <= candidate.confidence <= 1 for candidate in answer.candidates)
    assert set(answer.raw["organization"]) <= {
        "name",
        "industry",
        "estimated_num_employees",
        "annual_revenue",
        "city",
        "state",
        "country",
        "technology_names",
    }
    assert answer.raw["rate_limit"]["x-24-hour-requests-left"] == 585


@pytest.mark.parametrize("body", [{}, {"organization": {}}, {"organization": None}])
def test_unknown_domain_is_a_free_miss(body):
    with responses.RequestsMock() as rsps:
        rsps.get(ORGANIZATION, json=body)
        answer = provider().company_enrich("nobody.example", idempotency_key="run-1")

    assert not answer.is_hit
    assert answer.credits == 0


def test_company_lookup_needs_a_domain():
    with responses.RequestsMock() as rsps:
        with pytest.raises(Permanent):
            provider().company_enrich("", idempotency_key="run-1")
        assert len(rsps.calls) == 0


def test_key_comes_from_settings(settings):
    settings.APOLLO_API_KEY = "from-settings"

    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", "people_match_person_null")
        ApolloProvider(BASE).person_enrich(TIM, idempotency_key="1")
        assert rsps.calls[0].request.headers["x-api-key"] == "from-settings"


def test_capabilities():
    apollo = provider()

    assert apollo.name == "apollo"
    assert apollo.operations == {"person_enrich", "company_enrich"}
    assert apollo.person_bulk_size == 10
    assert apollo.fields == set(PERSON_FIELDS) | set(COMPANY_FIELDS)
