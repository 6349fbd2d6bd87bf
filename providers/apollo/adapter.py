"""Apollo as a Provider: its people and organizations as Candidates, its failures as errors.

Apollo states no confidence for anything it returns, so every field gets a fixed one chosen
for what Apollo says about the value (the constants below, each with its reason). Quirks:

- People Enrichment answers 200 whether or not it found the person; no `person` (or
  `person: null`) is a miss, and a miss is free: Apollo bills only when it returns data.
- Bulk People Enrichment takes at most ten `details`; its `matches` follow them by
  position, `null` for a person it could not match.
- 401 and 403 are auth failures (a bad key, or a key not scoped for the endpoint); a 422
  saying the credits ran out is QuotaExhausted; other 400/422 are Permanent; 429 is
  RateLimited; 5xx Transient.
- Every answer records the `x-*-requests-left` window counters in raw["rate_limit"].

Apollo documents no idempotency key, so a retried call may be billed again; the ledger's
in-flight row is what keeps one lookup from being sent twice.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import requests
from django.conf import settings

from providers.apollo.client import ApolloClient
from providers.base import (
    AuthError,
    Candidate,
    Permanent,
    PersonQuery,
    ProviderAnswer,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from providers.candidates import COMPANY_FIELDS, PERSON_FIELDS, credits_from, make_candidate
from providers.http import HttpResult, retry_after_seconds

NAME = "apollo"
BULK_SIZE = 10

# https://docs.apollo.io/reference/people-enrichment: "1 credit for demographics or email,
# plus 8 credits if a mobile phone is returned". Mobile phones are only revealed on request
# (`reveal_phone_number`, delivered to a webhook): only `person_reveal_phone` asks.
PERSON_CREDITS = 1.0
# The "8 credits if a mobile phone is returned" above: billed when the numbers arrive at the
# callback, so Leadsmith records them then (webhooks.inbound), once per person with a number.
PHONE_REVEAL_CREDITS = 8.0
# https://docs.apollo.io/reference/organization-enrichment: "1 credit per organization".
ORGANIZATION_CREDITS = 1.0

# email_status -> (confidence, verification). "verified" passed Apollo's own deliverability
# check, so it is applied outright; the other known statuses are addresses Apollo derived
# from the company's pattern or could not confirm, so they go to review.
EMAIL_STATUS = {
    "verified": (0.95, "valid"),
    "extrapolated": (0.60, "unknown"),
    "guessed": (0.60, "unknown"),
    "likely to engage": (0.60, "unknown"),
    "unverified": (0.60, "unknown"),
}
# A status Apollo adds later: kept as evidence, below the email review floor.
UNKNOWN_EMAIL_STATUS = (0.50, "unknown")
# "unavailable": Apollo has no address; "bounced": mail to it already failed.
NO_EMAIL_STATUSES = frozenset({"unavailable", "bounced"})
# Apollo's stand-in for an address the plan has not revealed: valid syntax, nobody's inbox.
LOCKED_EMAIL = re.compile(r"^email_not_unlocked@", re.IGNORECASE)

CONFIDENCE = {
    # The title of the current position in Apollo's employment history.
    "job_title": 0.80,
    # Seniority and department are Apollo's classification of that title, one step removed.
    "seniority": 0.70,
    "department": 0.70,
    # City, state and country as Apollo holds them for the person or the company's HQ.
    "location": 0.75,
    "hq_location": 0.80,
    # The profile Apollo matched the person on.
    "linkedin_url": 0.90,
    # Only numbers Apollo marks `valid_number`, and still under phone's accept threshold:
    # Apollo does not say whose line it is, and a wrong number costs a rep a call.
    "phone": 0.80,
    "company_name": 0.90,
    "industry": 0.80,
    # `estimated_num_employees` and `annual_revenue` are estimates by Apollo's own name.
    "employee_range": 0.75,
    "revenue_range": 0.70,
    "technologies": 0.70,
}

# Apollo gives counts; Company stores bands. (exclusive upper bound, band), then the top band.
EMPLOYEE_BANDS = (
    (11, "1-10"),
    (51, "11-50"),
    (201, "51-200"),
    (501, "201-500"),
    (1001, "501-1000"),
    (5001, "1001-5000"),
)
EMPLOYEE_TOP_BAND = "5001+"
REVENUE_BANDS = (
    (1_000_000, "<$1M"),
    (10_000_000, "$1M-$10M"),
    (50_000_000, "$10M-$50M"),
    (100_000_000, "$50M-$100M"),
    (500_000_000, "$100M-$500M"),
)
REVENUE_TOP_BAND = "$500M+"

# What is left of each fixed window (https://docs.apollo.io/reference/rate-limits).
RATE_LIMIT_HEADERS = (
    "x-minute-requests-left",
    "x-hourly-requests-left",
    "x-24-hour-requests-left",
)

_PERSON_KEPT = (
    "email",
    "email_status",
    "title",
    "seniority",
    "departments",
    "city",
    "state",
    "country",
    "linkedin_url",
)
_ORGANIZATION_KEPT = (
    "name",
    "industry",
    "estimated_num_employees",
    "annual_revenue",
    "city",
    "state",
    "country",
    "technology_names",
)


class ApolloProvider:
    """Apollo as a Provider; `api_key` defaults to settings.APOLLO_API_KEY."""

    name = NAME
    operations = frozenset({"person_enrich", "company_enrich"})
    fields = frozenset(PERSON_FIELDS + COMPANY_FIELDS)
    person_bulk_size = BULK_SIZE
    company_bulk_size = 1

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.client = ApolloClient(
            base_url,
            api_key=settings.APOLLO_API_KEY if api_key is None else api_key,
            timeout=timeout,
            session=session,
        )

    def person_enrich(self, query: PersonQuery, *, idempotency_key: str) -> ProviderAnswer:
        return _person_match_answer(self.client.people_match(_details(query)))

    def person_reveal_phone(
        self, query: PersonQuery, *, webhook_url: str, idempotency_key: str
    ) -> ProviderAnswer:
        """People Enrichment that also asks for the person's phone numbers: the answer is
        the person as `person_enrich` reads it, and the numbers come later, POSTed to
        `webhook_url` (a one-use callback address, see webhooks.inbound). Not part of the
        waterfall: a reveal costs up to PHONE_REVEAL_CREDITS more, so a person asks for it
        (webhooks.phone_reveal)."""
        details = {**_details(query), "reveal_phone_number": True, "webhook_url": webhook_url}
        return _person_match_answer(self.client.people_match(details))

    def person_enrich_bulk(
        self, queries: Sequence[PersonQuery], *, idempotency_key: str
    ) -> list[ProviderAnswer | ProviderError]:
        if len(queries) > BULK_SIZE:
            raise Permanent(f"apollo takes at most {BULK_SIZE} people at once, not {len(queries)}")
        if not queries:
            return []
        details = [_details(query, position=position) for position, query in enumerate(queries)]
        result = self.client.people_bulk_match(details)
        body = _object(result)
        matches = body.get("matches")
        if not isinstance(matches, list) or len(matches) != len(queries):
            raise _broken(f"other than {len(queries)} matches")
        found = sum(isinstance(match, dict) for match in matches)
        # `credits_consumed` is the request's total (fractional on some plans) and does not
        # say who cost what, so the people found share it evenly.
        total = (
            credits_from(body["credits_consumed"])
            if "credits_consumed" in body
            else PERSON_CREDITS * found
        )
        share = total / found if found else 0.0
        rate_limit = _rate_limit(result.headers)
        return [_match_answer(match, credits=share, rate_limit=rate_limit) for match in matches]

    def company_enrich(self, domain: str, *, idempotency_key: str) -> ProviderAnswer:
        if not domain:
            raise Permanent("a company lookup needs a domain")
        result = self.client.organization_enrich(domain)
        body = _object(result)
        rate_limit = _rate_limit(result.headers)
        organization = body.get("organization")
        # The reference shows no answer for an unknown domain; no organization, or an empty
        # one, is read as a miss, unbilled like a person Apollo could not match.
        if not organization:
            raw = _raw({"organization": None}, rate_limit)
            return ProviderAnswer(candidates=[], http_status=200, raw=raw)
        if not isinstance(organization, dict):
            raise _broken("an organization that is not an object")
        candidates = _candidates(
            {
                "company_name": organization.get("name"),
                "industry": organization.get("industry"),
                "employee_range": _band(
                    organization.get("estimated_num_employees"), EMPLOYEE_BANDS, EMPLOYEE_TOP_BAND
                ),
                "revenue_range": _band(
                    organization.get("annual_revenue"), REVENUE_BANDS, REVENUE_TOP_BAND
                ),
                "hq_location": _place(organization),
                "technologies": organization.get("technology_names"),
            }
        )
        kept = {key: organization[key] for key in _ORGANIZATION_KEPT if key in organization}
        return ProviderAnswer(
            candidates=candidates,
            credits=ORGANIZATION_CREDITS,
            http_status=200,
            raw=_raw({"organization": kept, "credits": ORGANIZATION_CREDITS}, rate_limit),
        )


def _details(query: PersonQuery, *, position: int | None = None) -> dict[str, str]:
    """Return Apollo's identifying parameters for the query, or raise Permanent."""
    by_name = query.first_name and query.last_name and query.domain
    if not (query.email or query.linkedin_url or by_name):
        # Refused here, not by Apollo: a bare name gets a 200 that matches nobody, and a
        # question that cannot be answered must not cost a call.
        where = "" if position is None else f" (person {position} of the batch)"
        raise Permanent(
            "a person lookup needs an email, a LinkedIn URL, or first name, last name and "
            f"company domain{where}"
        )
    # PersonQuery's field names are Apollo's parameter names.
    return {name: value for name, value in asdict(query).items() if value}


