"""What the pipeline costs on top of the provider calls it cannot avoid.

Baseline: the bare sandbox calls (person + company) for N people, made in this process.
Measured: `run_execute` for N other people through the same sandbox: gate, local checks,
ledger rows, merge, observations and lead columns written. Both on a fresh SQLite file,
so the ratio is what Leadsmith adds per lead.

    .venv/bin/python bench/pipeline_overhead.py [--leads 300]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=300)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="leadsmith-bench-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SQLITE_PATH=str(Path(workdir) / "bench.sqlite3"),
        ENRICH_ON_CREATE="false",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from enrichment.services import run_execute, runs_create
    from leads.services import lead_input_from_mapping, leads_upsert
    from providers.base import PersonQuery
    from providers.sandbox.adapter import SandboxProvider
    from providers.sandbox.server import start_in_thread

    call_command("migrate", verbosity=0)
    sandbox = start_in_thread()
    settings.SANDBOX_BASE_URL = sandbox.url
    provider = SandboxProvider(sandbox.url)

    started = time.perf_counter()
    for i in range(args.leads):
        query = PersonQuery(first_name=f"Base{i}", last_name="Line", domain=f"base{i}.com")
        provider.person_enrich(query, idempotency_key=f"base-p-{i}")
        provider.company_enrich(f"base{i}.com", idempotency_key=f"base-c-{i}")
    baseline = time.perf_counter() - started

    result = leads_upsert(
        inputs=[
            lead_input_from_mapping(
                {"first_name": f"Bench{i}", "last_name": "Mark", "company_domain": f"bench{i}.com"}
            )
            for i in range(args.leads)
        ],
        source="bench",
        origin="bench",
    )
    runs = runs_create(lead_ids=result.created, trigger="bulk", enqueue=False)
    started = time.perf_counter()
    for run in runs:
        run_execute(run_id=run.id)
    measured = time.perf_counter() - started
    sandbox.stop()

    per_lead_base = baseline / args.leads * 1000
    per_lead = measured / args.leads * 1000
    print(f"leads: {args.leads}")
    print(f"baseline (bare sandbox calls): {per_lead_base:.2f} ms/lead")
    print(f"pipeline (run_execute):        {per_lead:.2f} ms/lead")
    print(f"ratio pipeline/baseline:       {measured / baseline:.2f}x")


if __name__ == "__main__":
    main()
