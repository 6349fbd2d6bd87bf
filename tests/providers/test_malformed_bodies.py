"""Malformed vendor answers end as a failed call with a reason, never a crashed worker.

Every adapter (sandbox, hunter, pdl, apollo, netrows) and each of its operations gets the
same garbage, replayed with `responses`: wrong types, missing keys, invalid JSON, HTML error
pages with 200/500/502, a 10 MB body, and (hypothesis) the vendor's own recorded answer
mutated at random. Whatever arrives, the call returns an answer the ledger can store or
raises a ProviderError that says why; never a TypeError, KeyError or anything else.
"""

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from enrichment.fields import FIELDS, Entity
from enrichment.models import Observation
from enrichment.services import run_execute, runs_create
from leads.models import Lead
from providers.apollo.adapter import ApolloProvider
from providers.base import (
    Candidate,
    Permanent,
    PersonQuery,
    ProviderAnswer,
    ProviderError,
    Transient,
)
from providers.hunter.adapter import HunterProvider
from providers.ledger import _stored
from providers.models import ProviderCall
from providers.netrows.adapter import NetrowsProvider
from providers.pdl.adapter import PdlProvider
from providers.sandbox.adapter import SandboxProvider
from providers.sandbox.server import ERROR_PAGE, MALFORMED_KINDS
from tests.factories import CompanyFactory, LeadFactory
from tests.providers.vendor_fixtures import load

VENDOR = "http://vendor.invalid"
EVERY_URL = re.compile(r"http://vendor\.invalid/.*")
TEN_MB = 10 * 1024 * 1024

JANE = PersonQuery(
    email="jane.doe@acme.com",
    first_name="Jane",
    last_name="Doe",
    domain="acme.com",
    linkedin_url="https://www.linkedin.com/in/jane-doe",
)
JOHN = PersonQuery(email="john.roe@acme.com", first_name="John", last_name="Roe", domain="acme.com")
SEAN = PersonQuery(email="sean@peopledatalabs.com")

SANDBOX_PERSON = {
    "email": {"value": "jane.doe@acme.com", "confidence": 0.92, "verification": "valid"},
    "job_title": {"value": "VP of Sales", "confidence": 0.81},
    "phone": {"value": "+12127340123", "confidence": 0.7},
}


@dataclass(frozen=True)
class Operation:
    """One adapter call, the HTTP method it uses, and a well-formed answer to it."""

    name: str
    method: str
    call: Callable[[], Any]
    template: Any

    def __str__(self) -> str:
        return self.name


def _fixture(vendor: str, name: str) -> Any:
    return load(vendor, name)["body"]


def sandbox() -> SandboxProvider:
    return SandboxProvider(VENDOR, api_key="")


def hunter() -> HunterProvider:
    return HunterProvider(VENDOR, "hunter-key")


def pdl() -> PdlProvider:
    return PdlProvider(VENDOR, api_key="pdl-key")


def apollo() -> ApolloProvider:
    return ApolloProvider(VENDOR, api_key="apollo-key")


def netrows() -> NetrowsProvider:
    return NetrowsProvider(VENDOR, api_key="netrows-key")


