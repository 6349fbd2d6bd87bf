"""Outbound webhooks listen to the pipeline's signals; the work is in webhooks.events."""

from django.dispatch import receiver

from enrichment.signals import observations_flagged, run_finished
from webhooks.events import observations_flagged_publish, run_finished_publish


@receiver(run_finished, dispatch_uid="webhooks.run_finished")
def on_run_finished(sender, *, run, state: str, **kwargs) -> None:
    run_finished_publish(run_id=run.id, state=state)


@receiver(observations_flagged, dispatch_uid="webhooks.observations_flagged")
def on_observations_flagged(sender, *, observations, **kwargs) -> None:
    observations_flagged_publish(observations=observations)
