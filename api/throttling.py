"""One request budget per client, counted in Django's cache.

With REDIS_URL set the cache is Redis, so every web process on every machine counts
against the same budget. The count is a fixed window kept with `add` + `incr`, which Redis
does atomically; DRF's own throttles store a list of timestamps with get-then-set, which
loses requests when two processes write at once.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from api.models import ApiKey

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """Return (requests, seconds) for a rate such as '600/minute' or '10/s'."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


class ClientRateThrottle(BaseThrottle):
    """Count requests per API key, per signed-in user, or per address for anonymous ones."""

    cache_prefix = "api-throttle"

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def rate_for(self, request) -> str:
        if isinstance(request.auth, ApiKey) or (request.user and request.user.is_authenticated):
            return settings.API_THROTTLE_RATE
        return settings.API_THROTTLE_ANON_RATE

    def ident_for(self, request) -> str:
        if isinstance(request.auth, ApiKey):
            return f"key:{request.auth.id}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"addr:{self.get_ident(request)}"

    def allow_request(self, request, view) -> bool:
        limit, period = parse_rate(self.rate_for(request))
        now = time.time()
        window = int(now // period)
        key = f"{self.cache_prefix}:{self.ident_for(request)}:{period}:{window}"
        count = _increment(key, timeout=period + 1)
        if count <= limit:
            return True
        self.wait_seconds = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.wait_seconds


def _increment(key: str, *, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:
        # The window's key expired between add and incr: this is the first request of it.
        cache.add(key, 0, timeout=timeout)
        return cache.incr(key)
