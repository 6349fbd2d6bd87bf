"""Liveness and readiness for load balancers and orchestrators.

`/healthz` says the process answers (restart it if not); `/readyz` says it can do its work:
the database, Redis (when configured) and the Celery broker each answer within a short
timeout. A failing check makes it 503 with the names of what failed, never its secrets.
"""

import logging
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from kombu import Connection

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    timeout = settings.READYZ_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def _broker() -> None:
    timeout = settings.READYZ_TIMEOUT_SECONDS
    broker = Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=timeout,
        transport_options={
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
        },
    )
    try:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    finally:
        broker.release()


def readiness_checks() -> dict[str, Callable[[], None]]:
    """Return the checks that apply to this configuration, by name."""
    checks: dict[str, Callable[[], None]] = {"database": _database}
    if settings.REDIS_URL:
        checks["redis"] = _redis
    checks["broker"] = _broker
    return checks


def readyz(request):
    results: dict[str, dict] = {}
    for name, check in readiness_checks().items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:
            # The class name says enough (refused, timed out); the message may hold a URL.
            logger.warning("readyz: %s failed: %s", name, type(exc).__name__)
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    failed = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": results}
    return JsonResponse(body, status=503 if failed else 200)
