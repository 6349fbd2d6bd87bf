"""Inbound provider callbacks: a one-use token in the URL, compared in constant time;
a repeated delivery is recorded once."""

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import LeadFactory
from webhooks import inbound
from webhooks.inbound import inbound_token_issue
from webhooks.models import InboundToken

pytestmark = pytest.mark.django_db

# The shape of Apollo's phone reveal callback: the people matched, with the phone numbers
# their people enrichment record would hold (https://docs.apollo.io/docs/retrieve-mobile-
# phone-numbers-for-contacts). Numbers are from the reserved 555-01xx fictional range.
APOLLO_CALLBACK = {
    "status": "success",
    "people": [
        {
            "id": "64a7ff0cc4dfae00013df1a5",
            "phone_numbers": [
                {
                    "raw_number": "+1 415-555-0132",
                    "sanitized_number": "+14155550132",
                    "type_cd": "mobile",
                    "status": "valid_number",
                }
            ],
        },
        {"id": "64a7ff0cc4dfae00013df1a6", "phone_numbers": []},
    ],
}


def _path(url: str) -> str:
    return urlsplit(url).path


def _post(path: str, payload) -> dict:
    response = Client().post(path, json.dumps(payload), content_type="application/json")
    return response


def test_a_callback_is_recorded_with_its_candidates(settings):
    settings.PUBLIC_BASE_URL = "https://leads.example.com"
    lead = LeadFactory()
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)
    assert url.startswith("https://leads.example.com/webhooks/inbound/apollo/")
    response = _post(_path(url), APOLLO_CALLBACK)
    assert response.status_code == 200
    assert response.json() == {"status": "processed", "candidates": 1}
    token = InboundToken.objects.get()
    assert token.used_at is not None
    assert token.lead == lead
    assert token.payload == APOLLO_CALLBACK
    (candidate,) = token.result["candidates"]
    assert candidate["field"] == "phone"
    assert candidate["value"] == "+14155550132"
    assert candidate["source"] == "apollo"
    assert candidate["person_id"] == "64a7ff0cc4dfae00013df1a5"


def test_a_replayed_delivery_is_processed_once():
    url = inbound_token_issue(provider="apollo")
    assert _post(_path(url), APOLLO_CALLBACK).json()["status"] == "processed"
    altered = {**APOLLO_CALLBACK, "people": []}
    replay = _post(_path(url), altered)
    assert replay.status_code == 200
    assert replay.json()["status"] == "already processed"
    assert InboundToken.objects.get().payload == APOLLO_CALLBACK


@pytest.mark.parametrize("spoil", ["secret", "id", "provider", "no secret"])
def test_a_wrong_token_is_a_404_and_uses_nothing_up(spoil):
    url = inbound_token_issue(provider="apollo")
    path = _path(url)
    public_id, secret = path.rstrip("/").rsplit("/", 1)[1].split(".")
    bad = {
        "secret": path.replace(secret, secret[:-2] + ("AA" if secret[-2:] != "AA" else "BB")),
        "id": path.replace(public_id, "0" * len(public_id)),
        "provider": path.replace("/apollo/", "/pdl/"),
        "no secret": path.replace(f".{secret}", ""),
    }[spoil]
    response = _post(bad, APOLLO_CALLBACK)
    assert response.status_code == 404
    assert InboundToken.objects.get().used_at is None


def test_the_secret_is_compared_in_constant_time_even_for_an_unknown_id(monkeypatch):
    compared = []
    real = inbound.hmac.compare_digest

    def recording(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(inbound.hmac, "compare_digest", recording)
    url = inbound_token_issue(provider="apollo")
    assert _post(_path(url), APOLLO_CALLBACK).status_code == 200
    assert _post("/webhooks/inbound/apollo/ffffffffffffffff.nope/", {}).status_code == 404
    assert len(compared) == 2
    assert all(len(a) == len(b) == 64 for a, b in compared)


def test_an_expired_token_is_a_410():
    url = inbound_token_issue(provider="apollo")
    InboundToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _post(_path(url), APOLLO_CALLBACK).status_code == 410
    assert InboundToken.objects.get().used_at is None


def test_bad_requests_are_refused_with_json():
    url = inbound_token_issue(provider="apollo")
    path = _path(url)
    response = Client().post(path, "not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert Client().get(path).status_code == 405
    response = Client().post(path, '{"a": "\\u0000"}', content_type="application/json")
    assert response.status_code == 400
    assert InboundToken.objects.get().used_at is None


def test_an_unknown_payload_shape_is_recorded_with_no_candidates():
    url = inbound_token_issue(provider="apollo")
    assert _post(_path(url), ["not", "a", "dict"]).json() == {
        "status": "processed",
        "candidates": 0,
    }
