"""Real Celery workers against PostgreSQL and Redis, enriching through the sandbox over HTTP.

These are the reliability promises of DESIGN.md checked with the real parts: messages after
commit, a run claimed once, a SIGKILLed worker's runs found again by the sweep.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count, Sum

from enrichment.models import EnrichmentRun, Observation
from enrichment.services import runs_create, runs_sweep
from leads.services import lead_input_from_mapping, leads_upsert
from providers.models import ProviderCall
from providers.sandbox.server import start_in_thread

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
HARD_TIME_LIMIT = 6


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def start_worker(postgres, redis_url, tmp_path):
    """Start `celery -A config worker` processes on the test database; kill them after."""
    started: list[subprocess.Popen] = []

    def start(name: str, sandbox_url: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url(),
            # config.settings.test maps this to the tests' own Redis database, as here.
            "REDIS_URL": os.environ["REDIS_URL"],
            "SANDBOX_BASE_URL": sandbox_url,
            "CELERY_TASK_TIME_LIMIT": str(HARD_TIME_LIMIT),
            "CELERY_TASK_SOFT_TIME_LIMIT": str(HARD_TIME_LIMIT - 2),
        }
        log = (tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so a kill takes the pool children with it.
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def sandbox_for_workers():
    server = start_in_thread(latency_ms=15)
    yield server
    server.stop()


def _create_leads(count: int, settings) -> list[int]:
    settings.ENRICH_ON_CREATE = True
    inputs = [
        lead_input_from_mapping(
            {
                "first_name": f"Person{i}",
                "last_name": f"Tester{i % 37}",
                "company_domain": f"company{i % 50}.com",
            }
        )
        for i in range(count)
    ]
    result = leads_upsert(inputs=inputs, source="test", origin="test")
    assert len(result.created) == count
    return result.created


def _terminal(run_ids) -> int:
    return EnrichmentRun.objects.filter(
        id__in=run_ids, state__in=EnrichmentRun.TERMINAL_STATES
    ).count()


def _wait_for(condition, *, timeout: float, sweep: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sweep:
            runs_sweep()
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"condition not met within {timeout}s")


def test_a_worker_enriches_new_leads_end_to_end(settings, start_worker, sandbox_for_workers):
    lead_ids = _create_leads(30, settings)
    run_ids = list(EnrichmentRun.objects.filter(lead_id__in=lead_ids).values_list("id", flat=True))
    assert len(run_ids) == 30

    start_worker("e2e", sandbox_for_workers.url)
    _wait_for(lambda: _terminal(run_ids) == 30, timeout=90)

    states = Counter(EnrichmentRun.objects.filter(id__in=run_ids).values_list("state", flat=True))
    assert set(states) <= {"done", "not_found"}
    assert states["done"] > 0
    assert Observation.objects.filter(lead_id__in=lead_ids, state="applied").exists()
    assert ProviderCall.objects.filter(provider="sandbox", outcome="hit").exists()


def test_a_worker_keeps_its_database_connection_from_one_run_to_the_next(
    settings, start_worker, sandbox_for_workers
):
    # Celery's Django fixup would close it around every task: each run would pay a new
    # PostgreSQL connection (config.settings.base, CELERY_DB_REUSE_MAX).
    lead_ids = _create_leads(5, settings)
    EnrichmentRun.objects.filter(lead_id__in=lead_ids).delete()
    start_worker("steady", sandbox_for_workers.url)
    finished = []
    for lead_id in lead_ids:
        [run] = runs_create(lead_ids=[lead_id], trigger=EnrichmentRun.Trigger.MANUAL)
        _wait_for(lambda run=run: _terminal([run.id]) == 1, timeout=60)
        finished.append(EnrichmentRun.objects.get(id=run.id).finished_at)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT backend_start FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            [connection.settings_dict["NAME"], connection.connection.info.backend_pid],
        )
        worker_connections = [row[0] for row in cursor.fetchall()]
    # The two pool processes hold at most one connection each, and one of them was open
    # before the first run ended: the same connection served the runs after it.
    assert 1 <= len(worker_connections) <= 2, worker_connections
    assert min(worker_connections) < finished[0]


def test_a_sigkilled_worker_loses_no_run_and_runs_none_twice(
    settings, start_worker, sandbox_for_workers
):
    settings.CELERY_TASK_TIME_LIMIT = HARD_TIME_LIMIT
    settings.ENRICHMENT_RUN_STALE_GRACE_SECONDS = 1
    settings.ENRICHMENT_REQUEUE_AFTER_SECONDS = 5
    lead_ids = _create_leads(500, settings)
    run_ids = list(EnrichmentRun.objects.filter(lead_id__in=lead_ids).values_list("id", flat=True))

    first = start_worker("doomed", sandbox_for_workers.url)
    _wait_for(lambda: _terminal(run_ids) >= 100, timeout=120)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    left_behind = 500 - _terminal(run_ids)
    assert left_behind > 0, "the worker finished before it could be killed mid-batch"

    in_flight = EnrichmentRun.objects.filter(id__in=run_ids, state="running").count()
    restarted = time.monotonic()
    start_worker("survivor", sandbox_for_workers.url)
    _wait_for(lambda: _terminal(run_ids) == 500, timeout=240, sweep=True)
    print(
        f"\nSIGKILL mid-batch: {left_behind} of 500 runs unfinished, {in_flight} of them "
        f"running; all 500 terminal {time.monotonic() - restarted:.1f}s after the restart"
    )

    states = Counter(EnrichmentRun.objects.filter(id__in=run_ids).values_list("state", flat=True))
    assert set(states) <= {"done", "not_found"}, states
    # Executed once: every lead's observations come from one run, one per field and source.
    per_lead = (
        Observation.objects.filter(lead_id__in=lead_ids)
        .values("lead_id")
        .annotate(runs=Count("run_id", distinct=True))
    )
    assert all(row["runs"] == 1 for row in per_lead)
    repeated = (
        Observation.objects.filter(lead_id__in=lead_ids)
        .values("lead_id", "field", "source")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not repeated.exists()
    # Paid once: a retried run reuses what its first attempt bought, by idempotency key.
    paid = (
        ProviderCall.objects.filter(operation="person_enrich")
        .values("lookup_key_hash")
        .annotate(credits=Sum("credits"))
    )
    assert paid.count() == 500
    assert all(row["credits"] <= 1 for row in paid)


def test_a_batch_with_duplicates_pays_once_per_lookup_through_a_kill_and_a_rerun(
    settings, start_worker, sandbox_for_workers
):
    settings.CELERY_TASK_TIME_LIMIT = HARD_TIME_LIMIT
    settings.ENRICHMENT_RUN_STALE_GRACE_SECONDS = 1
    settings.ENRICHMENT_REQUEUE_AFTER_SECONDS = 5
    settings.ENRICH_ON_CREATE = True
    rows = [
        {
            "first_name": f"Dup{i}",
            "last_name": f"Row{i % 41}",
            "company_domain": f"firm{i % 70}.com",
        }
        for i in range(700)
    ]
    # 1,000 rows, 30% of them repeats of rows already in the batch.
    rows += [dict(rows[(i * 7) % 700]) for i in range(300)]
    result = leads_upsert(
        inputs=[lead_input_from_mapping(row) for row in rows], source="test", origin="test"
    )
    assert (len(result.created), result.duplicate) == (700, 300)
    run_ids = list(
        EnrichmentRun.objects.filter(lead_id__in=result.created).values_list("id", flat=True)
    )

    first = start_worker("doomed", sandbox_for_workers.url)
    _wait_for(lambda: _terminal(run_ids) >= 150, timeout=120)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert _terminal(run_ids) < 700
    start_worker("survivor", sandbox_for_workers.url)
    _wait_for(lambda: _terminal(run_ids) == 700, timeout=300, sweep=True)

    # The vendor's side of the bill: each distinct question billed once, except one whose
    # answer the killed worker received and never recorded (its ledger row abandoned): a
    # bulk request's retry carries other lookups, so the vendor cannot tell it is a repeat.
    billed = sandbox_for_workers.billed
    lost = ProviderCall.objects.filter(error__startswith="abandoned").count()
    assert billed and max(billed.values()) <= 2
    assert sum(1 for n in billed.values() if n > 1) <= lost
    paid = ProviderCall.objects.filter(outcome__in=["hit", "miss"])
    per_lookup = paid.values("provider", "operation", "lookup_key_hash").annotate(n=Count("id"))
    assert all(row["n"] == 1 for row in per_lookup)
    assert per_lookup.filter(operation="person_enrich").count() == 700
    assert per_lookup.filter(operation="company_enrich").count() == 70
    paid_before, billed_before = paid.count(), sum(billed.values())

    rerun = runs_create(lead_ids=result.created, trigger="bulk")
    rerun_ids = [run.id for run in rerun]
    _wait_for(lambda: _terminal(rerun_ids) == len(rerun_ids), timeout=300, sweep=True)
    assert paid.count() == paid_before
    assert sum(billed.values()) == billed_before
    print(
        f"\n1,000 rows / 700 leads: {paid_before} paid lookups, {sum(billed.values())} billed "
        f"answers; rerun of {len(rerun_ids)} runs paid 0"
    )
