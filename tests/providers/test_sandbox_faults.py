"""The sandbox's injected faults over real HTTP: 429s, 503s, hangs and malformed answers,
drawn from a seeded random so a fault run can be repeated."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.management import CommandError, call_command

from providers.sandbox import server as sandbox_server
from providers.sandbox.server import (
    COMPANY_PATH,
    MALFORMED_KINDS,
    PERSON_BULK_PATH,
    PERSON_PATH,
    SandboxServer,
)


def known_domain() -> str:
    """A domain the sandbox knows, so its answer is billed."""
    for i in range(100):
        domain = f"faulty{i}.com"
        status, _ = sandbox_server.company_enrich(json.dumps({"domain": domain}).encode())
        if status == 200:
            return domain
    raise AssertionError("no known domain among 100")


def known_email() -> str:
    """An address the sandbox knows a person for, so its answer is billed."""
    for i in range(100):
        email = f"jane.doe{i}@acme.com"
        status, _ = sandbox_server.person_enrich(json.dumps({"email": email}).encode())
        if status == 200:
            return email
    raise AssertionError("no known person among 100")


def post(server, path: str, body, *, key: str = "", timeout: float = 5) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{server.url}{path}", json=body, headers=headers, timeout=timeout)


def statuses(server, count: int) -> list[int | str]:
    answers: list[int | str] = []
    for i in range(count):
        try:
            answers.append(post(server, COMPANY_PATH, {"domain": f"seeded{i}.com"}).status_code)
        except requests.ConnectionError:
            answers.append("dropped")
    return answers


def test_the_same_seed_gives_the_same_faults(start_sandbox):
    faults = {"error_rate": 0.3, "rate_limited_rate": 0.2, "malformed_rate": 0.1}
    first = start_sandbox(seed=42, **faults)
    again = start_sandbox(seed=42, **faults)
    other = start_sandbox(seed=43, **faults)

    assert statuses(first, 60) == statuses(again, 60) != statuses(other, 60)
    assert first.faults == again.faults


def test_the_rates_add_up_and_the_rest_is_answered(start_sandbox):
    server = start_sandbox(
        seed=1, error_rate=0.2, rate_limited_rate=0.1, hang_rate=0.05, hang_seconds=0
    )
    answers = statuses(server, 600)

    # Seeded: the shares are those of this sequence, close to the rates.
    assert 0.15 < answers.count(503) / 600 < 0.25
    assert 0.06 < answers.count(429) / 600 < 0.14
    assert 0.02 < server.faults["hang"] / 600 < 0.08
    assert answers.count("dropped") == server.faults["hang:dropped"] > 0
    assert 0.6 < sum(status in (200, 404) for status in answers) / 600 < 0.8
    assert server.requests[COMPANY_PATH] == 600


def test_a_random_429_carries_the_configured_retry_after(start_sandbox):
    server = start_sandbox(rate_limited_rate=1.0, retry_after_seconds=3)

    answer = post(server, COMPANY_PATH, {"domain": "acme.com"})

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert answer.json() == {"error": "rate limit exceeded"}
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
    assert not server.billed


def test_a_hang_outlasts_the_client_then_answers_billed_or_drops_unbilled(start_sandbox):
    server = start_sandbox(hang_rate=1.0, hang_seconds=0.4, seed=5)
    domain = known_domain()

    with pytest.raises(requests.Timeout):
        post(server, COMPANY_PATH, {"domain": domain}, key="gave-up", timeout=0.1)
    outcomes = []
    for i in range(8):
        try:
            outcomes.append(post(server, COMPANY_PATH, {"domain": domain}, key=f"k{i}").status_code)
        except requests.ConnectionError:
            outcomes.append("dropped")

    assert set(outcomes) == {200, "dropped"}
    assert server.faults["hang"] == 9
    # The first client's hang ended while the others waited, in an answer or a drop.
    assert server.faults["hang:dropped"] - outcomes.count("dropped") in (0, 1)
    # Each answered hang was billed (each client used its own key), all as unheard.
    assert sum(server.billed.values()) == server.faults["hang"] - server.faults["hang:dropped"]
    assert server.billed_unheard == server.billed


def test_a_retry_under_the_same_key_replays_what_a_hang_got_billed_for(start_sandbox):
    server = start_sandbox(hang_rate=1.0, hang_seconds=0.3, seed=5)
    body = {"domain": known_domain()}
    with ThreadPoolExecutor() as pool:
        # Clients that gave up after 0.1 s; each hang still ends in an answer or a drop.
        gave_up = [
            pool.submit(post, server, COMPANY_PATH, body, key="run-1", timeout=0.1)
            for _ in range(6)
        ]
        for future in gave_up:
            with pytest.raises(requests.Timeout):
                future.result()
    time.sleep(0.6)
    billed_before = sum(server.billed.values())
    server.hang_rate = 0.0

    retry = post(server, COMPANY_PATH, body, key="run-1")

    # One key: however many hangs answered, one of them at most was billed.
    assert billed_before <= 1
    if billed_before:
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.json()["credits"] == 0
    assert sum(server.billed.values()) == 1
    assert sum(server.billed_unheard.values()) == billed_before


@pytest.mark.parametrize("path", [PERSON_PATH, COMPANY_PATH, PERSON_BULK_PATH])
def test_a_mangled_answer_is_billed_unheard_and_its_retry_gets_the_clean_one(start_sandbox, path):
    server = start_sandbox(malformed_rate=1.0, malformed_bytes=100_000, seed=2)
    person = {"email": known_email()}
    body = {
        PERSON_PATH: person,
        COMPANY_PATH: {"domain": known_domain()},
        PERSON_BULK_PATH: {"requests": [person, {"email": "john.roe@acme.com"}]},
    }[path]

    mangled = post(server, path, body, key="k")
    server.malformed_rate = 0.0
    retry = post(server, path, body, key="k")
    fresh = post(server, path, body)

    assert mangled.status_code == 200
    assert mangled.content != retry.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == {**fresh.json(), "credits": 0}
    # Billed twice: the mangled answer (unheard) and the fresh one; the retry was free.
    assert server.billed
    assert all(count == 2 for count in server.billed.values())
    assert all(count == 1 for count in server.billed_unheard.values())
    assert set(server.billed_unheard) == set(server.billed)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
@pytest.mark.parametrize("path", [PERSON_PATH, COMPANY_PATH, PERSON_BULK_PATH])
def test_each_malformed_kind_is_unusable(start_sandbox, kind, path):
    server = start_sandbox(
        malformed_rate=1.0, malformed_kinds=(kind,), malformed_bytes=300_000, seed=4
    )
    body = {
        PERSON_PATH: {"email": known_email()},
        COMPANY_PATH: {"domain": known_domain()},
        PERSON_BULK_PATH: {"requests": [{"email": known_email()}]},
    }[path]

    for _ in range(6):
        answer = post(server, path, body)
        assert answer.status_code == 200
        if kind == "invalid_json":
            with pytest.raises(ValueError):
                answer.json()
        elif kind == "html":
            assert answer.headers["Content-Type"].startswith("text/html")
        elif kind == "huge":
            assert len(answer.content) >= 300_000
            assert int(answer.headers["Content-Length"]) == len(answer.content)
            answer.json()
        else:
            assert not _usable(answer.json(), path)
    assert server.faults[f"malformed:{kind}"] == 6


def _usable(body, path: str) -> bool:
    """Whether the answer has the shape a client reads (the adapter's view, simplified)."""

    def record_ok(record) -> bool:
        return isinstance(record, dict) and any(
            isinstance(item, dict)
            and isinstance(item.get("value"), str | list)
            and isinstance(item.get("confidence"), int | float)
            for item in record.values()
        )

    if path == PERSON_BULK_PATH:
        results = body.get("results")
        return isinstance(results, list) and all(
            isinstance(item.get("status"), int)
            and (item["status"] != 200 or record_ok(item.get("person")))
            for item in results
        )
    record = "company" if path == COMPANY_PATH else "person"
    return record_ok(body.get(record)) or body.get("error") == f"{record} not found"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hang_rate": 1.5}, "hang_rate"),
        ({"malformed_rate": -0.1}, "malformed_rate"),
        ({"rate_limited_rate": 2}, "rate_limited_rate"),
        ({"error_rate": 0.6, "hang_rate": 0.5}, "add up"),
        ({"hang_seconds": -1}, "hang_seconds"),
        ({"malformed_kinds": ("html", "poetry")}, "malformed_kinds"),
        ({"malformed_kinds": ()}, "malformed_kinds"),
    ],
)
def test_invalid_fault_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        SandboxServer(("127.0.0.1", 0), **options)


def test_the_command_refuses_fault_rates_past_one():
    with pytest.raises(CommandError, match="add up"):
        call_command("sandbox_provider", "--port", "0", "--error-rate", "0.6", "--hang-rate", "0.6")


def test_the_command_refuses_a_negative_hang():
    with pytest.raises(CommandError, match="hang-seconds"):
        call_command("sandbox_provider", "--port", "0", "--hang-seconds", "-1")