OPERATIONS = [
    Operation(
        "sandbox.person_enrich",
        "POST",
        lambda: sandbox().person_enrich(JANE, idempotency_key="k"),
        {"person": SANDBOX_PERSON, "credits": 1},
    ),
    Operation(
        "sandbox.person_enrich_bulk",
        "POST",
        lambda: sandbox().person_enrich_bulk([JANE, JOHN], idempotency_key="k"),
        {
            "results": [
                {"status": 200, "person": SANDBOX_PERSON},
                {"status": 404, "error": "person not found"},
            ],
            "credits": 1,
        },
    ),
    Operation(
        "sandbox.company_enrich",
        "POST",
        lambda: sandbox().company_enrich("acme.com", idempotency_key="k"),
        {
            "company": {
                "company_name": {"value": "Acme Inc.", "confidence": 0.9},
                "technologies": {"value": ["AWS", "Stripe"], "confidence": 0.6},
            },
            "credits": 1,
        },
    ),
    Operation(
        "hunter.person_enrich",
        "GET",
        lambda: hunter().person_enrich(JANE, idempotency_key="k"),
        _fixture("hunter", "email_finder_hit"),
    ),
    Operation(
        "hunter.email_verify",
        "GET",
        lambda: hunter().email_verify("jane.doe@acme.com", idempotency_key="k"),
        _fixture("hunter", "email_verifier_valid"),
    ),
    Operation(
        "hunter.company_enrich",
        "GET",
        lambda: hunter().company_enrich("acme.com", idempotency_key="k"),
        _fixture("hunter", "domain_search_company"),
    ),
    Operation(
        "pdl.person_enrich",
        "GET",
        lambda: pdl().person_enrich(SEAN, idempotency_key="k"),
        _fixture("pdl", "person_enrich_hit"),
    ),
    Operation(
        "pdl.person_enrich_bulk",
        "POST",
        lambda: pdl().person_enrich_bulk([SEAN, JANE, JOHN], idempotency_key="k"),
        _fixture("pdl", "person_bulk_mixed"),
    ),
    Operation(
        "pdl.company_enrich",
        "GET",
        lambda: pdl().company_enrich("peopledatalabs.com", idempotency_key="k"),
        _fixture("pdl", "company_enrich_hit"),
    ),
    Operation(
        "apollo.person_enrich",
        "POST",
        lambda: apollo().person_enrich(JANE, idempotency_key="k"),
        _fixture("apollo", "people_match_hit"),
    ),
    Operation(
        "apollo.person_enrich_bulk",
        "POST",
        lambda: apollo().person_enrich_bulk([JANE, JOHN, SEAN], idempotency_key="k"),
        _fixture("apollo", "people_bulk_match_hit"),
    ),
    Operation(
        "apollo.company_enrich",
        "GET",
        lambda: apollo().company_enrich("apollo.io", idempotency_key="k"),
        _fixture("apollo", "organization_enrich_hit"),
    ),
    Operation(
        "netrows.person_enrich",
        "POST",
        lambda: netrows().person_enrich(JANE, idempotency_key="k"),
        _fixture("netrows", "profile_hit"),
    ),
]
BY_NAME = {operation.name: operation for operation in OPERATIONS}


def _respond(operation: Operation, *, status: int = 200, **kwargs) -> None:
    responses.add(operation.method, EVERY_URL, status=status, **kwargs)


def _storable_text(text: str) -> bool:
    return "\x00" not in text and text.encode("utf-8", "strict") is not None


def assert_fit_for_the_ledger(result: Any) -> None:
    """An answer the ledger and the merge can take, whatever the vendor sent; in a bulk
    answer, a lookup it failed alone is that lookup's ProviderError."""
    answers = result if isinstance(result, list) else [result]
    for answer in answers:
        if isinstance(result, list) and isinstance(answer, ProviderError):
            assert_failed_with_a_reason(answer)
            continue
        assert isinstance(answer, ProviderAnswer)
        assert isinstance(answer.credits, float)
        assert math.isfinite(answer.credits) and 0 <= answer.credits < 10_000_000
        assert answer.http_status is None or 100 <= answer.http_status <= 599
        for candidate in answer.candidates:
            assert isinstance(candidate, Candidate)
            assert candidate.field in FIELDS
            assert candidate.confidence is None or 0.0 <= candidate.confidence <= 1.0
            values = candidate.value if isinstance(candidate.value, list) else [candidate.value]
            assert values and all(isinstance(v, str) and v and _storable_text(v) for v in values)
        # What _record_answer writes: strict JSON PostgreSQL's jsonb accepts.
        stored = json.dumps(_stored(answer), allow_nan=False)
        assert "\\u0000" not in stored
        stored.encode("utf-8", "strict")


def assert_failed_with_a_reason(error: ProviderError) -> None:
    assert str(error).strip()
    # ProviderCall.http_status is a PositiveSmallIntegerField.
    assert error.http_status is None or 100 <= error.http_status <= 599
    # Keys never reach a message (the ledger keeps it, logs print it).
    for key in ("hunter-key", "pdl-key", "apollo-key", "netrows-key"):
        assert key not in str(error)


def outcome(operation: Operation) -> ProviderAnswer | list[ProviderAnswer] | ProviderError:
    """Make the call; an answer or a ProviderError, anything else fails the test."""
    try:
        result = operation.call()
    except ProviderError as exc:
        assert_failed_with_a_reason(exc)
        return exc
    assert_fit_for_the_ledger(result)
    return result


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@responses.activate
def test_the_templates_are_answers(operation):
    # The mutations below start from answers each adapter reads as such.
    _respond(operation, json=operation.template)

    assert not isinstance(outcome(operation), ProviderError)


# --- Garbage every operation must refuse ------------------------------------------------

