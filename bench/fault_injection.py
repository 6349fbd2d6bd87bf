"""Fault injection: a batch enriched by real Celery workers while everything around them fails.

One batch of N leads (default 5,000) is enriched by Celery worker processes through the
sandbox provider, which answers 20% of requests 503, 10% 429 with Retry-After, hangs on 5%
past the client's timeout and mangles 2% (cut JSON, HTML pages, wrong types, missing keys,
10 MB bodies). Meanwhile a worker's process group is SIGKILLed (twice by default, each time
replaced) and the script's own Redis server, broker of every queued message, is killed and
started again empty (once by default). Lost messages are the normal case here: the run
table and its sweep (called by this script every second, as beat would) must bring every
run home. Then it checks, prints, and exits 1 on any violation:

1. every run terminal: done, not_found or skipped, or dead or failed with a reason; a failed
   run's reason must be a provider's verdict, not an exception that escaped the pipeline
   (failed counts as terminal: nothing retries it, an operator can);
2. no lookup paid twice: in the ledger, at most one paid (hit or miss, credits > 0) row per
   provider, operation and lookup key, and no call left in flight; at the vendor, each
   question billed at most once, except for answers the client could not have received:
   billed after a hang past its timeout or mangled (the sandbox counts these), or in flight
   in a worker that was killed (the script notes those rows when it kills). A retry under
   the same idempotency key is replayed free, so these extra charges come only from another
   request (another run, another bulk batch) asking the same question again;
3. no manual value changed: the locked values set before the run are in place and applied;
4. no lead lost: the same leads, each with the status its run's state gives it, each with
   at most one observation per field and source (a run wrote once), and the job's counters
   adding up to its runs.

Needs PostgreSQL (the server in FAULT_PG_URL, default postgres://postgres@127.0.0.1:5432;
the database --database, default ls_fault, is dropped and created, and dropped again after
a clean run) and `redis-server` on PATH, started on a free port and killed by its pid: the
machine's shared Redis is never used. After a violation the database and the worker logs
are kept for a look.

    .venv/bin/python bench/fault_injection.py [--leads 5000] [--workers 2] [--kills 2]
        [--redis-restarts 1] [--seed 7] [--deadline 1800] [--keep-db]
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _report import report as bench_report
from _stack import (
    RedisServer,
    Workers,
    check_database_name,
    configure,
    database_create,
    database_drop,
    free_port,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The sandbox's faults, as the issue states them; hangs outlast the client's timeout.
ERROR_RATE = 0.20
RATE_LIMITED_RATE = 0.10
HANG_RATE = 0.05
MALFORMED_RATE = 0.02
CLIENT_TIMEOUT_SECONDS = 1.0
HANG_SECONDS = 2.5
RETRY_AFTER_SECONDS = 1
SWEEP_EVERY_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 10.0
# How long the broker stays down, so workers and sweeps meet the outage.
REDIS_OUTAGE_SECONDS = 3.0
# Every 25th lead gets a manual job title, every 50th a manual location too: locked values.
MANUAL_TITLE_EVERY = 25
MANUAL_LOCATION_EVERY = 50
# Leads share companies, ten to a domain: company lookups meet in the cache and in flight.
LEADS_PER_COMPANY = 10
LAST_NAMES = ("Okafor", "Larsen", "Nakamura", "García", "Smith", "Chen", "Ivanova", "Haddad")
# A reason that is an exception's repr ("ValueError('…')", redis's "network:ConnectionError"):
# something escaped the pipeline's handling; a provider's verdict never reads like that.
_ESCAPED = re.compile(r"^[\w.:]*(Error|Exception|Exceeded|Interrupt)\b")


@dataclass
class Knobs:
    """Settings the workers and this script share, small so a short run finishes fast."""

    hard_time_limit: int
    soft_time_limit: int
    stale_grace: int
    requeue_after: int
    retry_backoff: int

    @classmethod
    def for_leads(cls, leads: int) -> "Knobs":
        # A batch of 20 leads takes a few seconds even with hangs; a lost message waits
        # `requeue_after` before it is sent again, and every wave of re-sends of a big
        # backlog is wasted work, so a big batch waits longer.
        return cls(
            hard_time_limit=30,
            soft_time_limit=25,
            stale_grace=5,
            requeue_after=20 if leads <= 1000 else 60,
            retry_backoff=3 if leads <= 1000 else 10,
        )

    def environ(self) -> dict[str, str]:
        return {
            "CELERY_TASK_TIME_LIMIT": str(self.hard_time_limit),
            "CELERY_TASK_SOFT_TIME_LIMIT": str(self.soft_time_limit),
            "ENRICHMENT_RUN_STALE_GRACE_SECONDS": str(self.stale_grace),
            "ENRICHMENT_REQUEUE_AFTER_SECONDS": str(self.requeue_after),
            "ENRICHMENT_RETRY_BACKOFF_SECONDS": str(self.retry_backoff),
            "PROVIDER_HTTP_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT_SECONDS),
        }


@dataclass
class Report:
    """What the run saw and what the checks found."""

    violations: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    # Questions in flight (a PENDING ledger row) when a worker was killed.
    lost_in_kills: set[str] = field(default_factory=set)

    def violation(self, message: str) -> None:
        self.violations.append(message)
        print(f"  VIOLATION: {message}")


def _configure(database_url: str, redis_url: str, knobs: Knobs) -> None:
    """Point this process and its workers at the script's own database and Redis, with
    every provider but the sandbox off and the knobs set."""
    configure(database_url, redis_url, **knobs.environ())


# --- Setting the batch up -------------------------------------------------------------------


def _create_leads(count: int) -> list[int]:
    from leads.services import lead_input_from_mapping, leads_upsert

    companies = max(count // LEADS_PER_COMPANY, 1)
    rows = []
    for i in range(count):
        row = {
            "first_name": f"Fault{i}",
            "last_name": LAST_NAMES[i % len(LAST_NAMES)],
            "company_domain": f"fault-co-{i % companies}.com",
        }
        # Some leads are known by an address or a profile: every kind of lookup key.
        if i % 7 == 3:
            row["email"] = f"fault.person{i}@fault-co-{i % companies}.com"
        elif i % 11 == 5:
            row["linkedin_url"] = f"https://www.linkedin.com/in/fault-person-{i}"
        rows.append(lead_input_from_mapping(row))
    created: list[int] = []
    for start in range(0, len(rows), 1000):
        result = leads_upsert(inputs=rows[start : start + 1000], source="fault", origin="fault")
        created += result.created
    return created


def _set_manual_values(lead_ids: list[int]) -> dict[tuple[int, str], str]:
    from enrichment.review import field_set_manually
    from leads.models import Lead

    manual: dict[tuple[int, str], str] = {}
    for position, lead in enumerate(Lead.objects.filter(id__in=lead_ids).order_by("id")):
        if position % MANUAL_TITLE_EVERY == 0:
            value = f"Manual Title {position}"
            field_set_manually(subject=lead, field="job_title", value=value, user=None)
            manual[(lead.id, "job_title")] = value
        if position % MANUAL_LOCATION_EVERY == 0:
            value = f"Manual Place {position}, Lagos"
            field_set_manually(subject=lead, field="location", value=value, user=None)
            manual[(lead.id, "location")] = value
    return manual


def _question_keys(lead_ids: list[int]) -> dict[tuple[str, str], list[str]]:
    """Map (operation, ledger lookup_key_hash) to the sandbox's billing keys of the same
    question, as each lead's run asks it."""
    from dataclasses import asdict

    from leads.models import Lead
    from providers.base import PersonQuery
    from providers.ledger import lookup_key_hash
    from providers.sandbox.server import COMPANY_PATH, PERSON_PATH, question_key

    keys: dict[tuple[str, str], list[str]] = {}
    for lead in Lead.objects.filter(id__in=lead_ids).select_related("company"):
        domain = lead.company.domain if lead.company_id else ""
        query = PersonQuery(
            email=lead.email or "",
            first_name=lead.first_name,
            last_name=lead.last_name,
            domain=domain,
            linkedin_url=lead.linkedin_url,
        )
        request = {name: value for name, value in asdict(query).items() if value}
        person = ("person_enrich", lookup_key_hash(query.lookup_keys()[0]))
        keys.setdefault(person, []).append(question_key(PERSON_PATH, request))
        if domain:
            company = ("company_enrich", lookup_key_hash(f"domain:{domain}"))
            keys.setdefault(company, []).append(question_key(COMPANY_PATH, {"domain": domain}))
    return keys


