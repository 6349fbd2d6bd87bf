"""Every provider call goes through here: cache first, then the call, and a ledger row
whatever happens. The ledger is the cache: a hit or a miss for the same normalized key
inside its TTL is reused, not paid again."""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from decimal import Decimal

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from common.db import rows_insert, rows_update
from providers.base import (
    BudgetReached,
    Candidate,
    Deferred,
    ProviderAnswer,
    ProviderError,
    QuotaExhausted,
    RateLimited,
)
from providers.models import ProviderCall, ProviderConfig
from providers.rate_limit import rate_limiter, wait_for_slot
from providers.registry import provider_configs

logger = logging.getLogger(__name__)

# A stored answer larger than this keeps its candidates but not the vendor's raw JSON.
MAX_STORED_RAW_BYTES = 16_384
# While the shared rate limiter's Redis is unreachable, calls wait this long, then ask again.
LIMITER_DOWN_RETRY_SECONDS = 5.0


def lookup_key_hash(lookup_key: str) -> str:
    return hashlib.sha256(lookup_key.encode()).hexdigest()


def idempotency_key_for(*, provider: str, operation: str, lookup_key: str, scope: str) -> str:
    """Return the key every attempt of one lookup within one scope (a run) shares."""
    return hashlib.sha256(f"{provider}|{operation}|{lookup_key}|{scope}".encode()).hexdigest()


_CANDIDATE_FIELDS = tuple(f.name for f in fields(Candidate))


def _stored(answer: ProviderAnswer) -> dict:
    raw = answer.raw
    if len(json.dumps(raw, default=str)) > MAX_STORED_RAW_BYTES:
        raw = {"trimmed": True}
    # Candidates' values are JSON already: a shallow dict, not asdict's deep copy of each.
    return {
        "candidates": [
            {name: getattr(c, name) for name in _CANDIDATE_FIELDS} for c in answer.candidates
        ],
        "raw": raw,
    }


def _answer_from(call: ProviderCall) -> ProviderAnswer:
    stored = call.response or {}
    return ProviderAnswer(
        candidates=[Candidate(**c) for c in stored.get("candidates", [])],
        credits=0.0,
        http_status=call.http_status,
        raw=stored.get("raw", {}),
    )


def reusable_answer(
    *,
    provider: str,
    operation: str,
    key_hashes: list[str],
    hit_ttl: timedelta,
    miss_ttl: timedelta,
    idempotency_key: str = "",
) -> ProviderCall | None:
    """Return a paid answer for these keys that is still good, or one this run already got."""
    lookup = _HashedLookup(key_hashes, idempotency_key, hit_ttl, miss_ttl)
    return _reusable_many(provider=provider, operation=operation, lookups=[lookup])[0]


@dataclass(frozen=True)
class _HashedLookup:
    key_hashes: Sequence[str]
    idempotency_key: str
    hit_ttl: timedelta
    miss_ttl: timedelta

    def reuses(self, row: ProviderCall, now) -> bool:
        if row.lookup_key_hash not in self.key_hashes:
            return False
        if row.idempotency_key == self.idempotency_key:
            return True
        ttl = self.hit_ttl if row.outcome == ProviderCall.Outcome.HIT else self.miss_ttl
        return row.created_at >= now - ttl


def _reusable_many(
    *, provider: str, operation: str, lookups: Sequence[_HashedLookup]
) -> list[ProviderCall | None]:
    """Return, per lookup, the newest answer it may reuse (see `reusable_answer`): one query
    for the lot, each lookup's own TTLs applied to the rows it brings back."""
    if not lookups:
        return []
    now = timezone.now()
    oldest = now - max(max(lookup.hit_ttl, lookup.miss_ttl) for lookup in lookups)
    hashes = {key_hash for lookup in lookups for key_hash in lookup.key_hashes}
    keys = [lookup.idempotency_key for lookup in lookups if lookup.idempotency_key]
    rows = list(
        ProviderCall.objects.filter(
            provider=provider,
            operation=operation,
            lookup_key_hash__in=hashes,
            outcome__in=[ProviderCall.Outcome.HIT, ProviderCall.Outcome.MISS],
        )
        .filter(Q(created_at__gte=oldest) | Q(idempotency_key__in=keys))
        .order_by("-created_at", "-id")
    )
    return [next((row for row in rows if lookup.reuses(row, now)), None) for lookup in lookups]


