"""The sweep sends again the runs whose message was lost, once each, however many."""

from datetime import timedelta

import pytest
from django.utils import timezone

from enrichment import services
from enrichment.models import EnrichmentRun
from enrichment.services import runs_create, runs_sweep
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    messages: list[list[int]] = []
    monkeypatch.setattr(services, "_send", lambda run_ids: messages.append(list(run_ids)))
    return messages


def test_a_lost_backlog_is_sent_again_once(sent, settings):
    settings.ENRICHMENT_REQUEUE_AFTER_SECONDS = 600
    runs = runs_create(
        lead_ids=[LeadFactory().id for _ in range(30)], trigger="bulk", enqueue=False
    )
    # Ten of them went out a minute ago; their messages may still be on their way.
    recent = [run.id for run in runs[:10]]
    EnrichmentRun.objects.filter(id__in=recent).update(
        enqueued_at=timezone.now() - timedelta(seconds=60)
    )

    result = runs_sweep()

    lost = {run.id for run in runs[10:]}
    assert result.sent == 20 and set(sent[-1]) == lost
    assert not EnrichmentRun.objects.filter(id__in=lost, enqueued_at__isnull=True).exists()
    # A second sweep right after finds nothing left to send.
    assert runs_sweep().sent == 0 and sent[-1] == []
