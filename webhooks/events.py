"""The events Leadsmith publishes, and what each carries.

Payloads are thin (Standard Webhooks' advice, and privacy's): ids, states, counts and the
names of the fields concerned, never the values; a receiver reads what it needs from the
API with its key, where access is checked and logged.
"""

from collections.abc import Sequence

from enrichment.models import EnrichmentJob, EnrichmentRun, Observation
from webhooks.models import Event
from webhooks.services import subscriptions_for, webhook_event_publish


def runs_finished_publish(*, runs: Sequence[EnrichmentRun]) -> None:
    """lead.enriched for each run that ended done; job.completed for each job a run was
    the last of."""
    done = [run for run in runs if run.state == EnrichmentRun.State.DONE]
    if done and subscriptions_for(Event.LEAD_ENRICHED):
        for run in done:
            applied = sorted(
                set(
                    Observation.objects.filter(
                        run_id=run.id, state=Observation.State.APPLIED
                    ).values_list("field", flat=True)
                )
            )
            webhook_event_publish(
                event=Event.LEAD_ENRICHED,
                payload={
                    "lead_id": run.lead_id,
                    "run_id": run.id,
                    "job_id": run.job_id,
                    "state": run.state,
                    "fields_applied": applied,
                    "summary": run.summary,
                    "lead_url": f"/api/leads/{run.lead_id}/",
                },
            )
    for job_id in sorted({run.job_id for run in runs if run.job_id}):
        job_completed_publish(job_id=job_id)


def job_completed_publish(*, job_id: int) -> None:
    """job.completed once the job's counters reached its total; at most once per job."""
    job = EnrichmentJob.objects.filter(id=job_id, finished_at__isnull=False).first()
    if job is None or job.done < job.total:
        return
    webhook_event_publish(
        event=Event.JOB_COMPLETED,
        # Stable: every run that sees the job complete publishes the same message, once.
        message_id=f"msg_job{job.id}_completed",
        payload={
            "job_id": job.id,
            "kind": job.kind,
            "total": job.total,
            "done": job.done,
            "enriched": job.enriched,
            "not_found": job.not_found,
            "failed": job.failed,
            "skipped": job.skipped,
            "finished_at": job.finished_at,
            "job_url": f"/api/jobs/{job.id}/",
        },
    )


def observations_flagged_publish(*, observations: Sequence[Observation]) -> None:
    """observation.flagged for values that went to the review queue."""
    pending = [
        o for o in observations if o.state == Observation.State.PENDING_REVIEW and o.pk is not None
    ]
    if not pending:
        return
    webhook_event_publish(
        event=Event.OBSERVATION_FLAGGED,
        payload={
            "observations": [
                {
                    "id": o.pk,
                    "lead_id": o.lead_id,
                    "company_id": o.company_id,
                    "field": o.field,
                    "source": o.source,
                    "confidence": o.confidence,
                    "reason": o.reason,
                }
                for o in pending
            ],
            "review_url": "/api/observations/?state=pending_review",
        },
    )
