"""People Data Labs as a Provider: its records as Candidates, its statuses as our errors.

Statuses (https://docs.peopledatalabs.com/docs/errors):

- 200 is a match, billed one credit ("We charge per match",
  https://docs.peopledatalabs.com/docs/reference-person-enrichment-api, and the same for
  companies, https://docs.peopledatalabs.com/docs/reference-company-enrichment-api);
- 404 `not_found` is a miss, and free
  (https://docs.peopledatalabs.com/support/troubleshooting/no-results-found); a 404 without
  that body is a wrong URL, not a miss;
- 402 `payment_required`, the account's credits used up: QuotaExhausted;
- 429 `rate_limit_error`: RateLimited, waiting for `Retry-After` when PDL sends one, else
  until the `x-ratelimit-reset` UTC timestamp it documents
  (https://docs.peopledatalabs.com/support/troubleshooting/rate-limit-errors), else one
  minute, the length of its fixed window (https://docs.peopledatalabs.com/docs/usage-limits);
- 401/403: AuthError; any other 4xx: Permanent; 5xx: Transient.

Bulk person enrichment (https://docs.peopledatalabs.com/docs/bulk-enrichment-api) is "the
same as calling the Person Enrichment API multiple times": one answer per request, each with
its own status, a credit per 200.

Confidence comes from PDL's match `likelihood`, see `likelihood_confidence`. Every answer's
`raw` holds the fields the candidates came from and, under "rate_limit", PDL's usage headers
(`x-ratelimit-*`, `x-totallimit-*`, `x-call-credits-*`) so the ledger keeps them.
"""

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from django.conf import settings

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
from providers.candidates import COMPANY_FIELDS, PERSON_FIELDS, make_candidate
from providers.http import retry_after_seconds
from providers.pdl.client import PdlClient

BULK_LIMIT = 100
CREDITS_PER_MATCH = 1.0
MAX_CONFIDENCE = 0.95
# PDL's rate limits are fixed one-minute windows.
RATE_WINDOW_SECONDS = 60.0

# The record fields the candidates are read from; `raw` keeps these and nothing else.
PERSON_KEYS = (
    "id",
    "work_email",
    "mobile_phone",
    "phone_numbers",
    "job_title",
    "job_title_levels",
    "job_title_role",
    "location_name",
    "linkedin_url",
)
COMPANY_KEYS = (
    "id",
    "display_name",
    "name",
    "industry",
    "size",
    "inferred_revenue",
    "location",
    "technologies_used",
)
LOCATION_KEYS = ("name", "locality", "region", "country")

# PDL's canonical job_title_levels, most senior first: a person listed as both owner and
# cxo is a c-suite contact (https://docs.peopledatalabs.com/docs/fields#job_title_levels).
SENIORITY_RANK = (
    "cxo",
    "owner",
    "partner",
    "vp",
    "director",
    "manager",
    "senior",
    "entry",
    "training",
    "unpaid",
)
# Where PDL's word differs from the one the other sources use.
SENIORITY_NAMES = {"cxo": "c_suite"}

RATE_LIMIT_HEADER_PREFIXES = ("x-ratelimit-", "x-totallimit-", "x-call-credits-", "x-lifetime-")


def likelihood_confidence(likelihood: Any) -> float | None:
    """Return PDL's match likelihood (an integer 1-10) as a confidence, None if it has none.

    PDL calls the scale logarithmic, a 2 meaning "roughly a 10-30% chance of being the
    person requested" (https://docs.peopledatalabs.com/docs/output-response-person-enrichment-api).
    likelihood / 10 puts a 2 at 0.2 and keeps 1-4 under 0.5, below every field's accept
    threshold, so a weak match is never applied; 7 applies the softer fields (location,
    firmographics), 8 titles, 9 email and phone. Capped at 0.95: certainty about who the
    person is says nothing about how current each field of the profile is.
    """
    if isinstance(likelihood, bool) or not isinstance(likelihood, int):
        return None
    if not 1 <= likelihood <= 10:
        return None
    return min(likelihood / 10, MAX_CONFIDENCE)


