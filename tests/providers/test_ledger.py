"""The ledger (providers/ledger.py): cache, budgets, one lookup in flight, pauses."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from providers.base import (
    BudgetReached,
    Candidate,
    Deferred,
    Permanent,
    ProviderAnswer,
    RateLimited,
)
from providers.ledger import (
    Lookup,
    call_many_with_ledger,
    call_with_ledger,
    credits_spent,
    lookup_key_hash,
)
from providers.models import ProviderCall, ProviderConfig
from providers.rate_limit import rate_limiter

pytestmark = pytest.mark.django_db

HIT = ProviderAnswer(
    candidates=[Candidate("job_title", "CFO", 0.9, "vendor")], credits=1.0, http_status=200
)


def ask(key="email:ann@acme.com", scope="run:1", answer=HIT, calls=None):
    def call(idempotency_key):
        if calls is not None:
            calls.append(idempotency_key)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return call_with_ledger(
        provider="vendor",
        operation="person_enrich",
        lookup_keys=[key],
        scope=scope,
        hit_ttl=timedelta(days=90),
        miss_ttl=timedelta(days=30),
        call=call,
    )


def test_a_hit_is_paid_once_then_served_from_the_cache():
    calls = []
    first, first_row = ask(calls=calls)
    again, again_row = ask(scope="run:2", calls=calls)
    assert len(calls) == 1
    assert (first_row.outcome, first_row.credits) == ("hit", Decimal("1.000"))
    assert (again_row.outcome, again_row.credits, again_row.cached_from) == (
        "cached",
        Decimal(0),
        first_row,
    )
    assert again.candidates == first.candidates


def test_a_cached_answer_past_its_ttl_is_bought_again():
    calls = []
    _, row = ask(calls=calls)
    ProviderCall.objects.filter(id=row.id).update(created_at=timezone.now() - timedelta(days=91))
    ask(scope="run:2", calls=calls)
    assert len(calls) == 2


def test_a_daily_budget_stops_paid_calls_and_reserves_in_flight_credits():
    ProviderConfig.objects.create(provider="vendor", daily_credit_budget=2)
    ask(key="email:a@x.com")
    ask(key="email:b@x.com")
    with pytest.raises(BudgetReached) as reached:
        ask(key="email:c@x.com")
    tomorrow = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(1)
    assert reached.value.retry_after == pytest.approx(
        (tomorrow - timezone.now()).total_seconds(), abs=5
    )
    assert credits_spent(provider="vendor", since=timezone.now() - timedelta(hours=1)) == 2
    # The cache still answers: a budget stops paying, not knowing.
    _, row = ask(key="email:a@x.com", scope="run:9")
    assert row.outcome == "cached"


def test_a_lost_attempt_of_the_same_run_is_taken_over_with_the_same_idempotency_key():
    calls = []
    ask(calls=calls, answer=ProviderAnswer(candidates=[], credits=0, http_status=404))
    ProviderCall.objects.all().delete()
    # A worker died mid-call: its in-flight row is left behind.
    ProviderCall.objects.create(
        provider="vendor",
        operation="person_enrich",
        lookup_key_hash=lookup_key_hash("email:ann@acme.com"),
        idempotency_key=calls[0],
        outcome="pending",
        credits=1,
    )
    ask(calls=calls)
    assert calls[1] == calls[0]
    assert list(ProviderCall.objects.values_list("outcome", flat=True).order_by("id")) == [
        "error",
        "hit",
    ]


def test_someone_elses_lookup_in_flight_is_waited_for_not_paid_again(settings):
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 0.2
    ProviderCall.objects.create(
        provider="vendor",
        operation="person_enrich",
        lookup_key_hash=lookup_key_hash("email:ann@acme.com"),
        idempotency_key="other-run",
        outcome="pending",
        credits=1,
    )
    calls = []
    with pytest.raises(Deferred, match="in flight"):
        ask(calls=calls)
    assert calls == []


@pytest.mark.django_db(transaction=True)
def test_an_answer_arriving_while_waiting_is_reused(settings):
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 5
    in_flight = ProviderCall.objects.create(
        provider="vendor",
        operation="person_enrich",
        lookup_key_hash=lookup_key_hash("email:ann@acme.com"),
        idempotency_key="other-run",
        outcome="pending",
        credits=1,
    )

    def answer_arrives():
        time.sleep(0.3)
        ProviderCall.objects.filter(id=in_flight.id).update(
            outcome="hit", response={"candidates": [], "raw": {}}
        )

    thread = threading.Thread(target=answer_arrives)
    thread.start()
    calls = []
    _, row = ask(calls=calls)
    thread.join()
    assert calls == []
    assert row.outcome == "cached" and row.cached_from_id == in_flight.id


def test_an_answer_landing_between_the_cache_look_and_the_claim_is_not_paid_again(
    monkeypatch,
):
    """The holder finishes after our cache look but before our in-flight row is written."""
    from providers import ledger

    in_flight = ProviderCall.objects.create(
        provider="vendor",
        operation="person_enrich",
        lookup_key_hash=lookup_key_hash("email:ann@acme.com"),
        idempotency_key="other-run",
        outcome="pending",
        credits=1,
    )
    real_reusable_many = ledger._reusable_many
    looks = []

    def reusable_many(**kwargs):
        found = real_reusable_many(**kwargs)
        looks.append(found)
        if len(looks) == 2:  # the look inside _claim, just before the insert
            ProviderCall.objects.filter(id=in_flight.id).update(
                outcome="hit", response={"candidates": [], "raw": {}}
            )
        return found

    monkeypatch.setattr(ledger, "_reusable_many", reusable_many)
    calls = []
    _, row = ask(calls=calls)
    assert calls == []
    assert (row.outcome, row.credits, row.cached_from_id) == ("cached", 0, in_flight.id)
    assert ProviderCall.objects.filter(outcome="pending").count() == 0


def test_a_429_pauses_the_provider_for_every_caller():
    with pytest.raises(RateLimited):
        ask(answer=RateLimited("slow down", retry_after=30, http_status=429))
    with pytest.raises(Deferred) as held:
        rate_limiter().try_acquire("vendor", per_minute=None, max_wait=1)
    assert 25 < held.value.retry_after <= 30
    row = ProviderCall.objects.get()
    assert (row.outcome, row.http_status, row.credits) == ("rate_limited", 429, Decimal(0))


def test_a_bulk_answer_failing_one_lookup_keeps_and_records_the_others():
    """The vendor billed the answers it gave: a result it mangled fails its lookup alone,
    so the rest are not asked (and paid) again."""
    lookups = [
        Lookup(
            lookup_keys=[f"email:{name}@acme.com"],
            scope="run:1",
            hit_ttl=timedelta(days=90),
            miss_ttl=timedelta(days=30),
        )
        for name in ("ann", "bob", "cy")
    ]
    broken = Permanent("a result without an HTTP status", http_status=200)
    asked = []

    def call(idempotency_key, positions):
        asked.append(positions)
        return [broken if position == 1 else HIT for position in positions]

    results = call_many_with_ledger(
        provider="vendor", operation="person_enrich", lookups=lookups, call=call
    )

    assert asked == [[0, 1, 2]]
    assert results[1] is broken
    assert [answer.candidates for answer, _ in (results[0], results[2])] == [HIT.candidates] * 2
    rows = {row.lookup_key_hash: row for row in ProviderCall.objects.all()}
    assert [rows[lookup.key_hash].outcome for lookup in lookups] == ["hit", "error", "hit"]
    assert rows[lookups[1].key_hash].credits == 0
    assert "without an HTTP status" in rows[lookups[1].key_hash].error
    assert credits_spent(provider="vendor", since=timezone.now() - timedelta(days=1)) == 2

    # Asked again, the two answers come from the cache; only the failed lookup is paid for.
    again = call_many_with_ledger(
        provider="vendor", operation="person_enrich", lookups=lookups, call=call
    )
    assert asked[1:] == [[1]]
    assert [row.outcome for _, row in (again[0], again[2])] == ["cached", "cached"]
