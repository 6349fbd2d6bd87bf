"""Take the README's screenshots (docs/*.png) of the lead page, the review queue and the
dashboard, on demo data enriched through the real sandbox provider over HTTP.

    .venv/bin/python docs/screenshots.py [--out docs]

Everything happens in a temporary SQLite database: the demo leads are loaded, enriched
in this process (the sandbox answers as a vendor would), and two weeks of history is
spread over their runs and provider calls so the dashboard has something to chart. Then
`manage.py runserver` serves it and Chromium (/usr/bin/chromium, headless) takes the
pictures.
"""

import argparse
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# A throwaway database, so a throwaway password.
PASSWORD = secrets.token_urlsafe(12)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare(env: dict) -> int:
    """Fill the database; return the id of the lead to photograph."""
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db.models import F
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import user_role_set
    from enrichment.models import EnrichmentRun, Observation
    from enrichment.review import field_set_manually
    from enrichment.services import run_execute, runs_create
    from leads.demo_data import demo_rows
    from leads.models import Lead
    from leads.services import lead_input_from_mapping, leads_upsert
    from providers.models import ProviderCall, ProviderConfig
    from providers.sandbox.server import start_in_thread

    call_command("migrate", interactive=False, verbosity=0)
    users = {}
    for username, role, first, last in (
        ("maya", Role.SDR, "Maya", "Lindqvist"),
        ("rita", Role.REVIEWER, "Rita", "Okoye"),
        ("admin", Role.ADMIN, "Ops", "Admin"),
    ):
        user = get_user_model().objects.create_user(
            username, password=PASSWORD, first_name=first, last_name=last
        )
        user_role_set(user=user, role=role)
        users[role] = user

    result = leads_upsert(
        inputs=[lead_input_from_mapping(row) for row in demo_rows(200)],
        source="demo",
        origin="demo",
    )
    lead_ids = result.created
    rng = random.Random(4)
    Lead.objects.filter(id__in=rng.sample(lead_ids, 90)).update(owner=users[Role.SDR])

    server = start_in_thread(latency_ms=0)
    from django.conf import settings

    settings.SANDBOX_BASE_URL = server.url
    # Leave a handful without enrichment: the Find Email button is for them.
    untouched = set(rng.sample(lead_ids, 12))
    for run in runs_create(
        lead_ids=[i for i in lead_ids if i not in untouched], trigger="create", enqueue=False
    ):
        run_execute(run_id=run.id)
    server.stop()
    # Budgets set afterwards: in this script two weeks of calls really happened just now.
    ProviderConfig.objects.create(
        provider="sandbox", daily_credit_budget=Decimal(40), monthly_credit_budget=Decimal(900)
    )

    # Two weeks of history: spread finished runs and paid calls over the past 14 days.
    now = timezone.now()
    for run in EnrichmentRun.objects.all():
        shift = timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 8))
        EnrichmentRun.objects.filter(id=run.id).update(
            created_at=F("created_at") - shift, finished_at=F("finished_at") - shift
        )
        Observation.objects.filter(run=run).update(observed_at=F("observed_at") - shift)
        Lead.objects.filter(id=run.lead_id).update(last_enriched_at=F("last_enriched_at") - shift)
    for call in ProviderCall.objects.all():
        ProviderCall.objects.filter(id=call.id).update(
            created_at=now - timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 8))
        )
    dead = EnrichmentRun.objects.filter(state="not_found").order_by("id")[:3]
    for run in dead:
        EnrichmentRun.objects.filter(id=run.id).update(
            state="dead", last_error="gave up after 3 attempts: sandbox answered 503"
        )

    # The lead to show: no email yet (Find Email is offered) but one suggested, other
    # fields found, and one set by hand.
    suggested_email = Observation.objects.filter(
        field="email", state="pending_review", lead__email__isnull=True
    ).values("lead_id")
    lead = (
        Lead.objects.filter(id__in=suggested_email, company__name__gt="")
        .exclude(job_title="")
        .order_by("id")
        .first()
    ) or Lead.objects.filter(observations__state="pending_review").order_by("id").first()
    Lead.objects.filter(id=lead.id).update(owner=users[Role.SDR])
    field_set_manually(
        subject=lead, field="location", value="Berlin, Germany", user=users[Role.SDR]
    )
    return lead.id


def _serve(env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the web server did not come up")


def _shoot(base: str, lead_id: int, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

        def signed_in(username: str):
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            return page

        page = signed_in("rita")
        page.goto(f"{base}/leads/{lead_id}/")
        page.locator("details.history").first.evaluate("d => d.open = true")
        page.screenshot(path=str(out / "lead-page.png"), full_page=True)
        page.set_viewport_size({"width": 1600, "height": 900})
        page.goto(f"{base}/admin/enrichment/reviewitem/")
        # The queue reads best with the admin's app sidebar folded away.
        page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        page.reload()
        page.screenshot(path=str(out / "review-queue.png"))
        page.set_viewport_size({"width": 1360, "height": 900})
        page.goto(f"{base}/dashboard/")
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        page = signed_in("maya")
        page.screenshot(path=str(out / "lead-list.png"))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs"), help="Folder for the PNGs.")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leadsmith-shots-") as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "SQLITE_PATH": str(Path(tmp) / "db.sqlite3"),
            "ENRICH_ON_CREATE": "false",
            "DJANGO_DEBUG": "true",
            "LOG_LEVEL": "WARNING",
        }
        lead_id = _prepare(env)
        port = _free_port()
        server = _serve(env, port)
        try:
            _shoot(f"http://127.0.0.1:{port}", lead_id, out)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
