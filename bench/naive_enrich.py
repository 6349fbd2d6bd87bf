"""The naive design bench/pipeline_overhead.py measures Leadsmith against.

What a team writes first: one Celery task per lead that loads the lead, calls the vendor
for the person and for the company, saves one row per returned field and then the lead,
with Celery's per-process `rate_limit` as the only throttle. No ledger, cache, claim,
merge or review. The worker loads it with `celery -A config worker -I bench.naive_enrich`.
"""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from enrichment.fields import FIELDS
from enrichment.models import Observation
from leads.models import Lead
from providers.base import PersonQuery
from providers.sandbox.adapter import SandboxProvider

QUEUE = "naive"


@shared_task(name="bench.naive_enrich", queue=QUEUE, acks_late=True, rate_limit="60000/m")
def naive_enrich(lead_id: int) -> None:
    lead = Lead.objects.select_related("company").get(id=lead_id)
    company = lead.company
    provider = SandboxProvider(settings.SANDBOX_BASE_URL)
    person = provider.person_enrich(
        PersonQuery(first_name=lead.first_name, last_name=lead.last_name, domain=company.domain),
        idempotency_key=f"naive-person-{lead_id}",
    )
    firm = provider.company_enrich(company.domain, idempotency_key=f"naive-company-{lead_id}")
    now = timezone.now()
    for subject, answer in ((lead, person), (company, firm)):
        for candidate in answer.candidates:
            spec = FIELDS[candidate.field]
            Observation.objects.create(
                lead=lead if subject is lead else None,
                company=company if subject is company else None,
                field=candidate.field,
                value=candidate.value,
                confidence=candidate.confidence,
                verification=candidate.verification,
                source=candidate.source,
                state=Observation.State.APPLIED,
                expires_at=now + timedelta(days=spec.fresh_for_days),
            )
            setattr(subject, spec.column, candidate.value)
    company.save()
    lead.enrichment_status = Lead.EnrichmentStatus.ENRICHED
    lead.last_enriched_at = now
    lead.save()