def person_params(query: PersonQuery) -> dict[str, str]:
    """Return the enrichment parameters for everything known of the person.

    PDL needs an email, a profile URL, or a name together with a company
    (https://docs.peopledatalabs.com/docs/input-parameters-person-enrichment-api); more data
    points raise the likelihood, so all of them are sent. Raises Permanent otherwise.
    """
    by_name = query.first_name and query.last_name and query.domain
    if not (query.email or query.linkedin_url or by_name):
        # Refused here, not by the vendor: a question it cannot answer must cost nothing.
        raise Permanent(
            "a PDL person lookup needs an email, a LinkedIn URL, or first name, last name and "
            "company domain"
        )
    params = {
        "email": query.email,
        "profile": query.linkedin_url,
        "first_name": query.first_name,
        "last_name": query.last_name,
        # `company` takes a name, a website or a social URL; the domain is the website.
        "company": query.domain,
    }
    return {name: value for name, value in params.items() if value}


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    """Return PDL's usage headers by lowercased name, JSON values decoded.

    `x-ratelimit-remaining` and `x-ratelimit-limit` hold a JSON object per window
    (`{"minute": 1200, ...}`), the counters plain numbers, `x-ratelimit-reset` a timestamp.
    """
    kept: dict[str, Any] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(RATE_LIMIT_HEADER_PREFIXES):
            kept[lowered] = _decoded(value)
    return kept


def retry_after(headers: Mapping[str, str]) -> float:
    """Return the seconds a 429 asks to wait: Retry-After, else until x-ratelimit-reset."""
    if headers.get("Retry-After"):
        return retry_after_seconds(headers, default=RATE_WINDOW_SECONDS)
    reset = _reset_time(headers.get("x-ratelimit-reset") or "")
    if reset is None:
        return RATE_WINDOW_SECONDS
    return max((reset - datetime.now(UTC)).total_seconds(), 0.0)


