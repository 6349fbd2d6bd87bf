"""The sandbox provider: a small vendor-like enrichment API with deterministic data.

Demos, end-to-end tests, benchmarks and fault tests run through the real HTTP path against
it. Everything it says about a person or a company derives from the sha256 of the
normalized lookup key, so the same question always gets the same answer, across restarts
and machines; latency, injected failures and the rate limit are the only moving parts.
It uses the standard library only, so it runs (and can be embedded in tests) without Django.

API (every answer is JSON):

- `GET /health` → 200 `{"status": "ok"}`; exempt from auth, latency, failures and limits.
- `POST /v1/person/enrich` `{"email"?, "first_name"?, "last_name"?, "domain"?,
  "linkedin_url"?}`; needs an email, a LinkedIn URL, or first name, last name and domain.
  200 `{"person": {<field>: {"value", "confidence"[, "verification"]}}, "credits": 1}`
  with fields email (with verification), phone, job_title, seniority, department,
  location, linkedin_url, any but email and job_title possibly absent;
  404 `{"error": "person not found"}` (not billed); 400 `{"error": "..."}`.
- `POST /v1/person/bulk` `{"requests": [<person request>, …]}` (1 to 100) → 200
  `{"results": [{"status": 200, "person": {…}} | {"status": 404 | 400, "error": "..."}, …],
  "credits": <hits>}`, one result per request in the same order; each hit is billed as if
  asked alone.
- `POST /v1/company/enrich` `{"domain"}` → 200 `{"company": {<field>: {"value",
  "confidence"}}, "credits": 1}` with company_name, industry, employee_range,
  revenue_range, hq_location, technologies (a list); 404 `{"error": "company not found"}`.
- `POST /v1/company/bulk` `{"requests": [{"domain"}, …]}` (1 to 100) → 200, results as for
  people; each company found is billed as if asked alone.
- With an API key configured, `Authorization: Bearer <key>` or 401.
- Over the rate limit, 429 with `Retry-After`; injected failures are 503.
- An `Idempotency-Key` seen before gets the stored answer again with `"credits": 0` and
  `Idempotent-Replayed: true`; the same key with a different request gets 422.

Injected faults, for fault tests: each API request draws one number from a `random.Random`
seeded with `seed` (the same seed and the same order of requests give the same faults), so
the rates add up and the rest is answered normally:

- `rate_limited_rate`: 429 with `Retry-After: <retry_after_seconds>`, whatever the window;
- `error_rate`: 503;
- `hang_rate`: the answer waits `hang_seconds` (meant to outlast the client's timeout), then
  half the time it goes out as usual, billed, to a client that has stopped listening, and
  half the time the connection is closed without a word and nothing is billed;
- `malformed_rate`: the answer is worked out and billed as usual, then a 200 goes out that
  the client cannot use: JSON cut in half, an HTML error page, wrong types, missing keys,
  or a body of `malformed_bytes` (`malformed_kinds`, by default all of MALFORMED_KINDS).
  As a proxy mangling a good answer would: a retry under the same Idempotency-Key gets the
  stored answer, free.

`faults` counts what was injected; `billed_unheard` counts, per question like `billed`, the
billed answers the client cannot have used (sent after a hang, or mangled).
"""

import hashlib
import hmac
import json
import math
import random
import re
import socket
import sys
import threading
import time
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HEALTH_PATH = "/health"
PERSON_PATH = "/v1/person/enrich"
COMPANY_PATH = "/v1/company/enrich"
PERSON_BULK_PATH = "/v1/person/bulk"
PERSON_BULK_LIMIT = 100
COMPANY_BULK_PATH = "/v1/company/bulk"
COMPANY_BULK_LIMIT = 100

RATE_WINDOW_SECONDS = 60
# Answers kept for idempotent replay; a long benchmark must not grow the server unbounded.
IDEMPOTENCY_KEYS_KEPT = 100_000
MAX_BODY_BYTES = 64 * 1024

FAULT_KINDS = ("rate_limited", "error", "hang", "malformed")
MALFORMED_KINDS = ("invalid_json", "html", "wrong_types", "missing_keys", "huge")
# Bigger than any sane answer: a client that reads it whole has no size limit.
MALFORMED_BYTES = 10 * 1024 * 1024 + 1
ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The upstream server did not answer.</p></body></html>\n"
)

