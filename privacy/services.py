"""GDPR operations: access export, erasure, and the retention of raw vendor payloads.

Every one of them writes an AuditLog row naming the person only by a hash.

- `lead_access_export` returns everything held about a person, with sources and dates.
- `lead_erase` removes the lead, its observations and runs, blanks the ledger payloads
  and lookup keys that identify them (the rows and their credits stay: they are the spend
  record), and suppresses every identity, hashed, so a re-import or a re-enrichment skips
  them with a clear reason.
- `provider_payloads_purge` drops the vendors' raw answers past the retention period,
  keeping the normalized candidates the cache still serves until its TTL (after which
  the cache purge drops those too).
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from enrichment.models import EnrichmentRun, Observation
from leads.models import Lead
from leads.normalize import identity_hash
from leads.services import lead_identities, lead_suppress
from privacy.models import AuditLog
from providers.base import PersonQuery
from providers.ledger import lookup_key_hash
from providers.models import ProviderCall

logger = logging.getLogger(__name__)

ERASURE_SUPPRESSION_REASON = "erased on the person's request (GDPR art. 17)"
ERASED_MARK = "erased on the person's request"
_PURGE_BATCH = 1000

_LEAD_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "linkedin_url",
    "phone",
    "job_title",
    "seniority",
    "department",
    "location",
    "email_verification",
    "enrichment_status",
    "score",
    "source",
    "legal_basis",
    "last_enriched_at",
    "created_at",
    "updated_at",
)
_COMPANY_FIELDS = (
    "domain",
    "name",
    "industry",
    "employee_range",
    "revenue_range",
    "hq_location",
    "technologies",
    "last_enriched_at",
)


@dataclass(frozen=True)
class ErasureResult:
    lead_id: int
    subject_hash: str
    suppressed_identities: int
    observations_deleted: int
    runs_deleted: int
    provider_calls_blanked: int


def _actor_label(actor: AbstractBaseUser | str | None) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:150]
    return actor.get_username()[:150]


def _audit(
    *,
    action: str,
    actor: AbstractBaseUser | str | None,
    subject_hash: str = "",
    reason: str = "",
    counts: dict,
) -> AuditLog:
    return AuditLog.objects.create(
        action=action,
        actor=actor if isinstance(actor, AbstractBaseUser) else None,
        actor_label=_actor_label(actor),
        subject_hash=subject_hash,
        reason=reason[:255],
        counts=counts,
    )


def lead_subject_hash(lead: Lead) -> str:
    """Return the hash that names the person in the audit log: of their strongest identity."""
    identities = lead_identities(lead)
    return identity_hash(identities[0][1]) if identities else ""


def _lookup_key_hashes(lead: Lead) -> dict[str, str]:
    """Return {hash: kind} of every ledger key the person can have been looked up by."""
    query = PersonQuery(
        email=lead.email or "",
        first_name=lead.first_name,
        last_name=lead.last_name,
        domain=lead.company.domain if lead.company_id else "",
        linkedin_url=lead.linkedin_url,
    )
    return {lookup_key_hash(key): key.split(":", 1)[0] for key in query.lookup_keys()}


def _person_calls(lead: Lead) -> tuple[QuerySet[ProviderCall], dict[str, str]]:
    """Return the ledger rows about the person: asked by one of their keys, or the source
    of one of their observations (a verified pattern guess), or a reuse of either."""
    hashes = _lookup_key_hashes(lead)
    source_ids = list(
        Observation.objects.filter(lead=lead, provider_call__isnull=False).values_list(
            "provider_call_id", flat=True
        )
    )
    asked = Q(lookup_key_hash__in=list(hashes)) | Q(id__in=source_ids)
    origin_ids = list(ProviderCall.objects.filter(asked).values_list("id", flat=True))
    calls = ProviderCall.objects.filter(asked | Q(cached_from_id__in=origin_ids))
    return calls, hashes


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _plain(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def lead_access_export(*, lead: Lead, actor: AbstractBaseUser | str | None) -> dict:
    """Return everything held about the lead's person, with sources and dates (GDPR
    art. 15), as JSON-ready data, and write it to the audit log."""
    lead = Lead.objects.select_related("company", "owner").get(id=lead.id)
    company = lead.company if lead.company_id else None
    observations = [
        {
            "field": o.field,
            "value": o.value,
            "source": o.source,
            "state": o.state,
            "confidence": o.confidence,
            "verification": o.verification,
            "reason": o.reason,
            "observed_at": _iso(o.observed_at),
            "expires_at": _iso(o.expires_at),
            "provider_call_id": o.provider_call_id,
            "run_id": o.run_id,
        }
        for o in Observation.objects.filter(lead=lead).order_by("observed_at", "id")
    ]
    calls, hashes = _person_calls(lead)
    provider_calls = [
        {
            "id": call.id,
            "provider": call.provider,
            "operation": call.operation,
            "asked_by": hashes.get(call.lookup_key_hash, "observation source"),
            "outcome": call.outcome,
            "http_status": call.http_status,
            "at": _iso(call.created_at),
            "answer_held": call.response is not None,
        }
        for call in calls.order_by("created_at", "id")
    ]
    runs = [
        {
            "id": run.id,
            "trigger": run.trigger,
            "state": run.state,
            "fields": run.fields,
            "created_at": _iso(run.created_at),
            "finished_at": _iso(run.finished_at),
            "outcome": (run.summary or {}).get("reason", ""),
        }
        for run in EnrichmentRun.objects.filter(lead=lead).order_by("created_at", "id")
    ]
    data = {
        "exported_at": _iso(timezone.now()),
        "controller_note": (
            "Everything Leadsmith holds about this person: the record, where each value "
            "came from and when, the provider lookups made for them, and the enrichment runs."
        ),
        "lead": {
            "id": lead.id,
            **{name: _plain(getattr(lead, name)) for name in _LEAD_FIELDS},
            "owner": lead.owner.get_username() if lead.owner_id else None,
        },
        "company": (
            {name: _plain(getattr(company, name)) for name in _COMPANY_FIELDS} if company else None
        ),
        "observations": observations,
        "provider_calls": provider_calls,
        "runs": runs,
    }
    _audit(
        action=AuditLog.Action.EXPORT,
        actor=actor,
        subject_hash=lead_subject_hash(lead),
        counts={
            "observations": len(observations),
            "provider_calls": len(provider_calls),
            "runs": len(runs),
        },
    )
    return data


def lead_erase(*, lead: Lead, actor: AbstractBaseUser | str | None, reason: str) -> ErasureResult:
    """Erase the lead's person (GDPR art. 17) in one transaction; see the module docstring.

    Raises Lead.DoesNotExist when the lead is already gone.
    """
    with transaction.atomic():
        # Locked: a run writing this lead's values right now finishes first or finds
        # nothing (enrichment locks the lead row the same way before it writes).
        lead = (
            Lead.objects.select_for_update(of=("self",)).select_related("company").get(id=lead.id)
        )
        lead_id = lead.id
        subject_hash = lead_subject_hash(lead)
        suppressed = lead_suppress(lead=lead, reason=ERASURE_SUPPRESSION_REASON)
        calls, _ = _person_calls(lead)
        # An in-flight row keeps its key until its call ends: the one-in-flight unique
        # index would refuse two blank keys; it holds no answer yet anyway.
        blanked = calls.exclude(outcome=ProviderCall.Outcome.PENDING).update(
            response=None, lookup_key_hash="", error=ERASED_MARK
        )
        observations, _ = Observation.objects.filter(lead=lead).delete()
        runs, _ = EnrichmentRun.objects.filter(lead=lead).delete()
        lead.delete()
        _audit(
            action=AuditLog.Action.ERASE,
            actor=actor,
            subject_hash=subject_hash,
            reason=reason,
            counts={
                "suppressed_identities": suppressed,
                "observations": observations,
                "runs": runs,
                "provider_calls_blanked": blanked,
            },
        )
    logger.info("erased lead %s (%s observations, %s runs)", lead_id, observations, runs)
    return ErasureResult(
        lead_id=lead_id,
        subject_hash=subject_hash,
        suppressed_identities=suppressed,
        observations_deleted=observations,
        runs_deleted=runs,
        provider_calls_blanked=blanked,
    )


def provider_payloads_purge(*, older_than: datetime, actor: str | None = None) -> int:
    """Drop the raw vendor answer from ledger rows made before `older_than`; return how
    many rows lost it. Their candidates stay until the cache can no longer serve them."""
    held = ProviderCall.objects.filter(created_at__lt=older_than, response__has_key="raw")
    purged = 0
    while rows := list(held.only("id", "response")[:_PURGE_BATCH]):
        for row in rows:
            row.response = {k: v for k, v in row.response.items() if k != "raw"}
            row.response["raw_purged_at"] = timezone.now().date().isoformat()
        purged += ProviderCall.objects.bulk_update(rows, ["response"])
    _audit(
        action=AuditLog.Action.RETENTION_PURGE,
        actor=actor,
        reason=f"raw vendor payloads older than {older_than.date().isoformat()}",
        counts={"provider_calls": purged},
    )
    if purged:
        logger.info("retention: dropped the raw payload of %s ledger row(s)", purged)
    return purged
