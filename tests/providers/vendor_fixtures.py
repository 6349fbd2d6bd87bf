"""Recorded vendor answers, replayed with `responses`.

Each fixture is `tests/providers/fixtures/<vendor>/<name>.json`:

    {"_documentation": "<the vendor page the answer follows>",
     "status": 200, "headers": {"x-ratelimit-remaining": "99"}, "body": {...}}
"""

import json
from pathlib import Path

import responses

FIXTURES = Path(__file__).parent / "fixtures"


def load(vendor: str, name: str) -> dict:
    fixture = json.loads((FIXTURES / vendor / f"{name}.json").read_text())
    assert fixture.get("_documentation"), f"{vendor}/{name}.json must name its documentation"
    return fixture


def replay(
    rsps: responses.RequestsMock, method: str, url: str, vendor: str, name: str, **match
) -> responses.BaseResponse:
    """Register the recorded answer `vendor/name` for `method url` and return it."""
    fixture = load(vendor, name)
    return rsps.add(
        method,
        url,
        json=fixture["body"],
        status=fixture["status"],
        headers=fixture.get("headers", {}),
        **match,
    )
