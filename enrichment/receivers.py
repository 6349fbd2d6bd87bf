"""Enrichment's answer to lead events; the work itself is in services."""

from django.conf import settings
from django.dispatch import receiver

from leads.signals import leads_created


@receiver(leads_created, dispatch_uid="enrichment.enrich_on_create")
def enrich_on_create(sender, *, lead_ids: list[int], origin: str, **kwargs) -> None:
    if not settings.ENRICH_ON_CREATE or not lead_ids:
        return
    from enrichment.services import runs_create

    runs_create(lead_ids=lead_ids, trigger="create", description=f"On create ({origin})")
