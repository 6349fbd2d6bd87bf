"""Inbound callbacks merged into the token's lead: once, by the run's merge policy, and
only into the lead the callback is about."""

import json
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from enrichment.models import EnrichmentRun, Observation
from enrichment.review import field_set_manually
from tests.factories import LeadFactory
from webhooks import inbound
from webhooks.inbound import inbound_receive, inbound_token_issue
from webhooks.models import InboundToken

pytestmark = pytest.mark.django_db

# Numbers from the reserved 555-01xx fictional range.
PHONE = "+14155550132"
OTHER_PHONE = "+14155550177"


def _person(person_id: str, number: str | None, **identity) -> dict:
    # The shape of a person in Apollo's phone reveal callback
    # (https://docs.apollo.io/docs/retrieve-mobile-phone-numbers-for-contacts).
    numbers = []
    if number is not None:
        numbers.append(
            {
                "raw_number": number,
                "sanitized_number": number,
                "type_cd": "mobile",
                "status": "valid_number",
            }
        )
    return {"id": person_id, "phone_numbers": numbers, **identity}


def _callback(*people) -> dict:
    return {"status": "success", "people": list(people)}


def _post(url: str, payload):
    return Client().post(urlsplit(url).path, json.dumps(payload), content_type="application/json")


def _phones(lead) -> list[Observation]:
    return list(Observation.objects.filter(lead=lead, field="phone").order_by("id"))


def test_a_callback_puts_the_phone_on_the_lead_with_the_merge_outcome():
    lead = LeadFactory(email="ada@acme.com")
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)

    response = _post(url, _callback(_person("64a7ff0cc4dfae00013df1a5", "+1 415-555-0132")))

    assert response.status_code == 200
    assert response.json() == {"status": "processed", "candidates": 1}
    (observation,) = _phones(lead)
    assert observation.value == PHONE
    assert observation.source == "apollo"
    assert observation.confidence == pytest.approx(0.80)
    # Apollo's fixed 0.80 for a phone is under the phone's accept threshold: a reviewer
    # decides, exactly as when the same number comes back in a run.
    assert observation.state == Observation.State.PENDING_REVIEW
    assert observation.run is None
    # The delivery is what Apollo bills: its ledger row is the observation's provenance.
    assert observation.provider_call.operation == "phone_reveal_callback"
    assert observation.provider_call.credits == 8
    assert InboundToken.objects.get().result["credits"] == 8.0
    lead.refresh_from_db()
    assert not lead.phone
    token = InboundToken.objects.get()
    merge = token.result["merge"]
    assert (merge["applied"], merge["pending_review"], merge["discarded"]) == (0, 1, 0)
    assert token.result["person_id"] == "64a7ff0cc4dfae00013df1a5"
    assert token.result["reason"] == "the only person of a callback issued for this lead"


def test_a_replayed_delivery_merges_nothing_twice():
    lead = LeadFactory()
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)
    payload = _callback(_person("p1", PHONE))
    assert _post(url, payload).json()["status"] == "processed"
    replay = _post(url, payload)
    assert replay.status_code == 200
    assert replay.json()["status"] == "already processed"
    assert len(_phones(lead)) == 1


def test_a_phone_set_by_hand_is_not_overwritten():
    lead = LeadFactory()
    user = get_user_model().objects.create_user(username="sdr")
    field_set_manually(subject=lead, field="phone", value="+1 415 555 0199", user=user)
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)

    _post(url, _callback(_person("p1", PHONE)))

    lead.refresh_from_db()
    assert lead.phone == "+14155550199"
    manual, proposed = _phones(lead)
    assert (manual.source, manual.state) == ("manual", Observation.State.APPLIED)
    assert (proposed.source, proposed.value) == ("apollo", PHONE)
    assert proposed.state == Observation.State.DISCARDED
    assert "locked" in proposed.reason
    assert InboundToken.objects.get().result["merge"]["discarded"] == 1


def test_a_wrong_token_changes_nothing():
    lead = LeadFactory()
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)
    secret = urlsplit(url).path.rstrip("/").rsplit(".", 1)[1]
    wrong = url.replace(secret, secret[:-2] + ("AA" if secret[-2:] != "AA" else "BB"))

    response = _post(wrong, _callback(_person("p1", PHONE)))

    assert response.status_code == 404
    assert _phones(lead) == []
    token = InboundToken.objects.get()
    assert (token.used_at, token.payload, token.result) == (None, None, None)


def test_of_several_people_only_the_one_with_the_leads_email_is_merged():
    lead = LeadFactory(email="ada@acme.com")
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)

    _post(
        url,
        _callback(
            _person("someone-else", OTHER_PHONE, email="grace@acme.com"),
            _person("ada", PHONE, email="Ada@Acme.com"),
        ),
    )

    assert [o.value for o in _phones(lead)] == [PHONE]
    assert InboundToken.objects.get().result["person_id"] == "ada"


def test_several_people_none_identifiable_are_recorded_and_nothing_is_merged():
    lead = LeadFactory(email="ada@acme.com")
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)
    payload = _callback(_person("a", PHONE), _person("b", OTHER_PHONE))

    assert _post(url, payload).json() == {"status": "processed", "candidates": 2}

    assert _phones(lead) == []
    token = InboundToken.objects.get()
    assert token.used_at is not None
    assert token.payload == payload
    assert token.result["merge"] is None
    assert "2 people in the callback" in token.result["reason"]


def test_one_person_who_is_someone_else_is_not_merged():
    lead = LeadFactory(email="ada@acme.com")
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)
    _post(url, _callback(_person("p1", PHONE, email="grace@acme.com")))
    assert _phones(lead) == []
    assert InboundToken.objects.get().result["reason"] == (
        "the person's email or LinkedIn URL is not the lead's"
    )


def test_a_token_issued_for_a_run_merges_into_the_runs_lead():
    lead = LeadFactory()
    run = EnrichmentRun.objects.create(lead=lead, trigger="manual", state="done")
    url = inbound_token_issue(provider="apollo", run_id=run.id)
    _post(url, _callback(_person("p1", PHONE)))
    assert [o.value for o in _phones(lead)] == [PHONE]


def test_a_token_for_no_lead_records_the_answer_and_merges_nothing():
    url = inbound_token_issue(provider="apollo")
    _post(url, _callback(_person("p1", PHONE)))
    assert not Observation.objects.exists()
    token = InboundToken.objects.get()
    assert token.result["merge"] is None
    assert token.result["reason"] == "the token was issued for no lead"


def test_a_merge_that_fails_leaves_the_token_open_for_the_retry(monkeypatch):
    lead = LeadFactory()
    url = inbound_token_issue(provider="apollo", lead_id=lead.id)
    token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[1]
    payload = _callback(_person("p1", PHONE))

    def failing(**kwargs):
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(inbound, "lead_candidates_merge", failing)
        with pytest.raises(RuntimeError):
            inbound_receive(provider="apollo", token=token, payload=payload)
    row = InboundToken.objects.get()
    assert (row.used_at, row.payload) == (None, None)

    assert inbound_receive(provider="apollo", token=token, payload=payload).processed
    assert [o.value for o in _phones(lead)] == [PHONE]
