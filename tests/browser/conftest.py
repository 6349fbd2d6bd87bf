"""Browser tests: Debian's Chromium (/usr/bin/chromium, headless) driven by Playwright
against a live server, a real Celery worker on PostgreSQL + Redis, and the sandbox
provider over HTTP. Marked `services`: they need all of it, and fail in CI without it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from accounts.roles import Role
from accounts.services import user_role_set
from tests.conftest import _unavailable

# Playwright's sync API runs its own event loop in this thread; Django's ORM (used by the
# tests and the live server's setup) refuses to run where a loop is running unless told.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "browser-pass-1"


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        _unavailable(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium):
    """Open a fresh browser context (its own cookies); `javascript=False` for the no-JS path."""
    contexts = []

    def open_page(*, javascript: bool = True):
        context = chromium.new_context(
            java_script_enabled=javascript, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def login(live_server, django_user_model):
    """Create a user with `role` and sign them in through the login page."""

    def sign_in(page, username: str, role: str):
        user = django_user_model.objects.create_user(username, password=PASSWORD)
        user_role_set(user=user, role=role)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return user

    return sign_in


@pytest.fixture
def roles():
    return Role


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker(postgres, redis_url, sandbox, tmp_path):
    """A real `celery -A config worker` on the test database, the tests' Redis and the
    session's sandbox provider."""
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "SANDBOX_BASE_URL": sandbox.url,
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--concurrency",
                "1",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
