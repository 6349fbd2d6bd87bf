"""Celery task: thin, takes an id, calls the service (which claims the import first)."""

from celery import shared_task
from django.conf import settings

from imports import services


@shared_task(
    name=services.RUN_TASK,
    queue=services.RUN_QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # A big file takes minutes; both limits stay under the broker's visibility timeout.
    soft_time_limit=settings.CSV_IMPORT_TIME_LIMIT_SECONDS,
    time_limit=settings.CSV_IMPORT_TIME_LIMIT_SECONDS + 30,
)
def csv_import_run(csv_import_id: int) -> None:
    services.csv_import_run(csv_import_id=csv_import_id)
