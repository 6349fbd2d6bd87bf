"""The shared rate limiter (providers/rate_limit.py), on Redis and on the database."""

import itertools
import time

import pytest

from providers.base import Deferred
from providers.rate_limit import DatabaseRateLimiter, RedisRateLimiter

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.services)])
def limiter(request):
    if request.param == "redis":
        return RedisRateLimiter(request.getfixturevalue("redis_url"))
    return DatabaseRateLimiter()


def test_slots_are_spaced_by_the_limit_across_callers(limiter):
    # 600/min is one slot every 100 ms; five callers share one schedule.
    waits = [limiter.try_acquire("vendor", per_minute=600, max_wait=5) for _ in range(5)]
    assert waits[0] == pytest.approx(0, abs=0.02)
    for earlier, later in itertools.pairwise(waits):
        assert later - earlier == pytest.approx(0.1, abs=0.03)


def test_a_slot_too_far_away_is_not_taken(limiter):
    limiter.try_acquire("slow", per_minute=6, max_wait=1)
    with pytest.raises(Deferred) as held:
        limiter.try_acquire("slow", per_minute=6, max_wait=1)
    assert 9 < held.value.retry_after <= 10
    # The refusal reserved nothing: the next caller waits no longer than the first refused.
    with pytest.raises(Deferred) as again:
        limiter.try_acquire("slow", per_minute=6, max_wait=1)
    assert again.value.retry_after <= held.value.retry_after


def test_a_pause_holds_every_caller_back_until_it_ends(limiter):
    limiter.pause("paused", seconds=0.5)
    with pytest.raises(Deferred) as held:
        limiter.try_acquire("paused", per_minute=None, max_wait=0.1)
    assert 0 < held.value.retry_after <= 0.5
    time.sleep(0.6)
    assert limiter.try_acquire("paused", per_minute=None, max_wait=0.1) == 0


def test_a_shorter_pause_does_not_cut_a_longer_one(limiter):
    limiter.pause("twice", seconds=5)
    limiter.pause("twice", seconds=1)
    with pytest.raises(Deferred) as held:
        limiter.try_acquire("twice", per_minute=None, max_wait=0)
    assert held.value.retry_after > 3


def test_providers_do_not_share_a_schedule(limiter):
    limiter.try_acquire("a", per_minute=1, max_wait=0)
    assert limiter.try_acquire("b", per_minute=1, max_wait=0) == 0
