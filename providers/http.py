"""The one way a provider talks HTTP: always a timeout, failures in the providers' vocabulary.

`request_json` sends one request and hands back the status, headers and decoded JSON body
without judging the status: what a 403 or a 429 means differs between vendors, so the
adapters decide. What it does decide is what no vendor can change: a connection that failed
or timed out is `Transient`, a success whose body is not JSON is a broken answer. It does not
retry: a failed run is retried through the run table, not by a worker sleeping here.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings

from providers.base import Permanent, Transient

JsonBody = dict[str, Any] | list[Any]


@dataclass(frozen=True)
class HttpResult:
    """One HTTP answer: the status as sent, case-insensitive headers, the decoded body."""

    status: int
    headers: Mapping[str, str]
    # An error answer (4xx/5xx) whose body is not JSON, or an empty body, decodes to {}.
    body: JsonBody
    duration_ms: int


def request_json(
    session: requests.Session,
    method: str,
    url: str,
    *,
    json: JsonBody | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> HttpResult:
    """Send one request and decode its JSON answer.

    `timeout` (seconds, for connecting and for each read) defaults to
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS. Raises Transient when the connection fails or
    times out, Permanent when the request cannot be sent as given or a success answer is
    not JSON. Any status, including 4xx and 5xx, is returned for the adapter to interpret.
    """
    if timeout is None:
        timeout = settings.PROVIDER_HTTP_TIMEOUT_SECONDS
    where = f"{method} {_without_query(url)}"
    started = time.monotonic()
    try:
        response = session.request(
            method,
            url,
            json=json,
            params=params,
            headers=dict(headers or {}),
            timeout=timeout,
        )
    except requests.Timeout:
        raise Transient(f"{where} timed out after {timeout:g}s") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise Transient(f"{where} failed: {type(exc).__name__}") from None
    except requests.RequestException as exc:
        # A malformed URL, a redirect loop: sending it again cannot help.
        raise Permanent(f"{where} could not be sent: {type(exc).__name__}") from None
    duration_ms = round((time.monotonic() - started) * 1000)
    return HttpResult(
        status=response.status_code,
        headers=response.headers,
        body=_decode(response, where=where),
        duration_ms=duration_ms,
    )


def retry_after_seconds(headers: Mapping[str, str], *, default: float = 60.0) -> float:
    """Return the wait a `Retry-After` header asks for (seconds or an HTTP date), else default."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0)


def _decode(response: requests.Response, *, where: str) -> JsonBody:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict | list):
        return body
    if response.status_code >= 400:
        # An HTML error page from a proxy or gateway: the status alone carries the meaning.
        return {}
    content_type = response.headers.get("Content-Type", "no content type")
    raise Permanent(
        f"{where} answered {response.status_code} with a body that is not a JSON object or "
        f"array ({content_type}, {len(response.content)} bytes)",
        http_status=response.status_code,
    )


def _without_query(url: str) -> str:
    # Query strings may carry API keys or looked-up identities; messages must not.
    return url.split("?", 1)[0]
