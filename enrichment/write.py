"""Writing what the waterfall found: merge each lead's candidates against its rows as they
are now, and write every lead of a batch in one transaction.

The leads of a batch are merged one after the other in memory, exactly as if each had
been written alone (a company two leads share sees the first lead's values when the
second is merged); only the statements are gathered: one per table, not one per value.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from common.db import rows_insert, rows_update
from enrichment.fields import COMPANY_FIELDS, FIELDS, LEAD_FIELDS
from enrichment.merge import Decision, MergeInput, Outcome, Thresholds, decide, value_key
from enrichment.models import EnrichmentRun, Observation
from enrichment.selectors import current_observations_of, current_values, proposals_of
from enrichment.signals import observations_flagged
from leads.models import Company, Lead
from providers.base import Candidate
from providers.models import ProviderCall


@dataclass
class Gathered:
    """What the waterfall collected for one lead before anything is written."""

    lead_candidates: list[Candidate] = field(default_factory=list)
    company_candidates: list[Candidate] = field(default_factory=list)
    calls: dict[tuple[str, str], ProviderCall] = field(default_factory=dict)
    misses: int = 0
    # Questions a provider answered, hit or miss (not counting the ones that failed).
    answered: int = 0


@dataclass
class Proposal:
    """One lead's gathered values, from a run or (run None) from a provider's callback."""

    lead_id: int
    gathered: Gathered
    run: EnrichmentRun | None = None


def _stated_at(call: ProviderCall | None) -> datetime | None:
    """When the vendor said what `call` returned, if not just now: an answer the ledger
    served again was bought with the call it was served from, and is only as fresh as
    that. Dated now, a reused answer 60 days old would pass for fresh for another full
    period, and the refresh would come that much late."""
    if call is None or call.cached_from_id is None:
        return None
    # The ledger hands its served rows over with their source attached: no query here.
    return call.cached_from.created_at


class LeadGone(Exception):
    """The lead was deleted or erased while its values were being looked up."""


def thresholds() -> dict[str, Thresholds]:
    return {
        name: Thresholds(spec.accept_threshold, spec.review_floor) for name, spec in FIELDS.items()
    }


def company_domain(subject: Lead | Company) -> str:
    if isinstance(subject, Company):
        return subject.domain
    return subject.company.domain if subject.company_id else ""


def proposals_write(proposals: Sequence[Proposal]) -> list[dict | Exception]:
    """Merge and write the proposals in one transaction; return, per proposal, the counts
    of what happened to its values (applied, pending_review, discarded, misses), or the
    LeadGone that stopped it.

    A run's counts are stored on it in the same transaction: they are the mark that its
    values are written, so a run whose worker was lost after this commit is not written
    twice when it is taken up again.
    """
    # No savepoint inside a caller's transaction: a failure here fails the caller's whole
    # transaction anyway, and the savepoint cost two round trips a run.
    with transaction.atomic(savepoint=False):
        return _Batch(proposals).write()


class _Batch:
    def __init__(self, proposals: Sequence[Proposal]) -> None:
        self.proposals = proposals
        self.now = timezone.now()
        self.thresholds = thresholds()
        self.new_rows: list[Observation] = []
        self.superseded_ids: set[int] = set()
        self.changed: dict[tuple[str, int], Lead | Company] = {}

    def write(self) -> list[dict | Exception]:
        # Locked, in id order so two batches never wait on each other in a circle, so that
        # two runs for one company (or one lead) merge one after the other.
        leads = Lead.objects.select_for_update().in_bulk(
            sorted({p.lead_id for p in self.proposals})
        )
        run_ids = [p.run.id for p in self.proposals if p.run is not None]
        written = dict(
            EnrichmentRun.objects.filter(id__in=run_ids)
            .exclude(summary={})
            .values_list("id", "summary")
        )
        company_ids = sorted(
            {
                leads[p.lead_id].company_id
                for p in self.proposals
                if p.lead_id in leads and leads[p.lead_id].company_id
            }
        )
        companies = Company.objects.select_for_update().in_bulk(company_ids)
        for lead in leads.values():
            if lead.company_id in companies:
                lead.company = companies[lead.company_id]
        self.observations = current_observations_of(lead_ids=leads, company_ids=companies)
        proposals = proposals_of(lead_ids=leads, company_ids=companies)
        self.rejected = proposals[Observation.State.REJECTED]
        self.unchanged = {
            Outcome.PENDING_REVIEW: proposals[Observation.State.PENDING_REVIEW],
            Outcome.DISCARDED: proposals[Observation.State.DISCARDED],
        }
        self.email_owners = self._email_owners(leads)

        results: list[dict | Exception] = []
        marked: list[EnrichmentRun] = []
        for proposal in self.proposals:
            lead = leads.get(proposal.lead_id)
            if lead is None:
                results.append(LeadGone(f"lead {proposal.lead_id} no longer exists"))
                continue
            if proposal.run is not None and proposal.run.id in written:
                # An earlier attempt of this run wrote, then was lost before it finished
                # (its worker killed): writing again would propose every value twice.
                results.append(written[proposal.run.id])
                continue
            summary = self._merge(lead, proposal)
            results.append(summary)
            if proposal.run is not None:
                proposal.run.summary = summary
                marked.append(proposal.run)
        self._flush()
        rows_update(marked, ["summary"])
        return results

    def _email_owners(self, leads: dict[int, Lead]) -> dict[str, int]:
        """Which lead holds each email a proposal might apply (one query for the batch)."""
        emails = {
            c.value
            for p in self.proposals
            for c in p.gathered.lead_candidates
            if c.field == "email" and isinstance(c.value, str)
        }
        owners = dict(Lead.objects.filter(email__in=emails).values_list("email", "id"))
        owners.update({lead.email: lead.id for lead in leads.values() if lead.email})
        return owners

    def _merge(self, lead: Lead, proposal: Proposal) -> dict:
        gathered = proposal.gathered
        summary = {"applied": 0, "pending_review": 0, "discarded": 0, "misses": gathered.misses}
        subjects: list[tuple[str, Lead | Company, list[Candidate]]] = [
            ("lead", lead, gathered.lead_candidates)
        ]
        if lead.company_id and gathered.company_candidates:
            subjects.append(("company", lead.company, gathered.company_candidates))
        for kind, subject, candidates in subjects:
            observations = self.observations[kind][subject.id]
            decisions = decide(
                MergeInput(
                    current=current_values(subject, observations),
                    candidates=candidates,
                    thresholds=self.thresholds,
                    rejected=frozenset(self.rejected[kind][subject.id]),
                    company_domain=company_domain(subject),
                )
            )
            for decision in decisions:
                candidate = decision.candidate
                key = (candidate.field, candidate.source, value_key(candidate.value))
                if kind == "lead":
                    decision = self._unique_email_guard(lead, decision)
                # The same value from the same source already waiting for a reviewer, or
                # already set aside, is counted, not written again: a second copy would only
                # lengthen the queue and the history (a rerun answered from the cache).
                held = self.unchanged.get(decision.outcome)
                if held is None:
                    self._record(kind, subject, decision, proposal, observations)
                elif key not in held[kind][subject.id]:
                    held[kind][subject.id].add(key)
                    self._record(kind, subject, decision, proposal, observations)
                if candidate.confidence is not None:
                    summary[decision.outcome.value] += 1
            subject.last_enriched_at = self.now
            self.changed[(kind, subject.id)] = subject
        return summary

    def _unique_email_guard(self, lead: Lead, decision: Decision) -> Decision:
        """An email already on another lead is evidence, never a second owner of it."""
        value = decision.candidate.value
        if not (
            decision.candidate.field == "email"
            and decision.outcome is Outcome.APPLIED
            and value != lead.email
        ):
            return decision
        owner = self.email_owners.get(value)
        if owner is None or owner == lead.id:
            return decision
        return Decision(
            decision.candidate,
            Outcome.DISCARDED,
            decision.confidence,
            f"already the email of lead {owner}",
        )

    def _record(
        self,
        kind: str,
        subject: Lead | Company,
        decision: Decision,
        proposal: Proposal,
        observations: dict[str, Observation],
    ) -> None:
        candidate = decision.candidate
        spec = FIELDS[candidate.field]
        call = proposal.gathered.calls.get((candidate.source, candidate.field))
        observed_at = _stated_at(call) or self.now
        row = Observation(
            **{kind: subject},
            field=candidate.field,
            value=candidate.value,
            confidence=decision.confidence,
            verification=candidate.verification,
            source=candidate.source,
            provider_call=call,
            run=proposal.run,
            state=decision.outcome.value,
            reason=decision.reason[:255],
            observed_at=observed_at,
            expires_at=observed_at + timedelta(days=spec.fresh_for_days),
        )
        if decision.outcome is Outcome.APPLIED:
            if candidate.confidence is not None:
                if candidate.field == "email" and subject.email:
                    self.email_owners.pop(subject.email, None)
                setattr(subject, spec.column, candidate.value)
                if candidate.field == "email":
                    self.email_owners[candidate.value] = subject.id
            if candidate.field == "email" and candidate.verification:
                subject.email_verification = candidate.verification
            previous = observations.get(candidate.field)
            if previous is not None and previous.state == Observation.State.APPLIED:
                previous.state = Observation.State.SUPERSEDED
                if previous.pk is not None:
                    self.superseded_ids.add(previous.pk)
            observations[candidate.field] = row
        self.new_rows.append(row)

    def _flush(self) -> None:
        if self.superseded_ids:
            Observation.objects.filter(id__in=self.superseded_ids).update(
                state=Observation.State.SUPERSEDED
            )
        rows_insert(self.new_rows)
        created = self.new_rows
        for kind, model, names in (
            ("lead", Lead, LEAD_FIELDS),
            ("company", Company, COMPANY_FIELDS),
        ):
            subjects = [s for (k, _), s in self.changed.items() if k == kind]
            if not subjects:
                continue
            columns = {FIELDS[name].column for name in names} | {"last_enriched_at"}
            if kind == "lead":
                columns.add("email_verification")
            if any(f.name == "updated_at" for f in model._meta.fields):
                for subject in subjects:
                    subject.updated_at = self.now
                columns.add("updated_at")
            rows_update(subjects, sorted(columns))
        if any(row.state == Observation.State.PENDING_REVIEW for row in created):
            observations_flagged.send(sender=Observation, observations=created)
