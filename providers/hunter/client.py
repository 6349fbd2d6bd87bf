"""Hunter's HTTP client: its three endpoints, the key as Hunter documents it, no judgement.

Reference: https://hunter.io/api-documentation/v2. Every call is a GET with the key in the
`api_key` query parameter. The key never reaches a message: request_json names a call by
its URL without the query string, and the key travels only in `params`.
"""

from collections.abc import Mapping

import requests
from django.conf import settings

from providers.http import HttpResult, request_json

# Hunter accepts max_duration between 3 and 20 seconds (default 10).
FINDER_MAX_DURATION_RANGE = (3, 20)
# Seconds left between Hunter's own deadline and our read timeout for the network.
FINDER_HEADROOM_SECONDS = 2


class HunterClient:
    """Calls to one Hunter API base URL; answers come back as sent, statuses uninterpreted."""

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

    # https://hunter.io/api-documentation/v2#email-finder
    def email_finder(
        self,
        *,
        domain: str = "",
        first_name: str = "",
        last_name: str = "",
        linkedin_handle: str = "",
    ) -> HttpResult:
        """Ask for the most likely address of a person: by name at a domain, or by handle."""
        timeout = self._timeout()
        low, high = FINDER_MAX_DURATION_RANGE
        # Hunter verifies the address it finds for up to max_duration seconds (default 10,
        # the same as our default timeout): ask for less than our timeout so it answers with
        # what it has instead of us hanging up on a lookup it may bill.
        max_duration = min(max(int(timeout) - FINDER_HEADROOM_SECONDS, low), high)
        params = {
            "domain": domain,
            "first_name": first_name,
            "last_name": last_name,
            "linkedin_handle": linkedin_handle,
            "max_duration": str(max_duration),
        }
        return self._get("/email-finder", params, timeout=timeout)

    # https://hunter.io/api-documentation/v2#email-verifier
    def email_verifier(self, email: str) -> HttpResult:
        """Ask how deliverable an address is; 202 means Hunter is still checking."""
        return self._get("/email-verifier", {"email": email}, timeout=self._timeout())

    # https://hunter.io/api-documentation/v2#domain-search
    def domain_search(self, domain: str, *, limit: int) -> HttpResult:
        """Ask what Hunter knows of a domain, with at most `limit` of its addresses."""
        params = {"domain": domain, "limit": str(limit)}
        return self._get("/domain-search", params, timeout=self._timeout())

    def _timeout(self) -> float:
        if self.timeout is None:
            return settings.PROVIDER_HTTP_TIMEOUT_SECONDS
        return self.timeout

    def _get(self, path: str, params: Mapping[str, str], *, timeout: float) -> HttpResult:
        query = {name: value for name, value in params.items() if value}
        query["api_key"] = self.api_key
        return request_json(
            self.session,
            "GET",
            f"{self.base_url}{path}",
            params=query,
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
