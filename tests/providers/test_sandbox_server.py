"""The sandbox server over real HTTP: its data, its faults and its idempotency."""

import time

import pytest
import requests

from leads.normalize import normalize_linkedin_url, normalize_phone
from providers.sandbox import server as sandbox_server
from providers.sandbox.server import COMPANY_PATH, PERSON_PATH

PERSON_FIELDS = {
    "email",
    "phone",
    "job_title",
    "seniority",
    "department",
    "location",
    "linkedin_url",
}
COMPANY_FIELDS = {
    "company_name",
    "industry",
    "employee_range",
    "revenue_range",
    "hq_location",
    "technologies",
}


FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]


def people(count: int) -> list[dict[str, str]]:
    """Distinct people by name and company domain, the way Find Email asks."""
    return [
        {
            "first_name": FIRST_NAMES[i % 8],
            "last_name": LAST_NAMES[i // 8 % 8],
            "domain": f"company{i // 64}.com",
        }
        for i in range(count)
    ]


def post(server, path: str, body=None, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, timeout=5, **kwargs)


def test_health(sandbox):
    response = requests.get(f"{sandbox.url}/health", timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_same_question_same_answer_across_servers(sandbox, start_sandbox):
    other = start_sandbox()
    for body in [*people(20), {"email": "jane.doe@acme.com"}, {"domain": "acme.com"}]:
        path = COMPANY_PATH if set(body) == {"domain"} else PERSON_PATH
        first, again = post(sandbox, path, body), post(sandbox, path, body)
        elsewhere = post(other, path, body)

        assert first.status_code == again.status_code == elsewhere.status_code
        assert first.json() == again.json() == elsewhere.json()


def test_some_people_are_unknown_and_not_billed(sandbox):
    answers = [post(sandbox, PERSON_PATH, body) for body in people(200)]
    misses = [answer for answer in answers if answer.status_code == 404]

    assert {answer.status_code for answer in answers} == {200, 404}
    assert 0.05 < len(misses) / len(answers) < 0.25
    assert misses[0].json() == {"error": "person not found"}


def test_person_answer_shape(sandbox):
    hits = [post(sandbox, PERSON_PATH, body).json() for body in people(200)]
    hits = [hit for hit in hits if "person" in hit]

    for hit in hits:
        assert hit["credits"] == 1
        person = hit["person"]
        assert {"email", "job_title"} <= set(person) <= PERSON_FIELDS
        for name, item in person.items():
            expected = {"value", "confidence", "verification"} if name == "email" else None
            assert set(item) == (expected or {"value", "confidence"})
            assert 0.0 <= item["confidence"] <= 1.0
        assert person["email"]["verification"] in {"valid", "accept_all", "unknown"}
        if "phone" in person:
            assert normalize_phone(person["phone"]["value"]) == person["phone"]["value"]
        if "linkedin_url" in person:
            url = person["linkedin_url"]["value"]
            assert normalize_linkedin_url(url) == url
        assert person["seniority"]["value"] in sandbox_server.SENIORITIES
    # Not every person has every field.
    assert any("phone" not in hit["person"] for hit in hits)
    assert any("phone" in hit["person"] for hit in hits)


def test_confidence_lands_in_every_merge_band_for_every_field(sandbox):
    by_field: dict[str, list[float]] = {}
    for body in people(300):
        for name, item in post(sandbox, PERSON_PATH, body).json().get("person", {}).items():
            by_field.setdefault(name, []).append(item["confidence"])

    assert set(by_field) == PERSON_FIELDS
    for name, confidences in by_field.items():
        assert any(c >= 0.9 for c in confidences), name
        assert any(0.5 <= c < 0.9 for c in confidences), name
        assert any(c < 0.45 for c in confidences), name


def test_email_is_proposed_from_the_name_and_domain(sandbox):
    proposed = set()
    for body in people(100):
        person = post(sandbox, PERSON_PATH, body).json().get("person")
        if person:
            local, domain = person["email"]["value"].split("@")
            assert domain == body["domain"]
            first, last = body["first_name"].lower(), body["last_name"].lower()
            assert local in {f"{first}.{last}", f"{first[0]}{last}", first}
            proposed.add(local.replace(first, "F").replace(last, "L").replace(first[0], "f"))
    assert proposed == {"F.L", "fL", "F"}


def test_a_given_email_or_profile_is_answered_for(sandbox):
    by_email = [post(sandbox, PERSON_PATH, {"email": f"user{i}@acme.com"}) for i in range(20)]
    for answer in by_email:
        if answer.status_code == 200:
            email = answer.json()["person"]["email"]["value"]
            assert email in {f"user{i}@acme.com" for i in range(20)}

    slug = next(
        f"jane-doe-{i}"
        for i in range(50)
        if post(sandbox, PERSON_PATH, {"linkedin_url": f"linkedin.com/in/jane-doe-{i}"}).ok
    )
    person = post(sandbox, PERSON_PATH, {"linkedin_url": f"linkedin.com/in/{slug}/"}).json()
    assert person["person"]["linkedin_url"] == {
        "value": f"https://www.linkedin.com/in/{slug}",
        "confidence": 0.99,
    }
    # The name is read from the profile slug.
    local, domain = person["person"]["email"]["value"].split("@")
    assert local in {"jane.doe", "jdoe", "jane"}
    assert domain in sandbox_server.FALLBACK_DOMAINS


def test_company_answers(sandbox):
    answers = [post(sandbox, COMPANY_PATH, {"domain": f"firm{i}.com"}) for i in range(200)]
    hits = [answer.json() for answer in answers if answer.status_code == 200]
    misses = [answer for answer in answers if answer.status_code == 404]

    assert 0.03 < len(misses) / len(answers) < 0.2
    assert misses[0].json() == {"error": "company not found"}
    for hit in hits:
        assert hit["credits"] == 1
        company = hit["company"]
        assert {"company_name", "industry", "employee_range", "hq_location"} <= set(company)
        assert set(company) <= COMPANY_FIELDS
        assert all(set(item) == {"value", "confidence"} for item in company.values())
        if "technologies" in company:
            technologies = company["technologies"]["value"]
            assert 2 <= len(technologies) == len(set(technologies))
            assert all(isinstance(tech, str) for tech in technologies)
    name = next(hit["company"]["company_name"]["value"] for hit in hits)
    assert name.startswith("Firm")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (PERSON_PATH, {}),
        (PERSON_PATH, {"first_name": "Jane", "last_name": "Doe"}),
        (PERSON_PATH, {"email": "not-an-address"}),
        (PERSON_PATH, {"email": 42}),
        (PERSON_PATH, {"linkedin_url": "https://example.com/in/jane"}),
        (PERSON_PATH, {"first_name": "Jane", "last_name": "Doe", "domain": "nodot"}),
        (PERSON_PATH, ["not", "an", "object"]),
        (COMPANY_PATH, {}),
        (COMPANY_PATH, {"domain": "not a domain"}),
    ],
)
def test_bad_input_is_400(sandbox, path, body):
    response = post(sandbox, path, body)

    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


