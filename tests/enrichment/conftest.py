import pytest

from enrichment.models import EnrichmentRun
from enrichment.services import run_execute, runs_create


@pytest.fixture
def enrich_now():
    """Create a run for each lead and execute it in this process; return the runs."""

    def enrich(*leads, fields=(), trigger=EnrichmentRun.Trigger.MANUAL):
        runs = runs_create(
            lead_ids=[lead.id for lead in leads], trigger=trigger, fields=fields, enqueue=False
        )
        return [run_execute(run_id=run.id) for run in runs]

    return enrich