PERSON_UNKNOWN_SHARE = 0.15
COMPANY_UNKNOWN_SHARE = 0.10
# Confidences land across [0.20, 0.99]: above, between and below the app's merge bands.
CONFIDENCE_LOW = 0.20
CONFIDENCE_HIGH = 0.99

SENIORITIES = ("entry", "senior", "manager", "director", "vp", "c_suite")
# One title per seniority, in SENIORITIES order.
TITLES = {
    "Sales": (
        "Sales Development Representative",
        "Senior Account Executive",
        "Sales Manager",
        "Director of Sales",
        "VP of Sales",
        "Chief Revenue Officer",
    ),
    "Marketing": (
        "Marketing Coordinator",
        "Senior Marketing Specialist",
        "Marketing Manager",
        "Director of Marketing",
        "VP of Marketing",
        "Chief Marketing Officer",
    ),
    "Engineering": (
        "Software Engineer",
        "Senior Software Engineer",
        "Engineering Manager",
        "Director of Engineering",
        "VP of Engineering",
        "Chief Technology Officer",
    ),
    "Finance": (
        "Financial Analyst",
        "Senior Accountant",
        "Finance Manager",
        "Director of Finance",
        "VP of Finance",
        "Chief Financial Officer",
    ),
    "Operations": (
        "Operations Associate",
        "Senior Operations Analyst",
        "Operations Manager",
        "Director of Operations",
        "VP of Operations",
        "Chief Operating Officer",
    ),
    "Human Resources": (
        "HR Coordinator",
        "Senior HR Generalist",
        "HR Manager",
        "Director of People",
        "VP of People",
        "Chief People Officer",
    ),
}
DEPARTMENTS = tuple(TITLES)


@dataclass(frozen=True)
class _Place:
    location: str
    # Phone numbers are local to the place: "+1" with one of the area codes, or London's.
    country_code: str
    area_codes: tuple[str, ...]


PLACES = (
    _Place("New York, NY, United States", "1", ("212", "646")),
    _Place("San Francisco, CA, United States", "1", ("415",)),
    _Place("Boston, MA, United States", "1", ("617",)),
    _Place("Chicago, IL, United States", "1", ("312",)),
    _Place("Austin, TX, United States", "1", ("512",)),
    _Place("London, England, United Kingdom", "44", ("20",)),
)

FIRST_NAMES = ("alex", "sam", "jordan", "taylor", "morgan", "casey", "jamie", "riley")
LAST_NAMES = ("smith", "garcia", "chen", "patel", "nguyen", "kim", "okafor", "larsen")
# Where a person found by LinkedIn URL alone works: well-known fictional companies.
FALLBACK_DOMAINS = ("contoso.com", "fabrikam.com", "initech.com", "globex.com")

INDUSTRIES = (
    "Computer Software",
    "Financial Services",
    "Marketing and Advertising",
    "Hospital & Health Care",
    "Retail",
    "Logistics and Supply Chain",
    "Manufacturing",
    "Higher Education",
)
EMPLOYEE_RANGES = ("1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001+")
REVENUE_RANGES = ("<$1M", "$1M-$10M", "$10M-$50M", "$50M-$100M", "$100M-$500M", "$500M+")
TECHNOLOGIES = (
    "Salesforce",
    "HubSpot",
    "Google Analytics",
    "Segment",
    "Snowflake",
    "AWS",
    "Google Cloud",
    "Stripe",
    "Zendesk",
    "Intercom",
    "Slack",
    "Okta",
    "Cloudflare",
    "Shopify",
)

_EMAIL = re.compile(r"^[^@\s]+@((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63})$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LINKEDIN = re.compile(
    r"^(?:https?://)?(?:[a-z]{2,3}\.)?linkedin\.com/(?:in|pub)/([^/?#\s]+)/?(?:[?#].*)?$",
    re.IGNORECASE,
)


class _BadRequest(Exception):
    """The request cannot be answered as given; the message goes back to the client."""


# --- Deterministic data ---------------------------------------------------------------