INVALID_JSON = b'{"person": {"email": {"value": "jane.doe@acme.com", "confid'
# Not JSON at all, as a proxy or a cut connection would leave it: asking again can help.
NOT_JSON = [
    ("invalid JSON", INVALID_JSON, "application/json"),
    ("an HTML page", ERROR_PAGE, "text/html"),
    ("an empty HTML 200", b"<html></html>", "text/html; charset=utf-8"),
    ("UTF-8 that is not", b'{"person": "\xff\xfe"}', "application/json"),
]
# JSON, but nothing Leadsmith can use or store: the same question would get it again.
UNUSABLE_JSON = [
    ("a JSON string", b'"ok"'),
    ("a JSON number", b"42"),
    ("null", b"null"),
    ("NaN", b'{"credits": NaN, "likelihood": NaN}'),
    ("a number out of range", b'{"credits": 1e999}'),
    ("nesting deeper than the stack", b"[" * 100_000 + b"]" * 100_000),
]


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@pytest.mark.parametrize(
    ("body", "content_type"), [case[1:] for case in NOT_JSON], ids=[case[0] for case in NOT_JSON]
)
@responses.activate
def test_a_success_that_is_not_json_is_a_transient_failure(operation, body, content_type):
    _respond(operation, body=body, content_type=content_type)

    error = outcome(operation)

    assert isinstance(error, Transient)
    assert error.http_status == 200
    assert "not JSON" in str(error)


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@pytest.mark.parametrize(
    "body", [case[1] for case in UNUSABLE_JSON], ids=[case[0] for case in UNUSABLE_JSON]
)
@responses.activate
def test_a_success_that_is_unusable_json_is_a_failed_call(operation, body):
    _respond(operation, body=body, content_type="application/json")

    error = outcome(operation)

    assert isinstance(error, Permanent)
    assert error.http_status == 200


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@pytest.mark.parametrize("status", [500, 502, 503])
@responses.activate
def test_an_html_error_page_is_a_transient_failure(operation, status):
    _respond(operation, status=status, body=ERROR_PAGE, content_type="text/html")

    error = outcome(operation)

    assert isinstance(error, Transient)
    assert error.http_status == status
    assert str(status) in str(error)


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "unannounced"])
@responses.activate
def test_a_ten_megabyte_answer_is_refused_unread(operation, declared, settings):
    settings.PROVIDER_MAX_RESPONSE_BYTES = 1024 * 1024
    padding = b" " * TEN_MB
    body = json.dumps(operation.template).encode() + padding
    headers = {"Content-Length": str(len(body))} if declared else {}
    _respond(operation, body=body, content_type="application/json", headers=headers)

    error = outcome(operation)

    assert isinstance(error, Permanent)
    assert "refused unread" in str(error)


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@responses.activate
def test_a_huge_error_page_still_fails_by_its_status(operation, settings):
    settings.PROVIDER_MAX_RESPONSE_BYTES = 1024 * 1024
    _respond(operation, status=502, body=b"<html>" + b"x" * TEN_MB, content_type="text/html")

    assert isinstance(outcome(operation), Transient)


