"""Inbound provider webhooks: asynchronous answers (Apollo's `webhook_url`, for one).

A provider gets a one-use callback URL `/webhooks/inbound/<provider>/<public_id>.<secret>/`
per request. Apollo signs nothing it sends, so the unguessable secret in the URL is the
proof: only its SHA-256 is stored, compared in constant time. The token is used up with a
conditional UPDATE in the same transaction that records the answer, so a delivery the
provider repeats (Apollo retries; its docs ask receivers to be idempotent) is recorded
once, and one that failed half-way leaves the token open for the retry.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from providers.apollo.adapter import NAME as APOLLO
from providers.apollo.adapter import _phone_candidate as apollo_phone_candidate
from webhooks.models import InboundToken

# Compared against when the public id is unknown, so that case takes as long as a wrong
# secret and the answer time tells nothing.
_NO_HASH = hashlib.sha256(b"no such token").hexdigest()
# The most people one callback is read for (Apollo's bulk enrichment takes 10).
_MAX_PEOPLE = 100


class InboundRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class InboundResult:
    processed: bool  # False: this token's answer was already recorded
    candidates: int = 0


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def inbound_token_issue(
    *, provider: str, run_id: int | None = None, lead_id: int | None = None
) -> str:
    """Return the absolute callback URL for one request to `provider`."""
    public_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    InboundToken.objects.create(
        provider=provider,
        public_id=public_id,
        secret_hash=_hash(secret),
        run_id=run_id,
        lead_id=lead_id,
        expires_at=timezone.now() + timedelta(seconds=settings.INBOUND_WEBHOOK_TTL_SECONDS),
    )
    token = f"{public_id}.{secret}"
    path = reverse("webhooks:inbound", kwargs={"provider": provider, "token": token})
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def inbound_receive(*, provider: str, token: str, payload: Any) -> InboundResult:
    """Check the token, record the answer once, and read candidates from it.

    Raises InboundRejected(404) for a token that is unknown, for another provider, or
    wrong, and (410) for one past its expiry.
    """
    public_id, _, secret = token.partition(".")
    row = InboundToken.objects.filter(public_id=public_id[:32]).first()
    expected = row.secret_hash if row is not None else _NO_HASH
    matches = hmac.compare_digest(expected, _hash(secret))
    if row is None or not matches or row.provider != provider:
        raise InboundRejected(404, "unknown callback token")
    now = timezone.now()
    if row.expires_at <= now and row.used_at is None:
        raise InboundRejected(410, "this callback token has expired")
    with transaction.atomic():
        claimed = InboundToken.objects.filter(id=row.id, used_at__isnull=True).update(used_at=now)
        if claimed != 1:
            return InboundResult(processed=False)
        candidates = provider_candidates(provider=provider, payload=payload)
        InboundToken.objects.filter(id=row.id).update(
            payload=payload, result={"candidates": candidates}
        )
    return InboundResult(processed=True, candidates=len(candidates))


def provider_candidates(*, provider: str, payload: Any) -> list[dict[str, Any]]:
    """Return the values the payload states, as candidate dicts; [] for an unknown shape."""
    if provider == APOLLO:
        return _apollo_candidates(payload)
    return []


def _apollo_candidates(payload: Any) -> list[dict[str, Any]]:
    """Apollo's phone reveal callback: `people` (or one `person`), each with the
    `phone_numbers` its people enrichment would have held, read by the Apollo adapter."""
    if not isinstance(payload, dict):
        return []
    people = payload.get("people")
    if not isinstance(people, list):
        people = [payload.get("person")]
    found = []
    for person in people[:_MAX_PEOPLE]:
        if not isinstance(person, dict):
            continue
        candidate = apollo_phone_candidate(person.get("phone_numbers"))
        if candidate is None:
            continue
        found.append(
            {
                "person_id": str(person.get("id") or ""),
                "field": candidate.field,
                "value": candidate.value,
                "confidence": candidate.confidence,
                "source": candidate.source,
            }
        )
    return found