# --- The run ------------------------------------------------------------------------------


def _batch(run_ids: list[int]):
    from enrichment.models import EnrichmentRun

    runs = EnrichmentRun.objects.filter(id__in=run_ids[:1])
    job_id = runs.values_list("job_id", flat=True).first()
    # One job holds a batch of several runs: filtering by it beats an IN list of thousands.
    if job_id is not None:
        return EnrichmentRun.objects.filter(job_id=job_id)
    return EnrichmentRun.objects.filter(id__in=run_ids)


def _states(batch) -> Counter:
    from django.db.models import Count

    return Counter(
        {row["state"]: row["n"] for row in batch.values("state").annotate(n=Count("id"))}
    )


def _terminal(states: Counter) -> int:
    from enrichment.models import EnrichmentRun

    return sum(states[state] for state in EnrichmentRun.TERMINAL_STATES)


def _sweep(report: Report) -> None:
    from django.db import close_old_connections

    from enrichment.services import runs_sweep

    try:
        runs_sweep()
    except Exception as exc:
        # The broker is down (this script killed it): the runs marked sent are sent again
        # after ENRICHMENT_REQUEUE_AFTER_SECONDS, which is the outbox doing its job.
        report.events.append(f"sweep failed: {type(exc).__name__}")
        close_old_connections()


