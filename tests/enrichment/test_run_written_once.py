"""A run writes its lead once, even when the attempt that wrote never got to finish.

Found by bench/fault_injection.py (5,000 leads, two SIGKILLs): a worker killed between a
run's write and its finish left the run running; the sweep sent it again, and the second
attempt wrote once more every value the first had proposed but not applied (applied ones
were fresh by then), so a reviewer would see each pending value twice.
"""

from collections import Counter

import pytest
from django.db.models import Count

from enrichment import services
from enrichment.models import EnrichmentRun, Observation
from enrichment.services import run_execute, runs_create
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


class _Killed(BaseException):
    """The worker's death, after the write committed and before the run was finished."""


def _die(**kwargs):
    raise _Killed


def test_an_attempt_lost_after_its_write_is_not_written_again(sandbox, monkeypatch):
    leads = [LeadFactory(company=CompanyFactory(domain=f"twice{i}.com")) for i in range(6)]
    runs = runs_create(lead_ids=[lead.id for lead in leads], trigger="bulk", enqueue=False)
    written: dict[int, Counter] = {}
    with monkeypatch.context() as patch:
        patch.setattr(services, "run_finish", _die)
        for run in runs:
            with pytest.raises(_Killed):
                run_execute(run_id=run.id)
            written[run.id] = Counter(
                Observation.objects.filter(run_id=run.id).values_list("field", "state")
            )
    # What the sweep does with a run whose worker was lost: queue it again.
    assert set(EnrichmentRun.objects.values_list("state", flat=True)) == {"running"}
    EnrichmentRun.objects.update(state="queued")

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
