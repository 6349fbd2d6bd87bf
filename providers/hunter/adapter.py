"""Hunter as a Provider: its answers as Candidates, its status codes as the providers' errors.

Reference: https://hunter.io/api-documentation/v2 (calls, "Errors"). Hunter's statuses do
not mean what they mean elsewhere:

- 200 is an answer; the finder's miss is a 200 whose `data.email` is null (free).
- 202: a verification is still running; the same request is counted once → NotReady.
- 222: the remote SMTP server answered unexpectedly; "retry later" → Transient.
- 403 is Hunter's rate limit ("slow down"), not a refusal → RateLimited.
- 429 is the plan's usage limit: asking again cannot help before it resets → QuotaExhausted.
- 451: the person asked Hunter to stop processing their data (`claimed_email`) → Suppressed.
- 401 → AuthError; 5xx → Transient; 400, 422 and anything else → Permanent. So is 404:
  Hunter documents it only as "the requested resource does not exist", never as "no such
  person", so a 404 here means a wrong HUNTER_BASE_URL and must fail loudly.

Credits follow Hunter's credit system (https://help.hunter.io/en/articles/1911617): "no
credits are used if Hunter can't find or verify an email". Hunter has no idempotency
header; the same article says a repeated Email Finder, Email Verifier or Domain Search
request in the same billing period is not counted again, which covers a retried attempt.
"""

import re
from typing import Any

import requests

from providers.base import (
    AuthError,
    Candidate,
    NotReady,
    Permanent,
    PersonQuery,
    ProviderAnswer,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Suppressed,
    Transient,
)
from providers.candidates import make_candidate
from providers.http import HttpResult, retry_after_seconds
from providers.hunter.client import HunterClient

PERSON_FIELDS = ("email", "job_title", "linkedin_url", "phone")
COMPANY_FIELDS = ("company_name", "industry", "employee_range", "hq_location", "technologies")

# "1 credit per email found" by the Email Finder, its verification included.
FINDER_CREDITS = 1.0
# "0.5 credits per email verified" on the unified credit plans. (Data Platform plans count
# one Verification credit instead, from a separate quota.)
VERIFIER_CREDITS = 0.5
# Hunter charges only these verdicts: its own MCP server's Email Verifier tool says "charged
# only for valid, invalid, or accept_all results"; webmail, disposable and unknown are free.
BILLED_VERIFICATIONS = frozenset({"valid", "invalid", "accept_all"})
# "1 credit for up to 10 emails per domain", and per the API reference a Domain Search
# "counts only when it returns at least one result".
DOMAIN_SEARCH_CREDITS = 1.0
# The company is what we want, not its addresses; one address costs what ten do, so ask for
# the least Hunter accepts.
DOMAIN_SEARCH_LIMIT = 1

# The finder's `score` is Hunter's confidence in the person it matched. The position,
# LinkedIn URL and phone come from that same match, so they share its confidence: a weak
# match makes every value it carries weak.
# Hunter states no confidence for the company facts of a Domain Search: 0.8 is one vendor's
# unscored statement, enough to fill an empty company field (accept thresholds 0.6 to 0.75),
# while the merge still sends any disagreement with an applied value to review.
COMPANY_CONFIDENCE = 0.8

# Hunter sends no Retry-After on a 403. Its limits are per second (15, the verifier 10) and
# per minute (500, the verifier 300), and the answer does not say which one tripped: 60 s
# clears both windows, so the retry cannot hit the same one again. A 403 is free, but each
# retry spends one of a run's capped attempts.
RATE_LIMIT_PAUSE_SECONDS = 60.0
# Hunter has already tried for up to 20 s before a 202; a mail server that greylists wants
# minutes, not seconds, and every retry spends an attempt.
VERIFICATION_RETRY_SECONDS = 60.0

# Hunter's error ids are a fixed vocabulary (`wrong_params`, `claimed_email`, …); anything
# else is dropped, and `details` never reaches a message: it may repeat the person's data.
_ERROR_ID = re.compile(r"^[a-z0-9_]{1,64}$")