@dataclass(frozen=True)
class Lookup:
    """One question for the ledger: every key its subject is known by (the strongest
    first), the scope its attempts share (a run), and how long answers to it stay good."""

    lookup_keys: Sequence[str]
    scope: str
    hit_ttl: timedelta
    miss_ttl: timedelta

    @property
    def key_hash(self) -> str:
        return lookup_key_hash(self.lookup_keys[0])

    def idempotency_key(self, *, provider: str, operation: str) -> str:
        return idempotency_key_for(
            provider=provider, operation=operation, lookup_key=self.lookup_keys[0], scope=self.scope
        )

    def hashed(self, *, provider: str, operation: str) -> _HashedLookup:
        return _HashedLookup(
            [lookup_key_hash(key) for key in self.lookup_keys],
            self.idempotency_key(provider=provider, operation=operation),
            self.hit_ttl,
            self.miss_ttl,
        )


Result = tuple[ProviderAnswer, ProviderCall] | ProviderError


def call_with_ledger(
    *,
    provider: str,
    operation: str,
    lookup_keys: Sequence[str],
    scope: str,
    hit_ttl: timedelta,
    miss_ttl: timedelta,
    call: Callable[[str], ProviderAnswer],
    expected_credits: float = 1.0,
) -> tuple[ProviderAnswer, ProviderCall]:
    """Answer from the cache or make `call(idempotency_key)`; always leave a ledger row.

    `lookup_keys` are every normalized key the subject is known by, the strongest first;
    the call is recorded under the first. Before paying, the call waits for its slot in the
    provider's shared rate limit and reserves `expected_credits` against its budgets.
    ProviderErrors are recorded and re-raised for the caller to decide on a retry; Deferred
    means nothing was asked.
    """
    [result] = call_many_with_ledger(
        provider=provider,
        operation=operation,
        lookups=[Lookup(lookup_keys=lookup_keys, scope=scope, hit_ttl=hit_ttl, miss_ttl=miss_ttl)],
        call=lambda key, positions: [call(key)],
        expected_credits_each=expected_credits,
    )
    if isinstance(result, ProviderError):
        raise result
    return result


def call_many_with_ledger(
    *,
    provider: str,
    operation: str,
    lookups: Sequence[Lookup],
    call: Callable[[str, list[int]], list[ProviderAnswer | ProviderError]],
    per_request: int = 100,
    expected_credits_each: float = 1.0,
) -> list[Result]:
    """Answer many lookups with as few requests as the vendor allows: `call(idempotency_key,
    positions)` asks the vendor about `lookups[position]` for each position (at most
    `per_request` of them; 1 for a vendor without a bulk endpoint) and returns one answer per
    position, in order, or the ProviderError that left that position alone unanswered (it
    raises one that leaves them all so). A request for one lookup carries that lookup's own
    idempotency key.

    The ledger is kept exactly as if each lookup had been asked alone (one row each, the
    credits on the row that paid), so the cache, budgets and the spend figures cannot tell
    a bulk answer from a single one. Lookups for the same person are asked once. Returns,
    per lookup, its answer and ledger row, or the ProviderError that left it unanswered.

    The work is set-based: one query finds every reusable answer, one transaction claims
    every lookup still to buy, one UPDATE records each request's answers.
    """
    hashed = [lookup.hashed(provider=provider, operation=operation) for lookup in lookups]
    results: list[Result | None] = [None] * len(lookups)
    to_buy: dict[str, list[int]] = {}
    served: list[tuple[int, ProviderCall]] = []
    for position, cached in enumerate(
        _reusable_many(provider=provider, operation=operation, lookups=hashed)
    ):
        if cached is not None:
            served.append((position, cached))
        else:
            to_buy.setdefault(lookups[position].key_hash, []).append(position)
    claimed: list[tuple[ProviderCall, list[int]]] = []
    config = None
    if to_buy:
        config = provider_configs().get(provider)
        for positions, claim in _claim_many(
            provider=provider,
            operation=operation,
            lookups=lookups,
            hashed=hashed,
            groups=list(to_buy.values()),
            config=config,
            expected_credits=expected_credits_each,
        ):
            if isinstance(claim, ProviderCall):
                claimed.append((claim, positions))
            elif isinstance(claim, ProviderError):
                for position in positions:
                    results[position] = claim
            else:
                results[positions[0]] = claim.answer()
                served.extend((position, claim.cached) for position in positions[1:])
    for position, row in zip(
        [position for position, _ in served],
        _served_from_many(
            [cached for _, cached in served],
            provider=provider,
            operation=operation,
            lookups=[lookups[position] for position, _ in served],
        ),
        strict=True,
    ):
        results[position] = row
    size = max(1, per_request)
    for start in range(0, len(claimed), size):
        request, later = claimed[start : start + size], claimed[start + size :]
        try:
            _take_slot(provider, config)
        except ProviderError as exc:
            # No slot (the limiter unreachable, the provider paused): nothing of this or the
            # later requests was asked, so their reservations go and the runs wait.
            unasked = request + later
            ProviderCall.objects.filter(id__in=[row.id for row, _ in unasked]).delete()
            for _, positions in unasked:
                for position in positions:
                    results[position] = exc
            break
        _call_and_record(
            provider=provider,
            lookups=lookups,
            claimed=request,
            later=later,
            call=call,
            results=results,
        )
    return results  # type: ignore[return-value]


