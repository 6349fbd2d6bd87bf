"""Enrichment's answer to lead events; the work itself is in services."""

from django.conf import settings
from django.dispatch import receiver

from enrichment.models import EnrichmentRun
from enrichment.signals import runs_finished
from leads.signals import leads_created


@receiver(leads_created, dispatch_uid="enrichment.enrich_on_create")
def enrich_on_create(sender, *, lead_ids: list[int], origin: str, **kwargs) -> None:
    if not settings.ENRICH_ON_CREATE or not lead_ids:
        return
    from enrichment.services import runs_create

    runs_create(lead_ids=lead_ids, trigger="create", description=f"On create ({origin})")


@receiver(runs_finished, dispatch_uid="enrichment.score_on_finish")
def score_on_finish(sender, *, runs, **kwargs) -> None:
    """Keep the leads' scores current; a run that enriched a lead may make it high-value."""
    scored = [
        run
        for run in runs
        if run.state in (EnrichmentRun.State.DONE, EnrichmentRun.State.NOT_FOUND)
    ]
    if not scored:
        return
    from enrichment.priority import leads_score_record

    leads_score_record(
        lead_ids=[run.lead_id for run in scored],
        notify_ids={run.lead_id for run in scored if run.state == EnrichmentRun.State.DONE},
    )