class PdlProvider:
    """People Data Labs as a Provider; `api_key` defaults to settings.PDL_API_KEY.

    PDL takes no idempotency key: a retry after a lost answer is billed again, which is why
    the ledger answers repeats from its cache instead of asking twice.
    """

    name = "pdl"
    operations = frozenset({"person_enrich", "company_enrich"})
    fields = frozenset(PERSON_FIELDS + COMPANY_FIELDS)
    person_bulk_size = BULK_LIMIT
    company_bulk_size = 1

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.client = PdlClient(
            base_url,
            settings.PDL_API_KEY if api_key is None else api_key,
            timeout=timeout,
            session=session,
        )

    def person_enrich(self, query: PersonQuery, *, idempotency_key: str) -> ProviderAnswer:
        result = self.client.person_enrich(person_params(query))
        body = _object(result.body)
        if result.status == 200:
            return self._person_answer(body, rate_limit=rate_limit_headers(result.headers))
        if _not_found(result.status, body):
            return _miss(rate_limit_headers(result.headers))
        raise self._error(result.status, body, result.headers)

    def person_enrich_bulk(
        self, queries: Sequence[PersonQuery], *, idempotency_key: str
    ) -> list[ProviderAnswer | ProviderError]:
        """Return one answer per query, in order; a result whose status is neither 200 nor
        404 is PDL failing that one query, which gets its ProviderError (the other answers
        are kept: they are paid).

        If no query got an answer at all, that failure is raised instead, so a bulk call that
        ran out of credits is a QuotaExhausted like a single one.
        """
        if len(queries) > BULK_LIMIT:
            raise Permanent(f"PDL takes at most {BULK_LIMIT} people per bulk request")
        if not queries:
            return []
        requests_ = []
        for index, query in enumerate(queries):
            try:
                params = person_params(query)
            except Permanent as exc:
                raise Permanent(f"query {index}: {exc}") from None
            # PDL returns metadata with each answer to tie it to its request.
            requests_.append({"params": params, "metadata": {"index": index}})
        result = self.client.person_bulk(requests_)
        if result.status != 200:
            raise self._error(result.status, _object(result.body), result.headers)
        items = _bulk_items(result.body, count=len(queries))
        rate_limit = rate_limit_headers(result.headers)
        if not any(_status(item) in (200, 404) for item in items):
            status = _status(items[0])
            if status is None:
                raise Permanent("pdl's bulk answer has no HTTP status for anyone", http_status=200)
            raise self._error(status, items[0], result.headers)
        return [self._bulk_answer(item, result.headers, rate_limit=rate_limit) for item in items]

    def company_enrich(self, domain: str, *, idempotency_key: str) -> ProviderAnswer:
        if not domain:
            raise Permanent("a PDL company lookup needs a domain")
        result = self.client.company_enrich({"website": domain})
        body = _object(result.body)
        rate_limit = rate_limit_headers(result.headers)
        if result.status == 200:
            if not any(isinstance(body.get(key), str) for key in ("id", "name", "display_name")):
                # A record is identified by its id and name (PDL's company schema): a 200
                # with neither is not a company but a broken answer.
                raise Permanent("pdl answered 200 without a company record", http_status=200)
            # Unlike the person API, the company record is the body itself, not under `data`.
            company = _trimmed_company(body)
            likelihood = body.get("likelihood")
            return ProviderAnswer(
                candidates=self._candidates(
                    _company_values(company), likelihood_confidence(likelihood)
                ),
                credits=CREDITS_PER_MATCH,
                http_status=200,
                raw={"likelihood": likelihood, "company": company, "rate_limit": rate_limit},
            )
        if _not_found(result.status, body):
            return _miss(rate_limit)
        raise self._error(result.status, body, result.headers)

    def opted_out_ids(self) -> Iterator[str]:
        """Yield the PDL person ids whose owners asked PDL to stop selling their data (a
        data subject request); the ids match the `id` of PDL's person answers."""
        stream = self.client.subject_requests()
        if stream.status != 200:
            raise self._error(stream.status, {}, stream.headers)
        for line in stream.lines:
            if line != "pdl_id":
                yield line

    def _bulk_answer(
        self, item: dict[str, Any], headers: Mapping[str, str], *, rate_limit: dict[str, Any]
    ) -> ProviderAnswer | ProviderError:
        status = _status(item)
        if status == 404:
            return _miss(rate_limit)
        if status is None:
            return Permanent("pdl's bulk answer has a result with no HTTP status", http_status=200)
        if status != 200:
            # Not a miss: recorded as one, it would be reused for PROVIDER_MISS_TTL_DAYS.
            return self._error(status, item, headers)
        try:
            return self._person_answer(item, rate_limit=rate_limit)
        except ProviderError as exc:
            return exc

    def _person_answer(
        self, record: dict[str, Any], *, rate_limit: dict[str, Any]
    ) -> ProviderAnswer:
        data = record.get("data")
        if not isinstance(data, dict):
            raise Permanent("pdl answered 200 without a person record", http_status=200)
        person = {key: data[key] for key in PERSON_KEYS if data.get(key) is not None}
        if isinstance(person.get("phone_numbers"), list):
            # Only the first number is ever proposed; the others stay out of the ledger.
            person["phone_numbers"] = person["phone_numbers"][:1]
        likelihood = record.get("likelihood")
        return ProviderAnswer(
            candidates=self._candidates(_person_values(person), likelihood_confidence(likelihood)),
            credits=CREDITS_PER_MATCH,
            http_status=200,
            raw={"likelihood": likelihood, "person": person, "rate_limit": rate_limit},
        )

    def _candidates(self, values: dict[str, Any], confidence: float | None) -> list[Candidate]:
        candidates = []
        for field, value in values.items():
            if value is None:
                continue
            # PDL does not verify addresses: its work_email is "unknown" until a verifier says.
            candidate = make_candidate(
                field, value, confidence, source=self.name, verification="unknown"
            )
            if candidate is not None:
                candidates.append(candidate)
        return candidates

    def _error(
        self, status: int | None, body: dict[str, Any], headers: Mapping[str, str]
    ) -> ProviderError:
        message = self._message(status, body)
        if status == 402:
            return QuotaExhausted(message, http_status=status)
        if status == 429:
            return RateLimited(message, retry_after=retry_after(headers), http_status=status)
        if status in (401, 403):
            return AuthError(message, http_status=status)
        if status is not None and status >= 500:
            return Transient(message, http_status=status)
        return Permanent(message, http_status=status)

    def _message(self, status: int | None, body: dict[str, Any]) -> str:
        """Return "pdl answered <status>: <error type>: <error message>" without the key."""
        error = body.get("error")
        if isinstance(error, dict):
            detail = ": ".join(str(error[part]) for part in ("type", "message") if error.get(part))
        else:
            detail = error if isinstance(error, str) else ""
        message = f"pdl answered {status}" + (f": {detail}" if detail else "")
        if self.client.api_key:
            # A vendor message that echoes the key must not carry it into the ledger or logs.
            message = message.replace(self.client.api_key, "[api key]")
        return message


