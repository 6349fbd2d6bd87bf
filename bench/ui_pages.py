"""How fast the lead list and the review queue answer with 100k leads and 100k values
waiting for review, beside a baseline measured in the same run.

Measured: the real pages (GET through Django's test client, logged in, templates rendered).
Baseline: the same pages built the default way: Django's counting Paginator and no
select_related on the lead list (one query per row for company and owner), and a stock
ModelAdmin for the queue (COUNT of the whole queue and of the table, DISTINCT over the
queue for the source filter, no list_select_related).

Runs on its own PostgreSQL database (`ls_bench_ui`, dropped and created):

    .venv/bin/python bench/ui_pages.py [--leads 100000] [--pending 100000]
        [--database-url postgres://postgres@127.0.0.1:5432/ls_bench_ui]
"""

import argparse
import os
import random
import statistics
import sys
import time
import types
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET_MS = 200
REPEATS = 15


def _recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _fill(leads: int, pending: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import user_role_set
    from enrichment.fields import FIELDS
    from enrichment.models import Observation
    from leads.demo_data import FIRST_NAMES, LAST_NAMES
    from leads.models import Company, Lead

    rng = random.Random(11)
    owners = []
    for name, role in (("rita", Role.REVIEWER), ("sam", Role.SDR), ("sky", Role.SDR)):
        user = get_user_model().objects.create_user(name)
        user_role_set(user=user, role=role)
        owners.append(user)

    companies = Company.objects.bulk_create(
        Company(domain=f"firm{i}.com", name=f"Firm {i} Ltd" if i % 3 else "") for i in range(2000)
    )
    statuses = [choice for choice, _ in Lead.EnrichmentStatus.choices]
    now = timezone.now()
    batch = []
    for i in range(leads):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = companies[i % len(companies)]
        batch.append(
            Lead(
                first_name=first,
                last_name=f"{last}{i % 997}",
                email=f"{first}.{last}{i}@{company.domain}".lower() if i % 5 else None,
                company=company,
                job_title=rng.choice(["", "VP of Sales", "Engineer", "Head of Data"]),
                enrichment_status=rng.choice(statuses),
                owner=rng.choice([None, *owners]),
                last_enriched_at=now - timedelta(days=rng.randint(0, 200)) if i % 4 else None,
            )
        )
        if len(batch) == 5000:
            Lead.objects.bulk_create(batch)
            batch = []
    Lead.objects.bulk_create(batch)
    lead_ids = list(Lead.objects.values_list("id", flat=True))

    lead_fields = [name for name, spec in FIELDS.items() if spec.entity.value == "lead"]
    sources = ["sandbox", "hunter", "pdl", "apollo", "pattern"]
    batch = []
    for i in range(pending):
        field = rng.choice(lead_fields)
        batch.append(
            Observation(
                lead_id=lead_ids[i % len(lead_ids)],
                field=field,
                value=f"proposed {field} {i}",
                confidence=round(rng.uniform(0.45, 0.89), 2),
                source=rng.choice(sources),
                state=Observation.State.PENDING_REVIEW,
                reason="below the accept threshold",
                observed_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 60)),
                expires_at=now + timedelta(days=90),
            )
        )
        if len(batch) == 5000:
            Observation.objects.bulk_create(batch)
            batch = []
    Observation.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _baseline_urls():
    """The pages as a default Django build would serve them, mounted under /baseline/."""
    from django.contrib import admin
    from django.core.paginator import Paginator
    from django.shortcuts import render
    from django.urls import path

    from config.urls import urlpatterns
    from enrichment.models import ReviewItem
    from enrichment.review_admin import ReviewItemAdmin
    from leads.forms import LeadFilterForm
    from leads.selectors import Page, leads_filtered, leads_with_pending_review

    def lead_list(request):
        form = LeadFilterForm(request.GET or None, owners=[], user=request.user)
        queryset = leads_filtered(form.filters()).select_related(None)
        django_page = Paginator(queryset, 50).page(form.page_number())
        page = Page(
            items=list(django_page.object_list),
            number=django_page.number,
            has_next=django_page.has_next(),
        )
        pending = leads_with_pending_review([lead.id for lead in page.items])
        return render(
            request,
            "leads/list.html",
            {
                "form": form,
                "page": page,
                "rows": [(lead, lead.id in pending) for lead in page.items],
                "sorts": [],
                "filters": form.filters(),
                "query_string": "",
            },
        )

    site = admin.AdminSite(name="baseline")

    class StockReviewAdmin(ReviewItemAdmin):
        """The same columns, with the defaults: count everything, join nothing."""

        list_filter = ["field", "source"]
        list_select_related = False
        paginator = Paginator
        show_full_result_count = True

    site.register(ReviewItem, StockReviewAdmin)
    module = types.ModuleType("bench_ui_urls")
    module.urlpatterns = [
        path("baseline/leads/", lead_list),
        path("baseline/admin/", site.urls),
        *urlpatterns,
    ]
    sys.modules[module.__name__] = module
    return module.__name__


