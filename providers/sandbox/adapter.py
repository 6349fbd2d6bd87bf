"""The sandbox provider: its answers as Candidates, its failures as the providers' errors.

Statuses: 200 is a hit (billed as the answer says), 404 "person/company not found" a miss
(free), 429 RateLimited with the server's Retry-After, 401/403 AuthError, other 4xx
Permanent, 5xx Transient. Values go through providers.candidates like every vendor's.
"""

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import requests
from django.conf import settings

from providers.base import (
    AuthError,
    Candidate,
    Permanent,
    PersonQuery,
    ProviderAnswer,
    ProviderError,
    RateLimited,
    Transient,
)
from providers.candidates import COMPANY_FIELDS, PERSON_FIELDS, credits_from, make_candidate
from providers.http import HttpResult, retry_after_seconds
from providers.sandbox.client import SandboxClient
from providers.sandbox.server import (
    COMPANY_BULK_LIMIT,
    COMPANY_BULK_PATH,
    COMPANY_PATH,
    PERSON_BULK_LIMIT,
    PERSON_BULK_PATH,
    PERSON_PATH,
)


class SandboxProvider:
    """The sandbox server as a Provider; `api_key` defaults to settings.SANDBOX_API_KEY."""

    name = "sandbox"
    operations = frozenset({"person_enrich", "company_enrich"})
    fields = frozenset(PERSON_FIELDS + COMPANY_FIELDS)
    person_bulk_size = PERSON_BULK_LIMIT
    company_bulk_size = COMPANY_BULK_LIMIT

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.client = SandboxClient(
            base_url,
            api_key=settings.SANDBOX_API_KEY if api_key is None else api_key,
            timeout=timeout,
            session=session,
        )

    def person_enrich(self, query: PersonQuery, *, idempotency_key: str) -> ProviderAnswer:
        result = self.client.post(
            PERSON_PATH, _person_request(query), idempotency_key=idempotency_key
        )
        return self._answer(result, record="person", fields=PERSON_FIELDS)

    def person_enrich_bulk(
        self, queries: Sequence[PersonQuery], *, idempotency_key: str
    ) -> list[ProviderAnswer]:
        if not 1 <= len(queries) <= PERSON_BULK_LIMIT:
            raise Permanent(f"the sandbox takes 1 to {PERSON_BULK_LIMIT} people per bulk request")
        requests_ = [_person_request(query) for query in queries]
        return self._bulk(PERSON_BULK_PATH, requests_, idempotency_key, record="person")

    def company_enrich_bulk(
        self, domains: Sequence[str], *, idempotency_key: str
    ) -> list[ProviderAnswer]:
        if not 1 <= len(domains) <= COMPANY_BULK_LIMIT:
            raise Permanent(
                f"the sandbox takes 1 to {COMPANY_BULK_LIMIT} companies per bulk request"
            )
        if not all(domains):
            raise Permanent("a company lookup needs a domain")
        requests_ = [{"domain": domain} for domain in domains]
        return self._bulk(COMPANY_BULK_PATH, requests_, idempotency_key, record="company")

    def _bulk(
        self, path: str, requests_: list[dict], idempotency_key: str, *, record: str
    ) -> list[ProviderAnswer | ProviderError]:
        fields = PERSON_FIELDS if record == "person" else COMPANY_FIELDS
        result = self.client.post(path, {"requests": requests_}, idempotency_key=idempotency_key)
        body = result.body if isinstance(result.body, dict) else {}
        if result.status != 200:
            raise _error(result, body)
        results = body.get("results")
        if not isinstance(results, list) or len(results) != len(requests_):
            raise Permanent(
                "sandbox bulk answer does not pair up with its requests", http_status=200
            )
        # A replayed bulk answer says credits 0 as a whole; otherwise each hit cost one.
        each = 0.0 if not credits_from(body.get("credits")) else 1.0
        answers: list[ProviderAnswer | ProviderError] = []
        for item in results:
            status = item.get("status") if isinstance(item, dict) else None
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                # This result alone is broken: the others stand (and were billed).
                answers.append(
                    Permanent(
                        "sandbox bulk answer has a result without an HTTP status", http_status=200
                    )
                )
                continue
            try:
                answer = self._answer(
                    HttpResult(
                        status=status,
                        headers={},
                        body=item,
                        duration_ms=result.duration_ms,
                    ),
                    record=record,
                    fields=fields,
                )
            except ProviderError as exc:
                answers.append(exc)
                continue
            answer.credits = each if answer.is_hit else 0.0
            answers.append(answer)
        return answers

    def company_enrich(self, domain: str, *, idempotency_key: str) -> ProviderAnswer:
        if not domain:
            raise Permanent("a company lookup needs a domain")
        result = self.client.post(COMPANY_PATH, {"domain": domain}, idempotency_key=idempotency_key)
        return self._answer(result, record="company", fields=COMPANY_FIELDS)

    def _answer(
        self, result: HttpResult, *, record: str, fields: tuple[str, ...]
    ) -> ProviderAnswer:
        body = result.body if isinstance(result.body, dict) else {}
        if result.status == 200:
            values = body.get(record)
            if not isinstance(values, dict):
                raise Permanent(f"sandbox answered 200 without a {record}", http_status=200)
            candidates = self._candidates(values, fields=fields)
            if not candidates:
                # The sandbox's records always carry usable values (a person at least an
                # email and a job title): one with none was mangled on its way here, and
                # taken as a miss it would hide a known person for the miss TTL.
                raise Permanent(
                    f"sandbox answered 200 with a {record} without one usable value",
                    http_status=200,
                )
            credits = credits_from(body.get("credits"))
            return ProviderAnswer(
                candidates=candidates,
                credits=credits,
                http_status=200,
                raw={
                    record: {name: values[name] for name in fields if name in values},
                    "credits": credits,
                },
            )
        # The sandbox's 404 for a wrong path says so; only its own "not found" is a miss, so
        # a misconfigured SANDBOX_BASE_URL fails loudly instead of missing forever.
        if result.status == 404 and body.get("error") == f"{record} not found":
            return ProviderAnswer(candidates=[], http_status=404, raw={"error": body["error"]})
        raise _error(result, body)

    def _candidates(self, values: dict[str, Any], *, fields: tuple[str, ...]) -> list[Candidate]:
        candidates = []
        for name in fields:
            item = values.get(name)
            if not isinstance(item, dict):
                continue
            candidate = make_candidate(
                name,
                item.get("value"),
                item.get("confidence"),
                source=self.name,
                verification=item.get("verification") or "unknown",
            )
            if candidate is not None:
                candidates.append(candidate)
        return candidates


def _person_request(query: PersonQuery) -> dict[str, str]:
    if not query.lookup_keys():
        # Refused here, not by the vendor: a question it cannot answer must cost nothing.
        raise Permanent(
            "a person lookup needs an email, a LinkedIn URL, or first name, last name and "
            "company domain"
        )
    return {name: value for name, value in asdict(query).items() if value}


def _error(result: HttpResult, body: dict[str, Any]) -> ProviderError:
    status = result.status
    detail = body.get("error") if isinstance(body.get("error"), str) else ""
    message = f"sandbox answered {status}" + (f": {detail}" if detail else "")
    if status == 429:
        return RateLimited(
            message, retry_after=retry_after_seconds(result.headers), http_status=status
        )
    if status in (401, 403):
        return AuthError(message, http_status=status)
    if status >= 500:
        return Transient(message, http_status=status)
    return Permanent(message, http_status=status)
