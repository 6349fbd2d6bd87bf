"""CSV import speed on PostgreSQL: the bulk path (COPY) against a row-by-row ORM baseline.

Generates an Apollo-style people export of N rows (default 100,000) in a temporary folder:
about 5,000 companies, a work email, name, title, city/state/country, seniority and
department on every row, a LinkedIn URL on 80%, a mobile number on 30% and the company's
switchboard on the others; 1% of rows invalid and 1% repeats. Imports it into its own
database (ls_bench_import, created afresh and migrated) with `import_leads_csv`, the path
behind `manage.py import_leads` and the admin and API uploads, with on-create enrichment
off so only the import is timed. The baseline, in the same run and database, normalizes
and saves 5,000 other rows one at a time through the ORM (company get_or_create and
Lead.save() per row), extrapolated to rows per second.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/import_csv.py [--rows 100000] [--baseline-rows 5000]

DATABASE_URL names the server (and a database to connect to for CREATE DATABASE); the
benchmark itself runs in ls_bench_import, which it drops and recreates.
"""

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "ls_bench_import"
HEADER = [
    "First Name",
    "Last Name",
    "Title",
    "Company Name",
    "Email",
    "Seniority",
    "Departments",
    "Mobile Phone",
    "Corporate Phone",
    "Person Linkedin Url",
    "Website",
    "City",
    "State",
    "Country",
]
FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances"]
LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie"]
TITLES = ["VP of Sales", "Head of Growth", "CTO", "Account Executive", "Marketing Manager"]
CITIES = [("San Francisco", "California"), ("New York", "New York"), ("Austin", "Texas")]
AREA_CODES = ["212", "312", "415", "617", "646", "713"]


def _phone(rng: random.Random) -> str:
    return f"+1 {rng.choice(AREA_CODES)}-{rng.randint(201, 989)}-{rng.randint(1000, 9999)}"


