"""Leads per second per worker process through Celery and PostgreSQL, against a naive design.

Both designs enrich fresh leads (person + company) from the sandbox provider with no
latency, started as a subprocess on a free port, so what is measured is the machinery
around the calls. Each gets its own Celery worker subprocess (`--concurrency W`); they
take turns on one Redis server started here on a free port (never the machine's shared
one) and on this run's own PostgreSQL database, dropped at the end.

1. Leadsmith: `runs_create` for N leads; runs go out in batches and through the whole
   pipeline (claim, gate, waterfall with bulk lookups, ledger and cache, merge, one write
   transaction, counters).
2. The baseline, bench/naive_enrich.py: one task per lead, a handful of queries, Celery's
   per-process rate_limit, no ledger, cache, claim, merge or review.

Each worker first finishes a warm-up lead. The designs then take turns: each enriches a
slice of its N leads (--slices, default 5) while the other's worker waits idle, the clock
running from sending the slice to its last lead enriched, so both see the same phases of
the machine. Prints each slice, leads/s per worker process for both and the ratio. Both
run as deployed (DEBUG off, every provider but the sandbox off: bench/_stack.configure),
and progress is read by id range, so the script's own polling costs the machine little.

    .venv/bin/python bench/pipeline_overhead.py [--leads 10000] [--workers 1] [--slices 5]

PostgreSQL from BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432); needs
redis-server on the PATH.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _stack import RedisServer, Workers, configure, database_create, database_drop, free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "ls_bench_pipeline"
TIMEOUT_SECONDS = 3600


def wait_for(predicate, *, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def make_leads(prefix: str, count: int) -> list[int]:
    from leads.services import lead_input_from_mapping, leads_upsert

    result = leads_upsert(
        inputs=[
            lead_input_from_mapping(
                {
                    "first_name": f"{prefix}{i}",
                    "last_name": "Bench",
                    "company_domain": f"{prefix}{i}.com",
                }
            )
            for i in range(count)
        ],
        source="bench",
        origin="bench",
    )
    return list(result.created)


def _id_range(lead_ids: list[int]) -> tuple[int, int]:
    """The leads' ids as a range to count progress in: one cheap indexed query a poll, not
    an IN list of N ids that would load the machine being measured."""
    from leads.models import Lead

    low, high = min(lead_ids), max(lead_ids)
    if Lead.objects.filter(id__range=(low, high)).count() != len(lead_ids):
        raise SystemExit("the bench's leads do not have consecutive ids")
    return low, high


@dataclass
class Design:
    """One design's worker, how to hand it leads, and how many of them it has finished."""

    name: str
    worker: Workers
    send: Callable[[list[int]], None]
    finished: Callable[[tuple[int, int]], int]
    seconds: float = 0.0

    def enrich(self, lead_ids: list[int], what: str) -> float:
        """Hand the leads over and wait for the last; return the seconds it took."""
        ids = _id_range(lead_ids)
        started = time.perf_counter()
        self.send(lead_ids)
        wait_for(
            lambda: self.finished(ids) == len(lead_ids),
            timeout=TIMEOUT_SECONDS,
            what=f"{self.name}: {what}",
            every=0.1,
        )
        return time.perf_counter() - started


def leadsmith(*, logdir: Path, workers: int) -> Design:
    from enrichment.models import EnrichmentRun
    from enrichment.services import runs_create

    def finished(ids: tuple[int, int]) -> int:
        return EnrichmentRun.objects.filter(
            lead__id__range=ids, state__in=EnrichmentRun.TERMINAL_STATES
        ).count()

    return Design(
        "Leadsmith",
        Workers(logdir, name="ours", queues="enrichment", concurrency=workers),
        send=lambda ids: runs_create(lead_ids=ids, trigger="bulk"),
        finished=finished,
    )