def test_non_json_body_is_400(sandbox):
    response = requests.post(f"{sandbox.url}{PERSON_PATH}", data=b"email=x", timeout=5)

    assert response.status_code == 400
    assert response.json() == {"error": "body is not valid JSON"}


def test_unknown_endpoint_and_method_answer_json(sandbox):
    missing = post(sandbox, "/v1/nothing", {"email": "a@b.com"})
    unsupported = requests.put(f"{sandbox.url}{PERSON_PATH}", json={}, timeout=5)

    assert missing.status_code == 404
    assert missing.json() == {"error": "no such endpoint"}
    assert unsupported.status_code == 501
    assert unsupported.headers["Content-Type"] == "application/json"


def test_rate_limit_answers_429_with_retry_after(start_sandbox):
    server = start_sandbox(rate_limit_per_min=5)
    statuses = [post(server, COMPANY_PATH, {"domain": "acme.com"}).status_code for _ in range(5)]
    limited = post(server, COMPANY_PATH, {"domain": "acme.com"})

    assert 429 not in statuses
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json() == {"error": "rate limit exceeded"}
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200


def test_rate_limit_window_ends(start_sandbox, monkeypatch):
    monkeypatch.setattr(sandbox_server, "RATE_WINDOW_SECONDS", 1)
    server = start_sandbox(rate_limit_per_min=2)
    body = {"domain": "acme.com"}
    assert [post(server, COMPANY_PATH, body).status_code for _ in range(3)][-1] == 429

    time.sleep(1.05)

    assert post(server, COMPANY_PATH, body).status_code != 429


def test_error_rate_one_fails_every_api_request(start_sandbox):
    server = start_sandbox(error_rate=1.0)
    answers = [post(server, PERSON_PATH, {"email": f"u{i}@acme.com"}) for i in range(5)]

    assert {answer.status_code for answer in answers} == {503}
    assert answers[0].json() == {"error": "sandbox injected failure"}
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200


def test_api_key(start_sandbox):
    server = start_sandbox(api_key="right-key")
    body = {"domain": "acme.com"}

    assert post(server, COMPANY_PATH, body).status_code == 401
    wrong = post(server, COMPANY_PATH, body, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "missing or wrong API key"}
    right = post(server, COMPANY_PATH, body, headers={"Authorization": "Bearer right-key"})
    assert right.status_code in {200, 404}
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200


def test_latency(start_sandbox):
    server = start_sandbox(latency_ms=150)
    started = time.monotonic()
    post(server, COMPANY_PATH, {"domain": "acme.com"})

    assert time.monotonic() - started >= 0.15


def test_idempotency_key_replays_without_billing(sandbox):
    body = next(body for body in people(20) if post(sandbox, PERSON_PATH, body).ok)
    headers = {"Idempotency-Key": "run-1-sandbox-person"}

    first = post(sandbox, PERSON_PATH, body, headers=headers)
    replay = post(sandbox, PERSON_PATH, body, headers=headers)
    reused = post(sandbox, PERSON_PATH, {"email": "other@acme.com"}, headers=headers)

    assert first.json()["credits"] == 1
    assert "Idempotent-Replayed" not in first.headers
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == {**first.json(), "credits": 0}
    assert reused.status_code == 422


def test_idempotent_miss_is_replayed_too(sandbox):
    body = next(body for body in people(200) if post(sandbox, PERSON_PATH, body).status_code == 404)
    headers = {"Idempotency-Key": "run-2-sandbox-person"}
    post(sandbox, PERSON_PATH, body, headers=headers)

    replay = post(sandbox, PERSON_PATH, body, headers=headers)

    assert replay.status_code == 404
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_request_log_has_no_personal_data(start_sandbox, capsys):
    server = start_sandbox(quiet=False)
    post(server, PERSON_PATH, {"email": "jane.doe@acme.com"})

    logged = capsys.readouterr().err

    assert "POST /v1/person/enrich" in logged
    assert "jane" not in logged


def test_invalid_options_are_refused():
    with pytest.raises(ValueError, match="error_rate"):
        sandbox_server.SandboxServer(("127.0.0.1", 0), error_rate=1.5)
