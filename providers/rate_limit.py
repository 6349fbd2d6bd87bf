"""One rate limiter per provider, shared by every worker process on every machine.

Celery's own `rate_limit` is per worker (each `celery worker` node keeps its own token
bucket): with N workers a vendor sees up to N times the limit. Here every call to a
provider first takes a slot from one shared schedule (GCRA: each slot is `60 / limit`
seconds after the previous one), and a vendor's
Retry-After pauses the provider for every worker until then.

With REDIS_URL the state lives in Redis, changed atomically by a Lua script that reads
Redis's own clock (so machines with skewed clocks still agree). Embedded, it lives in a
database row taken with SELECT … FOR UPDATE, which SQLite serializes across processes.
"""

import time
from datetime import timedelta
from functools import cache

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from providers.base import Deferred
from providers.models import ProviderThrottle

# Returns {acquired (0/1), wait_ms, paused (0/1)}. A slot is reserved only when acquired;
# the caller then sleeps wait_ms until its slot comes.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {0, paused, 1} end
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > max_wait then return {0, wait, 0} end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(wait + interval + 60000))
return {1, wait, 0}
"""

# Pause for ARGV[1] ms unless a longer pause is already in force.
_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


class RedisRateLimiter:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._pause = self.client.register_script(_PAUSE)

    def try_acquire(self, provider: str, *, per_minute: int | None, max_wait: float) -> float:
        """Reserve the next slot; return the seconds to wait for it, or raise Deferred."""
        interval_ms = int(60_000 / per_minute) if per_minute else 0
        acquired, wait_ms, paused = self._acquire(
            keys=[f"leadsmith:ratelimit:{provider}", f"leadsmith:pause:{provider}"],
            args=[interval_ms, int(max_wait * 1000)],
        )
        if not acquired:
            state = "paused" if paused else "held back"
            raise Deferred(
                f"{provider} is {state} for {wait_ms / 1000:.1f}s", retry_after=wait_ms / 1000
            )
        return wait_ms / 1000

    def pause(self, provider: str, *, seconds: float) -> None:
        self._pause(keys=[f"leadsmith:pause:{provider}"], args=[max(1, int(seconds * 1000))])


class DatabaseRateLimiter:
    def try_acquire(self, provider: str, *, per_minute: int | None, max_wait: float) -> float:
        with transaction.atomic():
            ProviderThrottle.objects.get_or_create(provider=provider)
            throttle = ProviderThrottle.objects.select_for_update().get(provider=provider)
            now = timezone.now()
            if throttle.paused_until and throttle.paused_until > now:
                wait = (throttle.paused_until - now).total_seconds()
                raise Deferred(f"{provider} is paused for {wait:.1f}s", retry_after=wait)
            if not per_minute:
                return 0.0
            slot = max(throttle.next_slot_at or now, now)
            wait = (slot - now).total_seconds()
            if wait > max_wait:
                raise Deferred(f"{provider} is held back for {wait:.1f}s", retry_after=wait)
            throttle.next_slot_at = slot + timedelta(seconds=60 / per_minute)
            throttle.save(update_fields=["next_slot_at"])
            return wait

    def pause(self, provider: str, *, seconds: float) -> None:
        until = timezone.now() + timedelta(seconds=seconds)
        ProviderThrottle.objects.get_or_create(provider=provider)
        ProviderThrottle.objects.filter(provider=provider).exclude(paused_until__gt=until).update(
            paused_until=until
        )


@cache
def _limiter_for(redis_url: str) -> RedisRateLimiter | DatabaseRateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else DatabaseRateLimiter()


def rate_limiter() -> RedisRateLimiter | DatabaseRateLimiter:
    return _limiter_for(settings.REDIS_URL)


def wait_for_slot(provider: str, *, per_minute: int | None) -> None:
    """Block until this process may call the provider, or raise Deferred if that is far."""
    wait = rate_limiter().try_acquire(
        provider, per_minute=per_minute, max_wait=settings.PROVIDER_MAX_INLINE_WAIT_SECONDS
    )
    if wait > 0:
        time.sleep(wait)
