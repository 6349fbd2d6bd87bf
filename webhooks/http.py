"""Sending one webhook: a POST with a timeout always, never following redirects.

providers/http.py is made for vendors' JSON APIs (it re-encodes the body and judges the
answer as JSON); a webhook must send exactly the signed bytes and accept any answer body.
"""

from dataclasses import dataclass

import requests
from django.conf import settings


@dataclass(frozen=True)
class PostResult:
    status: int
    retry_after: str
    body: str  # the start of the answer, for the delivery log


class SendFailed(Exception):
    """No HTTP answer: the connection failed or timed out."""


def post(url: str, *, body: bytes, headers: dict[str, str]) -> PostResult:
    try:
        response = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            # A redirect is a failure (Standard Webhooks): the subscription's URL needs fixing.
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout:
        raise SendFailed(f"timed out after {settings.WEBHOOK_TIMEOUT_SECONDS:g}s") from None
    except requests.RequestException as exc:
        raise SendFailed(f"could not connect: {type(exc).__name__}") from None
    try:
        # Only the start of the answer is kept; a huge body is not read to its end.
        head = next(response.iter_content(500), b"")
    except requests.RequestException:
        head = b""
    finally:
        response.close()
    return PostResult(
        status=response.status_code,
        retry_after=response.headers.get("Retry-After", ""),
        body=head.decode("utf-8", "replace")[:500],
    )
