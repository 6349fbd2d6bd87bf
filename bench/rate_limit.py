"""Does the shared rate limiter keep N worker processes under a vendor's limit, at full speed?

The vendor is the sandbox, started in this process with a limit of R requests per minute
(a fixed 60-s window that opens at the first request it counts; past R it answers 429 with
Retry-After). A fresh sandbox for each scenario, so their windows don't mix. Two scenarios,
each with the same N worker processes (multiprocessing, "spawn": separate interpreters, as
Celery's prefork pool children are) calling `SandboxProvider.person_enrich` in a loop for D
seconds, every person a new one, every call a new idempotency key:

1. Leadsmith: before each call, `providers.rate_limit.wait_for_slot("sandbox", per_minute=r)`
   with r = int(R * PROVIDER_RATE_LIMIT_MARGIN), exactly what `call_with_ledger` asks for,
   on the Redis limiter (one GCRA schedule shared by every process). A 429 pauses the
   provider for every process, as the ledger does.
2. Celery's own `rate_limit="R/m"`, the baseline: each process throttles itself with its
   own `kombu.utils.limits.TokenBucket(fill_rate=R / 60, capacity=1)`, the bucket Celery's
   consumer builds for a rate-limited task (`Consumer.bucket_for_task`). No real Celery
   worker runs: the bucket is the whole mechanism. Celery keeps one bucket per worker
   instance (its consumer feeds its own pool), so N processes with a bucket each are N
   worker instances (`celery worker --concurrency 1` on N machines, say), the way a
   deployment scales out. A 429 changes nothing here: Celery's rate_limit does not know
   of it (a retried task would go through the same bucket again).

For each scenario it prints the requests attempted, served (200/404) and refused (429) in
the window [first request, first request + D), the achieved rate per minute and
achieved/R. D should be a multiple of 60 so the sandbox's windows fall evenly in it.
It exits 1 if Leadsmith's scenario got any 429 or served less than 95% of R; the baseline
is expected to get 429s, that is the point of the comparison.

Needs Redis: REDIS_URL (default redis://127.0.0.1:6379/0) with its database index replaced
by --redis-db (default 13), which is flushed before each scenario and after the last.
No database server: Django runs on a throwaway SQLite file the limiter never touches.

    .venv/bin/python bench/rate_limit.py [--rate 120] [--seconds 60] [--processes 4]
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Mode = Literal["leadsmith", "celery"]
SERVED, REFUSED, OTHER = "served", "429", "other"
# Workers keep calling this long past the window, so the window's last slot is always taken.
TAIL_SECONDS = 1.0
# How long the spawned processes may take to start and set Django up.
STARTUP_TIMEOUT_SECONDS = 60.0
PASS_SHARE = 0.95


@dataclass
class WorkerResult:
    index: int
    # (wall-clock time the request was sent, SERVED | REFUSED | OTHER)
    calls: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    title: str
    attempted: int
    served: int
    refused: int
    other: int
    refused_after_window: int
    per_process: list[int]
    errors: list[str]
    rate: float
    seconds: float

    @property
    def per_minute(self) -> float:
        return self.served * 60 / self.seconds

    @property
    def share(self) -> float:
        return self.per_minute / self.rate

    @property
    def total_refused(self) -> int:
        return self.refused + self.refused_after_window


def _worker(
    index: int,
    mode: Mode,
    sandbox_url: str,
    rate: int,
    per_minute: int,
    seconds: float,
    run_id: str,
    ready: "Queue[int]",
    go: Event,
    go_at: Synchronized,
    results: "Queue[WorkerResult]",
) -> None:
    """One worker process: set Django up, wait for the start, call the sandbox until done."""
    import django

    django.setup()
    from kombu.utils.limits import TokenBucket

    from providers.base import Deferred, PersonQuery, ProviderError, RateLimited
    from providers.rate_limit import rate_limiter, wait_for_slot
    from providers.sandbox.adapter import SandboxProvider

    provider = SandboxProvider(sandbox_url)
    bucket = TokenBucket(rate / 60, capacity=1)
    result = WorkerResult(index=index)
    ready.put(index)
    go.wait()
    deadline = go_at.value + seconds + TAIL_SECONDS
    n = 0
    while time.time() < deadline:
        if mode == "leadsmith":
            try:
                wait_for_slot("sandbox", per_minute=per_minute)
            except Deferred as exc:
                time.sleep(max(0.0, min(exc.retry_after, deadline - time.time())))
                continue
        else:
            while not bucket.can_consume(1):
                time.sleep(bucket.expected_time(1))
        sent_at = time.time()
        if sent_at >= deadline:
            break
        number = n * 1000 + index
        n += 1
        query = PersonQuery(email=f"p{number}@bench{number}.com")
        try:
            provider.person_enrich(query, idempotency_key=f"bench-{run_id}-{mode}-{number}")
            outcome = SERVED
        except RateLimited as exc:
            outcome = REFUSED
            if mode == "leadsmith":
                # What call_with_ledger does: every worker stops asking until Retry-After.
                rate_limiter().pause("sandbox", seconds=exc.retry_after)
        except ProviderError as exc:
            outcome = OTHER
            result.errors.append(f"{type(exc).__name__}: {exc}")
        result.calls.append((sent_at, outcome))
    results.put(result)


def _flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def _run(
    *,
    title: str,
    mode: Mode,
    rate: int,
    per_minute: int,
    seconds: float,
    processes: int,
    redis_url: str,
) -> ScenarioResult:
    from providers.sandbox.server import start_in_thread

    _flush(redis_url)
    sandbox = start_in_thread(rate_limit_per_min=rate)
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[int] = ctx.Queue()
    results: Queue[WorkerResult] = ctx.Queue()
    go = ctx.Event()
    go_at = ctx.Value("d", 0.0)
    run_id = uuid.uuid4().hex[:12]
    workers = [
        ctx.Process(
            target=_worker,
            args=(
                i,
                mode,
                sandbox.url,
                rate,
                per_minute,
                seconds,
                run_id,
                ready,
                go,
                go_at,
                results,
            ),
            name=f"bench-{mode}-{i}",
        )
        for i in range(processes)
    ]
    try:
        for worker in workers:
            worker.start()
        for _ in workers:
            ready.get(timeout=STARTUP_TIMEOUT_SECONDS)
        go_at.value = time.time()
        go.set()
        timeout = seconds + TAIL_SECONDS + 30
        gathered = sorted((results.get(timeout=timeout) for _ in workers), key=lambda r: r.index)
        for worker in workers:
            worker.join()
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()
        sandbox.stop()

    calls = [call for r in gathered for call in r.calls]
    first = min((sent_at for sent_at, _ in calls), default=go_at.value)
    end = first + seconds
    inside = [outcome for sent_at, outcome in calls if sent_at < end]
    return ScenarioResult(
        title=title,
        attempted=len(inside),
        served=inside.count(SERVED),
        refused=inside.count(REFUSED),
        other=inside.count(OTHER),
        refused_after_window=sum(
            1 for sent_at, outcome in calls if sent_at >= end and outcome == REFUSED
        ),
        per_process=[sum(1 for sent_at, _ in r.calls if sent_at < end) for r in gathered],
        errors=[error for r in gathered for error in r.errors],
        rate=rate,
        seconds=seconds,
    )


def _print(result: ScenarioResult) -> None:
    print(result.title)
    print(
        f"  attempted {result.attempted}, served {result.served}, 429s {result.refused}"
        + (f", other errors {result.other}" if result.other else "")
        + f"  (per process attempted: {'/'.join(map(str, result.per_process))})"
    )
    print(
        f"  achieved {result.per_minute:.1f}/min over {result.seconds:g} s, "
        f"achieved/R {result.share:.3f}"
    )
    if result.refused_after_window:
        print(f"  after the window (not counted above): 429s {result.refused_after_window}")
    for error in sorted(set(result.errors))[:5]:
        print(f"  error: {error}")


def _redis_url(db: int) -> str:
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit(parts._replace(path=f"/{db}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=120, help="the vendor's limit R, per minute")
    parser.add_argument("--seconds", type=float, default=60, help="measured window D")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--redis-db", type=int, default=13, help="flushed; keep it the bench's")
    args = parser.parse_args()
    if args.rate < 1 or args.seconds <= 0 or args.processes < 1:
        parser.error("--rate, --seconds and --processes must be positive")

    redis_url = _redis_url(args.redis_db)
    workdir = tempfile.mkdtemp(prefix="leadsmith-bench-")
    # The spawned workers inherit these.
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SQLITE_PATH=str(Path(workdir) / "bench.sqlite3"),
        REDIS_URL=redis_url,
        SANDBOX_API_KEY="",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    import redis
    from django.conf import settings

    try:
        redis.Redis.from_url(redis_url).ping()
    except redis.RedisError as exc:
        sys.exit(f"Redis at {redis_url} is not reachable: {exc}")

    # The same limit call_with_ledger asks the limiter for (ledger._our_limit).
    per_minute = max(1, int(args.rate * settings.PROVIDER_RATE_LIMIT_MARGIN))
    print(
        f"vendor limit R = {args.rate}/min (sandbox, fixed 60-s windows), "
        f"{args.processes} processes, window {args.seconds:g} s, Redis {redis_url}"
    )
    if args.seconds % 60:
        print("  note: the window is not a multiple of 60 s, so the sandbox's windows split it")

    def run(title: str, mode: Mode) -> ScenarioResult:
        result = _run(
            title=title,
            mode=mode,
            rate=args.rate,
            per_minute=per_minute,
            seconds=args.seconds,
            processes=args.processes,
            redis_url=redis_url,
        )
        _print(result)
        return result

    try:
        ours = run(
            f"Leadsmith shared limiter (Redis GCRA at {per_minute}/min = R x "
            f"{settings.PROVIDER_RATE_LIMIT_MARGIN:g}, shared by all processes)",
            "leadsmith",
        )
        celery = run(
            f"Celery rate_limit='{args.rate}/m' (kombu TokenBucket, one per process)", "celery"
        )
    finally:
        _flush(redis_url)

    print(
        f"comparison: Leadsmith {ours.share:.3f} of R with {ours.total_refused} 429s; "
        f"Celery rate_limit {celery.share:.3f} of R with {celery.total_refused} 429s "
        f"({celery.attempted} attempted for {celery.served} served)"
    )
    from _report import report

    report(
        "rate_limit",
        {
            "achieved/R": (round(ours.share, 3), ""),
            "429s received": (ours.total_refused, "429s"),
            "served": (ours.served, "requests"),
            "vendor limit R": (args.rate, "per minute"),
            "worker processes": (args.processes, "processes"),
            "window": (args.seconds, "s"),
        },
        baseline={
            "achieved/R": (round(celery.share, 3), ""),
            "429s received": (celery.total_refused, "429s"),
            "served": (celery.served, "requests"),
        },
        baseline_label="Celery's per-worker rate_limit (a kombu TokenBucket per process)",
        targets={"achieved/R": ">= 0.95", "429s received": "== 0"},
    )
    failures = []
    if ours.total_refused:
        failures.append(f"{ours.total_refused} 429s")
    if ours.share < PASS_SHARE:
        failures.append(f"achieved/R {ours.share:.3f} < {PASS_SHARE}")
    if ours.other:
        failures.append(f"{ours.other} other errors")
    if failures:
        print(f"FAIL: Leadsmith's shared limiter: {', '.join(failures)}")
        sys.exit(1)
    print(f"OK: Leadsmith's shared limiter: no 429, achieved/R >= {PASS_SHARE}")


if __name__ == "__main__":
    main()
