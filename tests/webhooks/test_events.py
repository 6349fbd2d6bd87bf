"""The pipeline's signals become lead.enriched, observation.flagged and job.completed."""

import json

import pytest
from django.utils import timezone

from enrichment.models import EnrichmentJob, EnrichmentRun, Observation
from enrichment.signals import observations_flagged, runs_finished
from tests.factories import LeadFactory, ObservationFactory
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

ALL_EVENTS = ["lead.enriched", "observation.flagged", "job.completed"]


def _events(event: str) -> list[dict]:
    return [json.loads(d.body) for d in Delivery.objects.filter(event=event).order_by("id")]


def test_a_run_finished_done_publishes_lead_enriched_without_values(subscribe, receiver):
    subscribe(receiver.url, events=ALL_EVENTS)
    lead = LeadFactory(email="ada@acme.com")
    run = EnrichmentRun.objects.create(
        lead=lead, trigger="manual", state="done", summary={"applied": 1, "pending_review": 0}
    )
    ObservationFactory(lead=lead, run=run, field="job_title", value="CTO", state="applied")
    runs_finished.send(sender=EnrichmentRun, runs=[run])
    (event,) = _events("lead.enriched")
    assert event["type"] == "lead.enriched"
    assert event["data"]["lead_id"] == lead.id
    assert event["data"]["run_id"] == run.id
    assert event["data"]["fields_applied"] == ["job_title"]
    assert "CTO" not in json.dumps(event)
    assert "ada@acme.com" not in json.dumps(event)


@pytest.mark.parametrize("state", ["not_found", "skipped", "failed", "dead"])
def test_other_endings_publish_no_lead_enriched(subscribe, receiver, state):
    subscribe(receiver.url, events=ALL_EVENTS)
    run = EnrichmentRun.objects.create(lead=LeadFactory(), trigger="manual", state=state)
    runs_finished.send(sender=EnrichmentRun, runs=[run])
    assert not Delivery.objects.exists()


def test_job_completed_is_published_once_when_the_counters_reach_the_total(subscribe, receiver):
    subscribe(receiver.url, events=ALL_EVENTS)
    job = EnrichmentJob.objects.create(kind="bulk", total=2)
    runs = [
        EnrichmentRun.objects.create(lead=LeadFactory(), job=job, trigger="bulk", state="done")
        for _ in range(2)
    ]
    EnrichmentJob.objects.filter(id=job.id).update(done=1, enriched=1)
    runs_finished.send(sender=EnrichmentRun, runs=[runs[0]])
    assert _events("job.completed") == []
    EnrichmentJob.objects.filter(id=job.id).update(
        done=2, enriched=1, not_found=1, finished_at=timezone.now()
    )
    runs_finished.send(sender=EnrichmentRun, runs=[runs[1]])
    # A late or repeated signal for the same job sends nothing more.
    runs_finished.send(sender=EnrichmentRun, runs=[runs[0]])
    (event,) = _events("job.completed")
    assert event["data"]["job_id"] == job.id
    assert event["data"]["done"] == event["data"]["total"] == 2
    assert event["data"]["not_found"] == 1


def test_observations_flagged_publishes_the_pending_ones(subscribe, receiver):
    subscribe(receiver.url, events=["observation.flagged"])
    pending = ObservationFactory(value="VP of Sales")
    applied = ObservationFactory(state="applied")
    observations_flagged.send(sender=Observation, observations=[pending, applied])
    (event,) = _events("observation.flagged")
    (item,) = event["data"]["observations"]
    assert item["id"] == pending.id
    assert item["field"] == "job_title"
    assert "VP of Sales" not in json.dumps(event)
    observations_flagged.send(sender=Observation, observations=[applied])
    assert len(_events("observation.flagged")) == 1


def test_without_subscriptions_nothing_is_written(receiver):
    run = EnrichmentRun.objects.create(lead=LeadFactory(), trigger="manual", state="done")
    runs_finished.send(sender=EnrichmentRun, runs=[run])
    observations_flagged.send(sender=Observation, observations=[ObservationFactory()])
    assert not Delivery.objects.exists()