class HunterProvider:
    """Hunter's email finder, email verifier and domain search as a Provider."""

    name = "hunter"
    operations = frozenset({"person_enrich", "company_enrich", "email_verify"})
    fields = frozenset(PERSON_FIELDS + COMPANY_FIELDS)
    person_bulk_size = 1
    company_bulk_size = 1

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.client = HunterClient(base_url, api_key, timeout=timeout, session=session)

    def person_enrich(self, query: PersonQuery, *, idempotency_key: str) -> ProviderAnswer:
        """Find the person's email (and what Hunter knows with it), or verify a known one."""
        if query.first_name and query.last_name and query.domain:
            result = self.client.email_finder(
                domain=query.domain, first_name=query.first_name, last_name=query.last_name
            )
            return self._found(result)
        if query.email:
            # There is nothing to find: what Hunter can add is whether the address works.
            return self.email_verify(query.email, idempotency_key=idempotency_key)
        if query.linkedin_url:
            result = self.client.email_finder(linkedin_handle=_linkedin_handle(query.linkedin_url))
            return self._found(result)
        # Refused here, not by Hunter: a question it cannot answer must cost nothing.
        raise Permanent(
            "a Hunter person lookup needs first name, last name and company domain, an email, "
            "or a LinkedIn URL"
        )

    def email_verify(self, email: str, *, idempotency_key: str) -> ProviderAnswer:
        """Return the address with Hunter's verdict and its score as the confidence."""
        if not email:
            raise Permanent("a Hunter verification needs an email")
        result = self.client.email_verifier(email)
        data = _data(result, endpoint="email-verifier")
        status = data.get("status") if isinstance(data.get("status"), str) else "unknown"
        verified = data.get("email") or email
        candidate = make_candidate(
            "email", verified, _confidence(data.get("score")), source=self.name, verification=status
        )
        return ProviderAnswer(
            candidates=[candidate] if candidate is not None else [],
            credits=VERIFIER_CREDITS if status in BILLED_VERIFICATIONS else 0.0,
            http_status=result.status,
            raw={
                "endpoint": "email-verifier",
                "email": verified,
                "status": status,
                "score": data.get("score"),
            },
        )

    def company_enrich(self, domain: str, *, idempotency_key: str) -> ProviderAnswer:
        """Return the company facts of a Domain Search; its email pattern stays in `raw`."""
        if not domain:
            raise Permanent("a Hunter company lookup needs a domain")
        result = self.client.domain_search(domain, limit=DOMAIN_SEARCH_LIMIT)
        data = _data(result, endpoint="domain-search")
        # Company fields as the Domain Search response lists them; the reference's example
        # abbreviates it, so each is read only when present.
        values = {
            "company_name": data.get("organization"),
            "industry": data.get("industry"),
            "employee_range": data.get("headcount"),
            "hq_location": _location(data),
            "technologies": data.get("technologies"),
        }
        candidates = self._candidates(values, confidence=COMPANY_CONFIDENCE)
        emails = data.get("emails")
        returned = len(emails) if isinstance(emails, list) else 0
        return ProviderAnswer(
            candidates=candidates,
            credits=DOMAIN_SEARCH_CREDITS if returned else 0.0,
            http_status=result.status,
            raw={
                "endpoint": "domain-search",
                # The email-pattern finder reads these: the pattern, and whether the domain
                # accepts every address (then no SMTP check can confirm a guess).
                "pattern": data.get("pattern"),
                "accept_all": data.get("accept_all"),
                "organization": data.get("organization"),
                "industry": data.get("industry"),
                "headcount": data.get("headcount"),
                "city": data.get("city"),
                "state": data.get("state"),
                "country": data.get("country"),
                "technologies": data.get("technologies"),
                "emails_returned": returned,
            },
        )

    def _found(self, result: HttpResult) -> ProviderAnswer:
        data = _data(result, endpoint="email-finder")
        email = data.get("email")
        if not isinstance(email, str) or not email:
            # Hunter found nothing and bills nothing for it.
            return ProviderAnswer(
                candidates=[],
                http_status=result.status,
                raw={"endpoint": "email-finder", "email": None},
            )
        verification = data.get("verification")
        status = verification.get("status") if isinstance(verification, dict) else None
        verification_status = status if isinstance(status, str) else "unknown"
        confidence = _confidence(data.get("score"))
        email_candidate = make_candidate(
            "email", email, confidence, source=self.name, verification=verification_status
        )
        values = {
            "job_title": data.get("position"),
            "linkedin_url": data.get("linkedin_url"),
            "phone": data.get("phone_number"),
        }
        candidates = [email_candidate] if email_candidate is not None else []
        candidates += self._candidates(values, confidence=confidence)
        return ProviderAnswer(
            candidates=candidates,
            credits=FINDER_CREDITS,
            http_status=result.status,
            raw={
                "endpoint": "email-finder",
                "email": email,
                "score": data.get("score"),
                "verification": verification_status,
                "position": data.get("position"),
                "linkedin_url": data.get("linkedin_url"),
                "phone_number": data.get("phone_number"),
            },
        )

    def _candidates(self, values: dict[str, Any], *, confidence: float | None) -> list[Candidate]:
        candidates = []
        for field, value in values.items():
            if value is None:
                # Hunter did not say: nothing was dropped, so nothing is logged.
                continue
            candidate = make_candidate(field, value, confidence, source=self.name)
            if candidate is not None:
                candidates.append(candidate)
        return candidates


