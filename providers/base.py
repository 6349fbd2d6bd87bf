"""What every provider speaks: queries in, candidates out, one error vocabulary.

A provider package (`providers/<name>/`) has a client that makes the HTTP calls and knows
the vendor's quirks, and an adapter class implementing `Provider` that maps the vendor's
answers to Candidates and its failures to the errors below.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PersonQuery:
    """What is known of a person; every value already normalized."""

    email: str = ""
    first_name: str = ""
    last_name: str = ""
    domain: str = ""
    linkedin_url: str = ""

    def lookup_keys(self) -> list[str]:
        """Return the normalized keys this person is known by, the strongest first.

        A person first looked up by name is found in the cache by that name even after
        the lookup gave them an email.
        """
        keys = []
        if self.email:
            keys.append(f"email:{self.email}")
        if self.linkedin_url:
            keys.append(f"linkedin:{self.linkedin_url}")
        if self.first_name and self.last_name and self.domain:
            keys.append(f"name:{self.first_name.lower()}|{self.last_name.lower()}|{self.domain}")
        return keys


@dataclass(frozen=True)
class Candidate:
    """One value a source proposes for one field, with how sure it is."""

    field: str
    value: object
    confidence: float | None
    source: str
    verification: str = ""
    # A guess nobody has confirmed yet: at best it waits for a reviewer.
    review_only: bool = False


@dataclass
class ProviderAnswer:
    """A provider's answer: candidates (empty for a miss), what it cost, what came back."""

    candidates: list[Candidate]
    credits: float = 0.0
    http_status: int | None = None
    raw: dict = field(default_factory=dict)

    @property
    def is_hit(self) -> bool:
        return bool(self.candidates)


class ProviderError(Exception):
    """A call that gave no answer. `retryable` says whether asking again later can help."""

    retryable = False
    outcome = "error"

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class RateLimited(ProviderError):
    retryable = True
    outcome = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 60.0, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Deferred(ProviderError):
    """Not asked at all: Leadsmith itself holds the call back (throttle, pause, budget, the
    same lookup already in flight). Ask again after `retry_after`; it costs no attempt."""

    retryable = True
    outcome = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class BudgetReached(Deferred):
    outcome = "quota_exhausted"


class QuotaExhausted(ProviderError):
    outcome = "quota_exhausted"


class AuthError(ProviderError):
    pass


class Suppressed(ProviderError):
    """The person opted out at the vendor; never look them up again."""

    outcome = "suppressed"


class Transient(ProviderError):
    """Timeouts, connection failures, 5xx: worth another try later."""

    retryable = True


class NotReady(Transient):
    """The vendor accepted the question but has no answer yet (Hunter's 202): ask later."""

    def __init__(self, message: str, *, retry_after: float = 30.0, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Permanent(ProviderError):
    """The request itself is wrong; the same request will fail again."""


class Provider(Protocol):
    """An enabled provider. `name` is stable: it is the Observation source and ledger key.

    Not every vendor does everything: `operations` says which of the methods below it
    implements (the waterfall never calls one it does not list) and `fields` which fields
    its answers can fill. `person_bulk_size` and `company_bulk_size` are how many people or
    companies one bulk request takes (1: no bulk endpoint, and no `…_bulk` method).
    """

    name: str
    operations: frozenset[str]  # of "person_enrich", "company_enrich", "email_verify"
    fields: frozenset[str]
    person_bulk_size: int
    company_bulk_size: int

    def person_enrich(self, query: PersonQuery, *, idempotency_key: str) -> ProviderAnswer:
        """Return candidates for lead fields; a miss is an answer with no candidates."""
        ...

    def person_enrich_bulk(
        self, queries: Sequence[PersonQuery], *, idempotency_key: str
    ) -> list["ProviderAnswer | ProviderError"]:
        """Return one answer per query, in the same order; credits split per answer. A
        query the answer fails alone (its result mangled) gets its ProviderError instead;
        raise when the whole request failed."""
        ...

    def company_enrich(self, domain: str, *, idempotency_key: str) -> ProviderAnswer:
        """Return candidates for company fields of the registrable domain."""
        ...

    def company_enrich_bulk(
        self, domains: Sequence[str], *, idempotency_key: str
    ) -> list["ProviderAnswer | ProviderError"]:
        """Return one answer per domain, in the same order, as `person_enrich_bulk` does."""
        ...

    def email_verify(self, email: str, *, idempotency_key: str) -> ProviderAnswer:
        """Return one `email` candidate for the address with its verification status."""
        ...