def _chaos_plan(kills: int, restarts: int) -> list[tuple[float, str]]:
    """Return (share of runs terminal, "kill" | "redis") events spread over 10%-70%."""
    # Alternating, so a restart falls between kills: kill, redis, kill, ...
    kinds: list[str] = []
    for i in range(max(kills, restarts)):
        kinds += (["kill"] if i < kills else []) + (["redis"] if i < restarts else [])
    count = len(kinds)
    return [(0.1 + 0.6 * (i + 1) / (count + 1), kind) for i, kind in enumerate(kinds)]


def _note_in_flight(report: Report, questions: dict[tuple[str, str], list[str]]) -> int:
    from providers.models import ProviderCall

    pending = ProviderCall.objects.filter(outcome=ProviderCall.Outcome.PENDING).values_list(
        "operation", "lookup_key_hash"
    )
    count = 0
    for operation, key_hash in pending:
        count += 1
        report.lost_in_kills.update(questions.get((operation, key_hash), []))
    return count


def _enrich(args, *, redis: RedisServer, workers: Workers, knobs: Knobs) -> int:
    """Set up, run and check the batch; return the exit code."""
    import django

    django.setup()
    from django.core.management import call_command

    from enrichment.models import EnrichmentRun
    from enrichment.services import runs_create
    from leads.models import Lead
    from providers.sandbox.server import start_in_thread

    report = Report()
    started = time.monotonic()
    call_command("migrate", verbosity=0)
    sandbox = start_in_thread(
        error_rate=ERROR_RATE,
        rate_limited_rate=RATE_LIMITED_RATE,
        hang_rate=HANG_RATE,
        malformed_rate=MALFORMED_RATE,
        hang_seconds=HANG_SECONDS,
        retry_after_seconds=RETRY_AFTER_SECONDS,
        seed=args.seed,
    )
    os.environ["SANDBOX_BASE_URL"] = sandbox.url
    try:
        lead_ids = _create_leads(args.leads)
        manual = _set_manual_values(lead_ids)
        questions = _question_keys(lead_ids)
        leads_before = set(Lead.objects.values_list("id", flat=True))
        print(
            f"setup: {len(lead_ids)} leads at {len(lead_ids) // LEADS_PER_COMPANY or 1} "
            f"companies, {len(manual)} manual values, {time.monotonic() - started:.1f}s"
        )

        for _ in range(args.workers):
            workers.start()
        enqueued_at = time.monotonic()
        runs = runs_create(lead_ids=lead_ids, trigger=EnrichmentRun.Trigger.BULK)
        run_ids = [run.id for run in runs]
        print(
            f"enqueued {len(run_ids)} runs; sandbox {sandbox.url} faults: 503 {ERROR_RATE:g}, "
            f"429 {RATE_LIMITED_RATE:g}, hang {HANG_RATE:g} ({HANG_SECONDS:g}s > client "
            f"{CLIENT_TIMEOUT_SECONDS:g}s), malformed {MALFORMED_RATE:g}; seed {args.seed}"
        )

        batch = _batch(run_ids)
        plan = _chaos_plan(args.kills, args.redis_restarts)
        deadline = enqueued_at + args.deadline
        last_sweep = last_progress = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now - last_sweep >= SWEEP_EVERY_SECONDS:
                _sweep(report)
                last_sweep = now
            states = _states(batch)
            done = _terminal(states)
            if done == len(run_ids):
                break
            while plan and done >= plan[0][0] * len(run_ids):
                _, kind = plan.pop(0)
                left = len(run_ids) - done
                at = time.monotonic() - enqueued_at
                if kind == "kill":
                    in_flight = _note_in_flight(report, questions)
                    pid = workers.kill_one()
                    workers.start()
                    event = (
                        f"{at:6.1f}s SIGKILL worker group {pid} ({left} runs unfinished, "
                        f"{states['running']} running, {in_flight} calls in flight); replaced"
                    )
                else:
                    queued, unacked = redis.messages()
                    redis.kill()
                    time.sleep(REDIS_OUTAGE_SECONDS)
                    redis.start()
                    event = (
                        f"{at:6.1f}s Redis killed ({queued} queued and {unacked} unacked "
                        f"messages lost, {left} runs unfinished), restarted empty after "
                        f"{REDIS_OUTAGE_SECONDS:g}s"
                    )
                report.events.append(event)
                print(f"  {event}")
            if now - last_progress >= PROGRESS_EVERY_SECONDS:
                last_progress = now
                print(
                    f"  {now - enqueued_at:6.1f}s {done}/{len(run_ids)} terminal "
                    f"{dict(sorted(states.items()))}; sandbox requests "
                    f"{sum(sandbox.requests.values())}"
                )
            time.sleep(0.5)
        elapsed = time.monotonic() - enqueued_at
        workers.stop()
        if plan:
            report.violation(
                f"{len(plan)} fault event(s) never happened: the batch ended first; use more leads"
            )
        print(f"batch: {elapsed:.1f}s from enqueue to the last terminal run")
        _check(
            report,
            run_ids=run_ids,
            lead_ids=lead_ids,
            leads_before=leads_before,
            manual=manual,
            sandbox=sandbox,
        )
    finally:
        workers.stop()
        sandbox.stop()

    sweep_failures = sum(1 for event in report.events if event.startswith("sweep failed"))
    if sweep_failures:
        print(f"sweeps that met the broker down: {sweep_failures}")
    states = _states(_batch(run_ids))
    bench_report(
        "fault_injection",
        {
            "violations": (len(report.violations), "violations"),
            "runs terminal": (_terminal(states), "runs"),
            "runs": (len(run_ids), "runs"),
            "runs done": (states["done"], "runs"),
            "runs not found": (states["not_found"], "runs"),
            "runs failed or dead, with a reason": (states["failed"] + states["dead"], "runs"),
            "batch time": (round(elapsed, 1), "s"),
            "worker kills": (args.kills, "kills"),
            "Redis restarts": (args.redis_restarts, "restarts"),
        },
        targets={"violations": "== 0"},
        notes="; ".join(report.violations)[:500],
    )
    if report.violations:
        print(f"FAIL: {len(report.violations)} violation(s)")
        return 1
    print("OK: every run terminal, no lookup paid twice, manual values kept, no lead lost")
    return 0


