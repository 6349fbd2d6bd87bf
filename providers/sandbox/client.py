"""The sandbox's HTTP client: where its endpoints are and which headers every call carries."""

from typing import Any

import requests

from providers.http import HttpResult, request_json


class SandboxClient:
    """Calls to one sandbox server; answers come back as sent, statuses uninterpreted."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()

    def post(self, path: str, payload: dict[str, Any], *, idempotency_key: str) -> HttpResult:
        """POST a JSON body; the vendor uses `idempotency_key` to answer a retry without billing."""
        headers = {"Accept": "application/json", "Idempotency-Key": idempotency_key}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return request_json(
            self.session,
            "POST",
            f"{self.base_url}{path}",
            json=payload,
            headers=headers,
            timeout=self.timeout,
        )
