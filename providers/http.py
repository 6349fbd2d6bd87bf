"""The one way a provider talks HTTP: always a timeout, failures in the providers' vocabulary.

`request_json` sends one request and hands back the status, headers and decoded JSON body
without judging the status: what a 403 or a 429 means differs between vendors, so the
adapters decide. What it does decide is what no vendor can change: a connection that failed
or timed out is `Transient`, and so is a success whose body is not JSON at all (an HTML page
from a proxy, JSON cut short): the request was fine and asking again can help. A success
that is JSON but no object or array, holds NaN, or is larger than PROVIDER_MAX_RESPONSE_BYTES
is `Permanent`: the same question would get it again. Bodies are read as a stream, so a
huge one is refused without being held in memory. It does not retry: a failed run is
retried through the run table, not by a worker sleeping here.
"""

import json as json_module
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings

from providers.base import Permanent, Transient

JsonBody = dict[str, Any] | list[Any]

# Read a streamed body in pieces of this size, checking its length as it grows.
_CHUNK_BYTES = 64 * 1024
# A Retry-After longer than this (a misread date, a broken header) waits this long instead:
# the run comes back the next day rather than in a year, or never.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


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

    `timeout` (seconds, for connecting, for each read, and for the whole body once the
    headers are in) defaults to settings.PROVIDER_HTTP_TIMEOUT_SECONDS. Raises Transient
    when the connection fails or times out or a success answer is not JSON at all,
    Permanent when the request cannot be sent as given or a success answer is JSON it
    cannot use or is too large. Any status, including 4xx and 5xx, is returned for the
    adapter to interpret.
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
            stream=True,
        )
    except requests.Timeout:
        raise Transient(f"{where} timed out after {timeout:g}s") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise Transient(f"{where} failed: {type(exc).__name__}") from None
    except requests.RequestException as exc:
        # A malformed URL, a redirect loop: sending it again cannot help.
        raise Permanent(f"{where} could not be sent: {type(exc).__name__}") from None
    # Closing after a full read hands the connection back for reuse; after a refusal it
    # drops it, with whatever the vendor was still sending.
    with response:
        content = _read(response, where=where, timeout=timeout)
    duration_ms = round((time.monotonic() - started) * 1000)
    return HttpResult(
        status=response.status_code,
        headers=response.headers,
        body=_decode(response, content, where=where),
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
        except (TypeError, ValueError, OverflowError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _read(response: requests.Response, *, where: str, timeout: float) -> bytes:
    """Return the body, or b"" for an error answer too large to read (its status says it all).

    Raises Permanent for a success answer larger than PROVIDER_MAX_RESPONSE_BYTES, Transient
    when the connection breaks or the body takes longer than `timeout` to arrive.
    """
    limit = settings.PROVIDER_MAX_RESPONSE_BYTES
    status = response.status_code
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        if status >= 400:
            return b""
        raise _too_large(where, status, limit)
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                if status >= 400:
                    return b""
                raise _too_large(where, status, limit)
            chunks.append(chunk)
            # The read timeout is per read: a vendor trickling bytes would never trip it.
            if time.monotonic() > deadline:
                raise Transient(
                    f"{where} answered {status} but its body took longer than {timeout:g}s",
                    http_status=status,
                )
    except requests.exceptions.ContentDecodingError:
        raise Permanent(
            f"{where} answered {status} with a body that does not decode "
            f"({response.headers.get('Content-Encoding', 'no encoding')})",
            http_status=status,
        ) from None
    except requests.RequestException as exc:
        raise Transient(
            f"{where} failed while reading its answer: {type(exc).__name__}", http_status=status
        ) from None
    return b"".join(chunks)


def _too_large(where: str, status: int, limit: int) -> Permanent:
    return Permanent(
        f"{where} answered {status} with a body over {limit} bytes, refused unread",
        http_status=status,
    )


class _Unusable(ValueError):
    """JSON Python reads but Leadsmith cannot store or use."""


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _Unusable(f"the number {text[:20]} is out of range")
    return number


def _refuse_constant(name: str) -> None:
    raise _Unusable(f"{name} is not a JSON number")


def _loads(content: bytes) -> Any:
    """Decode strict JSON: NaN, Infinity and numbers past a float's range are refused, as
    PostgreSQL's jsonb would refuse them later, when the ledger row is written."""
    return json_module.loads(content, parse_float=_finite, parse_constant=_refuse_constant)


def _storable(value: Any) -> Any:
    """Return the value with every string made storable: PostgreSQL text and jsonb take
    neither NUL characters nor unpaired surrogates, and a vendor's stray one must not
    cost the whole answer."""
    if isinstance(value, str):
        cleaned = value.replace("\x00", "")
        return cleaned.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _decode(response: requests.Response, content: bytes, *, where: str) -> JsonBody:
    if not content:
        return {}
    status = response.status_code
    what = f"({response.headers.get('Content-Type', 'no content type')}, {len(content)} bytes)"
    unusable = ""
    try:
        body = _loads(content)
        # Such characters arrive as escapes (\u0000, \ud800) or as non-ASCII bytes (json
        # decodes surrogates it finds there); a plain ASCII answer is left as parsed.
        if b"\\u" in content or not content.isascii():
            body = _storable(body)
    except _Unusable as exc:
        body, unusable = None, str(exc)
    except RecursionError:
        # Nested deeper than Python's stack, which no real answer is.
        body, unusable = None, "it is nested too deeply"
    except ValueError:
        # Not JSON at all (UnicodeDecodeError is a ValueError too).
        if status >= 400:
            # An HTML error page from a proxy or gateway: the status carries the meaning.
            return {}
        raise Transient(
            f"{where} answered {status} with a body that is not JSON {what}", http_status=status
        ) from None
    if isinstance(body, dict | list):
        return body
    if status >= 400:
        return {}
    problem = f"unusable JSON {what}: {unusable}" if unusable else f"a JSON scalar {what}"
    raise Permanent(f"{where} answered {status} with {problem}", http_status=status)


def _without_query(url: str) -> str:
    # Query strings may carry API keys or looked-up identities; messages must not.
    return url.split("?", 1)[0]


@dataclass(frozen=True)
class LineStream:
    """A streamed plain-text answer: the status, headers and its lines, read as iterated."""

    status: int
    headers: Mapping[str, str]
    lines: Iterator[str]


def request_lines(
    session: requests.Session,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> LineStream:
    """GET a plain-text list (one item a line) of any length without holding it in memory.

    Like request_json, a failed or timed-out connection is Transient, also while the lines
    are read; the status is returned for the adapter to interpret (an error answer has no
    lines). The connection closes once the lines are read to the end.
    """
    if timeout is None:
        timeout = settings.PROVIDER_HTTP_TIMEOUT_SECONDS
    where = f"GET {_without_query(url)}"
    try:
        response = session.get(url, headers=dict(headers or {}), timeout=timeout, stream=True)
    except requests.Timeout:
        raise Transient(f"{where} timed out after {timeout:g}s") from None
    except requests.RequestException as exc:
        raise Transient(f"{where} failed: {type(exc).__name__}") from None

    def lines() -> Iterator[str]:
        with response:
            if response.status_code != 200:
                return
            try:
                for line in response.iter_lines(decode_unicode=True):
                    if line and line.strip():
                        yield line.strip()
            except requests.RequestException as exc:
                raise Transient(f"{where} broke off: {type(exc).__name__}") from None

    return LineStream(status=response.status_code, headers=response.headers, lines=lines())
