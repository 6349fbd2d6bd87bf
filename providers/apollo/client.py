"""Apollo's HTTP client: its endpoints, its auth header, answers returned as sent.

Statuses are not interpreted here; `providers.apollo.adapter` knows what they mean.
"""

from typing import Any

import requests

from providers.http import HttpResult, request_json


class ApolloClient:
    """Calls to Apollo's REST API (`base_url` ends in `/api/v1`)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()

    def people_match(self, details: dict[str, Any]) -> HttpResult:
        """Enrich one person identified by `details` (email, names, domain, linkedin_url),
        with `reveal_phone_number` and `webhook_url` when the phones are asked for too."""
        # https://docs.apollo.io/reference/people-enrichment
        # The reference lists these as query parameters; Apollo reads the same names from a
        # JSON body, which keeps emails and names out of URLs and access logs.
        return self._send("POST", "/people/match", json=details)

    def people_bulk_match(self, details: list[dict[str, str]]) -> HttpResult:
        """Enrich up to ten people; `matches` in the answer follow the order of `details`."""
        # https://docs.apollo.io/reference/bulk-people-enrichment
        return self._send("POST", "/people/bulk_match", json={"details": details})

    def organization_enrich(self, domain: str) -> HttpResult:
        """Enrich the company at `domain` (a registrable domain, no `www.`)."""
        # https://docs.apollo.io/reference/organization-enrichment
        return self._send("GET", "/organizations/enrich", params={"domain": domain})

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> HttpResult:
        # https://docs.apollo.io/docs/create-api-key: the key travels in `x-api-key`, never in
        # the URL, so no error message or log line can carry it.
        headers = {
            "Accept": "application/json",
            "Cache-Control": "no-cache",
            "x-api-key": self.api_key,
        }
        return request_json(
            self.session,
            method,
            f"{self.base_url}{path}",
            json=json,
            params=params,
            headers=headers,
            timeout=self.timeout,
        )