def generate(path: Path, rows: int, *, seed: int, prefix: str) -> None:
    rng = random.Random(seed)
    companies = max(rows // 20, 1)
    switchboards = [_phone(rng) for _ in range(companies)]
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(HEADER)
        previous = None
        for i in range(rows):
            if previous is not None and rng.random() < 0.01:
                writer.writerow(previous)
                continue
            company = i % companies
            domain = f"{prefix}{company}.com"
            first, last = rng.choice(FIRST), f"{rng.choice(LAST)}{i}"
            email = f"{first.lower()}.{last.lower()}@{domain}"
            if rng.random() < 0.01:
                email = f"{first.lower()}.{last.lower()}@@{domain}"
            city, state = rng.choice(CITIES)
            mobile = _phone(rng) if rng.random() < 0.3 else ""
            row = [
                first,
                last,
                rng.choice(TITLES),
                f"Company {company} Inc",
                email,
                "vp",
                "sales",
                # Apollo writes phone numbers with a leading quote, spreadsheet-safe.
                f"'{mobile}" if mobile else "",
                f"'{switchboards[company]}",
                f"http://www.linkedin.com/in/{first.lower()}-{last.lower()}"
                if rng.random() < 0.8
                else "",
                f"https://www.{domain}",
                city,
                state,
                "United States",
            ]
            writer.writerow(row)
            previous = row


def _database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (postgres://user@host:5432/db).")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def _cpu_seconds(connection) -> tuple[float, float, float]:
    """CPU seconds used so far by this process, its finished child processes, and the
    PostgreSQL backend serving the connection (read from /proc, so 0 for a server on
    another machine)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        backend = 0.0
    times = os.times()
    return times.user + times.system, times.children_user + times.children_system, backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=5_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="Normalizing processes, as import_leads."
    )
    args = parser.parse_args()

    _recreate_database()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=_database_url(BENCH_DB),
        ENRICH_ON_CREATE="false",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from leads.csv_import import RowValues, column_mapping, import_leads_csv
    from leads.models import Company, Lead
    from leads.normalize import InvalidValue
    from leads.services import lead_input_from_mapping

    call_command("migrate", verbosity=0)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="leadsmith-bench-import-"))
    big = workdir / "apollo-export.csv"
    small = workdir / "baseline.csv"
    generate(big, args.rows, seed=1, prefix="acme")
    generate(small, args.baseline_rows, seed=2, prefix="baseline")
    size_mb = big.stat().st_size / 1e6
    print(f"{args.rows} rows ({size_mb:.1f} MB) in {big.name}; PostgreSQL {connection.pg_version}")

    # Baseline: what a straightforward importer does, one row and one save() at a time.
    with small.open(encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader)
        values_of = RowValues(column_mapping(header))
        rows = list(reader)
    started = time.perf_counter()
    saved = 0
    for cells in rows:
        values, company_name = values_of(cells)
        try:
            item = lead_input_from_mapping(values)
        except InvalidValue:
            continue
        if Lead.objects.filter(email=item.email).exists():
            continue
        company, _ = Company.objects.get_or_create(
            domain=item.company_domain, defaults={"name": company_name}
        )
        Lead(
            email=item.email or None,
            first_name=item.first_name,
            last_name=item.last_name,
            linkedin_url=item.linkedin_url,
            phone=item.phone,
            job_title=item.job_title,
            seniority=item.seniority,
            department=item.department,
            location=item.location,
            company=company,
            source="bench",
        ).save()
        saved += 1
    baseline_seconds = time.perf_counter() - started
    baseline_rate = len(rows) / baseline_seconds
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE leads_lead, leads_company RESTART IDENTITY CASCADE")

    cpu_before = _cpu_seconds(connection)
    started = time.perf_counter()
    report = import_leads_csv(
        path=big, source="bench", report_path=workdir / "invalid.csv", workers=args.workers
    )
    fast_seconds = time.perf_counter() - started
    fast_rate = report.total / fast_seconds
    cpu = [b - a for a, b in zip(cpu_before, _cpu_seconds(connection), strict=True)]

    started = time.perf_counter()
    again = import_leads_csv(
        path=big, source="bench", report_path=workdir / "invalid2.csv", workers=args.workers
    )
    again_seconds = time.perf_counter() - started

    print(f"load average before: {load_before}")
    print(
        f"bulk path (COPY), {args.workers} worker(s): {report.total} rows in "
        f"{fast_seconds:.2f} s = "
        f"{fast_rate:,.0f} rows/s (created {report.created}, duplicate {report.duplicate}, "
        f"invalid {report.invalid})"
    )
    print(
        f"  CPU per row: {sum(cpu) / report.total * 1e6:.0f} µs (this process "
        f"{cpu[0] / report.total * 1e6:.0f}, normalizing processes "
        f"{cpu[1] / report.total * 1e6:.0f}, PostgreSQL {cpu[2] / report.total * 1e6:.0f}): "
        "steadier than the rate when other work shares the cores"
    )
    print(
        f"same file again:       {again.total} rows in {again_seconds:.2f} s = "
        f"{again.total / again_seconds:,.0f} rows/s (all known: duplicate {again.duplicate})"
    )
    print(
        f"row-by-row ORM save(): {len(rows)} rows in {baseline_seconds:.2f} s = "
        f"{baseline_rate:,.0f} rows/s ({saved} saved)"
    )
    print(
        f"ratio: {fast_rate / baseline_rate:.1f}x; target 20,000 rows/s: "
        f"{'met' if fast_rate >= 20_000 else 'NOT met'}"
    )

    from _report import report as bench_report

    bench_report(
        "import_csv",
        {
            "bulk import (COPY)": (round(fast_rate), "rows/s"),
            "same file again (all known)": (round(again.total / again_seconds), "rows/s"),
            "rows": (report.total, "rows"),
            "normalizing processes": (args.workers, "processes"),
        },
        baseline={"bulk import (COPY)": (round(baseline_rate), "rows/s")},
        baseline_label=f"normalize + save() row by row ({len(rows):,} rows)",
        ratio=round(fast_rate / baseline_rate, 1),
        ratio_label="times the row-by-row rate",
        targets={"bulk import (COPY)": ">= 20000"},
        notes=f"load average before: {load_before}",
    )


if __name__ == "__main__":
    main()
