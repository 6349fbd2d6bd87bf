"""Waiting for a run to end, for a page that shows its outcome the moment it is there.

The lead page's run status is a long poll (leads.views.lead_run_status): the request waits
here until the run is terminal or a cap passes. With Redis, the worker that finishes a run
publishes on the run's own channel once its transaction commits, and the waiting request,
subscribed before it first reads the run, wakes at once; it still reads the run again now
and then, so a finish that announced nothing (Redis restarted, a run ended by hand) is seen
too. Embedded (no Redis) the request reads the run's state every POLL_SECONDS: one indexed
primary-key read on SQLite.
"""

import functools
import logging
import time

import redis
from django.conf import settings
from django.db import connection, transaction
from django.dispatch import receiver

from enrichment.models import EnrichmentRun
from enrichment.signals import runs_finished

logger = logging.getLogger(__name__)

# Embedded: how often the run's state is read while waiting.
POLL_SECONDS = 0.02
# With Redis: how often the run is read again anyway, in case its announcement was lost.
RECHECK_SECONDS = 0.5
# A Redis that does not answer delays a worker's next run by at most this, once a batch.
_SOCKET_TIMEOUT_SECONDS = 1.0


def _channel(run_id: int) -> str:
    # Run ids repeat across databases that share one Redis (tests, benches): the database's
    # name keeps their channels apart. A stray message would only cost an extra read.
    return f"leadsmith:run-finished:{connection.settings_dict['NAME']}:{run_id}"


@functools.cache
def _client(url: str) -> redis.Redis:
    # One pool per process, shared by its threads; a waiting request holds one connection.
    return redis.Redis.from_url(
        url, socket_connect_timeout=_SOCKET_TIMEOUT_SECONDS, socket_timeout=_SOCKET_TIMEOUT_SECONDS
    )


def _publish(channels: list[str]) -> None:
    try:
        pipeline = _client(settings.REDIS_URL).pipeline(transaction=False)
        for channel in channels:
            pipeline.publish(channel, b"1")
        pipeline.execute()
    except redis.RedisError as exc:
        # The waiting pages find the end by reading their run: a line, not a traceback.
        logger.warning("could not announce the end of %s runs on Redis: %s", len(channels), exc)


@receiver(runs_finished, dispatch_uid="enrichment.run_finished_announce")
def run_finished_announce(sender, *, runs, **kwargs) -> None:
    """Tell whoever waits for these runs that they are over, once that is committed: a page
    woken earlier would read its run still running. One round trip for the batch."""
    if not settings.REDIS_URL or not runs:
        return
    channels = [_channel(run.id) for run in runs]
    transaction.on_commit(lambda: _publish(channels))


def _over(run_id: int) -> bool:
    """True when the run is terminal, or gone (nothing left to wait for)."""
    state = EnrichmentRun.objects.filter(id=run_id).values_list("state", flat=True).first()
    return state is None or state in EnrichmentRun.TERMINAL_STATES


def run_wait_over(*, run_id: int, timeout: float) -> bool:
    """Wait until the run is terminal (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    if settings.REDIS_URL:
        try:
            return _wait_announced(run_id, deadline)
        except redis.RedisError as exc:
            logger.warning("waiting for run %s by reading it: Redis failed: %s", run_id, exc)
    return _wait_polling(run_id, deadline)


def _wait_announced(run_id: int, deadline: float) -> bool:
    pubsub = _client(settings.REDIS_URL).pubsub()
    try:
        pubsub.subscribe(_channel(run_id))
        # The subscription is confirmed before the first read: an announcement made after
        # that read cannot be missed.
        pubsub.get_message(timeout=_SOCKET_TIMEOUT_SECONDS)
        while not _over(run_id):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            announced = pubsub.get_message(
                ignore_subscribe_messages=True, timeout=min(remaining, RECHECK_SECONDS)
            )
            if announced is not None:
                # Published after the finishing transaction committed: no need to read it.
                return True
        return True
    finally:
        pubsub.close()


def _wait_polling(run_id: int, deadline: float) -> bool:
    while not _over(run_id):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(remaining, POLL_SECONDS))
    return True