def _call_and_record(*, provider, lookups, claimed, later, call, results) -> None:
    """Ask the vendor about the claimed lookups in one request and record what it said."""
    rows = [row for row, _ in claimed]
    key = (
        rows[0].idempotency_key
        if len(rows) == 1
        else hashlib.sha256("|".join(row.idempotency_key for row in rows).encode()).hexdigest()
    )
    started = time.monotonic()
    try:
        answers = call(key, [positions[0] for _, positions in claimed])
    except ProviderError as exc:
        _record_failure(rows, exc, started=started)
        for _, positions in claimed:
            for position in positions:
                results[position] = exc
        return
    except BaseException:
        # Nothing is known of these answers, and the later requests will not be made.
        _record_interrupted(rows + [row for row, _ in later])
        raise
    if len(answers) != len(claimed):
        _record_interrupted(rows + [row for row, _ in later])
        raise ValueError(f"{provider} answered {len(answers)} of {len(claimed)} lookups")
    # A bulk answer may fail some of its lookups (a result the vendor mangled) and answer
    # the rest: those answers are billed, so they are kept and only the failed ones fail.
    answered: list[tuple[ProviderCall, ProviderAnswer]] = []
    # One statement per kind of failure, not per lookup (a mangled body breaks them all).
    failed: dict[tuple, tuple[ProviderError, list[ProviderCall]]] = {}
    for row, answer in zip(rows, answers, strict=True):
        if isinstance(answer, ProviderError):
            kind = (type(answer), str(answer), answer.http_status)
            failed.setdefault(kind, (answer, []))[1].append(row)
        else:
            answered.append((row, answer))
    _record_answers([row for row, _ in answered], [a for _, a in answered], started=started)
    for error, failed_rows in failed.values():
        _record_failure(failed_rows, error, started=started)
    for (row, positions), answer in zip(claimed, answers, strict=True):
        if isinstance(answer, ProviderError):
            for position in positions:
                results[position] = answer
            continue
        results[positions[0]] = answer, row
        for position, served in zip(
            positions[1:],
            _served_from_many(
                [row] * (len(positions) - 1),
                provider=provider,
                operation=row.operation,
                lookups=[lookups[position] for position in positions[1:]],
            ),
            strict=True,
        ):
            results[position] = served


def _served_from_many(
    cached: Sequence[ProviderCall], *, provider: str, operation: str, lookups: Sequence[Lookup]
) -> list[tuple[ProviderAnswer, ProviderCall]]:
    """Write a free `cached` row for each lookup served from an earlier answer."""
    if not cached:
        return []
    rows = [
        ProviderCall(
            provider=provider,
            operation=operation,
            lookup_key_hash=lookup.key_hash,
            idempotency_key=lookup.idempotency_key(provider=provider, operation=operation),
            outcome=ProviderCall.Outcome.CACHED,
            http_status=source.http_status,
            cached_from=source,
        )
        for source, lookup in zip(cached, lookups, strict=True)
    ]
    rows_insert(rows)
    return [(_answer_from(source), row) for source, row in zip(cached, rows, strict=True)]


def _record_answers(
    rows: Sequence[ProviderCall], answers: Sequence[ProviderAnswer], *, started: float
) -> None:
    duration_ms = int((time.monotonic() - started) * 1000)
    for row, answer in zip(rows, answers, strict=True):
        row.outcome = ProviderCall.Outcome.HIT if answer.is_hit else ProviderCall.Outcome.MISS
        row.http_status = answer.http_status
        row.credits = answer.credits
        row.response = _stored(answer)
        row.duration_ms = duration_ms
    rows_update(rows, ["outcome", "http_status", "credits", "response", "duration_ms"])


