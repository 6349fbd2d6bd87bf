"""Celery tasks: thin wrappers that take ids and call one service each.

Reliability comes from settings (acks_late, reject_on_worker_lost, prefetch 1, time limits
under the visibility timeout) and from the run table: a message that is lost, or whose
worker dies, is found again by `runs_sweep`; one that arrives twice finds its run claimed.
"""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from config.logging import log_context
from enrichment import refresh, services
from enrichment.fields import FIELDS
from providers.services import provider_payloads_expire


@shared_task(
    name="enrichment.run_execute",
    queue="enrichment",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_execute(run_id: int) -> None:
    with log_context(run_id=run_id):
        services.run_execute(run_id=run_id)


@shared_task(
    name="enrichment.runs_execute_batch",
    queue="enrichment",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def runs_execute_batch(run_ids: list[int]) -> None:
    with log_context(run_id=",".join(map(str, run_ids))):
        services.runs_execute_batch(run_ids=run_ids)


@shared_task(
    name="enrichment.runs_sweep",
    queue="maintenance",
    ignore_result=True,
    # A sweep that waited longer than its own period is obsolete: the next one
    # will do the same work.
    expires=60,
)
def runs_sweep() -> None:
    services.runs_sweep()


@shared_task(
    name="enrichment.refresh_stale",
    queue="maintenance",
    ignore_result=True,
    # Beat sends one every 10 minutes; a tick that waited that long is superseded.
    expires=600,
)
def refresh_stale() -> None:
    refresh.refresh_job_create()


# Here rather than in providers/: how long a hit is served depends on the fields'
# freshness, which only enrichment knows.
@shared_task(name="providers.cache_purge", queue="maintenance", ignore_result=True)
def cache_purge() -> None:
    now = timezone.now()
    longest_hit_ttl = max(spec.fresh_for_days for spec in FIELDS.values())
    provider_payloads_expire(
        hits_before=now - timedelta(days=longest_hit_ttl),
        misses_before=now - timedelta(days=settings.PROVIDER_MISS_TTL_DAYS),
    )


@shared_task(name="enrichment.pdl_opt_outs_sync", queue="maintenance", ignore_result=True)
def pdl_opt_outs_sync() -> None:
    """Suppress the people PDL lists as opted out (nothing to do without a PDL key)."""
    from django.conf import settings

    from enrichment.opt_outs import pdl_opt_outs_apply
    from providers.pdl.adapter import PdlProvider

    if settings.PDL_API_KEY:
        pdl_opt_outs_apply(pdl_ids=PdlProvider(settings.PDL_BASE_URL).opted_out_ids())
