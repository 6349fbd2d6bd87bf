"""Scheduled refresh: find the leads whose data passed its freshness threshold and buy
again only what expired and is not locked, at a bounded pace.

Every field's value is an Observation whose `expires_at` was set from the field's
freshness when it was written (enrichment.fields: 90 days by default, email 30). The
selection walks the partial index on `expires_at` (current values only) in keyset order,
`(expires_at, id)`, so each chunk is an index range scan however many leads there are,
and the oldest expiry is refreshed first. A value counts when it is the newest current
one of its field, came from a provider (a manual or approved value is a lock), and no run
has asked for that field since it expired (within ENRICHMENT_REFRESH_RETRY_DAYS, so a
field no provider can renew is not asked again at every tick). A company's expired
fields go to one of its leads: the one whose run wrote them.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from enrichment.fields import FIELDS
from enrichment.models import EnrichmentJob, EnrichmentRun, Observation
from enrichment.selectors import MANUAL_SOURCE
from enrichment.services import _send
from leads.models import Lead

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000
_IN_FLIGHT = (EnrichmentRun.State.QUEUED, EnrichmentRun.State.RUNNING)
_FIELD_ORDER = {name: index for index, name in enumerate(FIELDS)}


@dataclass(frozen=True)
class ExpiredValue:
    """One current provider value past its expiry: of a lead, or of a company."""

    id: int
    expires_at: datetime
    lead_id: int | None
    company_id: int | None
    field: str
    run_id: int | None


def _expired_values(now: datetime):
    newer = Observation.objects.filter(
        field=OuterRef("field"), state__in=Observation.CURRENT_STATES
    ).filter(
        Q(observed_at__gt=OuterRef("observed_at"))
        | Q(observed_at=OuterRef("observed_at"), id__gt=OuterRef("id"))
    )
    return (
        # state "applied" only: an approved value is a lock. The index covers both states.
        Observation.objects.filter(state=Observation.State.APPLIED, expires_at__lte=now)
        .exclude(source=MANUAL_SOURCE)
        .exclude(Exists(newer.filter(lead_id=OuterRef("lead_id"))))
        .exclude(Exists(newer.filter(company_id=OuterRef("company_id"))))
    )


def expired_value_chunks(
    *, now: datetime, chunk_size: int = CHUNK_SIZE
) -> Iterator[list[ExpiredValue]]:
    """Yield the expired current provider values in chunks, oldest expiry first.

    Keyset pagination on (expires_at, id): a chunk starts where the last one ended, with
    `expires_at >= last` so the database starts its index range scan there.
    """
    after: ExpiredValue | None = None
    while True:
        values = _expired_values(now)
        if after is not None:
            values = values.filter(expires_at__gte=after.expires_at).filter(
                Q(expires_at__gt=after.expires_at) | Q(id__gt=after.id)
            )
        rows = values.order_by("expires_at", "id").values_list(
            "id", "expires_at", "lead_id", "company_id", "field", "run_id"
        )[:chunk_size]
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # The planner expects many expired rows and picks a parallel scan, whose
                # workers take longer to start (~50 ms) than this LIMIT walk of the index
                # takes alone (~7 ms at 1M leads): one process is faster here.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            chunk = [ExpiredValue(*row) for row in rows]
        if not chunk:
            return
        yield chunk
        if len(chunk) < chunk_size:
            return
        after = chunk[-1]


def _by_lead(chunk: list[ExpiredValue]) -> dict[int, dict[str, datetime]]:
    """Return {lead id: {field: expired at}}; company values go to the lead whose run wrote
    them, or else to the company's first lead."""
    run_ids = {v.run_id for v in chunk if v.company_id and v.run_id}
    lead_of_run = dict(EnrichmentRun.objects.filter(id__in=run_ids).values_list("id", "lead_id"))
    orphans = {v.company_id for v in chunk if v.company_id and v.run_id not in lead_of_run}
    first_lead = dict(
        Lead.objects.filter(company_id__in=orphans)
        .values("company_id")
        .annotate(first=Min("id"))
        .values_list("company_id", "first")
    )
    wanted: dict[int, dict[str, datetime]] = {}
    for value in chunk:
        if value.lead_id:
            lead_id = value.lead_id
        else:
            lead_id = lead_of_run.get(value.run_id) or first_lead.get(value.company_id)
            if lead_id is None:
                # A company nobody works with any more: nothing to refresh it for.
                continue
        wanted.setdefault(lead_id, {})[value.field] = value.expires_at
    return wanted


