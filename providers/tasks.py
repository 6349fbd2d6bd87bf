"""Celery tasks for the providers' upkeep; thin wrappers around providers.services."""

from celery import shared_task

from providers import services


@shared_task(name="providers.budget_alerts", queue="maintenance", ignore_result=True, expires=3600)
def budget_alerts() -> None:
    services.budget_alerts_notify()
