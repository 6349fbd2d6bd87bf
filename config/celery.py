"""The Celery app: `celery -A config worker` and `celery -A config beat`."""

import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect(weak=False)
@signals.task_postrun.connect(weak=False)
def _database_connections_tidy(sender=None, **kwargs) -> None:
    """Around each task, close the connections that are too old or broken, keeping the rest
    (CELERY_DB_REUSE_MAX keeps Celery from closing them all). An eager task runs inside
    its caller, whose transaction this must not end."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()