def naive(*, logdir: Path, workers: int) -> Design:
    from celery import current_app

    from leads.models import Lead

    def send(ids: list[int]) -> None:
        for lead_id in ids:
            current_app.send_task("bench.naive_enrich", args=[lead_id], queue="naive")

    return Design(
        "naive",
        Workers(
            logdir,
            name="naive",
            queues="naive",
            concurrency=workers,
            extra=("-I", "bench.naive_enrich"),
        ),
        send=send,
        finished=lambda ids: Lead.objects.filter(
            id__range=ids, enrichment_status="enriched"
        ).count(),
    )


def runs_by_state(lead_ids: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from enrichment.models import EnrichmentRun

    return dict(
        EnrichmentRun.objects.filter(lead__id__range=_id_range(lead_ids))
        .values_list("state")
        .annotate(n=Count("id"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per design")
    parser.add_argument("--slices", type=int, default=5, help="turns each design takes")
    args = parser.parse_args()

    server_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    logdir = Path(tempfile.mkdtemp(prefix="leadsmith-pipeline-"))
    redis = RedisServer(free_port(), logdir)
    sandbox_port = free_port()
    database_url = database_create(server_url, DATABASE)
    sandbox = None
    try:
        redis.start()
        configure(database_url, redis.url, SANDBOX_BASE_URL=f"http://127.0.0.1:{sandbox_port}")
        sandbox = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "sandbox_provider",
                "--port",
                str(sandbox_port),
                "--quiet",
            ],
            cwd=ROOT,
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        ours = sorted(make_leads("ours", args.leads + 1))
        theirs = sorted(make_leads("naive", args.leads + 1))

        print(
            f"leads: {args.leads} per design in {args.slices} slices, worker processes: "
            f"{args.workers}, logs {logdir}"
        )
        designs = [
            (leadsmith(logdir=logdir, workers=args.workers), ours),
            (naive(logdir=logdir, workers=args.workers), theirs),
        ]
        try:
            for design, leads in designs:
                design.worker.start()
                design.enrich(leads[:1], "the warm-up lead")
            # The designs take turns slice by slice, so a change in the machine's speed
            # (it drifts by half over minutes here) lands on both alike.
            size = -(-args.leads // args.slices)
            for start in range(1, args.leads + 1, size):
                for design, leads in designs:
                    part = leads[start : start + size]
                    took = design.enrich(part, f"leads {start}-")
                    design.seconds += took
                    print(f"  {design.name:9} {len(part)} leads in {took:5.1f} s")
        finally:
            for design, _ in designs:
                design.worker.stop(graceful=True)
        print(f"Leadsmith runs by state: {runs_by_state(ours[1:])}")
        ours_seconds, naive_seconds = (design.seconds for design, _ in designs)
    finally:
        if sandbox is not None:
            sandbox.terminate()
            sandbox.wait()
        redis.kill()
        database_drop(server_url, DATABASE)

    ours_rate = args.leads / ours_seconds / args.workers
    naive_rate = args.leads / naive_seconds / args.workers
    print(f"Leadsmith: {ours_rate:8.1f} leads/s per worker process ({ours_seconds:.1f} s)")
    print(f"naive:     {naive_rate:8.1f} leads/s per worker process ({naive_seconds:.1f} s)")
    print(f"ratio Leadsmith/naive: {ours_rate / naive_rate:.2f}x  (targets: 500 leads/s, 5x)")

    from _report import report

    report(
        "pipeline_overhead",
        {
            "throughput per worker process": (round(ours_rate, 1), "leads/s"),
            "leads": (args.leads, "leads"),
            "worker processes": (args.workers, "processes"),
        },
        baseline={"throughput per worker process": (round(naive_rate, 1), "leads/s")},
        baseline_label="naive one-task-per-lead design (bench/naive_enrich.py)",
        ratio=round(ours_rate / naive_rate, 2),
        ratio_label="times the naive design's rate",
        targets={"throughput per worker process": ">= 500", "ratio": ">= 5"},
    )


if __name__ == "__main__":
    main()