# Record-level wrong types and missing keys, per operation: the part of the answer each
# adapter needs is there with the wrong type, or not there at all.
BROKEN = {
    "sandbox.person_enrich": [
        {"person": "Jane Doe", "credits": 1},
        {"person": ["email", "job_title"], "credits": 1},
        {"person": {"email": {"value": 42, "confidence": "high"}}, "credits": 1},
        {"person": {"email": {"confidence": 0.9}, "job_title": {"confidence": 0.8}}, "credits": 1},
        {"credits": 1},
        {},
    ],
    "sandbox.person_enrich_bulk": [
        {"results": {"status": 200}, "credits": 1},
        {"results": [{"status": "200", "person": SANDBOX_PERSON}] * 2, "credits": 1},
        {"results": [{"status": None, "person": SANDBOX_PERSON}] * 2, "credits": 1},
        {"results": [{"status": 70000, "person": SANDBOX_PERSON}] * 2, "credits": 1},
        {"results": [{"status": -1}] * 2, "credits": 0},
        {"results": [{"person": SANDBOX_PERSON}] * 2, "credits": 2},
        {"results": [{"status": 200, "person": "Jane"}] * 2, "credits": 2},
        {"results": [{"status": 200, "person": SANDBOX_PERSON}], "credits": 1},
        {"credits": 2},
    ],
    "sandbox.company_enrich": [
        {"company": "Acme", "credits": 1},
        {"company": {"company_name": {"value": ["Acme"], "confidence": None}}, "credits": 1},
        {"credits": 1},
    ],
    "hunter.person_enrich": [{"data": "jane.doe@acme.com"}, {"data": []}, {"meta": {}}],
    "hunter.email_verify": [{"data": "valid"}, {"data": None}, {}],
    "hunter.company_enrich": [{"data": ["acme.com"]}, {}],
    "pdl.person_enrich": [
        {"status": 200, "likelihood": 9, "data": "Sean Thorne"},
        {"status": 200, "likelihood": 9},
    ],
    "pdl.person_enrich_bulk": [
        {"data": []},
        ["Sean", "Jane", "John"],
        [{"status": "200", "data": {}}] * 3,
        [{"status": 200, "data": "Sean"}] * 3,
        [{"data": {}}] * 3,
        [],
    ],
    "pdl.company_enrich": [
        {"status": 200, "name": 5, "display_name": ["People Data Labs"], "id": None},
        {"status": 200, "likelihood": 9},
    ],
    "apollo.person_enrich": [{"person": "Jane Doe"}, {"person": ["Jane"]}, {"person": 1}],
    "apollo.person_enrich_bulk": [
        {"matches": "none"},
        {"matches": [1, 2, 3]},
        {"matches": [None]},
        {"credits_consumed": 2},
    ],
    "apollo.company_enrich": [{"organization": "Apollo"}, {"organization": ["Apollo"]}],
    "netrows.person_enrich": [[], ["job_title"], {"profile": {"job_title": "CTO"}}, {}],
}


@pytest.mark.parametrize(
    ("operation", "body"),
    [(BY_NAME[name], body) for name, bodies in BROKEN.items() for body in bodies],
    ids=[f"{name}-{i}" for name, bodies in BROKEN.items() for i in range(len(bodies))],
)
@responses.activate
def test_wrong_types_and_missing_keys_are_a_failed_call(operation, body):
    _respond(operation, json=body)

    result = outcome(operation)

    # A bulk answer fails each lookup whose result it broke, alone: here, every one.
    errors = result if isinstance(result, list) else [result]
    assert errors and all(isinstance(e, Permanent) for e in errors), result
    assert all(e.http_status == 200 for e in errors)


@responses.activate
def test_a_bulk_answer_that_breaks_one_result_keeps_the_others():
    operation = BY_NAME["sandbox.person_enrich_bulk"]
    results = [{"status": 200, "person": SANDBOX_PERSON}, {"person": "?"}]
    _respond(operation, json={"results": results, "credits": 1})

    kept, broken = outcome(operation)

    assert isinstance(kept, ProviderAnswer) and kept.is_hit and kept.credits == 1.0
    assert isinstance(broken, Permanent) and "without an HTTP status" in str(broken)


def test_every_operation_has_broken_answers():
    assert set(BROKEN) == set(BY_NAME)


# --- Anything at all: never a crash -----------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "\x00", "\ud800", "200", "valid", "+12127340123", "a@b.co", "9"])
    | st.sampled_from([10**400, -(10**400), 1e308, 70000, -1])
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw, value: Any, depth: int = 0) -> Any:
    """The value with parts replaced by any JSON, removed, or left alone, at every depth."""
    choice = draw(st.integers(min_value=0, max_value=9))
    if choice == 0:
        return draw(json_values)
    if isinstance(value, dict) and depth < 6:
        result = {}
        for key, item in value.items():
            if draw(st.integers(min_value=0, max_value=7)) == 0:
                continue
            result[key] = draw(mutated(item, depth + 1))
        return result
    if isinstance(value, list) and depth < 6:
        return [draw(mutated(item, depth + 1)) for item in value]
    return value


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@pytest.mark.parametrize("status", [200, 202, 404, 429, 500])
@hypothesis_settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_answer_ends_as_an_answer_or_a_failed_call(operation, status, data):
    body = data.draw(mutated(operation.template))
    retry_after = data.draw(
        st.sampled_from(["", "5", "nan", "inf", "-inf", "1e400", "Fri, 31 Dec 9999 23:59:59 GMT"])
    )
    headers = {"Retry-After": retry_after} if retry_after else {}
    with responses.RequestsMock() as mock:
        mock.add(operation.method, EVERY_URL, status=status, json=body, headers=headers)

        result = outcome(operation)

    if isinstance(result, ProviderError):
        wait = getattr(result, "retry_after", None)
        assert wait is None or 0 <= wait <= 24 * 3600