def leads_stale(
    *, now: datetime, limit: int | None = None, chunk_size: int = CHUNK_SIZE
) -> dict[int, list[str]]:
    """Return up to `limit` leads due for a refresh, each with the fields to buy again.

    Leads with a run in flight are left for a later tick; a field some run asked for since
    it expired (all fields, or that one) is not due until ENRICHMENT_REFRESH_RETRY_DAYS
    after that run.
    """
    tried_since = now - timedelta(days=settings.ENRICHMENT_REFRESH_RETRY_DAYS)
    picked: dict[int, list[str]] = {}
    for chunk in expired_value_chunks(now=now, chunk_size=chunk_size):
        wanted = _by_lead(chunk)
        runs: dict[int, list[tuple[datetime, list[str], str]]] = {}
        for lead_id, created_at, fields, state in EnrichmentRun.objects.filter(
            Q(created_at__gte=tried_since) | Q(state__in=_IN_FLIGHT), lead_id__in=wanted
        ).values_list("lead_id", "created_at", "fields", "state"):
            runs.setdefault(lead_id, []).append((created_at, fields, state))
        for lead_id, fields in wanted.items():
            lead_runs = runs.get(lead_id, [])
            if any(state in _IN_FLIGHT for _, _, state in lead_runs):
                continue
            due = [
                name
                for name, expired_at in fields.items()
                if not any(
                    created_at >= expired_at and (not asked or name in asked)
                    for created_at, asked, _ in lead_runs
                )
            ]
            if not due:
                continue
            known = picked.setdefault(lead_id, [])
            known.extend(name for name in due if name not in known)
            if limit is not None and len(picked) >= limit:
                return picked
    return picked


def refresh_job_create(
    *, now: datetime | None = None, max_queued: int | None = None, chunk_size: int = CHUNK_SIZE
) -> EnrichmentJob | None:
    """Queue a refresh job: one run per stale lead with only its expired, unlocked fields.

    At most `max_queued` (ENRICHMENT_REFRESH_MAX_QUEUED) refresh runs wait in the queue at
    once: each tick tops the queue up, so a backlog drains at the workers' pace. Returns
    None when nothing is due or the queue is full.
    """
    now = now or timezone.now()
    if max_queued is None:
        max_queued = settings.ENRICHMENT_REFRESH_MAX_QUEUED
    waiting = EnrichmentRun.objects.filter(
        trigger=EnrichmentRun.Trigger.REFRESH, state=EnrichmentRun.State.QUEUED
    ).count()
    room = max_queued - waiting
    if room <= 0:
        logger.info("refresh: %s refresh runs still waiting; nothing added", waiting)
        return None
    stale = leads_stale(now=now, limit=room, chunk_size=chunk_size)
    if not stale:
        return None
    with transaction.atomic():
        # Locked, then checked again: a refresh running at the same time (or a lead
        # created a run meanwhile) waits here and then sees the runs this one wrote.
        present = set(
            Lead.objects.select_for_update()
            .filter(id__in=stale)
            .order_by("id")
            .values_list("id", flat=True)
        )
        present -= set(
            EnrichmentRun.objects.filter(lead_id__in=present, state__in=_IN_FLIGHT).values_list(
                "lead_id", flat=True
            )
        )
        lead_ids = [lead_id for lead_id in stale if lead_id in present]
        if not lead_ids:
            return None
        job = EnrichmentJob.objects.create(
            kind=EnrichmentJob.Kind.REFRESH,
            description=f"Scheduled refresh of {len(lead_ids)} lead(s)",
            total=len(lead_ids),
        )
        runs = EnrichmentRun.objects.bulk_create(
            EnrichmentRun(
                lead_id=lead_id,
                job=job,
                trigger=EnrichmentRun.Trigger.REFRESH,
                fields=sorted(stale[lead_id], key=_FIELD_ORDER.__getitem__),
                available_at=now,
                enqueued_at=now,
            )
            for lead_id in lead_ids
        )
        Lead.objects.filter(id__in=lead_ids).update(
            enrichment_status=Lead.EnrichmentStatus.QUEUED, updated_at=now
        )
        run_ids = [run.id for run in runs]
        transaction.on_commit(lambda: _send(run_ids))
    logger.info("refresh: job %s queued %s run(s)", job.id, len(run_ids))
    return job
