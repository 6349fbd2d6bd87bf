"""The periodic tasks celery-beat runs (DatabaseScheduler), as rows an admin can edit under
Periodic tasks. Rows that already exist by name are left as an admin set them."""

from django.db import migrations
from django.utils import timezone

EVERY = {
    # name: (task, every, period)
    "enrichment.runs_sweep": ("enrichment.runs_sweep", 30, "seconds"),
    "enrichment.refresh_stale": ("enrichment.refresh_stale", 10, "minutes"),
    "webhooks.retry_due": ("webhooks.retry_due", 1, "minutes"),
    "providers.budget_alerts": ("providers.budget_alerts", 1, "hours"),
}
DAILY = {
    # name: (task, minute, hour), UTC
    "providers.cache_purge": ("providers.cache_purge", "15", "3"),
    "privacy.retention_purge": ("privacy.retention_purge", "45", "3"),
    "enrichment.pdl_opt_outs_sync": ("enrichment.pdl_opt_outs_sync", "15", "4"),
}
DESCRIPTIONS = {
    "enrichment.runs_sweep": "Send runs nobody took, take back runs whose worker died.",
    "enrichment.refresh_stale": "Queue a refresh for leads with expired, unlocked fields "
    "(at most ENRICHMENT_REFRESH_MAX_QUEUED waiting at once).",
    "webhooks.retry_due": "Retry outbound webhook deliveries that are due.",
    "providers.budget_alerts": "Log and mail the admins when a provider budget passes 80%.",
    "providers.cache_purge": "Drop the payloads of ledger rows the cache can no longer serve.",
    "privacy.retention_purge": "Drop raw vendor payloads older than "
    "PROVIDER_PAYLOAD_RETENTION_DAYS.",
    "enrichment.pdl_opt_outs_sync": "Suppress the people PDL lists as opted out "
    "(its Subject Request API; needs PDL_API_KEY).",
}


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    for name, (task, every, period) in EVERY.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={"task": task, "interval": interval, "description": DESCRIPTIONS[name]},
        )
    for name, (task, minute, hour) in DAILY.items():
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={"task": task, "crontab": crontab, "description": DESCRIPTIONS[name]},
        )
    # A running beat reloads its schedule when this changes (the model's signals do not
    # fire for the historical models a migration uses).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTask.objects.filter(name__in=[*EVERY, *DAILY]).delete()
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):
    dependencies = [
        ("enrichment", "0004_icp_rule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
