"""Leads per second per worker process through Celery and PostgreSQL, against a naive design.

Both designs enrich fresh leads (person + company) from the sandbox provider with no
latency, started as a subprocess on a free port, so what is measured is the machinery
around the calls. Each gets its own Celery worker subprocess (`--concurrency W`), its own
Redis server started here on a free port (never the machine's shared one) and this run's
own PostgreSQL database.

1. Leadsmith: `runs_create` for N leads; runs go out in batches and through the whole
   pipeline (claim, gate, waterfall with bulk lookups, ledger and cache, merge, one write
   transaction, counters).
2. The baseline, bench/naive_enrich.py: one task per lead, a handful of queries, Celery's
   per-process rate_limit, no ledger, cache, claim, merge or review.

Each worker first finishes a warm-up lead; the clock then runs from sending the N leads
to the last one enriched. Prints leads/s per worker process for both and the ratio.

    .venv/bin/python bench/pipeline_overhead.py [--leads 10000] [--workers 1]

PostgreSQL from BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432); needs
redis-server on the PATH.
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "ls_bench_pipeline"
TIMEOUT_SECONDS = 3600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def start_redis() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        try:
            return bool(redis.Redis.from_url(url).ping())
        except redis.ConnectionError:
            return False

    wait_for(answers, timeout=10, what="redis-server")
    return process, url


def fresh_database(server: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    return f"{server}/{DATABASE}"


def start_worker(queue: str, *, workers: int, extra: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "--concurrency",
            str(workers),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
            *extra,
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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


def leadsmith(lead_ids: list[int], warm_up: int, *, workers: int) -> float:
    from django.db.models import Count

    from enrichment.models import EnrichmentRun
    from enrichment.services import runs_create

    terminal = [
        EnrichmentRun.State.DONE,
        EnrichmentRun.State.NOT_FOUND,
        EnrichmentRun.State.SKIPPED,
        EnrichmentRun.State.FAILED,
        EnrichmentRun.State.DEAD,
    ]
    worker = start_worker("enrichment", workers=workers, extra=[])
    try:
        runs_create(lead_ids=[warm_up], trigger="bulk")
        wait_for(
            lambda: EnrichmentRun.objects.filter(lead_id=warm_up, state__in=terminal).exists(),
            timeout=120,
            what="the warm-up run",
        )
        started = time.perf_counter()
        runs_create(lead_ids=lead_ids, trigger="bulk")
        wait_for(
            lambda: (
                EnrichmentRun.objects.filter(lead_id__in=lead_ids, state__in=terminal).count()
                == len(lead_ids)
            ),
            timeout=TIMEOUT_SECONDS,
            what="the Leadsmith runs",
            every=0.5,
        )
        elapsed = time.perf_counter() - started
    finally:
        stop(worker)
    states = dict(
        EnrichmentRun.objects.filter(lead_id__in=lead_ids)
        .values_list("state")
        .annotate(n=Count("id"))
    )
    print(f"  runs by state: {states}")
    return elapsed


def naive(lead_ids: list[int], warm_up: int, *, workers: int) -> float:
    from celery import current_app

    from leads.models import Lead

    def send(ids: list[int]) -> None:
        for lead_id in ids:
            current_app.send_task("bench.naive_enrich", args=[lead_id], queue="naive")

    def enriched(ids: list[int]) -> int:
        return Lead.objects.filter(id__in=ids, enrichment_status="enriched").count()

    worker = start_worker("naive", workers=workers, extra=["-I", "bench.naive_enrich"])
    try:
        send([warm_up])
        wait_for(lambda: enriched([warm_up]) == 1, timeout=120, what="the warm-up task")
        started = time.perf_counter()
        send(lead_ids)
        wait_for(
            lambda: enriched(lead_ids) == len(lead_ids),
            timeout=TIMEOUT_SECONDS,
            what="the naive tasks",
            every=0.5,
        )
        elapsed = time.perf_counter() - started
    finally:
        stop(worker)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per design")
    args = parser.parse_args()

    redis_server, redis_url = start_redis()
    sandbox_port = free_port()
    database_url = fresh_database(
        os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SANDBOX_BASE_URL=f"http://127.0.0.1:{sandbox_port}",
        ENRICH_ON_CREATE="false",
        LOG_LEVEL="WARNING",
    )
    sandbox = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox_provider", "--port", str(sandbox_port), "--quiet"],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        ours = make_leads("ours", args.leads + 1)
        theirs = make_leads("naive", args.leads + 1)

        print(f"leads: {args.leads} per design, worker processes: {args.workers}")
        print("Leadsmith pipeline:")
        ours_seconds = leadsmith(ours[1:], ours[0], workers=args.workers)
        print("naive design:")
        naive_seconds = naive(theirs[1:], theirs[0], workers=args.workers)
    finally:
        stop(sandbox)
        stop(redis_server)

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