# --- The checks ---------------------------------------------------------------------------


def _check(report, *, run_ids, lead_ids, leads_before, manual, sandbox) -> None:
    print("checks:")
    _check_runs(report, run_ids)
    _check_paid_once(report, sandbox)
    _check_manual(report, manual)
    _check_leads(report, run_ids, lead_ids, leads_before)


def _check_runs(report: Report, run_ids: list[int]) -> None:
    from enrichment.models import EnrichmentRun

    runs = _batch(run_ids)
    states = Counter(runs.values_list("state", flat=True))
    attempts = Counter(runs.values_list("attempts", flat=True))
    print(f"  runs by state: {dict(sorted(states.items()))}")
    print(f"  runs by attempts: {dict(sorted(attempts.items()))}")
    stuck = runs.exclude(state__in=EnrichmentRun.TERMINAL_STATES)
    if stuck.exists():
        left = Counter(stuck.values_list("state", flat=True))
        report.violation(f"{stuck.count()} runs not terminal: {dict(left)}")
    unexplained = runs.filter(state__in=["dead", "failed"], last_error="")
    if unexplained.exists():
        report.violation(f"{unexplained.count()} dead or failed runs without a reason")
    reasons: Counter = Counter()
    for state, error in runs.filter(state__in=["dead", "failed"]).values_list(
        "state", "last_error"
    ):
        # The reason without the URL's port or a count, so alike reasons add up.
        reasons[f"{state}: {re.sub(r'[0-9]+', 'N', error)[:110]}"] += 1
    for reason, count in reasons.most_common(8):
        print(f"    {count:5d} {reason}")
    escaped = [
        error
        for error in runs.filter(state="failed").values_list("last_error", flat=True)
        if _ESCAPED.match(error)
    ]
    if escaped:
        report.violation(
            f"{len(escaped)} runs failed on an exception that escaped the pipeline, e.g. "
            f"{escaped[0][:160]!r}"
        )