def _time(client, url: str) -> float:
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ls_bench_ui")
    args = parser.parse_args()

    _recreate_database(args.database_url)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=args.database_url,
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="testserver",
        ENRICH_ON_CREATE="false",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _fill(args.leads, args.pending)
    print(
        f"{args.leads:,} leads and {args.pending:,} values waiting for review "
        f"loaded in {time.perf_counter() - started:.0f}s (PostgreSQL)"
    )

    settings.ROOT_URLCONF = _baseline_urls()

    client = Client()
    client.force_login(get_user_model().objects.get(username="rita"))
    pages = [
        ("lead list, first page", "/", "/baseline/leads/"),
        ("lead list, search 'okafor'", "/?q=okafor", "/baseline/leads/?q=okafor"),
        ("lead list, search, no match", "/?q=zzyzx", "/baseline/leads/?q=zzyzx"),
        ("lead list, status filter", "/?status=enriched", "/baseline/leads/?status=enriched"),
        ("lead list, waiting for review", "/?pending=on", "/baseline/leads/?pending=on"),
        ("lead list, sorted by name", "/?sort=name", "/baseline/leads/?sort=name"),
        ("lead list, page 500", "/?page=500", "/baseline/leads/?page=500"),
        (
            "review queue, first page",
            "/admin/enrichment/reviewitem/",
            "/baseline/admin/enrichment/reviewitem/",
        ),
        (
            "review queue, field = email",
            "/admin/enrichment/reviewitem/?field__exact=email",
            "/baseline/admin/enrichment/reviewitem/?field__exact=email",
        ),
        (
            "review queue, confidence 80%+",
            "/admin/enrichment/reviewitem/?confidence=high",
            "/baseline/admin/enrichment/reviewitem/?confidence__gte=0.8",
        ),
        (
            "review queue, source = pdl",
            "/admin/enrichment/reviewitem/?source=pdl",
            "/baseline/admin/enrichment/reviewitem/?source__exact=pdl",
        ),
    ]
    print(f"\nmedian of {REPEATS} requests, ms (budget {BUDGET_MS} ms)")
    print(f"{'page':32} {'Leadsmith':>10} {'baseline':>10} {'ratio':>7}")
    over = []
    timings = {}
    for label, url, baseline_url in pages:
        ours = _time(client, url)
        base = _time(client, baseline_url)
        timings[label] = (ours, base)
        print(f"{label:32} {ours:10.1f} {base:10.1f} {base / ours:6.1f}x")
        if ours > BUDGET_MS:
            over.append(label)
    print("\nall under budget" if not over else f"\nover budget: {', '.join(over)}")

    from _report import report

    slowest = max(timings, key=lambda label: timings[label][0])
    report(
        "ui_pages",
        {
            "slowest page": (round(timings[slowest][0], 1), "ms"),
            **{label: (round(ours, 1), "ms") for label, (ours, _) in timings.items()},
            "leads": (args.leads, "leads"),
            "values waiting for review": (args.pending, "values"),
        },
        baseline={
            "slowest page": (round(max(base for _, base in timings.values()), 1), "ms"),
            **{label: (round(base, 1), "ms") for label, (_, base) in timings.items()},
        },
        baseline_label="the same pages built the default way",
        ratio=round(statistics.median(base / ours for ours, base in timings.values()), 1),
        ratio_label="times faster (median over the pages)",
        targets={"slowest page": f"<= {BUDGET_MS}"},
        notes=f"slowest page: {slowest}",
    )


if __name__ == "__main__":
    main()
