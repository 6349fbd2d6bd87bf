"""Reads behind the lead list: search, filters, sorting and a page that never counts.

Sized for 100k leads and more: no COUNT(*) (the list knows only whether a next page
exists), "newest" sorts on the primary key (its index, and ids grow with creation time),
and per-row extras for the visible page come from one query over that page's ids.

The lead pages are where leads meet their enrichment, so unlike the rest of `leads` these
reads use enrichment's observations.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Concat, Lower
from django.utils import timezone

from enrichment.fields import COMPANY_FIELDS, FIELDS, LEAD_FIELDS
from enrichment.icp import icp_rules_active
from enrichment.merge import value_key
from enrichment.models import EnrichmentRun, Observation
from enrichment.selectors import (
    RECORD_SOURCE,
    GateContext,
    lead_plan,
    lead_suppressions,
    observation_is_lock,
)
from leads.models import Company, Lead
from leads.normalize import is_webmail_domain

T = TypeVar("T")

PAGE_SIZE = 50

SORTS: dict[str, tuple[str, tuple]] = {
    "newest": ("Newest first", ("-id",)),
    "oldest": ("Oldest first", ("id",)),
    # Case-insensitive, as people read names; lower(last_name) is indexed (leads 0004).
    "name": ("Name", (Lower("last_name"), Lower("first_name"), "id")),
    "company": ("Company", ("company__domain", "-id")),
    "enriched": ("Recently enriched", ("-last_enriched_at", "-id")),
    "updated": ("Recently updated", ("-updated_at", "-id")),
}
DEFAULT_SORT = "newest"


@dataclass(frozen=True)
class LeadFilters:
    """What the SDR asked the list for; empty values mean "any"."""

    query: str = ""
    status: str = ""
    owner_id: int | None = None
    unowned: bool = False
    stale: bool = False
    pending_review: bool = False
    sort: str = DEFAULT_SORT


def _folded(*parts) -> Lower:
    """The parts joined by spaces and lowercased: one text to look for a word in."""
    joined = []
    for part in parts:
        # Concat reads a missing value (a lead without email) as empty text.
        joined += [part, Value(" ")]
    return Lower(Concat(*joined[:-1], output_field=CharField()))


def _search(queryset: QuerySet[Lead], query: str) -> QuerySet[Lead]:
    """Every word must appear in the name or email, or in the company's domain or name.

    One LIKE on one lowercased text per row, and the companies matched on their own small
    table: a search that matches nothing reads every lead once (≈80 ms at 100k) instead of
    five UPPER(…) LIKE tests over a join; one that matches walks the newest leads and stops
    at a page. (A trigram index made the first 21 ms, and every lead write dearer: the
    import lost a third of its rate. See the README.)
    """
    words = query.lower().split()[:5]
    if not words:
        return queryset
    queryset = queryset.alias(person_text=_folded("first_name", "last_name", "email"))
    companies = Company.objects.alias(text=_folded("domain", "name"))
    for word in words:
        matching = companies.filter(text__contains=word).values("id")
        queryset = queryset.filter(Q(person_text__contains=word) | Q(company_id__in=matching))
    return queryset


def _lead_observations(state_filter: Q) -> Exists:
    """True when the lead itself has an observation matching `state_filter`.

    The lead's own values only: a company's values are shared by all its leads and wait
    in the review queue under the company. Alone (not OR-ed with the company's), this
    EXISTS is a merge semi-join along both primary-key orders that stops at a page.
    """
    return Exists(Observation.objects.filter(state_filter, lead=OuterRef("pk")))


def leads_filtered(filters: LeadFilters) -> QuerySet[Lead]:
    """Return the leads matching `filters`, sorted, with company and owner joined."""
    queryset = Lead.objects.select_related("company", "owner")
    if filters.query:
        queryset = _search(queryset, filters.query)
    if filters.status:
        queryset = queryset.filter(enrichment_status=filters.status)
    if filters.unowned:
        queryset = queryset.filter(owner__isnull=True)
    elif filters.owner_id is not None:
        queryset = queryset.filter(owner_id=filters.owner_id)
    if filters.stale:
        queryset = queryset.filter(
            _lead_observations(
                Q(state__in=Observation.CURRENT_STATES, expires_at__lte=timezone.now())
            )
        )
    if filters.pending_review:
        queryset = queryset.filter(_lead_observations(Q(state=Observation.State.PENDING_REVIEW)))
    _, ordering = SORTS.get(filters.sort, SORTS[DEFAULT_SORT])
    return queryset.order_by(*ordering)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list whose total is never counted."""

    items: list[T]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def start_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.items else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + len(self.items)


def page_of(queryset: QuerySet[T], number: int, *, size: int = PAGE_SIZE) -> Page[T]:
    """Return page `number` (from 1): one row more than a page tells if another follows.

    The page's ids are found first, on the narrow rows alone, and only those rows are then
    read whole with their joins: sorting or skipping 100k leads never drags their company
    and owner along (a deep page or a sort by name stays an index or a top-N scan).
    """
    number = max(number, 1)
    offset = (number - 1) * size
    ids = list(queryset.values_list("id", flat=True)[offset : offset + size + 1])
    rows = {row.id: row for row in queryset.filter(id__in=ids[:size]).order_by()}
    items = [rows[i] for i in ids[:size] if i in rows]
    return Page(items=items, number=number, has_next=len(ids) > size)


def leads_with_pending_review(lead_ids: list[int]) -> set[int]:
    """Return which of these leads have a value of their own waiting for review."""
    return set(
        Observation.objects.filter(lead_id__in=lead_ids, state=Observation.State.PENDING_REVIEW)
        .values_list("lead_id", flat=True)
        .distinct()
    )


# --- The lead page ----------------------------------------------------------------------


class Band:
    """How a value's confidence reads on the page (the CSS class of its badge)."""

    HIGH = "high"  # at or above the field's accept threshold
    REVIEW = "review"  # between the review floor and the accept threshold
    LOW = "low"  # below the review floor
    MANUAL = "manual"  # set or approved by a person: locked
    CHECK = "check"  # a deterministic check, no confidence
    NONE = "none"  # imported or typed in before Leadsmith tracked it


def confidence_band(field: str, confidence: float | None) -> str:
    if confidence is None:
        return Band.CHECK
    spec = FIELDS[field]
    if confidence >= spec.accept_threshold:
        return Band.HIGH
    if confidence >= spec.review_floor:
        return Band.REVIEW
    return Band.LOW


@dataclass(frozen=True)
class Suggestion:
    """A value waiting for review, once however many runs proposed it."""

    observation: Observation
    copies: int = 1


def _suggestions(pending: list[Observation]) -> list[Suggestion]:
    groups: dict[tuple[str, str], list[Observation]] = {}
    for observation in pending:
        groups.setdefault((observation.source, value_key(observation.value)), []).append(
            observation
        )
    # Newest first, as observations arrive; each group shown by its newest member.
    return [Suggestion(group[0], len(group)) for group in groups.values()]


@dataclass
class FieldRow:
    """One enrichable field as the lead page shows it: the fact, the suggestions, the past."""

    name: str
    label: str
    entity: str
    value: object
    source: str = ""
    confidence: float | None = None
    band: str = Band.NONE
    verification: str = ""
    verification_label: str = ""
    observed_at: object = None
    expires_at: object = None
    locked: bool = False
    current: Observation | None = None
    suggestions: list[Suggestion] = field(default_factory=list)
    history: list[Observation] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return self.value in ("", None, [])

    @property
    def display_value(self) -> str:
        if isinstance(self.value, list):
            return ", ".join(str(item) for item in self.value)
        return "" if self.value is None else str(self.value)

    @property
    def is_stale(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


@dataclass(frozen=True)
class NotEnriched:
    """Why Leadsmith is not enriching (or did not enrich) this lead."""

    kind: str  # suppressed, icp, budget, waiting, nothing_to_look_up, not_found, failed, skipped
    title: str
    detail: str


@dataclass
class LeadSheet:
    lead: Lead
    lead_fields: list[FieldRow]
    company_fields: list[FieldRow]
    run_in_flight: EnrichmentRun | None
    last_run: EnrichmentRun | None
    not_enriched: NotEnriched | None
    pending_count: int

    @property
    def email_row(self) -> FieldRow:
        return next(row for row in self.lead_fields if row.name == "email")

    @property
    def find_email_can_help(self) -> bool:
        """A name and a company domain to search with, and no valid or locked email yet."""
        return _find_email_can_help(self.lead, email_locked=lambda: self.email_row.locked)


def _find_email_can_help(lead: Lead, *, email_locked: Callable[[], bool]) -> bool:
    """The rule behind the Find Email button; `email_locked` is asked last, and only when
    the answer depends on it (it may cost a query)."""
    has_identity = bool(
        lead.first_name
        and lead.last_name
        and lead.company_id
        and not is_webmail_domain(lead.company.domain)
    )
    has_good_email = bool(lead.email) and lead.email_verification == "valid"
    return has_identity and not has_good_email and not email_locked()


# What the Find Email button's rule reads of a lead (and its company).
_FIND_EMAIL_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "email_verification",
    "company_id",
    "company__domain",
)


def leads_for_find_email() -> QuerySet[Lead]:
    """Leads with only the columns `find_email_can_help` reads, their company joined."""
    return Lead.objects.select_related("company").only(*_FIND_EMAIL_COLUMNS)


def find_email_can_help(lead: Lead) -> bool:
    """`LeadSheet.find_email_can_help` without reading the sheet: the lead and its company
    (from `leads_for_find_email`), and one query more only for a lead that has an email
    a person may have locked."""

    def email_locked() -> bool:
        if not lead.email:
            return False
        # The email row's current observation (see _field_rows): the newest applied or
        # approved one, locking only while the lead still holds its value.
        current = (
            Observation.objects.filter(
                lead=lead, field="email", state__in=Observation.CURRENT_STATES
            )
            .order_by("-observed_at", "-id")
            .only("value", "state", "source")
            .first()
        )
        return (
            current is not None
            and value_key(current.value) == value_key(lead.email)
            and observation_is_lock(current)
        )

    return _find_email_can_help(lead, email_locked=email_locked)


_VERIFICATION_LABELS = dict(Lead.EmailVerification.choices)


def _field_rows(
    subject: Lead | Company | None, names: list[str], observations: list[Observation]
) -> list[FieldRow]:
    by_field: dict[str, list[Observation]] = {}
    for observation in observations:
        by_field.setdefault(observation.field, []).append(observation)
    rows = []
    for name in names:
        spec = FIELDS[name]
        value = getattr(subject, spec.column) if subject is not None else None
        history = by_field.get(name, [])
        row = FieldRow(
            name=name,
            label=spec.label,
            entity=spec.entity.value,
            value=value,
            history=history,
            suggestions=_suggestions(
                [o for o in history if o.state == Observation.State.PENDING_REVIEW]
            ),
        )
        current = next((o for o in history if o.state in Observation.CURRENT_STATES), None)
        if not row.is_empty:
            if current is not None and value_key(current.value) == value_key(value):
                row.current = current
                row.source = current.source
                row.confidence = current.confidence
                row.observed_at = current.observed_at
                row.expires_at = current.expires_at
                row.locked = observation_is_lock(current)
                row.band = Band.MANUAL if row.locked else confidence_band(name, current.confidence)
            else:
                row.source = RECORD_SOURCE
            if name == "email":
                row.verification = subject.email_verification
                row.verification_label = _VERIFICATION_LABELS.get(row.verification, "")
        rows.append(row)
    return rows


def _gate_reason(reason: str) -> NotEnriched | None:
    """Name a gate's reason for skipping a lead (enrichment.selectors.lead_plan)."""
    folded = reason.lower()
    if folded.startswith("suppressed"):
        return NotEnriched(
            "suppressed",
            "Suppressed",
            "This person asked not to be processed (or a provider reported an opt-out); "
            f"Leadsmith will not enrich them. {reason}",
        )
    if folded.startswith("outside icp") or " icp" in f" {folded}":
        return NotEnriched("icp", "Outside your ICP", reason)
    if folded.startswith("nothing to look up"):
        return NotEnriched(
            "nothing_to_look_up",
            "Not enough to search with",
            "Add an email, a LinkedIn URL, or first name, last name and company domain.",
        )
    return None


def _not_enriched(
    plan_reason: str, in_flight: EnrichmentRun | None, last: EnrichmentRun | None
) -> NotEnriched | None:
    """Why the lead is not (being) enriched: the gate now first, then the run in flight,
    then how the last run ended."""
    gate = _gate_reason(plan_reason)
    if gate is not None and gate.kind != "nothing_to_look_up":
        return gate
    if in_flight is not None and in_flight.last_error.startswith("waiting:"):
        waiting = in_flight.last_error.removeprefix("waiting:").strip()
        if "budget" in waiting:
            return NotEnriched(
                "budget",
                "Budget reached",
                f"{waiting}. The run waits and resumes when the budget allows.",
            )
        return NotEnriched("waiting", "Waiting for a provider", waiting)
    if gate is not None:
        return gate
    if in_flight is not None or last is None:
        return None
    if last.state == EnrichmentRun.State.SKIPPED:
        skipped = str(last.summary.get("reason", ""))
        if skipped.startswith("every wanted field"):
            return None
        return _gate_reason(skipped) or NotEnriched(
            "skipped", "Skipped", skipped or "The last run was skipped."
        )
    if last.state == EnrichmentRun.State.NOT_FOUND:
        return NotEnriched(
            "not_found", "Nothing found", "No provider had data for this lead on the last run."
        )
    if last.state in (EnrichmentRun.State.FAILED, EnrichmentRun.State.DEAD):
        return NotEnriched(
            "failed", "The last run failed", last.last_error or "No error was recorded."
        )
    return None


def _gate_context(lead: Lead, observations: list[Observation]) -> GateContext:
    """What the gate reads for this lead, its current values taken from the observations
    the sheet has read already (newest first): two queries (suppressions, ICP rules)
    instead of four. The learned email patterns only shape the pattern finder's guess,
    never the gate's verdict, so the page leaves them out."""
    lead_current: dict[str, Observation] = {}
    company_current: dict[str, Observation] = {}
    for observation in observations:
        if observation.state in Observation.CURRENT_STATES:
            # As enrichment.selectors.current_observations_of: the lead's own, else its
            # company's; the newest of each field.
            mine = lead_current if observation.lead_id is not None else company_current
            mine.setdefault(observation.field, observation)
    return GateContext(
        lead_observations={lead.id: lead_current},
        company_observations={lead.company_id: company_current} if lead.company_id else {},
        suppressions=lead_suppressions([lead]),
        icp_rules=icp_rules_active(),
        email_patterns={},
    )


# The lead page shows the run in flight and the last one over: both among the newest few.
RECENT_RUNS = 5


def runs_recent(lead_id: int) -> list[EnrichmentRun]:
    """Return the lead's newest runs, newest first, each with the lead (company and owner)
    joined: a run's status answer reads its run, its lead and the sheet's runs at once."""
    return list(
        EnrichmentRun.objects.filter(lead_id=lead_id)
        .select_related("lead__company", "lead__owner")
        .order_by("-created_at", "-id")[:RECENT_RUNS]
    )


def lead_sheet(lead: Lead, *, recent_runs: list[EnrichmentRun] | None = None) -> LeadSheet:
    """Return everything the lead page shows about one lead and its company; pass
    `recent_runs` (from `runs_recent`) when they are read already."""
    about = Q(lead=lead)
    if lead.company_id:
        about |= Q(company_id=lead.company_id)
    observations = list(
        Observation.objects.filter(about)
        .select_related("decided_by")
        .order_by("-observed_at", "-id")
    )
    lead_observations = [o for o in observations if o.lead_id == lead.id]
    company_observations = [o for o in observations if o.company_id]
    runs = recent_runs
    if runs is None:
        runs = list(
            EnrichmentRun.objects.filter(lead=lead).order_by("-created_at", "-id")[:RECENT_RUNS]
        )
    in_flight = next(
        (r for r in runs if r.state in (EnrichmentRun.State.QUEUED, EnrichmentRun.State.RUNNING)),
        None,
    )
    last = next((r for r in runs if r.is_terminal), None)
    plan = lead_plan(lead, list(FIELDS), _gate_context(lead, observations))
    lead_fields = _field_rows(lead, LEAD_FIELDS, lead_observations)
    company_fields = (
        _field_rows(lead.company, COMPANY_FIELDS, company_observations) if lead.company_id else []
    )
    return LeadSheet(
        lead=lead,
        lead_fields=lead_fields,
        company_fields=company_fields,
        run_in_flight=in_flight,
        last_run=last,
        not_enriched=_not_enriched(plan.skip_reason, in_flight, last),
        pending_count=sum(len(row.suggestions) for row in lead_fields + company_fields),
    )


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run means for the SDR who started it."""

    tone: str  # success, review, neutral, error
    title: str
    detail: str = ""


def run_outcome(run: EnrichmentRun, sheet: LeadSheet) -> RunOutcome:
    """Summarize a finished run in words, from the lead's state after it."""
    if run.state in (EnrichmentRun.State.FAILED, EnrichmentRun.State.DEAD):
        return RunOutcome("error", "Enrichment failed", run.last_error)
    if run.state == EnrichmentRun.State.SKIPPED:
        return RunOutcome("neutral", "Nothing to do", str(run.summary.get("reason", "")))
    if run.trigger == EnrichmentRun.Trigger.FIND_EMAIL:
        email = sheet.email_row
        if email.current is not None and email.current.run_id == run.id:
            return RunOutcome("success", "Email found", email.display_value)
        suggestion = next(
            (s.observation for s in email.suggestions if s.observation.run_id == run.id), None
        )
        if suggestion is not None:
            return RunOutcome(
                "review", "Email suggested, waiting for review", str(suggestion.value)
            )
        if run.state == EnrichmentRun.State.NOT_FOUND:
            return RunOutcome("neutral", "No email found", "No provider knew an address.")
        return RunOutcome("neutral", "No new email", "What the providers said is in the history.")
    applied = int(run.summary.get("applied", 0))
    pending = int(run.summary.get("pending_review", 0))
    if run.state == EnrichmentRun.State.NOT_FOUND or not (applied or pending):
        return RunOutcome("neutral", "No new data", "No provider had more to say.")
    parts = [f"{applied} value{'s' if applied != 1 else ''} applied"]
    if pending:
        parts.append(f"{pending} waiting for review")
    return RunOutcome("success", "Enriched", ", ".join(parts))
