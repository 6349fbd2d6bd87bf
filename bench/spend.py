"""Paid calls per unique lookup: a batch with 30% duplicates, enriched twice.

The batch: N leads (default 2,000) of which a share (default 30%) repeat another lead's
lookup: the same LinkedIn URL, or the same name at the same company, and so the same
company too. (Emails are unique, so a duplicate never repeats an email; leads_upsert would
merge such records into one lead, so the duplicates are written directly, as two records
of one person left by a sync from another system.) The other leads are known by an email,
a LinkedIn URL or a name at their own company, every one a different person.

1. Leadsmith: the batch is enriched as one job (`runs_create`) by real Celery workers
   (two processes by default) against the sandbox provider, with this script sweeping the
   run table every second as beat would; when every run is terminal, the same batch is
   enriched again as a second job. A paid call is a question put to the vendor, hit or
   miss (a ledger row with outcome hit or miss; an answer served from the cache is free):
   their count over both jobs, divided by the batch's unique lookups (distinct person
   lookup keys plus distinct company domains), must be exactly 1.00. So must the credits:
   paid ledger rows per distinct question that cost credits, and the sandbox's own bill,
   answers billed per distinct question (it bills hits only).
2. The baseline, the naive design of bench/naive_enrich.py (one Celery task per lead: a
   person and a company call, no ledger or cache) over the same leads, twice, with the same
   number of worker processes: it pays for every duplicate and every rerun.

Each pass meets a sandbox started afresh, as a rerun a day later meets a vendor that has
forgotten the first pass's idempotency keys (vendors keep them about 24 hours): the naive
design reuses its per-lead keys, Leadsmith asks under new ones in every run anyway.

Prints paid calls per unique lookup for both and the ratio, and exits 1 unless Leadsmith's
figures are exactly 1.00 with every run terminal. Own PostgreSQL database (--database,
default ls_bench_spend, dropped and created; dropped again after a clean run unless
--keep-db) on the server in BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), and
its own `redis-server` on a free port, killed by its pid.

    .venv/bin/python bench/spend.py [--leads 2000] [--duplicates 0.3] [--workers 2]
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _report import report
from _stack import RedisServer, Workers, configure, database_create, database_drop, free_port

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LAST_NAMES = ("Okafor", "Larsen", "Nakamura", "García", "Smith", "Chen", "Ivanova", "Haddad")
SWEEP_EVERY_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 15.0
PASSES = 2


@dataclass
class Pass:
    """What one pass of one design cost."""

    seconds: float = 0.0
    states: Counter = field(default_factory=Counter)
    billed: Counter = field(default_factory=Counter)
    requests: Counter = field(default_factory=Counter)
    ledger: Counter = field(default_factory=Counter)


# --- The batch -------------------------------------------------------------------------------


def batch_rows(leads: int, duplicate_share: float, seed: int) -> tuple[list[dict], list[int]]:
    """Return the distinct people as lead records, and for each duplicate the index of
    the person it repeats (people known by an email are never repeated: emails are unique)."""
    duplicates = round(leads * duplicate_share)
    people = leads - duplicates
    rows = []
    for i in range(people):
        domain = f"spend-co-{i}.com"
        row = {
            "first_name": f"Spend{i}",
            "last_name": LAST_NAMES[i % len(LAST_NAMES)],
            "company_domain": domain,
        }
        kind = i % 5
        if kind in (0, 1):
            row["linkedin_url"] = f"https://www.linkedin.com/in/spend-person-{i}"
        elif kind == 2:
            row["email"] = f"spend.person{i}@{domain}"
        rows.append(row)
    repeatable = [i for i, row in enumerate(rows) if "email" not in row]
    if duplicates and not repeatable:
        raise ValueError("too few leads to repeat any")
    rng = random.Random(seed)
    return rows, [rng.choice(repeatable) for _ in range(duplicates)]


def create_leads(rows: list[dict], repeats: list[int], seed: int) -> list[int]:
    """Create the batch's leads; return their ids in a shuffled order (the order the runs
    are sent in), so duplicates meet in bulk batches, in flight and in the cache."""
    from leads.models import Lead
    from leads.services import lead_input_from_mapping, leads_upsert

    people: list[int] = []
    for start in range(0, len(rows), 1000):
        result = leads_upsert(
            inputs=[lead_input_from_mapping(row) for row in rows[start : start + 1000]],
            source="bench",
            origin="bench",
        )
        if len(result.created) != len(rows[start : start + 1000]):
            raise RuntimeError("the batch's people did not all become new leads")
        people += result.created
    # Every person has a first name of their own.
    by_name = {lead.first_name: lead for lead in Lead.objects.filter(id__in=people)}
    copies = Lead.objects.bulk_create(
        Lead(
            first_name=original.first_name,
            last_name=original.last_name,
            linkedin_url=original.linkedin_url,
            company_id=original.company_id,
            source="bench-duplicate",
        )
        for original in (by_name[rows[index]["first_name"]] for index in repeats)
    )
    lead_ids = people + [lead.id for lead in copies]
    random.Random(seed).shuffle(lead_ids)
    return lead_ids


def unique_lookups(lead_ids: list[int]) -> tuple[set, set]:
    """Return the distinct questions the batch holds: as Leadsmith keys them (the lead's
    strongest lookup key; the company's domain) and as the naive design asks them (name at
    domain; domain)."""
    from leads.models import Lead
    from providers.base import PersonQuery

    ours, naive = set(), set()
    for lead in Lead.objects.filter(id__in=lead_ids).select_related("company"):
        domain = lead.company.domain
        query = PersonQuery(
            email=lead.email or "",
            first_name=lead.first_name,
            last_name=lead.last_name,
            domain=domain,
            linkedin_url=lead.linkedin_url,
        )
        ours |= {("person_enrich", query.lookup_keys()[0]), ("company_enrich", domain)}
        naive |= {("person", lead.first_name.lower(), lead.last_name.lower(), domain)}
        naive |= {("company", domain)}
    return ours, naive


# --- The two designs -------------------------------------------------------------------------


def _ledger() -> Counter:
    from django.db.models import Count

    from providers.models import ProviderCall

    return Counter(
        {
            row["outcome"]: row["n"]
            for row in ProviderCall.objects.values("outcome").annotate(n=Count("id"))
        }
    )


def leadsmith_pass(number: int, lead_ids, *, port, workers_n, logdir, deadline) -> Pass:
    from django.db import close_old_connections
    from django.db.models import Count

    from enrichment.models import EnrichmentRun
    from enrichment.services import runs_create, runs_sweep
    from providers.sandbox.server import start_in_thread

    result = Pass()
    sandbox = start_in_thread(port=port)
    workers = Workers(logdir, name=f"leadsmith-pass{number}-")
    before = _ledger()
    try:
        for _ in range(workers_n):
            workers.start()
        started = time.monotonic()
        runs = runs_create(
            lead_ids=lead_ids,
            trigger=EnrichmentRun.Trigger.BULK,
            description=f"bench/spend.py pass {number}",
        )
        if len(runs) != len(lead_ids):
            raise RuntimeError(f"{len(lead_ids) - len(runs)} leads had a run in flight already")
        batch = EnrichmentRun.objects.filter(job_id=runs[0].job_id)
        last_sweep = last_progress = started
        while True:
            now = time.monotonic()
            states = Counter(
                {row["state"]: row["n"] for row in batch.values("state").annotate(n=Count("id"))}
            )
            done = sum(states[state] for state in EnrichmentRun.TERMINAL_STATES)
            if done == len(lead_ids):
                break
            if now - started > deadline:
                raise SystemExit(f"pass {number}: {done}/{len(lead_ids)} runs terminal at deadline")
            if now - last_sweep >= SWEEP_EVERY_SECONDS:
                # What beat does: send again the runs a deferral put back in the queue.
                runs_sweep()
                close_old_connections()
                last_sweep = now
            if now - last_progress >= PROGRESS_EVERY_SECONDS:
                print(f"  {now - started:6.1f}s {done}/{len(lead_ids)} runs terminal", flush=True)
                last_progress = now
            time.sleep(0.5)
        result.seconds = time.monotonic() - started
        result.states = states
    finally:
        workers.stop(graceful=True)
        sandbox.stop()
    result.billed, result.requests = sandbox.billed, sandbox.requests
    result.ledger = _ledger() - before
    return result


def naive_pass(number: int, lead_ids, *, port, workers_n, logdir, deadline) -> Pass:
    from celery import current_app

    from providers.sandbox.server import COMPANY_PATH, PERSON_PATH, start_in_thread

    result = Pass()
    sandbox = start_in_thread(port=port)
    workers = Workers(
        logdir, name=f"naive-pass{number}-", queues="naive", extra=("-I", "bench.naive_enrich")
    )
    expected = 2 * len(lead_ids)
    try:
        for _ in range(workers_n):
            workers.start()
        started = time.monotonic()
        for lead_id in lead_ids:
            current_app.send_task("bench.naive_enrich", args=[lead_id], queue="naive")
        last_progress = started
        # Each task asks for the person, then the company, then writes: it is done asking
        # when the sandbox has answered both (a duplicate's write may then fail on an email
        # its original already holds; it has paid by then).
        while (asked := sandbox.requests[PERSON_PATH] + sandbox.requests[COMPANY_PATH]) < expected:
            now = time.monotonic()
            if now - started > deadline:
                raise SystemExit(f"naive pass {number}: {asked}/{expected} calls at deadline")
            if now - last_progress >= PROGRESS_EVERY_SECONDS:
                print(f"  {now - started:6.1f}s {asked}/{expected} calls made", flush=True)
                last_progress = now
            time.sleep(0.5)
        result.seconds = time.monotonic() - started
    finally:
        workers.stop(graceful=True)
        sandbox.stop()
    result.billed, result.requests = sandbox.billed, sandbox.requests
    return result


# --- Figures -----------------------------------------------------------------------------------


def leadsmith_figures(passes: list[Pass], lookups: int) -> dict:
    from django.db.models import Count, Sum

    from providers.models import ProviderCall

    answered = ProviderCall.objects.filter(outcome__in=["hit", "miss"])
    paid = answered.filter(credits__gt=0)
    paid_questions = paid.values("provider", "operation", "lookup_key_hash").distinct().count()
    twice = (
        answered.values("provider", "operation", "lookup_key_hash")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    billed = sum((p.billed for p in passes), Counter())
    return {
        "calls": answered.count(),
        "calls per pass": [p.ledger["hit"] + p.ledger["miss"] for p in passes],
        "cached per pass": [p.ledger["cached"] for p in passes],
        "asked twice": twice,
        "paid": paid.count(),
        "paid questions": paid_questions,
        "credits": float(paid.aggregate(total=Sum("credits"))["total"] or 0),
        "billed": sum(billed.values()),
        "billed questions": len(billed),
        "lookups": lookups,
    }


def naive_figures(passes: list[Pass], lookups: int) -> dict:
    from providers.sandbox.server import COMPANY_PATH, PERSON_PATH

    billed = sum((p.billed for p in passes), Counter())
    return {
        "calls": sum(p.requests[PERSON_PATH] + p.requests[COMPANY_PATH] for p in passes),
        "billed": sum(billed.values()),
        "billed questions": len(billed),
        "lookups": lookups,
    }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


# --- Entry point -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument(
        "--duplicates", type=float, default=0.3, help="share of leads repeating another's lookup"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes per design")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--deadline", type=float, default=1800, help="seconds a pass may take")
    parser.add_argument("--database", default="ls_bench_spend", help="dropped and created")
    parser.add_argument("--keep-db", action="store_true", help="keep the database to inspect")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    if args.leads < 2 or args.workers < 1 or not 0 <= args.duplicates < 1:
        parser.error("--leads must be 2 or more, --workers positive, --duplicates in [0, 1)")
    if shutil.which("redis-server") is None:
        print("redis-server is not on PATH", file=sys.stderr)
        return 2

    server_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    logdir = Path(tempfile.mkdtemp(prefix="leadsmith-spend-"))
    redis = RedisServer(free_port(), logdir)
    try:
        database_url = database_create(server_url, args.database)
    except ValueError as exc:
        parser.error(str(exc))
    port = free_port()
    code = 2
    try:
        redis.start()
        configure(database_url, redis.url, SANDBOX_BASE_URL=f"http://127.0.0.1:{port}")
        code = _run(args, port=port, logdir=logdir)
    finally:
        redis.kill()
        if code == 0 and not args.keep_db:
            database_drop(server_url, args.database)
            shutil.rmtree(logdir, ignore_errors=True)
    if code != 0:
        print(f"kept for a look: database {args.database}, worker logs {logdir}")
    return code


def _run(args, *, port: int, logdir: Path) -> int:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    rows, repeats = batch_rows(args.leads, args.duplicates, args.seed)
    lead_ids = create_leads(rows, repeats, args.seed)
    ours_lookups, naive_lookups = unique_lookups(lead_ids)
    print(
        f"batch: {len(lead_ids)} leads, {len(repeats)} repeating another lead's lookup "
        f"({len(repeats) / len(lead_ids):.0%}), {len(rows)} people at {len(rows)} companies: "
        f"{len(ours_lookups)} unique lookups; {args.workers} worker processes per design"
    )
    options = {"port": port, "workers_n": args.workers, "logdir": logdir, "deadline": args.deadline}

    ours: list[Pass] = []
    for number in range(1, PASSES + 1):
        print(f"Leadsmith, pass {number}:")
        result = leadsmith_pass(number, lead_ids, **options)
        ours.append(result)
        print(
            f"  {result.seconds:.1f}s; runs {dict(sorted(result.states.items()))}; ledger "
            f"{dict(sorted(result.ledger.items()))}; vendor billed {sum(result.billed.values())}"
        )
    theirs: list[Pass] = []
    for number in range(1, PASSES + 1):
        print(f"naive design, pass {number}:")
        result = naive_pass(number, lead_ids, **options)
        theirs.append(result)
        print(
            f"  {result.seconds:.1f}s; calls {sum(result.requests.values())}, vendor billed "
            f"{sum(result.billed.values())}"
        )

    mine = leadsmith_figures(ours, len(ours_lookups))
    naive = naive_figures(theirs, len(naive_lookups))
    per_lookup = _ratio(mine["calls"], mine["lookups"])
    per_paid = _ratio(mine["paid"], mine["paid questions"])
    per_billed = _ratio(mine["billed"], mine["billed questions"])
    naive_per_lookup = _ratio(naive["calls"], naive["lookups"])
    naive_per_billed = _ratio(naive["billed"], naive["billed questions"])
    print(
        f"Leadsmith: {mine['calls']} paid calls (hit or miss; per pass "
        f"{'/'.join(map(str, mine['calls per pass']))}, answered from the cache "
        f"{'/'.join(map(str, mine['cached per pass']))}) for {mine['lookups']} unique lookups"
    )
    print(
        f"  credits: {mine['paid']} ledger rows paid for {mine['paid questions']} questions "
        f"({mine['credits']:g} credits); vendor billed {mine['billed']} answers for "
        f"{mine['billed questions']} questions"
    )
    print(
        f"naive:     {naive['calls']} paid calls for {naive['lookups']} unique lookups; vendor "
        f"billed {naive['billed']} answers for {naive['billed questions']} questions"
    )
    print(
        f"paid calls per unique lookup: Leadsmith {per_lookup:.2f} (credits {per_paid:.2f}, "
        f"vendor's bill {per_billed:.2f}), naive {naive_per_lookup:.2f} (vendor's bill "
        f"{naive_per_billed:.2f}); {naive_per_lookup / per_lookup:.2f}x fewer (target 1.00)"
    )

    failures = []
    unfinished = sum(
        count
        for result in ours
        for state, count in result.states.items()
        if state not in ("done", "not_found", "skipped")
    )
    if unfinished:
        failures.append(f"{unfinished} runs ended failed or dead")
    for label, value in (
        ("paid calls per unique lookup", per_lookup),
        ("ledger rows paid per question", per_paid),
        ("vendor billed answers per question", per_billed),
    ):
        if value != 1.0:
            failures.append(f"{label} {value:.4f}, not 1.00")
    if mine["credits"] != mine["billed"]:
        failures.append(
            f"the ledger paid {mine['credits']:g} credits, the vendor billed {mine['billed']}"
        )

    report(
        "spend",
        {
            "paid calls per unique lookup": (round(per_lookup, 4), "calls/lookup"),
            "ledger rows paid per paid question": (round(per_paid, 4), "rows/question"),
            "vendor billed answers per question": (round(per_billed, 4), "answers/question"),
            "paid calls": (mine["calls"], "calls"),
            "unique lookups": (mine["lookups"], "lookups"),
            "paid calls, second pass": (mine["calls per pass"][-1], "calls"),
            "leads": (len(lead_ids), "leads"),
            "duplicate share": (round(len(repeats) / len(lead_ids), 3), ""),
            "worker processes": (args.workers, "processes"),
        },
        headline="paid calls per unique lookup",
        baseline={
            "paid calls per unique lookup": (round(naive_per_lookup, 4), "calls/lookup"),
            "vendor billed answers per question": (round(naive_per_billed, 4), "answers/question"),
            "paid calls": (naive["calls"], "calls"),
            "unique lookups": (naive["lookups"], "lookups"),
        },
        baseline_label="naive design (bench/naive_enrich.py), same leads, twice",
        ratio=round(naive_per_lookup / per_lookup, 3) if per_lookup else None,
        ratio_label="times fewer paid calls",
        targets={"paid calls per unique lookup": "== 1.00"},
        notes="; ".join(failures),
    )
    if failures:
        print(f"FAIL: {'; '.join(failures)}")
        return 1
    print("OK: every unique lookup paid exactly once over both passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
