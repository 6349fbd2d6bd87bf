"""`manage.py enrich (--lead ID ... | --all | --stale) [--sync | --wait]`."""

import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from enrichment.estimates import enrichment_estimate
from enrichment.fields import FIELDS
from enrichment.models import EnrichmentRun, Observation
from enrichment.services import run_execute, runs_create
from leads.models import Lead


class Command(BaseCommand):
    help = (
        "Enrich leads. By default the runs are queued for the workers and the command "
        "returns; --wait shows their progress until they finish; --sync runs the pipeline "
        "in this process with no worker or broker."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--lead", type=int, nargs="+", metavar="ID", help="Lead ids.")
        which.add_argument("--all", action="store_true", help="Every lead.")
        which.add_argument(
            "--stale",
            action="store_true",
            help="Leads with a field whose data passed its freshness threshold, or never enriched.",
        )
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--sync", action="store_true", help="Run here, one lead at a time.")
        how.add_argument("--wait", action="store_true", help="Queue, then show progress.")
        how.add_argument(
            "--dry-run",
            action="store_true",
            help="Spend nothing: print how many leads would go to which provider and the "
            "credits expected.",
        )
        parser.add_argument(
            "--fields",
            nargs="+",
            choices=sorted(FIELDS),
            default=[],
            help="Only these fields (default: all).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=3600,
            help="With --wait: give up waiting after this many seconds (default 3600).",
        )

    def handle(self, *args, **options):
        lead_ids = self._lead_ids(options)
        if not lead_ids:
            self.stdout.write("No leads to enrich.")
            return
        if options["dry_run"]:
            self._estimate(lead_ids, options["fields"])
            return
        runs = runs_create(
            lead_ids=lead_ids,
            trigger=EnrichmentRun.Trigger.MANUAL,
            fields=options["fields"],
            description="manage.py enrich",
            enqueue=not options["sync"],
        )
        skipped_busy = len(lead_ids) - len(runs)
        if skipped_busy:
            self.stdout.write(f"{skipped_busy} lead(s) already have a run in flight.")
        run_ids = [run.id for run in runs]
        if options["sync"]:
            for index, run_id in enumerate(run_ids, 1):
                run_execute(run_id=run_id)
                self._progress(index, len(run_ids))
            self._report(run_ids)
        elif options["wait"]:
            self._wait(run_ids, timeout=options["timeout"])
            self._report(run_ids)
        else:
            self.stdout.write(f"Queued {len(run_ids)} run(s) for the workers.")

    def _estimate(self, lead_ids: list[int], fields: list[str]) -> None:
        estimate = enrichment_estimate(lead_ids=lead_ids, fields=fields)
        self.stdout.write(f"Dry run for {estimate.leads} lead(s); nothing was spent.")
        for reason, count in sorted(estimate.skipped.items()):
            self.stdout.write(f"  skipped ({reason}): {count}")
        self.stdout.write(f"  answered from the cache: {estimate.cached}")
        for provider, credits in sorted(estimate.credits.items()):
            self.stdout.write(
                f"  {provider}: {estimate.person_lookups[provider]} person and "
                f"{estimate.company_lookups[provider]} company lookup(s), "
                f"about {credits:g} credit(s)"
            )
        if not estimate.credits:
            self.stdout.write("  no paid lookups")

    def _lead_ids(self, options) -> list[int]:
        if options["lead"]:
            found = set(Lead.objects.filter(id__in=options["lead"]).values_list("id", flat=True))
            missing = sorted(set(options["lead"]) - found)
            if missing:
                raise CommandError(f"No lead with id {', '.join(map(str, missing))}.")
            return list(options["lead"])
        leads = Lead.objects.all()
        if options["stale"]:
            expired = Observation.objects.filter(
                state__in=Observation.CURRENT_STATES,
                expires_at__lte=timezone.now(),
                lead__isnull=False,
            ).values("lead_id")
            leads = leads.filter(id__in=expired) | leads.filter(last_enriched_at__isnull=True)
        return list(leads.values_list("id", flat=True))

    def _wait(self, run_ids: list[int], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        runs = EnrichmentRun.objects.filter(id__in=run_ids)
        while True:
            finished = runs.filter(state__in=EnrichmentRun.TERMINAL_STATES).count()
            self._progress(finished, len(run_ids))
            if finished == len(run_ids):
                return
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Gave up waiting after {timeout:.0f}s with {finished}/{len(run_ids)} "
                    "done. Is a worker running (celery -A config worker)?"
                )
            time.sleep(0.5)

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def _report(self, run_ids: list[int]) -> None:
        counts: dict[str, int] = {}
        for state in EnrichmentRun.objects.filter(id__in=run_ids).values_list("state", flat=True):
            counts[state] = counts.get(state, 0) + 1
        self.stdout.write(" / ".join(f"{state} {n}" for state, n in sorted(counts.items())))
