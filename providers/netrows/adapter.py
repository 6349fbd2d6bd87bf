"""Netrows as a Provider: a profile's fields as Candidates, its failures as errors.

Everything known of the API comes from Netrows' guide "How to Build a Lead Enrichment
Pipeline with APIs (2026)"
(https://www.netrows.com/blog/how-to-build-lead-enrichment-pipeline-with-apis-2026): the
worker there reads job_title, company_name, company_size, industry, location and skills
from the top level of the answer, and tells 404 "Profile not found" (never retried) from
429 and 5xx (retried). What the guide does not show is read conservatively, and the code
says so where it decides.

Netrows states no confidence, so each field gets a fixed one (CONFIDENCE, with reasons).
A profile's company fields describe the person's current employer as the profile states it.
"""

from typing import Any

import requests
from django.conf import settings

from providers.base import (
    AuthError,
    Permanent,
    PersonQuery,
    ProviderAnswer,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from providers.candidates import make_candidate
from providers.http import HttpResult, retry_after_seconds
from providers.netrows.client import NetrowsClient

NAME = "netrows"

# Leadsmith field -> the profile key the guide's worker stores it from. `skills` (a list)
# has no Leadsmith field, so it is neither mapped nor kept.
PROFILE_KEYS = {
    "job_title": "job_title",
    "location": "location",
    "company_name": "company_name",
    "employee_range": "company_size",
    "industry": "industry",
}

CONFIDENCE = {
    # The current position on a profile its owner keeps up to date: applied.
    "job_title": 0.80,
    # The profile's self-stated area, often a metro region rather than a city.
    "location": 0.70,
    # The employer the profile names, which need not be the company the lead was filed
    # under: reviewed rather than applied.
    "company_name": 0.70,
    # The size band and industry the employer declares for itself, in LinkedIn's own
    # taxonomy, which other providers' values need not match: reviewed.
    "employee_range": 0.60,
    "industry": 0.60,
}

# The guide promises "100 free credits" but no price per call; Netrows' documentation says
# "Each API call costs 1 credit" (https://docs.netrows.com). Nothing says a 404 is free, so
# a lookup that finds nobody is counted too: the budget may over-count, never under-count.
CREDITS_PER_CALL = 1.0

# The guide's limits are per minute ("10-100 req/min depending on plan").
DEFAULT_RETRY_AFTER = 60.0


class NetrowsProvider:
    """Netrows as a Provider; `api_key` defaults to settings.NETROWS_API_KEY."""

    name = NAME
    operations = frozenset({"person_enrich"})
    fields = frozenset(PROFILE_KEYS)
    person_bulk_size = 1
    company_bulk_size = 1

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.client = NetrowsClient(
            base_url,
            api_key=settings.NETROWS_API_KEY if api_key is None else api_key,
            timeout=timeout,
            session=session,
        )

    def person_enrich(self, query: PersonQuery, *, idempotency_key: str) -> ProviderAnswer:
        # The guide shows no idempotency key, so none is sent.
        identity = {
            name: value
            for name, value in (("linkedin_url", query.linkedin_url), ("email", query.email))
            if value
        }
        if not identity:
            # The guide's API takes a LinkedIn URL or an email, nothing else; refusing here
            # keeps an unanswerable question from costing a credit.
            raise Permanent("a netrows lookup needs a LinkedIn URL or an email")
        result = self.client.people_profile(identity)
        if result.status == 200:
            return _profile_answer(result.body)
        if result.status == 404:
            # The guide shows the status but not the body of a 404, so any 404 is a miss,
            # whatever it says; what it says is kept for whoever reads the ledger.
            detail = _detail(result.body)
            return ProviderAnswer(
                candidates=[],
                credits=CREDITS_PER_CALL,
                http_status=404,
                raw={"error": detail} if detail else {},
            )
        raise _error(result)


def _profile_answer(body: Any) -> ProviderAnswer:
    if not isinstance(body, dict):
        raise Permanent("netrows answered 200 with a body that is not an object", http_status=200)
    if not any(key in body for key in PROFILE_KEYS.values()):
        # None of the fields the guide's worker reads: not a profile, but a changed or
        # broken answer. Netrows may have counted the call; the ledger records what it knows.
        raise Permanent("netrows answered 200 without any profile field", http_status=200)
    candidates = []
    for field, key in PROFILE_KEYS.items():
        candidate = make_candidate(field, body.get(key), CONFIDENCE[field], source=NAME)
        if candidate is not None:
            candidates.append(candidate)
    profile = {key: body[key] for key in PROFILE_KEYS.values() if key in body}
    return ProviderAnswer(
        candidates=candidates,
        credits=CREDITS_PER_CALL,
        http_status=200,
        raw={"profile": profile, "credits": CREDITS_PER_CALL},
    )


def _error(result: HttpResult) -> ProviderError:
    status = result.status
    detail = _detail(result.body)
    message = f"netrows answered {status}" + (f": {detail}" if detail else "")
    if status == 429:
        wait = retry_after_seconds(result.headers, default=DEFAULT_RETRY_AFTER)
        return RateLimited(message, retry_after=wait, http_status=status)
    if status in (401, 403):
        return AuthError(message, http_status=status)
    # The guide does not show what spent credits look like; 402 is HTTP's "Payment
    # Required", and reading it as QuotaExhausted pauses Netrows instead of failing each run.
    if status == 402:
        return QuotaExhausted(message, http_status=status)
    if status >= 500:
        return Transient(message, http_status=status)
    return Permanent(message, http_status=status)


def _detail(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for key in ("error", "message"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return ""
