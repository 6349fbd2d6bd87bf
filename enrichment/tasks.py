"""Celery tasks: thin wrappers that take ids and call one service each.

Reliability comes from settings (acks_late, reject_on_worker_lost, prefetch 1, time limits
under the visibility timeout) and from the run table: a message that is lost, or whose
worker dies, is found again by `runs_sweep`; one that arrives twice finds its run claimed.
"""

from celery import shared_task

from enrichment import services


@shared_task(
    name="enrichment.run_execute",
    queue="enrichment",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_execute(run_id: int) -> None:
    services.run_execute(run_id=run_id)


@shared_task(
    name="enrichment.runs_execute_batch",
    queue="enrichment",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def runs_execute_batch(run_ids: list[int]) -> None:
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
