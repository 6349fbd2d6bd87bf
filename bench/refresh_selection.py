"""How long the scheduled refresh takes to find what to refresh among 1M leads.

Data: its own PostgreSQL database (`ls_bench_refresh`, created if missing and reused
while it has the requested size; --rebuild to start over), filled with generate_series
SQL: N leads at N/5 companies, one finished run per lead, and the observations those runs
wrote: email (30-day freshness), phone and job title (90) per lead, company name (180)
and headcount (90) per company. A share of leads and companies (--expired-share) was
enriched 100-200 days ago, so their values expired; the rest within the last 25 days.
Noise the selection must see through: 20% of leads have an older superseded phone, 2%
a manual (locked) job title, 1% a phone a reviewer approved.

Measured, all on the same data, same process:

- indexed: `enrichment.refresh.expired_value_chunks` (keyset on (expires_at, id) over
  the partial index `observation_current_expiry`): one chunk of 1,000 values, and every
  chunk until the expired set is exhausted; `leads_stale` for one tick (500 leads) and
  for the whole set (the runs lookups and grouping included).
- baseline 1, the same selection without the index (DROP INDEX inside a transaction that
  is rolled back): one chunk, and the whole set as the same chunks (a few measured, the
  rest at their average, marked "extrapolated") and as one unchunked query.
- baseline 2, a naive scan: the pipeline's own gate read (`current_observations` +
  `fields_needing_data` per lead, as `enrich --stale` would have to) over a sample of
  leads, scaled to all of them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anything \\
    .venv/bin/python bench/refresh_selection.py [--leads 1000000] [--expired-share 0.05]

The database name in DATABASE_URL is replaced by ls_bench_refresh.
"""

# ruff: noqa: S608  (the SQL below is built from integers and constants of this file)
import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "ls_bench_refresh"


