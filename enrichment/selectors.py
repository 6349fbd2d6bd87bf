"""Reads the pipeline and its callers need; no writes here."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from enrichment.email_patterns import companies_email_patterns
from enrichment.fields import COMPANY_FIELDS, FIELDS, LEAD_FIELDS
from enrichment.icp import icp_evaluate, icp_rules_active
from enrichment.merge import CurrentValue, value_key
from enrichment.models import EnrichmentRun, Observation
from leads.models import Company, Lead, Suppression
from leads.normalize import identity_hash, is_webmail_domain
from leads.services import lead_identities
from providers.base import PersonQuery

MANUAL_SOURCE = "manual"
# A column filled before any observation existed (import, API, an older version).
RECORD_SOURCE = "record"


def _fields_of(subject: Lead | Company) -> list[str]:
    return LEAD_FIELDS if isinstance(subject, Lead) else COMPANY_FIELDS


def current_observations(subject: Lead | Company) -> dict[str, Observation]:
    """Return the newest applied or approved observation of each field of the subject."""
    kind = "lead" if isinstance(subject, Lead) else "company"
    return current_observations_many(kind, [subject.id]).get(subject.id, {})


def current_observations_many(kind: str, ids: Iterable[int]) -> dict[int, dict[str, Observation]]:
    """`current_observations` for many leads or companies (`kind`) in one query."""
    by_kind = current_observations_of(**{f"{kind}_ids": ids})
    return by_kind[kind]


def current_observations_of(
    *, lead_ids: Iterable[int] = (), company_ids: Iterable[int] = ()
) -> dict[str, defaultdict[int, dict[str, Observation]]]:
    """`current_observations` for many leads and companies in one query, by kind ("lead",
    "company") and id."""
    newest: dict[str, defaultdict[int, dict[str, Observation]]] = {
        "lead": defaultdict(dict),
        "company": defaultdict(dict),
    }
    for observation in _observations_of(lead_ids, company_ids, Observation.CURRENT_STATES).order_by(
        "field", "-observed_at", "-id"
    ):
        kind, subject_id = _subject_of(observation)
        newest[kind][subject_id].setdefault(observation.field, observation)
    return newest


def _observations_of(lead_ids: Iterable[int], company_ids: Iterable[int], states):
    lead_ids, company_ids = set(lead_ids), set(company_ids)
    if not (lead_ids or company_ids):
        return Observation.objects.none()
    return Observation.objects.filter(
        Q(lead_id__in=lead_ids) | Q(company_id__in=company_ids), state__in=states
    )


def _subject_of(observation: Observation) -> tuple[str, int]:
    if observation.lead_id is not None:
        return "lead", observation.lead_id
    return "company", observation.company_id


def current_values(
    subject: Lead | Company, observations: dict[str, Observation]
) -> dict[str, CurrentValue]:
    """Return what each filled field holds now, with its source and whether it is locked."""
    values: dict[str, CurrentValue] = {}
    for name in _fields_of(subject):
        value = getattr(subject, FIELDS[name].column)
        if value in ("", None, []):
            continue
        observation = observations.get(name)
        if observation is None or value_key(observation.value) != value_key(value):
            values[name] = CurrentValue(value=value, source=RECORD_SOURCE)
            continue
        values[name] = CurrentValue(
            value=value,
            source=observation.source,
            confidence=observation.confidence,
            locked=observation_is_lock(observation),
        )
    return values


def observation_is_lock(observation: Observation) -> bool:
    return observation.state == Observation.State.APPROVED or observation.source == MANUAL_SOURCE


def fields_needing_data(
    subject: Lead | Company, wanted: list[str], observations: dict[str, Observation]
) -> list[str]:
    """Return the wanted fields that are not locked and not still fresh."""
    now = timezone.now()
    needing = []
    for name in wanted:
        observation = observations.get(name)
        if observation is not None and (
            observation_is_lock(observation) or observation.expires_at > now
        ):
            continue
        needing.append(name)
    return needing


def rejected_proposals(subject: Lead | Company) -> frozenset[tuple[str, str, str]]:
    kind = "lead" if isinstance(subject, Lead) else "company"
    proposals = proposals_of(**{f"{kind}_ids": [subject.id]})
    return frozenset(proposals[Observation.State.REJECTED][kind][subject.id])


def proposals_of(
    *, lead_ids: Iterable[int] = (), company_ids: Iterable[int] = ()
) -> dict[str, dict[str, defaultdict[int, set[tuple[str, str, str]]]]]:
    """Return the (field, source, value key) of the rejected, pending and discarded
    observations, by state, kind ("lead", "company") and id, in one query: a rejected value
    is never proposed again by its source, a pending or discarded one not written twice."""
    states = [
        Observation.State.REJECTED,
        Observation.State.PENDING_REVIEW,
        Observation.State.DISCARDED,
    ]
    found = {state: {"lead": defaultdict(set), "company": defaultdict(set)} for state in states}
    for lead_id, company_id, state, field_name, source, value in _observations_of(
        lead_ids, company_ids, states
    ).values_list("lead_id", "company_id", "state", "field", "source", "value"):
        kind, subject_id = ("lead", lead_id) if lead_id is not None else ("company", company_id)
        found[state][kind][subject_id].add((field_name, source, value_key(value)))
    return found


def lead_suppressions(leads: Sequence[Lead]) -> dict[int, Suppression]:
    """Return the suppression covering each lead's identity or company domain, in one query."""
    hashes_by_lead = {}
    for lead in leads:
        values = [value for _, value in lead_identities(lead)]
        if lead.company_id:
            values.append(lead.company.domain)
        hashes_by_lead[lead.id] = [identity_hash(value) for value in values]
    wanted = {h for hashes in hashes_by_lead.values() for h in hashes}
    if not wanted:
        return {}
    by_hash = {
        suppression.identifier_hash: suppression
        for suppression in Suppression.objects.filter(identifier_hash__in=wanted)
    }
    found = {}
    for lead_id, hashes in hashes_by_lead.items():
        suppression = next((by_hash[h] for h in hashes if h in by_hash), None)
        if suppression is not None:
            found[lead_id] = suppression
    return found


