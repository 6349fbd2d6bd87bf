"""Enrichment's answer to lead events; the work itself is in services."""

from django.conf import settings
from django.dispatch import receiver

from enrichment.models import EnrichmentRun
from enrichment.signals import run_finished
from leads.signals import leads_created


@receiver(leads_created, dispatch_uid="enrichment.enrich_on_create")
def enrich_on_create(sender, *, lead_ids: list[int], origin: str, **kwargs) -> None:
    if not settings.ENRICH_ON_CREATE or not lead_ids:
        return
    from enrichment.services import runs_create

    runs_create(lead_ids=lead_ids, trigger="create", description=f"On create ({origin})")


@receiver(run_finished, dispatch_uid="enrichment.score_on_finish")
def score_on_finish(sender, *, run, state: str, **kwargs) -> None:
    """Keep the lead's score current; a run that enriched it may make it high-value."""
    if state not in (EnrichmentRun.State.DONE, EnrichmentRun.State.NOT_FOUND):
        return
    from enrichment.priority import lead_score_record

    lead_score_record(lead_id=run.lead_id, notify=state == EnrichmentRun.State.DONE)