def _data(result: HttpResult, *, endpoint: str) -> dict[str, Any]:
    """Return the `data` of a 200 answer, or raise the error its status stands for."""
    body = result.body if isinstance(result.body, dict) else {}
    if result.status != 200:
        raise _error(result, body, endpoint=endpoint)
    data = body.get("data")
    if not isinstance(data, dict):
        raise Permanent(f"hunter {endpoint} answered 200 without data", http_status=200)
    return data


def _error(result: HttpResult, body: dict[str, Any], *, endpoint: str) -> ProviderError:
    status = result.status
    ids = _error_ids(body)
    message = f"hunter {endpoint} answered {status}" + (f" ({', '.join(ids)})" if ids else "")
    if status == 202:
        wait = retry_after_seconds(result.headers, default=VERIFICATION_RETRY_SECONDS)
        return NotReady(message, retry_after=wait, http_status=status)
    if status == 403:
        wait = retry_after_seconds(result.headers, default=RATE_LIMIT_PAUSE_SECONDS)
        return RateLimited(message, retry_after=wait, http_status=status)
    if status == 429:
        return QuotaExhausted(message, http_status=status)
    if status == 451:
        return Suppressed(message, http_status=status)
    if status == 401:
        return AuthError(message, http_status=status)
    if status == 222 or status >= 500:
        return Transient(message, http_status=status)
    return Permanent(message, http_status=status)


def _error_ids(body: dict[str, Any]) -> list[str]:
    errors = body.get("errors")
    if not isinstance(errors, list):
        return []
    ids = (error.get("id") for error in errors if isinstance(error, dict))
    return [id_ for id_ in ids if isinstance(id_, str) and _ERROR_ID.match(id_)]


def _confidence(score: Any) -> float | None:
    """Return Hunter's 0-100 score as a 0-1 confidence; None (the value is dropped) if absent."""
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100:
        return None
    return score / 100


def _location(data: dict[str, Any]) -> str | None:
    parts = [data.get(name) for name in ("city", "state", "country")]
    present = [part.strip() for part in parts if isinstance(part, str) and part.strip()]
    return ", ".join(present) or None


def _linkedin_handle(linkedin_url: str) -> str:
    # PersonQuery holds the canonical https://www.linkedin.com/in/<handle>.
    return linkedin_url.rstrip("/").rsplit("/", 1)[-1]