def _person_match_answer(result: HttpResult) -> ProviderAnswer:
    body = _object(result)
    rate_limit = _rate_limit(result.headers)
    person = body.get("person")
    if person is None:
        return _miss(rate_limit)
    if not isinstance(person, dict):
        raise _broken("a person that is not an object")
    return _person_answer(person, credits=PERSON_CREDITS, rate_limit=rate_limit)


def _object(result: HttpResult) -> dict[str, Any]:
    """Return the body of a 200 answer; raise the error any other status stands for."""
    if result.status != 200:
        raise _error(result)
    if not isinstance(result.body, dict):
        raise _broken("a body that is not an object")
    return result.body


def _person_answer(
    person: dict[str, Any], *, credits: float, rate_limit: dict[str, int]
) -> ProviderAnswer:
    contact = [_email_candidate(person), _phone_candidate(person.get("phone_numbers"))]
    candidates = [candidate for candidate in contact if candidate is not None]
    candidates += _candidates(
        {
            "job_title": person.get("title"),
            "seniority": person.get("seniority"),
            "department": _department(person.get("departments")),
            "location": _place(person),
            "linkedin_url": person.get("linkedin_url"),
        }
    )
    kept = {key: person[key] for key in _PERSON_KEPT if key in person}
    if isinstance(person.get("phone_numbers"), list):
        kept["phone_numbers"] = [
            {"sanitized_number": entry.get("sanitized_number"), "status": entry.get("status")}
            for entry in person["phone_numbers"]
            if isinstance(entry, dict)
        ]
    return ProviderAnswer(
        candidates=candidates,
        credits=credits,
        http_status=200,
        raw=_raw({"person": kept, "credits": credits}, rate_limit),
    )