def _person_values(person: dict[str, Any]) -> dict[str, Any]:
    # On a free plan contact fields come as `true` instead of the value
    # (https://docs.peopledatalabs.com/docs/fields); make_candidate drops what is not a string.
    return {
        "email": person.get("work_email"),
        "phone": person.get("mobile_phone") or _first(person.get("phone_numbers")),
        "job_title": person.get("job_title"),
        "seniority": _seniority(person.get("job_title_levels")),
        "department": _department(person.get("job_title_role")),
        "location": person.get("location_name"),
        "linkedin_url": person.get("linkedin_url"),
    }


def _trimmed_company(body: dict[str, Any]) -> dict[str, Any]:
    company = {key: body[key] for key in COMPANY_KEYS if body.get(key) is not None}
    if isinstance(company.get("location"), dict):
        location = company["location"]
        company["location"] = {key: location[key] for key in LOCATION_KEYS if location.get(key)}
    if isinstance(company.get("technologies_used"), list):
        company["technologies_used"] = [
            item["name"]
            for item in company["technologies_used"]
            if isinstance(item, dict) and isinstance(item.get("name"), str)
        ]
    return company


def _company_values(company: dict[str, Any]) -> dict[str, Any]:
    location = company.get("location")
    return {
        # `name` is lowercased by PDL; `display_name` keeps the company's own capitalization.
        "company_name": company.get("display_name") or company.get("name"),
        "industry": company.get("industry"),
        "employee_range": company.get("size"),
        "revenue_range": company.get("inferred_revenue"),
        "hq_location": _location_name(location) if isinstance(location, dict) else None,
        "technologies": company.get("technologies_used"),
    }


def _location_name(location: dict[str, Any]) -> str | None:
    if location.get("name"):
        return location["name"]
    parts = [location.get(key) for key in ("locality", "region", "country")]
    return ", ".join(part for part in parts if isinstance(part, str) and part) or None


def _seniority(levels: Any) -> str | None:
    if not isinstance(levels, list):
        return None
    for level in SENIORITY_RANK:
        if level in levels:
            return SENIORITY_NAMES.get(level, level)
    return None


def _department(role: Any) -> str | None:
    # Canonical roles are snake_case ("human_resources"); people read "Human Resources".
    if not isinstance(role, str) or not role:
        return None
    return role.replace("_", " ").title()


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, list) and values else None


def _miss(rate_limit: dict[str, Any]) -> ProviderAnswer:
    return ProviderAnswer(
        candidates=[],
        credits=0.0,
        http_status=404,
        raw={"error": "not_found", "rate_limit": rate_limit},
    )


def _not_found(status: int, body: dict[str, Any]) -> bool:
    error = body.get("error")
    return status == 404 and isinstance(error, dict) and error.get("type") == "not_found"


def _bulk_items(body: Any, *, count: int) -> list[dict[str, Any]]:
    """Return the bulk answers in request order, or raise Permanent if they do not pair up.

    Each answer goes where its echoed metadata says, else where it stands: one person's data
    must never land on another's lead.
    """
    if not isinstance(body, list) or len(body) != count:
        raise Permanent(
            f"pdl's bulk answer has {len(body) if isinstance(body, list) else 'no'} entries for "
            f"{count} requests",
            http_status=200,
        )
    slots: dict[int, dict[str, Any]] = {}
    for position, item in enumerate(body):
        if not isinstance(item, dict):
            raise Permanent(f"pdl's bulk answer {position} is not an object", http_status=200)
        metadata = item.get("metadata")
        index = metadata.get("index") if isinstance(metadata, dict) else None
        slots[index if isinstance(index, int) else position] = item
    if sorted(slots) != list(range(count)):
        raise Permanent("pdl's bulk answers do not match its requests one to one", http_status=200)
    return [slots[index] for index in range(count)]


def _status(item: dict[str, Any]) -> int | None:
    status = item.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        # Not an HTTP status: the ledger could not even store it.
        return None
    return status


def _object(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else {}


def _decoded(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _reset_time(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        # PDL documents a UTC timestamp; its own SDK also reads the header as a number
        # (epoch seconds), so both are understood.
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
