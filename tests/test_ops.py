"""Operating Leadsmith: liveness and readiness, request and run ids on JSON log lines with
secrets and addresses masked, production settings that pass `check --deploy`, gunicorn."""

import io
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings

from config.logging import ContextFilter, JsonFormatter, RedactFilter, log_context
from enrichment import tasks
from enrichment.services import runs_create
from tests.factories import LeadFactory

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def json_log():
    """Capture the root logger's records as the console handler writes them: one JSON line
    each, through the same filters."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.mark.django_db
def test_healthz_and_readyz_answer_ok(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok" and body["failed"] == []
    expected = {"database", "broker"} | ({"redis"} if django_settings.REDIS_URL else set())
    assert set(body["checks"]) == expected


@pytest.mark.django_db
def test_readyz_is_503_naming_what_failed_when_redis_is_down(client, settings):
    dead = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = dead
    settings.CELERY_BROKER_URL = dead
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.READYZ_TIMEOUT_SECONDS = 1.0
    started = time.monotonic()
    ready = client.get("/readyz")
    assert time.monotonic() - started < 5
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis", "broker"]
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1" not in ready.content.decode()


def test_a_request_id_comes_in_or_is_made_and_goes_out(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.1")["X-Request-ID"] == "lb-7f3a.1"
    made = client.get("/healthz")["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    # A header that could forge log lines is not reused.
    forged = client.get("/healthz", HTTP_X_REQUEST_ID='x" "level": "ERROR')["X-Request-ID"]
    assert len(forged) == 32 and '"' not in forged


@pytest.mark.urls("tests.ops_urls")
def test_log_lines_are_json_with_the_request_id_and_no_address_or_key(
    client, json_log, monkeypatch
):
    monkeypatch.setenv("HUNTER_API_KEY", "hk_9f8e7d6c5b4a3210")
    client.get("/careless", HTTP_X_REQUEST_ID="req-42")
    logging.getLogger("tests.ops").warning("vendor said no to key hk_9f8e7d6c5b4a3210")

    first, second = json_log()
    assert first["request_id"] == "req-42"
    assert first["level"] == "WARNING" and first["logger"] == "tests.ops"
    assert first["message"] == (
        "looked up ***@northwind.io with api_key=[redacted], then sent Authorization: "
        "Bearer [redacted]"
    )
    assert second["request_id"] == ""
    assert "hk_9f8e7d6c5b4a3210" not in second["message"]
    everything = json.dumps(json_log())
    for secret in ("jane.roe", "sk_live_0123456789abcdef", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in everything


@pytest.mark.django_db
def test_worker_log_lines_carry_the_run_id(settings, json_log):
    # A provider that refuses connections: the run logs that it was held back.
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:1"
    lead = LeadFactory(email="kai.lee@initech.io")
    (run,) = runs_create(lead_ids=[lead.id], trigger="manual", enqueue=False)
    tasks.run_execute(run.id)
    lines = [line for line in json_log() if line["logger"] == "enrichment.services"]
    assert lines and all(line["run_id"] == str(run.id) for line in lines)
    assert all("kai.lee" not in line["message"] for line in lines)
    with log_context(run_id=7):
        logging.getLogger("enrichment").warning("inside")
    assert json_log()[-1]["run_id"] == "7"


def test_settings_log_through_the_filters_and_production_logs_json():
    console = django_settings.LOGGING["handlers"]["console"]
    assert console["filters"] == ["context", "redact"]
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.LOGGING['handlers']['console']['formatter'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**_production_env(), "DJANGO_SETTINGS_MODULE": "config.settings.production"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "json"


def _production_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="leads.example.com"
    )
    return env


def test_production_settings_pass_check_deploy():
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "check",
            "--deploy",
            "--fail-level",
            "WARNING",
            "--settings=config.settings.production",
        ],
        cwd=REPO,
        env=_production_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gunicorn_serves_the_app_and_writes_json_access_lines():
    port = _free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "LOG_FORMAT": "json",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = requests.get(
                    f"http://127.0.0.1:{port}/healthz?email=jane.roe@northwind.io",
                    headers={"X-Request-ID": "probe-1"},
                    timeout=2,
                )
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert answer.json() == {"status": "ok"}
        assert answer.headers["X-Request-ID"] == "probe-1"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (access,) = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert access["request_id"] == "probe-1"
    assert "/healthz?email=***@northwind.io" in access["message"]
    assert "jane.roe" not in output
