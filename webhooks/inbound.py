"""Inbound provider webhooks: asynchronous answers (Apollo's `webhook_url`, for one;
webhooks.phone_reveal is what asks for it).

A provider gets a one-use callback URL `/webhooks/inbound/<provider>/<public_id>.<secret>/`
per request. Apollo signs nothing it sends, so the unguessable secret in the URL is the
proof: only its SHA-256 is stored, compared in constant time. The token is used up with a
conditional UPDATE in the same transaction that records the answer and merges its values
into the token's lead, so a delivery the provider repeats (Apollo retries; its docs ask
receivers to be idempotent) is recorded and merged once, and one that failed half-way
leaves the token open for the retry.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from enrichment.services import lead_candidates_merge
from leads.models import Lead
from leads.normalize import InvalidValue, normalize_email, normalize_linkedin_url
from providers.apollo.adapter import NAME as APOLLO
from providers.apollo.adapter import PHONE_REVEAL_CREDITS
from providers.apollo.adapter import _phone_candidate as apollo_phone_candidate
from providers.base import Candidate
from providers.ledger import lookup_key_hash
from providers.models import ProviderCall
from webhooks.models import InboundToken

# Compared against when the public id is unknown, so that case takes as long as a wrong
# secret and the answer time tells nothing.
_NO_HASH = hashlib.sha256(b"no such token").hexdigest()
# The ledger row of what a delivery cost (webhooks.phone_reveal asks for the delivery).
CALLBACK_OPERATION = "phone_reveal_callback"
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
        people = provider_people(provider=provider, payload=payload)
        candidates = [
            {"person_id": person.person_id, **_candidate_record(candidate)}
            for person in people
            for candidate in person.candidates
        ]
        # In this transaction: a merge that fails rolls the token back open for the retry,
        # and a repeated delivery, refused by the claim above, merges nothing twice.
        charge = _callback_charge(token=row, people=people)
        merge = _merge(token=row, people=people, charge=charge)
        credits = {"credits": float(charge.credits)} if charge is not None else {}
        InboundToken.objects.filter(id=row.id).update(
            payload=payload, result={"candidates": candidates, **credits, **merge}
        )
    return InboundResult(processed=True, candidates=len(candidates))


@dataclass(frozen=True)
class CallbackPerson:
    """One person of a callback: the provider's id for them, what identifies them, and the
    values stated about them."""

    person_id: str
    candidates: list[Candidate]
    email: str = ""
    linkedin_url: str = ""


def provider_people(*, provider: str, payload: Any) -> list[CallbackPerson]:
    """Return the people the payload speaks of; [] for an unknown shape."""
    if provider == APOLLO:
        return _apollo_people(payload)
    return []


def _apollo_people(payload: Any) -> list[CallbackPerson]:
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
        found.append(
            CallbackPerson(
                person_id=str(person.get("id") or ""),
                candidates=[candidate] if candidate is not None else [],
                email=_identity(normalize_email, person.get("email")),
                linkedin_url=_identity(normalize_linkedin_url, person.get("linkedin_url")),
            )
        )
    return found


def _identity(normalize, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        return ""
    try:
        return normalize(value)
    except (InvalidValue, ValueError):
        return ""


def _candidate_record(candidate: Candidate) -> dict[str, Any]:
    return {
        "field": candidate.field,
        "value": candidate.value,
        "confidence": candidate.confidence,
        "source": candidate.source,
    }


def _callback_charge(*, token: InboundToken, people: list[CallbackPerson]) -> ProviderCall | None:
    """Record in the ledger what the delivery costs: Apollo bills a revealed phone when it
    sends it, for each person with a number, whether or not it can be merged here. Once
    per token: the claim that uses the token up is in the same transaction."""
    revealed = sum(1 for person in people if person.candidates)
    if token.provider != APOLLO or not revealed:
        return None
    return ProviderCall.objects.create(
        provider=token.provider,
        operation=CALLBACK_OPERATION,
        lookup_key_hash=lookup_key_hash(f"callback:{token.public_id}"),
        outcome=ProviderCall.Outcome.HIT,
        http_status=200,
        credits=Decimal(str(PHONE_REVEAL_CREDITS * revealed)),
        response={"people_with_a_phone": revealed},
    )


def _merge(
    *, token: InboundToken, people: list[CallbackPerson], charge: ProviderCall | None
) -> dict[str, Any]:
    """Merge the values stated about the token's lead into it; return what to record:
    `merge` (the counts, or None when nothing was merged), `person_id` and `reason`."""
    lead_id = token.lead_id or (token.run.lead_id if token.run_id else None)
    if lead_id is None:
        return {"merge": None, "reason": "the token was issued for no lead"}
    lead = Lead.objects.filter(id=lead_id).first()
    if lead is None:
        return {"merge": None, "reason": f"lead {lead_id} no longer exists"}
    person, reason = _person_of(lead, people)
    if person is None:
        return {"merge": None, "reason": reason}
    if not person.candidates:
        return {"merge": None, "person_id": person.person_id, "reason": "no usable value"}
    # The provenance is the delivery's own ledger row, the one that bears its cost.
    counts = lead_candidates_merge(
        lead_id=lead.id, candidates=person.candidates, provider_call=charge
    )
    return {"merge": counts, "person_id": person.person_id, "reason": reason}


def _person_of(lead: Lead, people: list[CallbackPerson]) -> tuple[CallbackPerson | None, str]:
    """Return the person of the callback who is the lead, and why; None when that cannot be
    told for sure: values about someone else must never land on the lead."""
    if not people:
        return None, "the callback names nobody"
    identified = [person for person in people if _same_person(lead, person) is True]
    if len(identified) == 1:
        return identified[0], "the person's email or LinkedIn URL is the lead's"
    if len(identified) > 1:
        return None, f"{len(identified)} people of the callback have the lead's identity"
    if len(people) == 1:
        # One token is issued per request about one lead: its only answer is that lead,
        # unless the answer itself says it is someone else.
        if _same_person(lead, people[0]) is False:
            return None, "the person's email or LinkedIn URL is not the lead's"
        return people[0], "the only person of a callback issued for this lead"
    return None, (
        f"{len(people)} people in the callback and none carries the lead's email or LinkedIn URL"
    )


def _same_person(lead: Lead, person: CallbackPerson) -> bool | None:
    """True when an identity both state agrees, False when they state one that differs,
    None when they have none in common."""
    verdict = None
    for ours, theirs in ((lead.email, person.email), (lead.linkedin_url, person.linkedin_url)):
        if ours and theirs:
            if ours == theirs:
                return True
            verdict = False
    return verdict