def _miss(rate_limit: dict[str, int]) -> ProviderAnswer:
    return ProviderAnswer(candidates=[], http_status=200, raw=_raw({"person": None}, rate_limit))


def _email_candidate(person: dict[str, Any]) -> Candidate | None:
    email = person.get("email")
    status = str(person.get("email_status") or "").strip().lower()
    if not isinstance(email, str) or LOCKED_EMAIL.match(email) or status in NO_EMAIL_STATUSES:
        return None
    confidence, verification = EMAIL_STATUS.get(status, UNKNOWN_EMAIL_STATUS)
    return make_candidate("email", email, confidence, source=NAME, verification=verification)


def _candidates(values: dict[str, Any]) -> list[Candidate]:
    """Return a Candidate at the field's fixed confidence for each usable value."""
    candidates = []
    for field, value in values.items():
        candidate = make_candidate(field, value, CONFIDENCE[field], source=NAME)
        if candidate is not None:
            candidates.append(candidate)
    return candidates


def _phone_candidate(numbers: Any) -> Candidate | None:
    """Return the first number Apollo marks valid that is valid here too.

    Apollo's list is in its order of preference, and `valid_number` is its own check: the
    reference's example marks a number in an unassigned US area code valid.
    """
    if not isinstance(numbers, list):
        return None
    for entry in numbers:
        if isinstance(entry, dict) and entry.get("status") == "valid_number":
            candidate = make_candidate(
                "phone", entry.get("sanitized_number"), CONFIDENCE["phone"], source=NAME
            )
            if candidate is not None:
                return candidate
    return None


