"""A run writes its lead once, even when the attempt that wrote never got to finish.

Found by bench/fault_injection.py (5,000 leads, two SIGKILLs): a worker killed between a
run's write and its finish left the run running; the sweep sent it again, and the second
attempt wrote once more every value the first had proposed but not applied (applied ones
were fresh by then), so a reviewer would see each pending value twice. The write and the
finish now commit together, so the attempt that wrote and did not finish is one the sweep
took back while it was writing: its finish finds the run no longer its own.
"""

from collections import Counter

import pytest
from django.db.models import Count

from enrichment import services
from enrichment.models import EnrichmentRun, Observation
from enrichment.services import run_execute, runs_create
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


def _taken_back_by_the_sweep(real_finish):
    def finish(endings):
        # What the sweep does with a run it believes lost: queue it again.
        EnrichmentRun.objects.filter(id__in=[e.run.id for e in endings]).update(state="queued")
        real_finish(endings)

    return finish


def test_an_attempt_lost_after_its_write_is_not_written_again(sandbox, monkeypatch):
    leads = [LeadFactory(company=CompanyFactory(domain=f"twice{i}.com")) for i in range(6)]
    runs = runs_create(lead_ids=[lead.id for lead in leads], trigger="bulk", enqueue=False)
    written: dict[int, Counter] = {}
    with monkeypatch.context() as patch:
        patch.setattr(services, "_runs_finish", _taken_back_by_the_sweep(services._runs_finish))
        for run in runs:
            run_execute(run_id=run.id)
            written[run.id] = Counter(
                Observation.objects.filter(run_id=run.id).values_list("field", "state")
            )
    assert set(EnrichmentRun.objects.values_list("state", flat=True)) == {"queued"}

    for run in runs:
        again = run_execute(run_id=run.id)

        assert again.state in ("done", "not_found")
        assert again.attempts == 2
        assert (
            Counter(Observation.objects.filter(run_id=run.id).values_list("field", "state"))
            == written[run.id]
        )
        learned = written[run.id]
        applied = sum(n for (_, state), n in learned.items() if state == "applied")
        assert again.summary["applied"] <= applied

    twice = (
        Observation.objects.values("lead_id", "company_id", "field", "source", "value")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not twice.exists()
    # Not vacuous: some runs proposed values they did not apply, which a retry would redo.
    assert Observation.objects.filter(state__in=["pending_review", "discarded"]).exists()