def _unit(key: str, label: str) -> float:
    """A number in [0, 1) fixed by the lookup key and what it is for."""
    digest = hashlib.sha256(f"{label}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _index(key: str, label: str, size: int) -> int:
    return int(_unit(key, label) * size)


def _pick(key: str, label: str, options: tuple[Any, ...]) -> Any:
    return options[_index(key, label, len(options))]


def _confidence(
    key: str, label: str, *, low: float = CONFIDENCE_LOW, high: float = CONFIDENCE_HIGH
) -> float:
    return round(low + (high - low) * _unit(key, f"confidence:{label}"), 2)


def _field(value: Any, confidence: float, **extra: str) -> dict[str, Any]:
    return {"value": value, "confidence": confidence, **extra}


@dataclass(frozen=True)
class _Person:
    """Who was asked for: the lookup key, plus what addresses and slugs are built from."""

    key: str
    first: str
    last: str
    domain: str
    email: str
    linkedin_url: str


def _ascii_name(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", folded.lower())


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _BadRequest(f"{name} must be a string")
    return value.strip()


def _domain(body: dict[str, Any]) -> str:
    domain = _text(body, "domain").lower()
    if domain and not _DOMAIN.match(domain):
        raise _BadRequest("domain is not a valid domain name")
    return domain


def _person_asked(body: dict[str, Any]) -> _Person:
    email = _text(body, "email").lower()
    if email and not _EMAIL.match(email):
        raise _BadRequest("email is not a valid address")
    linkedin_url = _text(body, "linkedin_url")
    if linkedin_url:
        match = _LINKEDIN.match(linkedin_url)
        if not match:
            raise _BadRequest("linkedin_url is not a LinkedIn profile URL")
        linkedin_url = f"https://www.linkedin.com/in/{match.group(1).lower()}"
    first_name, last_name = _text(body, "first_name"), _text(body, "last_name")
    domain = _domain(body)

    if email:
        key = f"email:{email}"
    elif linkedin_url:
        key = f"linkedin:{linkedin_url}"
    elif first_name and last_name and domain:
        key = f"name:{first_name.lower()}|{last_name.lower()}|{domain}"
    else:
        raise _BadRequest("give an email, a linkedin_url, or first_name, last_name and domain")

    # Names for addresses and slugs: as given, else read from the address or the profile
    # slug ("jane.doe@", "/in/jane-doe-1a2b"), else made up from the key.
    first, last = _ascii_name(first_name), _ascii_name(last_name)
    if not (first and last):
        source = email.split("@", 1)[0] if email else linkedin_url.rsplit("/", 1)[-1]
        parts = [_ascii_name(part) for part in re.split(r"[._-]", source)]
        parts = [part for part in parts if part]
        if len(parts) >= 2:
            first, last = parts[0], parts[1]
        else:
            first, last = _pick(key, "first", FIRST_NAMES), _pick(key, "last", LAST_NAMES)
    if not domain:
        domain = email.split("@", 1)[1] if email else _pick(key, "domain", FALLBACK_DOMAINS)
    return _Person(key, first, last, domain, email, linkedin_url)


def _email(person: _Person) -> dict[str, Any]:
    key = person.key
    if person.email:
        address = person.email
    else:
        pattern = _pick(key, "email_pattern", ("first.last", "flast", "first"))
        local = {
            "first.last": f"{person.first}.{person.last}",
            "flast": f"{person.first[0]}{person.last}",
            "first": person.first,
        }[pattern]
        address = f"{local}@{person.domain}"
    # A verified address is usually a confident one; an unverifiable one rarely is.
    share = _unit(key, "verification")
    if share < 0.55:
        verification, low, high = "valid", 0.60, CONFIDENCE_HIGH
    elif share < 0.80:
        verification, low, high = "accept_all", 0.35, 0.80
    else:
        verification, low, high = "unknown", CONFIDENCE_LOW, 0.60
    confidence = _confidence(key, "email", low=low, high=high)
    return _field(address, confidence, verification=verification)


def _phone(key: str, place: _Place) -> str:
    if place.country_code == "44":
        # Ofcom's range for drama: valid London numbers that reach nobody.
        return f"+44207946{_index(key, 'phone_line', 1000):04d}"
    area = _pick(key, "phone_area", place.area_codes)
    exchange = 200 + _index(key, "phone_exchange", 800)
    # N11 exchanges are service codes and 555 is the fictional one; step past both.
    if exchange % 100 == 11 or exchange == 555:
        exchange += 1
    return f"+1{area}{exchange}{_index(key, 'phone_line', 10000):04d}"


def _person(person: _Person) -> dict[str, Any] | None:
    """The person record for a lookup, or None for the share of identities nobody knows."""
    key = person.key
    if _unit(key, "known") < PERSON_UNKNOWN_SHARE:
        return None
    place = _pick(key, "place", PLACES)
    department = _pick(key, "department", DEPARTMENTS)
    level = _index(key, "seniority", len(SENIORITIES))
    record = {"email": _email(person)}
    if _unit(key, "has_phone") < 0.70:
        record["phone"] = _field(_phone(key, place), _confidence(key, "phone"))
    record["job_title"] = _field(TITLES[department][level], _confidence(key, "job_title"))
    record["seniority"] = _field(SENIORITIES[level], _confidence(key, "seniority"))
    if _unit(key, "has_department") < 0.90:
        record["department"] = _field(department, _confidence(key, "department"))
    if _unit(key, "has_location") < 0.90:
        record["location"] = _field(place.location, _confidence(key, "location"))
    if person.linkedin_url:
        record["linkedin_url"] = _field(person.linkedin_url, CONFIDENCE_HIGH)
    elif _unit(key, "has_linkedin") < 0.85:
        slug = f"{person.first}-{person.last}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"
        url = f"https://www.linkedin.com/in/{slug}"
        record["linkedin_url"] = _field(url, _confidence(key, "linkedin_url"))
    return record


def _company(domain: str) -> dict[str, Any] | None:
    """The company record for a domain, or None for the share of domains nobody knows."""
    key = f"domain:{domain}"
    if _unit(key, "known") < COMPANY_UNKNOWN_SHARE:
        return None
    words = [word.capitalize() for word in re.split(r"[-_]", domain.split(".", 1)[0]) if word]
    name = " ".join(words) + _pick(key, "name_suffix", ("", " Inc.", " Ltd", " Group", " Labs"))
    size = _index(key, "employees", len(EMPLOYEE_RANGES))
    # Revenue follows headcount, give or take one band.
    revenue = min(max(size + _index(key, "revenue", 3) - 1, 0), len(REVENUE_RANGES) - 1)
    stack = sorted(TECHNOLOGIES, key=lambda tech: _unit(key, f"tech:{tech}"))
    record = {
        "company_name": _field(name, _confidence(key, "company_name")),
        "industry": _field(_pick(key, "industry", INDUSTRIES), _confidence(key, "industry")),
        "employee_range": _field(EMPLOYEE_RANGES[size], _confidence(key, "employee_range")),
    }
    if _unit(key, "has_revenue") < 0.80:
        record["revenue_range"] = _field(REVENUE_RANGES[revenue], _confidence(key, "revenue"))
    place = _pick(key, "place", PLACES)
    record["hq_location"] = _field(place.location, _confidence(key, "hq_location"))
    if _unit(key, "has_technologies") < 0.90:
        count = 2 + _index(key, "tech_count", 5)
        record["technologies"] = _field(stack[:count], _confidence(key, "technologies"))
    return record


# --- Endpoints: request bytes in, (status, body) out ----------------------------------

Answer = tuple[int, dict[str, Any]]


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise _BadRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    return body


def person_enrich(raw: bytes) -> Answer:
    """Answer a person lookup; a miss is 404 and not billed."""
    try:
        person = _person_asked(_json_object(raw))
    except _BadRequest as exc:
        return 400, {"error": str(exc)}
    record = _person(person)
    if record is None:
        return 404, {"error": "person not found"}
    return 200, {"person": record, "credits": 1}


def person_bulk(raw: bytes) -> Answer:
    """Answer up to PERSON_BULK_LIMIT person lookups, one result per request, in order."""
    return _bulk(raw, person_enrich, limit=PERSON_BULK_LIMIT)


def company_bulk(raw: bytes) -> Answer:
    """Answer up to COMPANY_BULK_LIMIT company lookups, one result per request, in order."""
    return _bulk(raw, company_enrich, limit=COMPANY_BULK_LIMIT)


def _bulk(raw: bytes, single: Callable[[bytes], Answer], *, limit: int) -> Answer:
    try:
        requests_ = _json_object(raw).get("requests")
    except _BadRequest as exc:
        return 400, {"error": str(exc)}
    if not isinstance(requests_, list) or not 1 <= len(requests_) <= limit:
        return 400, {"error": f"requests must be a list of 1 to {limit} objects"}
    results = []
    for request in requests_:
        status, body = single(json.dumps(request).encode())
        body.pop("credits", None)
        results.append({"status": status, **body})
    hits = sum(1 for result in results if result["status"] == 200)
    return 200, {"results": results, "credits": hits}


# What each bulk endpoint bills its questions as: the single endpoint asked alone.
_SINGLE_PATH_OF_BULK = {PERSON_BULK_PATH: PERSON_PATH, COMPANY_BULK_PATH: COMPANY_PATH}


def billing_keys(path: str, raw: bytes, body: dict[str, Any]) -> list[str]:
    """Return what a billed answer charged for: one key per person found, however asked.

    A person bought through the bulk endpoint and again alone is two charges, as on a
    vendor's invoice, so the key is the question, not the request that carried it.
    """
    if path in _SINGLE_PATH_OF_BULK:
        asked = _json_object(raw)["requests"]
        return [
            question_key(_SINGLE_PATH_OF_BULK[path], request)
            for request, result in zip(asked, body.get("results", []), strict=True)
            if result.get("status") == 200
        ]
    return [question_key(path, _json_object(raw))]


def question_key(path: str, request: Any) -> str:
    """Return the key `billed` counts a question under: its path and request, canonical."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def company_enrich(raw: bytes) -> Answer:
    """Answer a company lookup by domain; a miss is 404 and not billed."""
    try:
        domain = _domain(_json_object(raw))
    except _BadRequest as exc:
        return 400, {"error": str(exc)}
    if not domain:
        return 400, {"error": "domain is required"}
    record = _company(domain)
    if record is None:
        return 404, {"error": "company not found"}
    return 200, {"company": record, "credits": 1}


ENDPOINTS: dict[str, Callable[[bytes], Answer]] = {
    PERSON_PATH: person_enrich,
    PERSON_BULK_PATH: person_bulk,
    COMPANY_BULK_PATH: company_bulk,
    COMPANY_PATH: company_enrich,
}


# --- Malformed answers ----------------------------------------------------------------

_RECORDS = ("person", "company")


def _wrong_types(body: dict[str, Any], variant: int) -> dict[str, Any]:
    """Return the answer with the right keys holding the wrong kinds of value."""
    if isinstance(body.get("results"), list):
        results = body["results"]
        return [
            {**body, "results": {"status": 200}},
            {**body, "results": [{**item, "status": str(item.get("status"))} for item in results]},
            {**body, "results": [{**item, "person": ["not", "an", "object"]} for item in results]},
        ][variant % 3]
    record = next((name for name in _RECORDS if isinstance(body.get(name), dict)), None)
    if record is None:
        return {"error": ["not", "a", "string"], "person": 404, "credits": "none"}
    fields = body[record]
    return [
        {**body, record: json.dumps(fields)},
        {record: {name: {"value": 12345, "confidence": "0.9"} for name in fields}, "credits": "1"},
        {**body, record: sorted(fields)},
    ][variant % 3]


def _missing_keys(body: dict[str, Any], variant: int) -> dict[str, Any]:
    """Return the answer with what a client needs left out."""
    if isinstance(body.get("results"), list):
        if variant % 2:
            return {**body, "results": [{"person": item.get("person")} for item in body["results"]]}
        return {"credits": body.get("credits", 0)}
    record = next((name for name in _RECORDS if isinstance(body.get(name), dict)), None)
    if record is not None and variant % 2:
        return {**body, record: {name: {"confidence": 0.9} for name in body[record]}}
    return {"credits": body.get("credits", 0)} if "credits" in body else {}


def malformed_answer(body: dict[str, Any], kind: str, variant: int, size: int) -> tuple[bytes, str]:
    """Return (bytes, content type) of a 200 a client cannot use, made from a real answer."""
    if kind == "invalid_json":
        data = json.dumps(body).encode()
        return data[: len(data) // 2], "application/json"
    if kind == "html":
        return ERROR_PAGE, "text/html; charset=utf-8"
    if kind == "wrong_types":
        return json.dumps(_wrong_types(body, variant)).encode(), "application/json"
    if kind == "missing_keys":
        return json.dumps(_missing_keys(body, variant)).encode(), "application/json"
    if kind == "huge":
        # Valid JSON and the full answer, only far too big to be read whole.
        tail = json.dumps(body).encode()[1:]
        head = b'{"padding": "'
        padding = max(size - len(head) - len(tail) - 3, 0)
        return head + b"x" * padding + b'", ' + tail, "application/json"
    raise ValueError(f"unknown malformed kind {kind!r}")


# --- HTTP -----------------------------------------------------------------------------


class SandboxServer(ThreadingHTTPServer):
    """The sandbox on one address, with its fault settings and what it remembers."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        latency_ms: int = 0,
        error_rate: float = 0.0,
        rate_limit_per_min: int = 0,
        api_key: str = "",
        quiet: bool = False,
        rate_limited_rate: float = 0.0,
        hang_rate: float = 0.0,
        malformed_rate: float = 0.0,
        hang_seconds: float = 30.0,
        retry_after_seconds: int = 1,
        malformed_bytes: int = MALFORMED_BYTES,
        malformed_kinds: tuple[str, ...] = MALFORMED_KINDS,
        seed: int | None = None,
    ) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms must be 0 or more")
        rates = {
            "rate_limited": rate_limited_rate,
            "error": error_rate,
            "hang": hang_rate,
            "malformed": malformed_rate,
        }
        for kind, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                name = "error_rate" if kind == "error" else f"{kind}_rate"
                raise ValueError(f"{name} must be between 0 and 1")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError("the fault rates must add up to 1 or less")
        if rate_limit_per_min < 0:
            raise ValueError("rate_limit_per_min must be 0 (off) or more")
        if not malformed_kinds or set(malformed_kinds) - set(MALFORMED_KINDS):
            raise ValueError(f"malformed_kinds must be some of {', '.join(MALFORMED_KINDS)}")
        if hang_seconds < 0 or retry_after_seconds < 0 or malformed_bytes < 0:
            raise ValueError(
                "hang_seconds, retry_after_seconds and malformed_bytes must be 0 or more"
            )
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        self.rate_limited_rate = rate_limited_rate
        self.hang_rate = hang_rate
        self.malformed_rate = malformed_rate
        self.hang_seconds = hang_seconds
        self.retry_after_seconds = retry_after_seconds
        self.malformed_bytes = malformed_bytes
        self.malformed_kinds = tuple(malformed_kinds)
        self.rate_limit_per_min = rate_limit_per_min
        self.api_key = api_key
        self.quiet = quiet
        self._lock = threading.Lock()
        # Billed answers per distinct request (path and body): the vendor's side of the bill.
        self.billed: Counter[str] = Counter()
        # Requests answered per path, whatever the outcome: how many round trips it took.
        self.requests: Counter[str] = Counter()
        # Injected faults by kind ("hang:dropped", "malformed:html", …).
        self.faults: Counter[str] = Counter()
        # Billed answers the client cannot have used, per question like `billed`.
        self.billed_unheard: Counter[str] = Counter()
        # Faults are random, so nothing can lean on their order; seeded, so a failing run
        # can be repeated.
        self._random = random.Random(seed)
        self._window_started: float | None = None
        self._window_count = 0
        self._answers: OrderedDict[str, tuple[str, int, dict[str, Any]]] = OrderedDict()
        self._thread: threading.Thread | None = None
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """The base URL clients use, with the port actually bound (useful with port 0)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def authorized(self, header: str) -> bool:
        if not self.api_key:
            return True
        return hmac.compare_digest(header.encode(), f"Bearer {self.api_key}".encode())

    def admit(self) -> int:
        """Count a request in the current window: 0 to serve it, else seconds to wait."""
        if not self.rate_limit_per_min:
            return 0
        with self._lock:
            now = time.monotonic()
            if self._window_started is None or now - self._window_started >= RATE_WINDOW_SECONDS:
                self._window_started, self._window_count = now, 0
            if self._window_count < self.rate_limit_per_min:
                self._window_count += 1
                return 0
            return max(1, math.ceil(self._window_started + RATE_WINDOW_SECONDS - now))

    def draw_fault(self) -> str | None:
        """Return the fault to inject into this request (FAULT_KINDS), or None.

        The rates are read at each request, so a test may change them while it runs."""
        rates = (
            ("rate_limited", self.rate_limited_rate),
            ("error", self.error_rate),
            ("hang", self.hang_rate),
            ("malformed", self.malformed_rate),
        )
        if not any(rate for _, rate in rates):
            return None
        with self._lock:
            draw = self._random.random()
        for kind, rate in rates:
            if draw < rate:
                return kind
            draw -= rate
        return None

    def choose(self, count: int) -> int:
        """Return a seeded random index below `count`."""
        with self._lock:
            return self._random.randrange(count)

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def answer_once(
        self, idempotency_key: str, fingerprint: str, produce: Callable[[], Answer]
    ) -> tuple[int, dict[str, Any], bool]:
        """Answer a request, or replay the answer already given under its idempotency key.

        Returns (status, body, replayed). A replay bills nothing: its credits are 0.
        """
        if not idempotency_key:
            return (*produce(), False)
        # Producing happens under the lock so two concurrent requests with one key cannot
        # both be billed; it is pure computation, microseconds.
        with self._lock:
            stored = self._answers.get(idempotency_key)
            if stored is None:
                status, body = produce()
                self._answers[idempotency_key] = (fingerprint, status, body)
                if len(self._answers) > IDEMPOTENCY_KEYS_KEPT:
                    self._answers.popitem(last=False)
                return status, body, False
        stored_fingerprint, status, body = stored
        if stored_fingerprint != fingerprint:
            error = {"error": "Idempotency-Key was already used for a different request"}
            return 422, error, False
        replay = {**body, "credits": 0} if "credits" in body else body
        return status, replay, True

    def bill(self, keys: list[str], *, unheard: bool = False) -> None:
        """Count billed answers, as a vendor's invoice would, by what was asked."""
        with self._lock:
            self.billed.update(keys)
            if unheard:
                self.billed_unheard.update(keys)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (timed out, refused a huge body, was killed) is the normal
        # end of a fault, not a server error worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def start_in_thread(self) -> "SandboxServer":
        """Serve from a daemon thread and return at once; stop() ends it."""
        # A short poll interval makes stop() quick; tests start and stop many servers.
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-provider-{self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop a server started with start_in_thread and release its port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    # Keep-alive, so a client's session reuses its connection as it would with a vendor.
    protocol_version = "HTTP/1.1"
    server_version = "LeadsmithSandbox/1"
    _started: float | None = None

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm the second waits
        # for the client's delayed ACK, adding ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return self.server_version

    def parse_request(self) -> bool:
        self._started = time.monotonic()
        return super().parse_request()

    def do_GET(self) -> None:
        if urlsplit(self.path).path == HEALTH_PATH:
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": "no such endpoint"})

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            # The body cannot be skipped safely, so the connection ends with this answer.
            self.close_connection = True
            self._reply(413, {"error": f"body must be 0 to {MAX_BODY_BYTES} bytes"})
            return
        # Read the body before any early answer, or it would be taken for the next request.
        raw = self.rfile.read(length)
        path = urlsplit(self.path).path
        endpoint = ENDPOINTS.get(path)
        if endpoint is None:
            self._reply(404, {"error": "no such endpoint"})
            return
        with self.server._lock:
            self.server.requests[path] += 1
        if self.server.latency_ms:
            time.sleep(self.server.latency_ms / 1000)
        if not self.server.authorized(self.headers.get("Authorization", "")):
            self._reply(401, {"error": "missing or wrong API key"}, {"WWW-Authenticate": "Bearer"})
            return
        wait = self.server.admit()
        if wait:
            self._reply(429, {"error": "rate limit exceeded"}, {"Retry-After": str(wait)})
            return
        fault = self.server.draw_fault()
        if fault is not None:
            self.server.count_fault(fault)
        if fault == "rate_limited":
            retry_after = str(self.server.retry_after_seconds)
            self._reply(429, {"error": "rate limit exceeded"}, {"Retry-After": retry_after})
            return
        if fault == "error":
            self._reply(503, {"error": "sandbox injected failure"})
            return
        if fault == "hang":
            time.sleep(self.server.hang_seconds)
            if self.server.choose(2):
                # Gone without a word, like a vendor behind a dying proxy: nothing billed.
                self.server.count_fault("hang:dropped")
                self.close_connection = True
                self._log_answer("dropped")
                return
        fingerprint = hashlib.sha256(path.encode() + b"\n" + raw).hexdigest()
        status, body, replayed = self.server.answer_once(
            self.headers.get("Idempotency-Key", "").strip(), fingerprint, lambda: endpoint(raw)
        )
        if not replayed and body.get("credits"):
            self.server.bill(billing_keys(path, raw, body), unheard=fault is not None)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        if fault == "malformed":
            kinds = self.server.malformed_kinds
            kind = kinds[self.server.choose(len(kinds))]
            self.server.count_fault(f"malformed:{kind}")
            data, content_type = malformed_answer(
                body, kind, self.server.choose(6), self.server.malformed_bytes
            )
            self._send(200, data, content_type, headers)
            return
        self._reply(status, body, headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests and unsupported methods get JSON too, never the HTML page.
        self.close_connection = True
        self._reply(code, {"error": message or HTTPStatus(code).phrase}, {"Connection": "close"})

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Replaced by the one line _reply writes."""

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"sandbox {format % args}\n")

    def _reply(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _send(
        self,
        status: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        # Logged before the body goes out, so a client that has its answer finds the line.
        self._log_answer(str(status))
        self.wfile.write(data)

    def _log_answer(self, outcome: str) -> None:
        # Method, path, outcome and time only: bodies and headers carry personal data.
        started = self._started
        elapsed = "-" if started is None else f"{(time.monotonic() - started) * 1000:.0f}"
        path = urlsplit(self.path or "").path
        self.log_message("%s %s %s %sms", self.command or "-", path, outcome, elapsed)


def start_in_thread(
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    latency_ms: int = 0,
    error_rate: float = 0.0,
    rate_limit_per_min: int = 0,
    api_key: str = "",
    quiet: bool = True,
    rate_limited_rate: float = 0.0,
    hang_rate: float = 0.0,
    malformed_rate: float = 0.0,
    hang_seconds: float = 30.0,
    retry_after_seconds: int = 1,
    malformed_bytes: int = MALFORMED_BYTES,
    malformed_kinds: tuple[str, ...] = MALFORMED_KINDS,
    seed: int | None = None,
) -> SandboxServer:
    """Start a sandbox in a daemon thread (port 0: any free port); `.url`, then `.stop()`.

    The fault options are described in the module docstring."""
    server = SandboxServer(
        (host, port),
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_limit_per_min=rate_limit_per_min,
        api_key=api_key,
        quiet=quiet,
        rate_limited_rate=rate_limited_rate,
        hang_rate=hang_rate,
        malformed_rate=malformed_rate,
        hang_seconds=hang_seconds,
        retry_after_seconds=retry_after_seconds,
        malformed_bytes=malformed_bytes,
        malformed_kinds=malformed_kinds,
        seed=seed,
    )
    return server.start_in_thread()


def serve(
    port: int,
    *,
    host: str = "127.0.0.1",
    latency_ms: int = 0,
    error_rate: float = 0.0,
    rate_limit_per_min: int = 0,
    api_key: str = "",
    quiet: bool = False,
    rate_limited_rate: float = 0.0,
    hang_rate: float = 0.0,
    malformed_rate: float = 0.0,
    hang_seconds: float = 30.0,
    retry_after_seconds: int = 1,
    malformed_bytes: int = MALFORMED_BYTES,
    seed: int | None = None,
) -> None:
    """Serve in this thread until interrupted; KeyboardInterrupt reaches the caller."""
    with SandboxServer(
        (host, port),
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_limit_per_min=rate_limit_per_min,
        api_key=api_key,
        quiet=quiet,
        rate_limited_rate=rate_limited_rate,
        hang_rate=hang_rate,
        malformed_rate=malformed_rate,
        hang_seconds=hang_seconds,
        retry_after_seconds=retry_after_seconds,
        malformed_bytes=malformed_bytes,
        seed=seed,
    ) as server:
        limit = f"{rate_limit_per_min}/min" if rate_limit_per_min else "off"
        faults = ", ".join(
            f"{name} {rate:g}"
            for name, rate in (
                ("429", rate_limited_rate),
                ("hang", hang_rate),
                ("malformed", malformed_rate),
            )
            if rate
        )
        sys.stderr.write(
            f"Sandbox provider on {server.url}: latency {latency_ms} ms, error rate "
            f"{error_rate:g}, rate limit {limit}, API key {'required' if api_key else 'off'}"
            + (f", faults: {faults} (seed {seed})" if faults else "")
            + "\n"
        )
        server.serve_forever()