# --- The sandbox's own faults, over real HTTP --------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.person_enrich(JANE, idempotency_key="k"),
        lambda p: p.person_enrich_bulk([JANE, JOHN], idempotency_key="k"),
        lambda p: p.company_enrich("acme.com", idempotency_key="k"),
    ],
    ids=["person", "bulk", "company"],
)
def test_every_malformed_sandbox_answer_is_a_failed_call(start_sandbox, settings, call):
    settings.PROVIDER_MAX_RESPONSE_BYTES = 1024 * 1024
    server = start_sandbox(malformed_rate=1.0, malformed_bytes=2 * 1024 * 1024, seed=7)
    provider = SandboxProvider(server.url, api_key="")

    errors: dict[str, list[ProviderError]] = {}
    while len(errors) < len(MALFORMED_KINDS):
        injected = server.faults.copy()
        with pytest.raises(ProviderError) as caught:
            call(provider)
        assert_failed_with_a_reason(caught.value)
        (kind,) = [k for k in server.faults - injected if k.startswith("malformed:")]
        errors.setdefault(kind.removeprefix("malformed:"), []).append(caught.value)

    for kind, raised in errors.items():
        expected = Transient if kind in ("invalid_json", "html") else Permanent
        assert all(type(error) is expected for error in raised), kind
        assert all(error.http_status == 200 for error in raised)


# --- A run whose provider answers garbage -------------------------------------------------


def _lead_as_stored(lead_id: int) -> dict[str, Any]:
    lead = Lead.objects.get(id=lead_id)
    columns = {spec.column for spec in FIELDS.values() if spec.entity is Entity.LEAD}
    return {
        name: getattr(lead, name)
        for name in sorted(columns | {"email_verification", "last_enriched_at"})
    }


@pytest.mark.django_db
@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_a_run_fed_garbage_fails_or_retries_with_a_reason_and_writes_nothing(
    start_sandbox, settings, kind
):
    settings.PROVIDER_MAX_RESPONSE_BYTES = 1024 * 1024
    server = start_sandbox(
        malformed_rate=1.0, malformed_kinds=(kind,), malformed_bytes=2 * 1024 * 1024, seed=1
    )
    settings.SANDBOX_BASE_URL = server.url
    lead = LeadFactory(
        first_name="Ada",
        last_name="Byron",
        email="ada.byron@garbage-in.com",
        job_title="Engineer",
        company=CompanyFactory(domain="garbage-in.com"),
    )
    before = _lead_as_stored(lead.id)
    (run,) = runs_create(lead_ids=[lead.id], trigger="manual", enqueue=False)

    run = run_execute(run_id=run.id)

    # What a retry can mend is tried again later; the rest fails, an operator may retry it.
    if kind in ("invalid_json", "html"):
        assert (run.state, run.attempts) == ("queued", 1)
        assert run.available_at > run.started_at
    else:
        assert run.state == "failed"
    assert "answered 200" in run.last_error
    assert _lead_as_stored(lead.id) == before
    assert not Observation.objects.filter(lead=lead).exists()
    assert not Observation.objects.filter(company=lead.company).exists()
    calls = ProviderCall.objects.filter(provider="sandbox")
    assert calls.exists()
    for call in calls:
        assert (call.outcome, call.credits) == ("error", 0)
        assert call.error


# --- Bodies that arrive wrong ----------------------------------------------------------------


@responses.activate
def test_a_body_that_does_not_decode_is_a_failed_call():
    operation = BY_NAME["sandbox.company_enrich"]
    _respond(
        operation,
        body=b"this is not gzip at all",
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )

    error = outcome(operation)

    assert isinstance(error, Permanent)
    assert "does not decode (gzip)" in str(error)


class _Trickle(BaseHTTPRequestHandler):
    """Answers a valid 200 a few bytes at a time, each well inside a read timeout."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"company": {}, "padding": "x" * 60}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for start in range(0, len(body), 8):
            self.wfile.write(body[start : start + 8])
            self.wfile.flush()
            time.sleep(0.05)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def test_a_body_trickling_past_the_timeout_is_a_transient_failure():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        provider = SandboxProvider(f"http://127.0.0.1:{server.server_address[1]}", timeout=0.3)
        with pytest.raises(Transient, match=r"took longer than 0\.3s") as caught:
            provider.company_enrich("acme.com", idempotency_key="k")
    finally:
        server.shutdown()
        server.server_close()

    assert caught.value.http_status == 200
