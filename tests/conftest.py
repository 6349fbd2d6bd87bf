"""Fixtures shared by the whole suite.

Service-backed tests (marked `services`) need PostgreSQL and Redis. Without them they skip
on a laptop, but fail when CI is set: CI must never pass by skipping what it should test.
"""

import contextlib
import os

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from common.cached_tables import cached_tables_forget
from providers.sandbox.server import start_in_thread

IN_CI = bool(os.environ.get("CI"))


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this test may not skip)")
    pytest.skip(reason)


@pytest.fixture
def postgres(db):
    """The test database, which must be PostgreSQL (DATABASE_URL=postgres://…)."""
    if connection.vendor != "postgresql":
        _unavailable("needs PostgreSQL: set DATABASE_URL")
    return connection


@pytest.fixture
def redis_url():
    """The tests' own Redis database (config.settings.test keeps it apart from real data)."""
    url = django_settings.REDIS_URL
    if not url:
        _unavailable("needs Redis: set REDIS_URL")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at REDIS_URL does not answer: {exc}")
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture(autouse=True)
def _fresh_redis_state():
    """Rate-limit schedules and pauses live in Redis: no test inherits another's. Nor the
    settings tables this process holds (common.cached_tables): a test's rolled-back rows
    send no signal."""
    cached_tables_forget()
    if django_settings.REDIS_URL:
        # The tests that need Redis say so through the redis_url fixture.
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(django_settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session")
def sandbox_server():
    """A real sandbox provider on a free localhost port for the whole session."""
    server = start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    """Point the app at the session's sandbox provider."""
    settings.SANDBOX_BASE_URL = sandbox_server.url
    return sandbox_server
