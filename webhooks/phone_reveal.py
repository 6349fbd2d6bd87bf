"""Asking Apollo for a lead's phone numbers: the request whose answer comes back later, to a
one-use callback address (webhooks.inbound).

A reveal is asked for by a person, never by the waterfall: Apollo bills up to 8 credits
more for it. It goes through the ledger like any paid call, so asking twice for the same
person within the phone's freshness period pays once, and through the same gate as a
run (an erased or suppressed person, a lead outside the ICP and a phone set by hand are
refused before anything is paid).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from enrichment.fields import FIELDS
from enrichment.selectors import lead_plan
from enrichment.services import lead_candidates_merge
from leads.models import Lead
from providers.apollo.adapter import NAME as APOLLO
from providers.apollo.adapter import PERSON_CREDITS, PHONE_REVEAL_CREDITS, ApolloProvider
from providers.base import Deferred, ProviderError, RateLimited
from providers.ledger import call_with_ledger
from providers.registry import provider_configs
from webhooks.inbound import inbound_token_issue

OPERATION = "person_reveal_phone"


class PhoneRevealRefused(Exception):
    """Nothing was asked (or Apollo refused): `status` is the HTTP status that says why and
    `code` the word an integration can branch on."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True)
class PhoneReveal:
    # False: the ledger already held this question, asked within the phone's freshness
    # period; nothing was paid and no second callback will come.
    requested: bool
    provider_call_id: int
    # What the person's other values in the immediate answer did to the lead (None when
    # nothing new was merged).
    merge: dict | None


def phone_reveal_request(*, lead_id: int) -> PhoneReveal:
    """Ask Apollo for the lead's phone numbers, delivered to a callback issued here.

    Raises PhoneRevealRefused: 404 no such lead; 409 Apollo not configured or switched
    off, or the gate said no; 429 held back (rate limit, budget, the same question
    in flight), with when to ask again; 502 Apollo failed or refused the request.
    """
    lead = Lead.objects.select_related("company").filter(id=lead_id).first()
    if lead is None:
        raise PhoneRevealRefused(404, "not_found", f"lead {lead_id} does not exist")
    if not settings.APOLLO_API_KEY:
        # 409, not 503: the server works, its settings leave nothing to ask.
        raise PhoneRevealRefused(
            409,
            "not_configured",
            "Apollo is not configured: set APOLLO_API_KEY to ask it for phone numbers",
        )
    config = provider_configs().get(APOLLO)
    if config is not None and not config.enabled:
        raise PhoneRevealRefused(409, "disabled", "Apollo is switched off in its provider settings")
    plan = lead_plan(lead, ["phone"])
    if plan.skip_reason:
        raise PhoneRevealRefused(409, "skipped", f"not asked: {plan.skip_reason}")

    apollo = ApolloProvider(settings.APOLLO_BASE_URL)

    def ask(idempotency_key: str):
        # Issued only when the ledger decides to pay: a reused answer gets no callback.
        webhook_url = inbound_token_issue(provider=APOLLO, lead_id=lead.id)
        return apollo.person_reveal_phone(
            plan.query, webhook_url=webhook_url, idempotency_key=idempotency_key
        )

    try:
        answer, row = call_with_ledger(
            provider=APOLLO,
            operation=OPERATION,
            lookup_keys=plan.query.lookup_keys(),
            scope=f"lead:{lead.id}",
            hit_ttl=timedelta(days=FIELDS["phone"].fresh_for_days),
            miss_ttl=timedelta(days=settings.PROVIDER_MISS_TTL_DAYS),
            call=ask,
            expected_credits=PERSON_CREDITS + PHONE_REVEAL_CREDITS,
        )
    except (Deferred, RateLimited) as exc:
        raise PhoneRevealRefused(
            429,
            "held_back",
            f"not asked yet: {exc}; ask again in {exc.retry_after:.0f} s",
            retry_after=exc.retry_after,
        ) from None
    except ProviderError as exc:
        raise PhoneRevealRefused(
            502, "provider_error", f"Apollo did not take the request: {exc}"
        ) from None
    requested = row.cached_from_id is None
    merge = None
    if requested and answer.candidates:
        merge = lead_candidates_merge(
            lead_id=lead.id, candidates=answer.candidates, provider_call=row
        )
    return PhoneReveal(requested=requested, provider_call_id=row.id, merge=merge)
