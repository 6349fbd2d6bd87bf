"""People Data Labs' v5 HTTP client: where its endpoints are and how the key travels.

`base_url` includes the API version, as settings.PDL_BASE_URL does
(`https://api.peopledatalabs.com/v5`). Answers come back as sent; what a status means is the
adapter's business.
"""

from collections.abc import Mapping
from typing import Any

import requests

from providers.http import HttpResult, LineStream, request_json, request_lines


class PdlClient:
    """Calls to one PDL account; answers come back as sent, statuses uninterpreted."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()

    def person_enrich(self, params: Mapping[str, str]) -> HttpResult:
        """Match one person; 200 with `likelihood` and `data`, or 404 `not_found`."""
        # https://docs.peopledatalabs.com/docs/reference-person-enrichment-api
        return self._send("GET", "/person/enrich", params=params)

    def person_bulk(self, requests_: list[dict[str, Any]]) -> HttpResult:
        """Match 1-100 people: `requests_` are `{"params": ..., "metadata": ...}` objects."""
        # https://docs.peopledatalabs.com/docs/bulk-enrichment-api
        return self._send("POST", "/person/bulk", json={"requests": requests_})

    def company_enrich(self, params: Mapping[str, str]) -> HttpResult:
        """Match one company; 200 with the record at the top level, or 404 `not_found`."""
        # https://docs.peopledatalabs.com/docs/reference-company-enrichment-api
        return self._send("GET", "/company/enrich", params=params)

    def subject_requests(self) -> LineStream:
        """Stream the PDL ids of people who opted out: a `pdl_id` header line, then one id a
        line. Free for every key."""
        # https://docs.peopledatalabs.com/docs/subject-request-api
        return request_lines(
            self.session,
            f"{self.base_url}/person/subjectrequest",
            headers={"X-Api-Key": self.api_key},
            timeout=self.timeout,
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> HttpResult:
        # PDL also takes the key as an `api_key` query parameter, but URLs end up in logs and
        # error messages; the header keeps it out of both.
        # https://docs.peopledatalabs.com/docs/authentication
        headers = {"X-Api-Key": self.api_key, "Accept": "application/json"}
        return request_json(
            self.session,
            method,
            f"{self.base_url}{path}",
            params=params,
            json=json,
            headers=headers,
            timeout=self.timeout,
        )