def _record_failure(rows: list[ProviderCall], exc: ProviderError, *, started: float) -> None:
    if not rows:
        return
    ProviderCall.objects.filter(id__in=[row.id for row in rows]).update(
        outcome=exc.outcome,
        http_status=exc.http_status,
        error=str(exc)[:500],
        credits=0,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    for row in rows:
        row.outcome, row.http_status, row.error, row.credits = (
            exc.outcome,
            exc.http_status,
            str(exc)[:500],
            0,
        )
    try:
        if isinstance(exc, RateLimited):
            # The vendor said slow down: every worker stops asking until then.
            rate_limiter().pause(rows[0].provider, seconds=exc.retry_after)
        elif isinstance(exc, QuotaExhausted):
            rate_limiter().pause(rows[0].provider, seconds=settings.PROVIDER_QUOTA_PAUSE_SECONDS)
    except redis.RedisError as error:
        # The failure is recorded and the run told; without the shared pause each worker
        # meets the vendor's own refusal instead, which costs nothing.
        logger.warning("%s could not be paused: %s", rows[0].provider, type(error).__name__)


def _take_slot(provider: str, config: ProviderConfig | None) -> None:
    """Wait for the provider's slot in the shared rate limit, or raise Deferred.

    An unreachable limiter (its Redis restarting) holds the call back: neither a call past
    the limit nor a failed run, but a run that waits without spending an attempt.
    """
    try:
        wait_for_slot(provider, per_minute=_our_limit(config))
    except redis.RedisError as exc:
        raise Deferred(
            f"{provider} is held back: the shared rate limiter is unreachable "
            f"({type(exc).__name__})",
            retry_after=LIMITER_DOWN_RETRY_SECONDS,
        ) from None


def _record_interrupted(rows: list[ProviderCall]) -> None:
    # A time limit or a bug: nothing is known of the answer, so nothing stays reserved.
    ProviderCall.objects.filter(id__in=[row.id for row in rows]).update(
        outcome=ProviderCall.Outcome.ERROR, credits=0, error="interrupted mid-call"
    )


def _our_limit(config: ProviderConfig | None) -> int | None:
    if config is None or not config.rate_limit_per_minute:
        return None
    return max(1, int(config.rate_limit_per_minute * settings.PROVIDER_RATE_LIMIT_MARGIN))


class _AnsweredMeanwhile:
    """Someone else's answer arrived while this caller waited to claim the lookup."""

    def __init__(self, cached: ProviderCall, row: ProviderCall) -> None:
        self.cached = cached
        self.row = row

    def answer(self) -> tuple[ProviderAnswer, ProviderCall]:
        return _answer_from(self.cached), self.row


Claim = ProviderCall | _AnsweredMeanwhile | ProviderError


def _claim_many(
    *,
    provider: str,
    operation: str,
    lookups: Sequence[Lookup],
    hashed: Sequence[_HashedLookup],
    groups: list[list[int]],
    config: ProviderConfig | None,
    expected_credits: float,
) -> list[tuple[list[int], Claim]]:
    """Claim each group's lookup (its first position) in one transaction, or, when another
    caller holds one of them in flight or the budget cannot take them all, one by one."""
    firsts = [positions[0] for positions in groups]
    try:
        with transaction.atomic():
            budget_check(provider=provider, config=config, credits=expected_credits * len(firsts))
            rows = [
                ProviderCall(
                    provider=provider,
                    operation=operation,
                    lookup_key_hash=lookups[first].key_hash,
                    idempotency_key=hashed[first].idempotency_key,
                    outcome=ProviderCall.Outcome.PENDING,
                    credits=expected_credits,
                )
                for first in firsts
            ]
            rows_insert(rows)
    except (IntegrityError, BudgetReached):
        return [
            (
                positions,
                _claim_or_error(
                    provider, operation, lookups[positions[0]], config, expected_credits
                ),
            )
            for positions in groups
        ]
    # A holder may have answered between our look and our insert (after the insert the
    # one-in-flight index rules it out), so look once more before paying.
    rechecked = _reusable_many(
        provider=provider, operation=operation, lookups=[hashed[first] for first in firsts]
    )
    claims: list[tuple[list[int], Claim]] = []
    answered_meanwhile = []
    for positions, row, cached in zip(groups, rows, rechecked, strict=True):
        if cached is None:
            claims.append((positions, row))
            continue
        row.outcome, row.credits = ProviderCall.Outcome.CACHED, 0
        row.http_status, row.cached_from = cached.http_status, cached
        answered_meanwhile.append(row)
        claims.append((positions, _AnsweredMeanwhile(cached, row)))
    if answered_meanwhile:
        rows_update(answered_meanwhile, ["outcome", "credits", "http_status", "cached_from"])
    return claims


def _claim_or_error(provider, operation, lookup, config, expected_credits) -> Claim:
    try:
        return _claim(
            provider=provider,
            operation=operation,
            lookup=lookup,
            config=config,
            expected_credits=expected_credits,
        )
    except ProviderError as exc:
        return exc


def _claim(
    *,
    provider: str,
    operation: str,
    lookup: Lookup,
    config: ProviderConfig | None,
    expected_credits: float,
) -> ProviderCall | _AnsweredMeanwhile:
    """Write the in-flight row that reserves the credits, or wait for whoever holds it.

    The row is written before the call so a worker killed mid-call still leaves a trace,
    and its retry sends the same idempotency key (a vendor that honours it bills once).
    """
    key_hash = lookup.key_hash
    idempotency_key = lookup.idempotency_key(provider=provider, operation=operation)
    hashed = lookup.hashed(provider=provider, operation=operation)
    deadline = time.monotonic() + settings.PROVIDER_HTTP_TIMEOUT_SECONDS + 1
    while True:
        # Whoever held the lookup may have answered it since the caller looked.
        [cached] = _reusable_many(provider=provider, operation=operation, lookups=[hashed])
        if cached is not None:
            [(_, row)] = _served_from_many(
                [cached], provider=provider, operation=operation, lookups=[lookup]
            )
            return _AnsweredMeanwhile(cached, row)
        try:
            with transaction.atomic():
                budget_check(provider=provider, config=config, credits=expected_credits)
                row = ProviderCall.objects.create(
                    provider=provider,
                    operation=operation,
                    lookup_key_hash=key_hash,
                    idempotency_key=idempotency_key,
                    outcome=ProviderCall.Outcome.PENDING,
                    credits=expected_credits,
                )
        except IntegrityError:
            row = None
        if row is not None:
            # The holder may have answered between our look and our insert (after the insert
            # the one-in-flight index rules it out), so look once more before paying.
            [cached] = _reusable_many(provider=provider, operation=operation, lookups=[hashed])
            if cached is None:
                return row
            row.outcome = ProviderCall.Outcome.CACHED
            row.credits = 0
            row.http_status = cached.http_status
            row.cached_from = cached
            row.save(update_fields=["outcome", "credits", "http_status", "cached_from"])
            return _AnsweredMeanwhile(cached, row)
        in_flight = ProviderCall.objects.filter(
            provider=provider,
            operation=operation,
            lookup_key_hash=key_hash,
            outcome=ProviderCall.Outcome.PENDING,
        ).first()
        # Past this no live worker can still be waiting for its answer.
        abandoned_before = timezone.now() - timedelta(
            seconds=2 * settings.PROVIDER_HTTP_TIMEOUT_SECONDS + 30
        )
        if in_flight is not None and (
            in_flight.idempotency_key == idempotency_key or in_flight.created_at < abandoned_before
        ):
            # Our own lost attempt, or a worker that died mid-call: nobody will finish it.
            ProviderCall.objects.filter(
                id=in_flight.id, outcome=ProviderCall.Outcome.PENDING
            ).update(outcome=ProviderCall.Outcome.ERROR, credits=0, error="abandoned: worker lost")
            continue
        if time.monotonic() > deadline:
            raise Deferred(f"the same {provider} lookup is still in flight", retry_after=5)
        time.sleep(0.1)


def budget_check(*, provider: str, config: ProviderConfig | None, credits: float) -> None:
    """Raise BudgetReached if `credits` more would pass a daily or monthly budget.

    Called inside the transaction that writes the reservation; the config row is locked so
    two workers cannot both take the last credit.
    """
    if config is None or (
        config.daily_credit_budget is None and config.monthly_credit_budget is None
    ):
        return
    ProviderConfig.objects.select_for_update().filter(id=config.id).first()
    for budget, start, next_start in _budget_periods(config):
        spent = credits_spent(provider=provider, since=start)
        if spent + Decimal(str(credits)) > budget:
            wait = (next_start - timezone.now()).total_seconds()
            raise BudgetReached(
                f"{provider} budget of {budget} credits reached ({spent} spent)",
                retry_after=max(wait, 1),
            )


def _budget_periods(config: ProviderConfig):
    now = timezone.now()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    if config.daily_credit_budget is not None:
        yield config.daily_credit_budget, day, day + timedelta(days=1)
    if config.monthly_credit_budget is not None:
        yield config.monthly_credit_budget, month, next_month


def credits_spent(*, provider: str, since) -> Decimal:
    """Return the credits paid or reserved (in flight) for a provider since a moment."""
    total = ProviderCall.objects.filter(provider=provider, created_at__gte=since).aggregate(
        total=Sum("credits")
    )["total"]
    return total or Decimal(0)
