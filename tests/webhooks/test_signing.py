"""Signatures checked by a verifier written here from the Standard Webhooks spec text
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md),
sharing no code with webhooks/signing.py."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from webhooks.models import Delivery
from webhooks.services import delivery_attempt, webhook_event_publish
from webhooks.signing import secret_generate, signature

pytestmark = pytest.mark.django_db

TOLERANCE_SECONDS = 5 * 60


class VerificationError(Exception):
    pass


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None):
    """Standard Webhooks, symmetric:

    - the secret is `whsec_` + base64; the HMAC key is the decoded bytes;
    - the signed content is `{webhook-id}.{webhook-timestamp}.{payload}`;
    - `webhook-signature` is a space-delimited list of `v1,<base64 HMAC-SHA256>`; one
      matching signature is enough, compared in constant time;
    - `webhook-timestamp` (integer unix seconds) must be within a tolerance of now.
    """
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    now = time.time() if now is None else now
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise VerificationError("timestamp outside the tolerance")
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for versioned in headers["webhook-signature"].split(" "):
        version, _, sig = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            return json.loads(body)
    raise VerificationError("no matching signature")


def test_the_published_test_vector_is_reproduced():
    # The vector the Standard Webhooks reference libraries test against.
    assert (
        signature(
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    verify(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        {
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
        b'{"test": 2432232314}',
        now=1614265330,
    )


def test_a_secret_is_whsec_and_24_to_64_random_bytes():
    secret = secret_generate()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret[6:])) <= 64
    assert secret != secret_generate()


def test_a_real_delivery_verifies_with_the_independent_verifier(receiver, subscribe):
    subscription = subscribe(receiver.url)
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={"lead_id": 7})
    delivery = delivery_attempt(delivery_id=delivery_id)
    assert delivery.state == Delivery.State.DELIVERED
    (request,) = receiver.received
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == delivery.message_id
    event = verify(subscription.secret, request.headers, request.body)
    assert event["type"] == "lead.enriched"
    assert event["data"] == {"lead_id": 7}
    assert event["timestamp"]


def test_the_verifier_refuses_tampering_a_wrong_secret_and_old_timestamps(receiver, subscribe):
    subscription = subscribe(receiver.url)
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={"lead_id": 7})
    delivery_attempt(delivery_id=delivery_id)
    (request,) = receiver.received
    with pytest.raises(VerificationError):
        verify(subscription.secret, request.headers, request.body.replace(b"7", b"8"))
    with pytest.raises(VerificationError):
        verify(secret_generate(), request.headers, request.body)
    with pytest.raises(VerificationError):
        verify(subscription.secret, request.headers, request.body, now=time.time() + 3600)
    # A list of signatures (a key rotation) verifies when any one of them matches.
    rotated = dict(request.headers)
    rotated["webhook-signature"] = "v1,bm9wZQ== " + request.headers["webhook-signature"]
    verify(subscription.secret, rotated, request.body)


def test_each_attempt_has_the_same_id_and_a_fresh_timestamp_and_signature(
    receiver, subscribe, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    subscription = subscribe(receiver.url)
    receiver.answer(500)
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={"lead_id": 1})
    delivery_attempt(delivery_id=delivery_id)
    Delivery.objects.filter(id=delivery_id).update(next_attempt_at="2000-01-01T00:00Z")
    first_timestamp = int(receiver.received[0].headers["webhook-timestamp"])
    time.sleep(1.05)
    delivery_attempt(delivery_id=delivery_id)
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) > first_timestamp
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    verify(subscription.secret, second.headers, second.body)
