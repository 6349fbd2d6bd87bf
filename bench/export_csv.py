"""Streamed lead export: peak Python memory at 1,000,000 leads against 100,000.

Fills its own PostgreSQL database (ls_bench_export, created afresh and migrated) with N
leads through COPY, then streams `leads.export.leads_csv_chunks` (what `manage.py
export_leads` and the admin action use) to /dev/null twice, over the first tenth of the
leads and over all of them, measuring each run's peak traced memory (tracemalloc) and its
rate. Streaming keeps the peak flat: the ratio should stay near 1 where a list of rows
would grow tenfold.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/export_csv.py [--leads 1000000]
"""

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "ls_bench_export"


def _recreate_database() -> str:
    import psycopg

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (postgres://user@host:5432/db).")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return urlunsplit(urlsplit(base)._replace(path=f"/{BENCH_DB}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    args = parser.parse_args()

    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=_recreate_database(),
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from leads.bulk_import import _copy_rows
    from leads.export import leads_csv_chunks
    from leads.models import Company, Lead

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        company_ids = _copy_rows(
            Company, ("domain", "name"), [(f"c{n}.com", f"=Company {n}") for n in range(1000)], now
        )
    step = 100_000
    for start in range(0, args.leads, step):
        rows = [
            (f"p{n}@c{n % 1000}.com", "Ada", f"L{n}", "+14155550100", company_ids[n % 1000])
            for n in range(start, min(start + step, args.leads))
        ]
        with transaction.atomic():
            _copy_rows(Lead, ("email", "first_name", "last_name", "phone", "company_id"), rows, now)
    print(f"{args.leads} leads loaded in {time.perf_counter() - started:.1f} s")

    results = []
    tenth = Lead.objects.order_by("id").values_list("id", flat=True)[args.leads // 10 - 1]
    for label, queryset in (
        (f"{args.leads // 10:,} leads", Lead.objects.filter(id__lte=tenth)),
        (f"{args.leads:,} leads", Lead.objects.all()),
    ):
        tracemalloc.start()
        started = time.perf_counter()
        size = 0
        with open(os.devnull, "w") as sink:
            for piece in leads_csv_chunks(queryset):
                size += len(piece)
                sink.write(piece)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results.append(peak)
        rows = queryset.count()
        print(
            f"{label}: {size / 1e6:.0f} MB of CSV in {seconds:.1f} s "
            f"({rows / seconds:,.0f} rows/s under tracemalloc), peak {peak / 1e6:.2f} MB"
        )
    print(f"peak memory ratio (all / a tenth): {results[1] / results[0]:.2f}")

    from _report import report

    report(
        "export_csv",
        {
            "peak traced memory": (round(results[1] / 1e6, 2), "MB"),
            "peak memory ratio, all / a tenth": (round(results[1] / results[0], 2), ""),
            "leads": (args.leads, "leads"),
        },
        baseline={"peak traced memory": (round(results[0] / 1e6, 2), "MB")},
        baseline_label=f"the same export of a tenth of the leads ({args.leads // 10:,})",
    )


if __name__ == "__main__":
    main()
