"""Small tables that ops edit by hand (provider settings, the waterfall, ICP rules, webhook
subscriptions), read once per process until one of them changes.

Every run used to read them again: 6 of the 39 statements of a Find Email run, each
costing more to build in the ORM than to answer. They change a few times a day.

A change to any of them puts a new token in the shared cache (Redis, or the file cache when
embedded); every process looks at the token at most once every TOKEN_RECHECK_SECONDS, and
reloads when it changed. The changing process drops what it holds at once; the token
changes again when the change commits, so a process that reloaded in between (seeing the
old rows) reloads again. Without the cache (Redis down) each read goes to the database,
and nothing is held longer than MAX_AGE_SECONDS either way, in case a change's token was
lost (or the change rolled back after this process read it).
"""

import logging
import time
import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)

TOKEN_KEY = "cached-tables:token"  # noqa: S105 (a cache key, not a secret)
MAX_AGE_SECONDS = 60.0
# Looking at the token costs a cache round trip (0.27 ms through Django's Redis cache):
# once a second, not at every read, so an edit reaches the other processes within it.
TOKEN_RECHECK_SECONDS = 1.0

T = TypeVar("T")

# name -> (token it was loaded under, when, what was loaded)
_held: dict[str, tuple[str, float, object]] = {}
# (when the token was last looked at, the token then)
_looked: tuple[float, str] | None = None


class CachedTable(Generic[T]):
    """What `load` returns, held per process. Treat it as read-only: every caller shares
    it. Changes through the models given (save, delete) are noticed; a queryset
    `update()` on them must call `cached_tables_changed()` itself."""

    def __init__(self, name: str, *, models: tuple[type[models.Model], ...], load: Callable[[], T]):
        self.name = name
        self.load = load
        for model in models:
            for signal in (post_save, post_delete):
                signal.connect(
                    _changed, sender=model, dispatch_uid=f"cached_tables.{model._meta.label}"
                )

    def get(self) -> T:
        now = time.monotonic()
        token = _token(now)
        if token is None:
            return self.load()
        held = _held.get(self.name)
        if held is not None and held[0] == token and now - held[1] < MAX_AGE_SECONDS:
            return held[2]  # type: ignore[return-value]
        value = self.load()
        _held[self.name] = (token, now, value)
        return value


def cached_tables_changed() -> None:
    """Make every process read the tables again: now, and once the change commits."""
    _replace_token()
    transaction.on_commit(_replace_token)


def cached_tables_forget() -> None:
    """Drop what this process holds (tests: a rolled-back change sends no signal)."""
    global _looked
    _held.clear()
    _looked = None


def _changed(sender, **kwargs) -> None:
    cached_tables_changed()


_unreachable = False


def _token(now: float) -> str | None:
    global _looked, _unreachable
    if _looked is not None and now - _looked[0] < TOKEN_RECHECK_SECONDS:
        return _looked[1]
    try:
        token = cache.get(TOKEN_KEY)
        if token is None:
            cache.add(TOKEN_KEY, uuid.uuid4().hex, timeout=None)
            token = cache.get(TOKEN_KEY)
    except Exception as exc:  # the cache's own errors depend on its backend
        if not _unreachable:  # once an outage, not at every read
            logger.warning("settings tables read from the database: cache unreachable (%s)", exc)
        _unreachable = True
        return None
    _unreachable = False
    _looked = (now, token)
    return token


def _replace_token() -> None:
    cached_tables_forget()
    try:
        cache.set(TOKEN_KEY, uuid.uuid4().hex, timeout=None)
    except Exception as exc:
        # Other processes notice within MAX_AGE_SECONDS.
        logger.warning("could not announce a change to cached tables (%s)", exc)
