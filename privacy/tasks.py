"""Celery tasks for privacy upkeep; thin wrappers around privacy.services."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from privacy import services


@shared_task(name="privacy.retention_purge", queue="maintenance", ignore_result=True)
def retention_purge() -> None:
    older_than = timezone.now() - timedelta(days=settings.PROVIDER_PAYLOAD_RETENTION_DAYS)
    services.provider_payloads_purge(older_than=older_than, actor="retention schedule")
