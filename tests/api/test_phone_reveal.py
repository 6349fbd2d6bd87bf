"""POST /api/leads/{id}/reveal-phone/: Apollo asked for the phones with a one-use callback,
its documented answers replayed with `responses`, the callback delivered through the real
URL; what it costs is in the ledger, once."""

import json
from urllib.parse import urlsplit

import pytest
import responses
from django.test import Client

from enrichment.models import Observation
from enrichment.review import field_set_manually
from leads.services import lead_suppress
from providers.models import ProviderCall
from tests.factories import CompanyFactory, LeadFactory
from tests.providers.vendor_fixtures import replay
from webhooks.models import InboundToken

pytestmark = pytest.mark.django_db

BASE = "https://api.apollo.invalid/api/v1"
MATCH = f"{BASE}/people/match"
PUBLIC = "https://leads.example.com"
# The person of the documented People Enrichment answer (fixture people_match_hit).
APOLLO_ID = "64a7ff0cc4dfae00013df1a5"
PHONE = "+14155550132"  # the reserved 555-01xx fictional range


@pytest.fixture(autouse=True)
def apollo(settings):
    settings.APOLLO_API_KEY = "apollo-test-key-9f8e7d"
    settings.APOLLO_BASE_URL = BASE
    settings.PUBLIC_BASE_URL = PUBLIC


@pytest.fixture
def tim():
    return LeadFactory(
        first_name="Tim", last_name="Zheng", company=CompanyFactory(domain="apollo.io")
    )


def _reveal(client, lead):
    return client.post(f"/api/leads/{lead.id}/reveal-phone/")


def _callback(*numbers: str, person_id: str = APOLLO_ID, **identity) -> dict:
    # The shape of Apollo's phone reveal delivery
    # (https://docs.apollo.io/docs/retrieve-mobile-phone-numbers-for-contacts).
    phones = [
        {"raw_number": n, "sanitized_number": n, "type_cd": "mobile", "status": "valid_number"}
        for n in numbers
    ]
    return {"status": "success", "people": [{"id": person_id, "phone_numbers": phones, **identity}]}


def _deliver(url: str, payload: dict):
    assert url.startswith(PUBLIC + "/webhooks/inbound/apollo/")
    return Client().post(urlsplit(url).path, json.dumps(payload), content_type="application/json")


def test_a_reveal_asks_apollo_with_a_callback_and_the_phone_arrives_there_once(sdr, tim):
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", "people_match_hit")
        response = _reveal(sdr, tim)
        sent = json.loads(rsps.calls[0].request.body)

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["requested"] is True
    assert sent["reveal_phone_number"] is True
    assert (sent["first_name"], sent["last_name"], sent["domain"]) == ("Tim", "Zheng", "apollo.io")
    request_row = ProviderCall.objects.get(id=body["provider_call"])
    assert (request_row.provider, request_row.operation) == ("apollo", "person_reveal_phone")
    assert (request_row.outcome, request_row.credits) == ("hit", 1)
    # The person's other values in the immediate answer are merged, with that row as source.
    assert body["merge"]["applied"] + body["merge"]["pending_review"] > 0
    title = Observation.objects.get(lead=tim, field="job_title")
    assert (title.value, title.provider_call_id) == ("Founder & CEO", request_row.id)
    assert not Observation.objects.filter(lead=tim, field="phone").exists()

    token = InboundToken.objects.get()
    assert token.lead_id == tim.id and token.used_at is None
    delivered = _deliver(sent["webhook_url"], _callback("+1 415-555-0132"))
    assert delivered.status_code == 200
    assert delivered.json() == {"status": "processed", "candidates": 1}

    (phone,) = Observation.objects.filter(lead=tim, field="phone")
    assert phone.value == PHONE
    charge = phone.provider_call
    assert (charge.provider, charge.operation, charge.credits) == (
        "apollo",
        "phone_reveal_callback",
        8,
    )

    # Apollo retries deliveries: a second one is answered and costs or changes nothing.
    again = _deliver(sent["webhook_url"], _callback("+1 415-555-0132"))
    assert again.status_code == 200 and again.json()["status"] == "already processed"
    assert ProviderCall.objects.filter(operation="phone_reveal_callback").count() == 1
    assert Observation.objects.filter(lead=tim, field="phone").count() == 1


def test_asking_again_pays_nothing_and_issues_no_second_callback(sdr, tim):
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", "people_match_hit")
        assert _reveal(sdr, tim).status_code == 202
        # No answer is registered for a second call: one would fail the test.
        again = _reveal(sdr, tim)
        assert len(rsps.calls) == 1

    assert again.status_code == 202
    assert again.json()["requested"] is False and again.json()["merge"] is None
    assert InboundToken.objects.count() == 1
    assert ProviderCall.objects.filter(credits__gt=0).count() == 1


def test_a_delivery_for_someone_unidentifiable_is_still_billed_and_merges_nothing(sdr, tim):
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", "people_match_hit")
        _reveal(sdr, tim)
        url = json.loads(rsps.calls[0].request.body)["webhook_url"]
    payload = _callback("+1 415-555-0132", person_id="a")
    payload["people"] += _callback("+1 415-555-0177", person_id="b")["people"]

    assert _deliver(url, payload).status_code == 200

    assert not Observation.objects.filter(lead=tim, field="phone").exists()
    (charge,) = ProviderCall.objects.filter(operation="phone_reveal_callback")
    assert charge.credits == 16  # Apollo bills each number it sends


@pytest.mark.parametrize(
    "setup, code, words",
    [
        ("no key", "not_configured", "set APOLLO_API_KEY"),
        ("suppressed", "skipped", "not asked: suppressed"),
        ("phone set by hand", "skipped", "fresh or locked"),
    ],
)
def test_refusals_say_why_and_pay_nothing(
    sdr, tim, settings, django_user_model, setup, code, words
):
    if setup == "no key":
        settings.APOLLO_API_KEY = ""
    elif setup == "suppressed":
        tim.email = "tim@apollo.io"
        tim.save()
        lead_suppress(lead=tim, reason="erasure request")
    else:
        user = django_user_model.objects.create(username="sdr-1")
        field_set_manually(subject=tim, field="phone", value="+14155550199", user=user)

    with responses.RequestsMock():  # any call to Apollo would fail the test
        response = _reveal(sdr, tim)

    assert response.status_code == 409
    assert response.json()["code"] == code
    assert words in response.json()["message"]
    assert not ProviderCall.objects.exists() and not InboundToken.objects.exists()


@pytest.mark.parametrize(
    "fixture, status, words",
    [
        ("people_match_rate_limited", 429, "ask again in"),
        ("people_match_insufficient_credits", 502, "Apollo did not take the request"),
    ],
)
def test_apollo_refusing_is_an_error_that_says_what_to_do(sdr, tim, fixture, status, words):
    with responses.RequestsMock() as rsps:
        replay(rsps, "POST", MATCH, "apollo", fixture)
        response = _reveal(sdr, tim)

    assert response.status_code == status
    assert words in response.json()["message"]
    # Held back: the header says when to ask again, like any throttled request here.
    assert (int(response["Retry-After"]) > 0) if status == 429 else "Retry-After" not in response
    assert not Observation.objects.filter(lead=tim).exists()


def test_a_request_without_a_key_spends_nothing(tim):
    with responses.RequestsMock():  # any call to Apollo would fail the test
        response = Client().post(f"/api/leads/{tim.id}/reveal-phone/")

    assert response.status_code == 401
    assert not ProviderCall.objects.exists()