@dataclass
class LeadPlan:
    """What the gate decided for one lead: the fields to look for and how to ask."""

    query: PersonQuery
    lead_wanted: list[str]
    company_wanted: list[str]
    lead_current: dict[str, CurrentValue]
    company_current: dict[str, CurrentValue]
    skip_reason: str = ""


@dataclass
class GateContext:
    """What the gate reads, read once for a batch of leads."""

    lead_observations: dict[int, dict[str, Observation]]
    company_observations: dict[int, dict[str, Observation]]
    suppressions: dict[int, Suppression]
    icp_rules: list
    email_patterns: dict[int, list]

    @classmethod
    def read(cls, leads: Sequence[Lead]) -> "GateContext":
        observations = current_observations_of(
            lead_ids=[lead.id for lead in leads],
            company_ids=[lead.company_id for lead in leads if lead.company_id],
        )
        return cls(
            lead_observations=observations["lead"],
            company_observations=observations["company"],
            suppressions=lead_suppressions(leads),
            icp_rules=icp_rules_active(),
            email_patterns=companies_email_patterns(
                {lead.company_id: lead.company for lead in leads if lead.company_id}.values()
            ),
        )


def lead_plan(lead: Lead, wanted: list[str], context: GateContext | None = None) -> LeadPlan:
    """Run the gate for a lead: suppression, ICP fit, freshness and locks, something to
    look up. A batch passes its `context`, read once for all its leads."""
    if context is None:
        context = GateContext.read([lead])
    company = lead.company
    query = PersonQuery(
        email=lead.email or "",
        first_name=lead.first_name,
        last_name=lead.last_name,
        domain=company.domain if company else "",
        linkedin_url=lead.linkedin_url,
    )
    lead_observations = context.lead_observations.get(lead.id, {})
    plan = LeadPlan(
        query=query,
        lead_wanted=fields_needing_data(
            lead, [f for f in wanted if f in LEAD_FIELDS], lead_observations
        ),
        company_wanted=[],
        lead_current=current_values(lead, lead_observations),
        company_current={},
    )
    # Free-mail domains say nothing about a company: never buy firmographics for them.
    if company is not None and not is_webmail_domain(company.domain):
        company_observations = context.company_observations.get(company.id, {})
        plan.company_current = current_values(company, company_observations)
        plan.company_wanted = fields_needing_data(
            company, [f for f in wanted if f in COMPANY_FIELDS], company_observations
        )
    suppression = context.suppressions.get(lead.id)
    if suppression is not None:
        plan.skip_reason = f"suppressed: {suppression.reason}"
    elif not (icp := icp_evaluate(lead=lead, rules=context.icp_rules)).fits:
        plan.skip_reason = f"outside ICP: {'; '.join(icp.reasons)}"
    elif not plan.lead_wanted and not plan.company_wanted:
        plan.skip_reason = "every wanted field is still fresh or locked"
    elif not query.lookup_keys() and not plan.company_wanted:
        plan.skip_reason = "nothing to look up: no email, LinkedIn URL, or name with company domain"
    return plan


def runs_stale(*, grace: timedelta, hard_time_limit: int) -> list[EnrichmentRun]:
    """Return RUNNING runs older than any worker could still be working on them."""
    cutoff = timezone.now() - timedelta(seconds=hard_time_limit) - grace
    return list(
        EnrichmentRun.objects.filter(state=EnrichmentRun.State.RUNNING, started_at__lt=cutoff)
    )


def runs_unsent(*, requeue_after: timedelta) -> list[int]:
    """Return ids of QUEUED runs now due whose message is missing or was never taken."""
    now = timezone.now()
    return list(
        EnrichmentRun.objects.filter(state=EnrichmentRun.State.QUEUED, available_at__lte=now)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - requeue_after))
        .values_list("id", flat=True)
    )
