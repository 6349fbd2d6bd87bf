"""Netrows' HTTP client: its profile endpoint and bearer auth, answers returned as sent.

The endpoint, body and headers are those of Netrows' own guide, "How to Build a Lead
Enrichment Pipeline with APIs (2026)"
(https://www.netrows.com/blog/how-to-build-lead-enrichment-pipeline-with-apis-2026).
Statuses are not interpreted here; `providers.netrows.adapter` knows what they mean.
"""

import requests

from providers.http import HttpResult, request_json


class NetrowsClient:
    """Calls to Netrows' REST API (`base_url` without the `/v1`)."""

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

    def people_profile(self, identity: dict[str, str]) -> HttpResult:
        """Look up one profile by `linkedin_url` and/or `email`."""
        # https://www.netrows.com/blog/how-to-build-lead-enrichment-pipeline-with-apis-2026
        # ("Step 4: Build Enrichment Worker"): POST /v1/people/profile, JSON body, bearer key.
        return request_json(
            self.session,
            "POST",
            f"{self.base_url}/v1/people/profile",
            json=identity,
            headers={"Accept": "application/json", "Authorization": f"Bearer {self.api_key}"},
            timeout=self.timeout,
        )
