"""Celery tasks for webhooks: thin, by id; reliability lives in the Delivery rows."""

from celery import shared_task

from webhooks import services


@shared_task(
    name="webhooks.deliver",
    queue="webhooks",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def deliver(delivery_id: int) -> None:
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(
    name="webhooks.retry_due",
    queue="maintenance",
    ignore_result=True,
    # A sweep that waited longer than its period is obsolete: the next does the same work.
    expires=60,
)
def retry_due() -> None:
    services.deliveries_retry_due()