def _department(departments: Any) -> str | None:
    """Return Apollo's first department code as a label: `master_sales` -> `Sales`."""
    if not isinstance(departments, list) or not departments:
        return None
    code = departments[0]
    if not isinstance(code, str):
        return None
    return code.removeprefix("master_").replace("_", " ").strip().title() or None


def _place(record: Mapping[str, Any]) -> str | None:
    parts = (record.get(key) for key in ("city", "state", "country"))
    place = ", ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return place or None


def _band(value: Any, bands: tuple[tuple[int, str], ...], top: str) -> str | None:
    """Return the band a count falls in; Apollo's 0 (its default) means it does not know."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return next((band for bound, band in bands if value < bound), top)


def _rate_limit(headers: Mapping[str, str]) -> dict[str, int]:
    left = {}
    for name in RATE_LIMIT_HEADERS:
        try:
            left[name] = int(headers.get(name, ""))
        except ValueError:
            continue
    return left


def _raw(record: dict[str, Any], rate_limit: dict[str, int]) -> dict[str, Any]:
    return {**record, "rate_limit": rate_limit} if rate_limit else record


def _match_answer(
    match: Any, *, credits: float, rate_limit: dict[str, Any]
) -> ProviderAnswer | ProviderError:
    """One person of a bulk match: an answer, or the error of that person's result alone."""
    if match is None:
        return _miss(rate_limit)
    if not isinstance(match, dict):
        return _broken("a match that is not an object")
    try:
        return _person_answer(match, credits=credits, rate_limit=rate_limit)
    except ProviderError as exc:
        return exc


def _broken(what: str) -> Permanent:
    return Permanent(f"apollo answered 200 with {what}", http_status=200)


def _error(result: HttpResult) -> ProviderError:
    status = result.status
    detail = _detail(result.body)
    message = f"apollo answered {status}" + (f": {detail}" if detail else "")
    if status == 429:
        wait = retry_after_seconds(result.headers, default=_window_wait(result.headers))
        return RateLimited(message, retry_after=wait, http_status=status)
    if status in (401, 403):
        return AuthError(message, http_status=status)
    # The reference documents no out-of-credits answer; the one seen in the field is a 422
    # `{"error": "Insufficient credits. Please upgrade your plan."}`
    # (https://github.com/superdesigndev/treg/pull/301). Asking again cannot help, and
    # QuotaExhausted pauses Apollo for every worker instead of failing run after run.
    if status == 422 and "credit" in detail.lower():
        return QuotaExhausted(message, http_status=status)
    if status >= 500:
        return Transient(message, http_status=status)
    return Permanent(message, http_status=status)


def _detail(body: Any) -> str:
    """Return Apollo's own words for an error, if its body has any."""
    if not isinstance(body, dict):
        # The documented 401 is text/plain, which the HTTP wrapper reads as no body.
        return ""
    # Bulk 400/422 say `error_message`, organization 403/422 `error`, a 429 `message`.
    for key in ("error_message", "error", "message"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return ""


def _window_wait(headers: Mapping[str, str]) -> float:
    """Return how long to hold off after a 429 that carries no Retry-After.

    The reference's 429 bodies name the limit that ran out ("600 times per hour") but not
    the wait. A minute window refills within a minute; an empty hourly or daily window
    does not, and asking every minute until it does would only collect 429s.
    """
    left = _rate_limit(headers)
    longer = (left.get("x-hourly-requests-left"), left.get("x-24-hour-requests-left"))
    return 3600.0 if 0 in longer else 60.0