def _check_paid_once(report: Report, sandbox) -> None:
    from django.db.models import Count, Sum

    from providers.models import ProviderCall

    calls = ProviderCall.objects.filter(provider="sandbox")
    outcomes = Counter(calls.values_list("outcome", flat=True))
    paid = calls.filter(outcome__in=["hit", "miss"], credits__gt=0)
    credits = paid.aggregate(total=Sum("credits"))["total"] or 0
    print(
        f"  ledger: {dict(sorted(outcomes.items()))}; {paid.count()} paid calls, {credits} credits"
    )
    twice = (
        paid.values("operation", "lookup_key_hash").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    if twice:
        report.violation(f"{twice} lookups paid more than once in the ledger")
    pending = outcomes.get("pending", 0)
    if pending:
        report.violation(f"{pending} ledger rows still in flight (credits reserved for ever)")

    billed = sandbox.billed
    unheard = sandbox.billed_unheard
    over = {key: count for key, count in billed.items() if count > 1}
    explained_by_faults = {key for key, count in over.items() if count - unheard[key] <= 1}
    explained_by_kills = {
        key
        for key, count in over.items()
        if key not in explained_by_faults
        and key in report.lost_in_kills
        and count - unheard[key] <= 2
    }
    unexplained = set(over) - explained_by_faults - explained_by_kills
    print(
        f"  vendor: {sum(billed.values())} billed answers for {len(billed)} questions, max "
        f"{max(billed.values(), default=0)} per question; {sum(unheard.values())} billed but "
        f"unheard (after a hang or mangled); billed twice: {len(over)} "
        f"({len(explained_by_faults)} after an unheard answer, {len(explained_by_kills)} "
        f"in flight in a killed worker)"
    )
    print(
        f"  sandbox: {sum(sandbox.requests.values())} requests "
        f"{dict(sorted(sandbox.requests.items()))}; faults {dict(sorted(sandbox.faults.items()))}"
    )
    if unexplained:
        report.violation(
            f"{len(unexplained)} questions billed more than once with no lost answer to explain it"
        )
    if credits > sum(billed.values()):
        report.violation(
            f"the ledger paid {credits} credits, the vendor billed {sum(billed.values())}"
        )


def _check_manual(report: Report, manual: dict[tuple[int, str], str]) -> None:
    from enrichment.fields import FIELDS
    from enrichment.models import Observation
    from leads.models import Lead

    changed = 0
    leads = Lead.objects.in_bulk({lead_id for lead_id, _ in manual})
    for (lead_id, name), value in manual.items():
        lead = leads[lead_id]
        current = Observation.objects.filter(
            lead_id=lead_id, field=name, state__in=Observation.CURRENT_STATES
        )
        manual_kept = current.filter(source="manual", value=value).exists()
        others = current.exclude(source="manual").exists()
        if getattr(lead, FIELDS[name].column) != value or not manual_kept or others:
            changed += 1
    print(f"  manual values: {len(manual) - changed} of {len(manual)} unchanged")
    if changed:
        report.violation(f"{changed} manual values changed")


def _check_leads(report, run_ids, lead_ids, leads_before) -> None:
    from django.db.models import Count

    from enrichment.models import EnrichmentJob, Observation
    from enrichment.services import _LEAD_STATUS_BY_RUN_STATE
    from leads.models import Lead

    now = set(Lead.objects.values_list("id", flat=True))
    if now != leads_before or not set(lead_ids) <= now:
        report.violation(
            f"leads lost or added: {len(leads_before - now)} gone, {len(now - leads_before)} new"
        )
    wrong_status = 0
    for state, status, last_enriched in _batch(run_ids).values_list(
        "state", "lead__enrichment_status", "lead__last_enriched_at"
    ):
        expected = _LEAD_STATUS_BY_RUN_STATE.get(state)
        if state == "skipped" and last_enriched is not None:
            expected = Lead.EnrichmentStatus.ENRICHED
        if expected is not None and status != expected:
            wrong_status += 1
    repeated = (
        Observation.objects.filter(lead_id__in=lead_ids)
        .exclude(source="manual")
        .values("lead_id", "field", "source")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    jobs = EnrichmentJob.objects.filter(id__in=_batch(run_ids).values("job_id"))
    miscounted = [
        job.id
        for job in jobs
        if job.done != job.total
        or job.enriched + job.not_found + job.failed + job.skipped != job.done
    ]
    print(
        f"  leads: {len(now)} ({len(lead_ids)} in the batch), {wrong_status} with a status "
        f"that is not their run's, {repeated} fields written twice by one source; "
        f"job counters {'off' if miscounted else 'add up'}"
    )
    if wrong_status:
        report.violation(f"{wrong_status} leads whose status is not their run's")
    if repeated:
        report.violation(f"{repeated} (lead, field, source) written more than once")
    if miscounted:
        report.violation(f"job counters do not add up for jobs {miscounted}")


# --- Entry point --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=2, help="worker groups SIGKILLed")
    parser.add_argument("--redis-restarts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7, help="seed of the sandbox's faults")
    parser.add_argument(
        "--deadline", type=float, default=1800, help="seconds the batch may take after enqueue"
    )
    parser.add_argument("--database", default="ls_fault", help="dropped and created")
    parser.add_argument("--keep-db", action="store_true", help="keep the database to inspect")
    args = parser.parse_args(argv)
    # Progress lines as they happen, also into a file or a pipe.
    sys.stdout.reconfigure(line_buffering=True)
    if args.leads < 1 or args.workers < 1 or args.kills < 0 or args.redis_restarts < 0:
        parser.error("--leads and --workers must be positive, --kills and --redis-restarts >= 0")
    try:
        check_database_name(args.database)
    except ValueError:
        parser.error("--database must be a plain lowercase PostgreSQL name")
    if shutil.which("redis-server") is None:
        print("redis-server is not on PATH", file=sys.stderr)
        return 2

    server_url = os.environ.get("FAULT_PG_URL", "postgres://postgres@127.0.0.1:5432")
    logdir = Path(tempfile.mkdtemp(prefix="leadsmith-fault-"))
    knobs = Knobs.for_leads(args.leads)
    redis = RedisServer(free_port(), logdir)
    workers = Workers(logdir, name="fault")
    database_url = database_create(server_url, args.database)
    started = time.monotonic()
    code = 2
    try:
        redis.start()
        _configure(database_url, redis.url, knobs)
        print(
            f"fault injection: {args.leads} leads, {args.workers} workers, {args.kills} kills, "
            f"{args.redis_restarts} Redis restarts; database {args.database}, Redis "
            f"{redis.url} (own), logs {logdir}"
        )
        code = _enrich(args, redis=redis, workers=workers, knobs=knobs)
    finally:
        workers.stop()
        redis.kill()
        if code == 0 and not args.keep_db:
            # WITH (FORCE) ends this process's own connection too.
            database_drop(server_url, args.database)
            shutil.rmtree(logdir, ignore_errors=True)
    print(f"total: {time.monotonic() - started:.1f}s")
    if code != 0:
        print(f"kept for a look: database {args.database}, logs {logdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