def _ensure_database(url: str) -> str:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _timed(function, repeat: int = 1):
    """Return (result, median seconds) of calling function `repeat` times."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def _fill(cursor, leads: int, expired_share: float) -> None:
    companies = max(leads // 5, 1)
    cutoff = int(expired_share * 1000)
    print(f"filling: {leads:,} leads, {companies:,} companies …", flush=True)
    cursor.execute(
        "TRUNCATE enrichment_observation, enrichment_enrichmentrun, leads_lead, leads_company "
        "RESTART IDENTITY CASCADE"
    )
    # Spread the expired ones over the id range: (i * a large odd number) mod 1000.
    expired = f"((i * 2654435761) % 1000) < {cutoff}"
    enriched_at = (
        # Seconds too: each lead's run has its own moment, as in real data.
        f"CASE WHEN {expired} "
        "THEN now() - make_interval(days => 100 + (i % 100), secs => i % 86400) "
        "ELSE now() - make_interval(days => (i % 25), secs => i % 86400) END"
    )
    cursor.execute(
        f"""
        INSERT INTO leads_company (domain, name, industry, employee_range, revenue_range,
            hq_location, technologies, created_at, updated_at)
        SELECT 'c' || i || '.example', 'Company ' || i, 'Computer Software', '51-200', '',
            '', '[]', now(), now()
        FROM generate_series(1, {companies}) AS i
        """
    )
    cursor.execute(
        f"""
        INSERT INTO leads_lead (email, first_name, last_name, company_id, linkedin_url, phone,
            job_title, seniority, department, location, email_verification,
            enrichment_status, last_enriched_at, source, legal_basis, score, created_at,
            updated_at)
        SELECT 'p' || i || '@c' || (1 + i % {companies}) || '.example', 'First' || i,
            'Last' || i, 1 + i % {companies}, '', '+1415555' || lpad((i % 10000)::text, 4, '0'),
            'VP of Sales', 'vp', '', '', 'valid', 'enriched', {enriched_at}, 'bench',
            'legitimate_interest', 50, now(), now()
        FROM generate_series(1, {leads}) AS i
        """
    )
    cursor.execute(
        f"""
        INSERT INTO enrichment_enrichmentrun (lead_id, trigger, state, fields, providers,
            attempts, available_at, started_at, finished_at, last_error, summary, created_at,
            updated_at)
        SELECT i, 'create', 'done', '[]', '[]', 1, t, t, t, '', '{{}}', t, t
        FROM (SELECT i, {enriched_at} AS t FROM generate_series(1, {leads}) AS i) AS s
        """
    )
    lead_values = [
        ("email", "'p' || i || '@example.com'", 30, "'sandbox'", "'applied'"),
        (
            "phone",
            "'+1415555' || i",
            90,
            "'sandbox'",
            "CASE WHEN i % 100 = 7 THEN 'approved' ELSE 'applied' END",
        ),
        (
            "job_title",
            "'VP of Sales'",
            90,
            "CASE WHEN i % 50 = 3 THEN 'manual' ELSE 'sandbox' END",
            "'applied'",
        ),
    ]
    for field, value, days, source, state in lead_values:
        cursor.execute(
            f"""
            INSERT INTO enrichment_observation (lead_id, field, value, confidence,
                verification, source, run_id, state, reason, observed_at, expires_at)
            SELECT i, '{field}', to_jsonb(({value})::text), 0.9, '', {source}, i, {state}, '', t,
                t + make_interval(days => {days})
            FROM (SELECT i, {enriched_at} AS t FROM generate_series(1, {leads}) AS i) AS s
            """
        )
    cursor.execute(
        f"""
        INSERT INTO enrichment_observation (lead_id, field, value, confidence, verification,
            source, run_id, state, reason, observed_at, expires_at)
        SELECT i, 'phone', to_jsonb('+1999' || i), 0.9, '', 'sandbox', i, 'superseded', '',
            now() - interval '300 days', now() - interval '210 days'
        FROM generate_series(1, {leads}) AS i WHERE i % 5 = 0
        """
    )
    # A company's values were written by the run of its first lead (lead i is at company
    # 1 + i % companies, so company c's first lead is c - 1, or `companies` for c = 1).
    for field, value, days in [
        ("company_name", "'Company ' || i", 180),
        ("employee_range", "'51-200'", 90),
    ]:
        cursor.execute(
            f"""
            INSERT INTO enrichment_observation (company_id, field, value, confidence,
                verification, source, run_id, state, reason, observed_at, expires_at)
            SELECT i, '{field}', to_jsonb(({value})::text), 0.9, '', 'sandbox',
                CASE WHEN i = 1 THEN {companies} ELSE i - 1 END, 'applied', '', t,
                t + make_interval(days => {days})
            FROM (SELECT i, {enriched_at} AS t FROM generate_series(1, {companies}) AS i) AS s
            """
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--expired-share", type=float, default=0.05)
    parser.add_argument("--sample", type=int, default=2000, help="Leads the naive scan reads.")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must point at a PostgreSQL server")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=_ensure_database(url),
        LOG_LEVEL="WARNING",
        ENRICH_ON_CREATE="false",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from enrichment.fields import FIELDS
    from enrichment.models import Observation
    from enrichment.refresh import CHUNK_SIZE, _expired_values, expired_value_chunks, leads_stale
    from enrichment.selectors import current_observations, fields_needing_data
    from leads.models import Lead

    call_command("migrate", verbosity=0)
    if args.rebuild or Lead.objects.count() != args.leads:
        started = time.perf_counter()
        # One transaction: an interrupted fill leaves nothing half-made to be reused.
        with transaction.atomic(), connection.cursor() as cursor:
            _fill(cursor, args.leads, args.expired_share)
        with connection.cursor() as cursor:
            cursor.execute(
                "ANALYZE leads_company, leads_lead, enrichment_enrichmentrun, "
                "enrichment_observation"
            )
        print(f"filled in {time.perf_counter() - started:.0f} s")
    now = timezone.now()
    observations = Observation.objects.count()
    print(f"leads: {args.leads:,}; observations: {observations:,}")

    def first_chunk():
        return next(expired_value_chunks(now=now), [])

    def every_chunk():
        return sum(len(chunk) for chunk in expired_value_chunks(now=now))

    _, chunk_s = _timed(first_chunk, repeat=5)
    total, all_s = _timed(every_chunk, repeat=3)
    chunks = -(-total // CHUNK_SIZE)
    tick, tick_s = _timed(lambda: leads_stale(now=now, limit=500), repeat=3)
    stale, stale_s = _timed(lambda: leads_stale(now=now), repeat=1)
    with transaction.atomic(), connection.cursor() as cursor:
        # The plan the selection runs with (expired_value_chunks turns parallelism off).
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        query, params = (
            _expired_values(now).order_by("expires_at", "id")[:CHUNK_SIZE].query.sql_with_params()
        )
        cursor.execute(f"EXPLAIN {query}", params)
        plan = [row[0] for row in cursor.fetchall()]

    class _Rollback(Exception):
        pass

    baseline: dict[str, float] = {}
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DROP INDEX observation_current_expiry")
            _, baseline["chunk"] = _timed(first_chunk, repeat=3)
            started = time.perf_counter()
            sampled = 0
            for _chunk in expired_value_chunks(now=now):
                sampled += 1
                if sampled == 5:
                    break
            baseline["per_chunk"] = (time.perf_counter() - started) / max(sampled, 1)
            started = time.perf_counter()
            baseline_total = _expired_values(now).count()
            baseline["one_query"] = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        pass
    assert baseline_total == total, (baseline_total, total)

    sample_ids = list(Lead.objects.order_by("?").values_list("id", flat=True)[: args.sample])
    wanted = list(FIELDS)

    def naive():
        found = 0
        for lead in Lead.objects.filter(id__in=sample_ids).select_related("company"):
            needing = fields_needing_data(lead, wanted, current_observations(lead))
            if lead.company_id:
                needing += fields_needing_data(
                    lead.company, wanted, current_observations(lead.company)
                )
            found += bool(needing)
        return found

    _, naive_s = _timed(naive)
    naive_all = naive_s / args.sample * args.leads

    whole_baseline = baseline["per_chunk"] * chunks
    index_line = next((line for line in plan if "observation_current_expiry" in line), "")
    print()
    print(f"plan of one chunk: {plan[0].strip()}")
    print(f"  {index_line.strip() or 'the expiry index is NOT used'}")
    print(
        f"expired values: {total:,} in {chunks} chunks of {CHUNK_SIZE}; leads due: {len(stale):,}"
    )
    print(
        f"one chunk of {CHUNK_SIZE}: indexed {_ms(chunk_s)}, without the index "
        f"{_ms(baseline['chunk'])}: {baseline['chunk'] / chunk_s:,.1f}x"
    )
    print(
        f"every chunk (whole set): indexed {_ms(all_s)} ({_ms(all_s / chunks)} a chunk), "
        "without the index "
        f"{_ms(whole_baseline)} (5 chunks measured, the rest at their average): "
        f"{whole_baseline / all_s:,.1f}x; as one unchunked query without the index "
        f"{_ms(baseline['one_query'])}"
    )
    print(f"one tick (leads_stale, {len(tick)} leads): {_ms(tick_s)}")
    print(f"whole set (leads_stale, {len(stale):,} leads): {_ms(stale_s)}")
    print(
        f"naive gate scan: {_ms(naive_s)} for {args.sample:,} leads, so "
        f"{naive_all:,.0f} s for {args.leads:,}: {naive_all / stale_s:,.0f}x the indexed "
        "whole set"
    )

    from _report import report

    report(
        "refresh_selection",
        {
            "one chunk of 1,000 expired values": (round(chunk_s * 1000, 1), "ms"),
            "one tick (leads_stale, 500 leads)": (round(tick_s * 1000, 1), "ms"),
            "every chunk (whole expired set)": (round(all_s * 1000), "ms"),
            "whole set (leads_stale)": (round(stale_s * 1000), "ms"),
            "leads due": (len(stale), "leads"),
            "expired values": (total, "values"),
            "leads": (args.leads, "leads"),
        },
        baseline={
            "one chunk of 1,000 expired values": (round(baseline["chunk"] * 1000, 1), "ms"),
            "every chunk (whole expired set)": (round(whole_baseline * 1000), "ms"),
            "whole set (leads_stale)": (round(naive_all * 1000), "ms"),
        },
        baseline_label=(
            "the same chunks without the expiry index; for the whole set, the gate's "
            "per-lead read (extrapolated)"
        ),
        ratio=round(baseline["chunk"] / chunk_s, 1),
        ratio_label="times faster per chunk with the expiry index",
    )


if __name__ == "__main__":
    main()
