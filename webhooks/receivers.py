"""Outbound webhooks listen to the pipeline's signals; the work is in webhooks.events."""

from django.dispatch import receiver

from enrichment.signals import observations_flagged, runs_finished
from webhooks.events import observations_flagged_publish, runs_finished_publish


@receiver(runs_finished, dispatch_uid="webhooks.runs_finished")
def on_runs_finished(sender, *, runs, **kwargs) -> None:
    runs_finished_publish(runs=runs)


@receiver(observations_flagged, dispatch_uid="webhooks.observations_flagged")
def on_observations_flagged(sender, *, observations, **kwargs) -> None:
    observations_flagged_publish(observations=observations)
