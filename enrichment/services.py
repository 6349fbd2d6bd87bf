"""The enrichment pipeline and the life of a run.

A run is a row first and a Celery message second: `runs_create` writes the rows and sends
the messages after commit; `run_execute` claims a run with a conditional UPDATE so it
executes once however often its message arrives; `runs_sweep` finds runs whose message or
worker was lost and sends them again, or declares them dead after ENRICHMENT_MAX_ATTEMPTS.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common.db import rows_update
from enrichment import local_checks
from enrichment.email_patterns import pattern_candidate
from enrichment.fields import FIELDS
from enrichment.merge import CurrentValue, MergeInput, Outcome, decide
from enrichment.models import EnrichmentJob, EnrichmentRun
from enrichment.priority import runs_by_priority
from enrichment.selectors import GateContext, lead_plan, runs_stale, runs_unsent
from enrichment.signals import runs_finished
from enrichment.waterfall import field_orders, next_provider
from enrichment.write import Gathered, Proposal, company_domain, proposals_write, thresholds
from leads.models import Company, Lead
from leads.services import lead_suppress
from providers.base import (
    Candidate,
    Deferred,
    PersonQuery,
    Provider,
    ProviderAnswer,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Suppressed,
)
from providers.ledger import Lookup, call_many_with_ledger
from providers.models import ProviderCall
from providers.registry import PROVIDER_NAMES, enabled_providers

logger = logging.getLogger(__name__)

RUN_TASK = "enrichment.run_execute"
BATCH_TASK = "enrichment.runs_execute_batch"
RUN_QUEUE = "enrichment"

_JOB_KIND_BY_TRIGGER = {
    EnrichmentRun.Trigger.CREATE: EnrichmentJob.Kind.IMPORT,
    EnrichmentRun.Trigger.REFRESH: EnrichmentJob.Kind.REFRESH,
}
_LEAD_STATUS_BY_RUN_STATE = {
    EnrichmentRun.State.DONE: Lead.EnrichmentStatus.ENRICHED,
    EnrichmentRun.State.NOT_FOUND: Lead.EnrichmentStatus.NOT_FOUND,
    EnrichmentRun.State.SKIPPED: Lead.EnrichmentStatus.SKIPPED,
    EnrichmentRun.State.FAILED: Lead.EnrichmentStatus.FAILED,
    EnrichmentRun.State.DEAD: Lead.EnrichmentStatus.FAILED,
}
_JOB_COUNTER_BY_RUN_STATE = {
    EnrichmentRun.State.DONE: "enriched",
    EnrichmentRun.State.NOT_FOUND: "not_found",
    EnrichmentRun.State.SKIPPED: "skipped",
    EnrichmentRun.State.FAILED: "failed",
    EnrichmentRun.State.DEAD: "failed",
}


# --- Creating and sending runs ---------------------------------------------------------


def runs_create(
    *,
    lead_ids: Sequence[int],
    trigger: str,
    fields: Sequence[str] = (),
    providers: Sequence[str] = (),
    description: str = "",
    enqueue: bool = True,
) -> list[EnrichmentRun]:
    """Create a run for each lead that has none in flight; batch them in a job if several.

    `providers` limits the waterfall to those providers (in its own order); empty means
    every enabled one. The messages go out only after the surrounding transaction commits,
    so a worker never sees a run its creator rolled back.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; known: {sorted(FIELDS)}")
    unknown = sorted(set(providers) - set(PROVIDER_NAMES))
    if unknown:
        raise ValueError(f"unknown providers {unknown}; known: {sorted(PROVIDER_NAMES)}")
    with transaction.atomic():
        busy = set(
            EnrichmentRun.objects.filter(
                lead_id__in=lead_ids,
                state__in=[EnrichmentRun.State.QUEUED, EnrichmentRun.State.RUNNING],
            ).values_list("lead_id", flat=True)
        )
        wanted = [lead_id for lead_id in dict.fromkeys(lead_ids) if lead_id not in busy]
        if not wanted:
            return []
        job = None
        if len(wanted) > 1:
            job = EnrichmentJob.objects.create(
                kind=_JOB_KIND_BY_TRIGGER.get(trigger, EnrichmentJob.Kind.BULK),
                description=description[:255],
                total=len(wanted),
            )
        now = timezone.now()
        runs = EnrichmentRun.objects.bulk_create(
            EnrichmentRun(
                lead_id=lead_id,
                job=job,
                trigger=trigger,
                fields=list(fields),
                providers=list(providers),
                available_at=now,
                enqueued_at=now if enqueue else None,
            )
            for lead_id in wanted
        )
        Lead.objects.filter(id__in=wanted).update(
            enrichment_status=Lead.EnrichmentStatus.QUEUED, updated_at=now
        )
        if enqueue:
            run_ids = [run.id for run in runs]
            transaction.on_commit(lambda: _send(run_ids, trigger=trigger))
    return runs


def _send(run_ids: Iterable[int], *, trigger: str | None = None) -> None:
    """Send runs to the workers: alone, or several to a message so bulk endpoints serve them.
    Each message carries the priority of its leads' score (enrichment.priority), so
    high-value leads are taken first; `trigger` when every run has it."""
    size = settings.ENRICHMENT_BATCH_SIZE
    for priority, group in runs_by_priority(run_ids=run_ids, trigger=trigger):
        if len(group) == 1 or size <= 1:
            for run_id in group:
                current_app.send_task(RUN_TASK, args=[run_id], queue=RUN_QUEUE, priority=priority)
            continue
        for start in range(0, len(group), size):
            current_app.send_task(
                BATCH_TASK, args=[group[start : start + size]], queue=RUN_QUEUE, priority=priority
            )


# --- Executing a run --------------------------------------------------------------------


def run_claim(*, run_id: int) -> EnrichmentRun | None:
    """Take the run for this worker; None when another worker has it or it is not due."""
    claimed = runs_claim(run_ids=[run_id])
    return claimed[0] if claimed else None


def runs_claim(*, run_ids: Sequence[int]) -> list[EnrichmentRun]:
    """Take the runs that are due and nobody else's for this worker, with their leads."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            EnrichmentRun.objects.select_for_update(skip_locked=True)
            .filter(id__in=run_ids, state=EnrichmentRun.State.QUEUED, available_at__lte=now)
            .values_list("id", flat=True)
        )
        if not ids:
            return []
        EnrichmentRun.objects.filter(id__in=ids).update(
            state=EnrichmentRun.State.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            updated_at=now,
        )
        runs = list(EnrichmentRun.objects.select_related("lead__company").filter(id__in=ids))
        Lead.objects.filter(id__in=[run.lead_id for run in runs]).update(
            enrichment_status=Lead.EnrichmentStatus.ENRICHING
        )
    return runs


class _Skip(Exception):
    """The gate said no: nothing will be looked up for this lead."""


def run_execute(*, run_id: int) -> EnrichmentRun | None:
    """Claim the run and take its lead through the pipeline; None if it was not ours."""
    finished = runs_execute_batch(run_ids=[run_id])
    return finished[0] if finished else None


def runs_execute_batch(*, run_ids: Sequence[int]) -> list[EnrichmentRun]:
    """Take one or several leads through the pipeline together.

    The leads advance in step: each round, every lead asks its next provider, and the
    questions put to one provider go out together, in bulk requests where the vendor has
    a bulk endpoint (PDL 100 people, Apollo 10). What each lead asks, and when it stops,
    is exactly what it would do alone. The gate's reads, the ledger's, and the final write
    and finish are one set of statements for the batch, not one per lead.
    """
    runs = runs_claim(run_ids=run_ids)
    if not runs:
        return []
    context = GateContext.read([run.lead for run in runs])
    orders = _ProviderOrders()
    pipelines = {run.id: _lead_pipeline(run=run, context=context, orders=orders) for run in runs}
    outcomes: dict[int, Gathered | Exception] = {}
    replies: dict[int, _Reply] = dict.fromkeys(pipelines, _Reply())
    try:
        while replies:
            asks: dict[int, _Ask] = {}
            for run_id, reply in replies.items():
                try:
                    asks[run_id] = reply.resume(pipelines[run_id])
                except _PipelineDone as done:
                    outcomes[run_id] = done.outcome
            replies = _answer_together(asks)
    except SoftTimeLimitExceeded as exc:
        for run_id in pipelines.keys() - outcomes.keys():
            outcomes[run_id] = exc
    return _runs_conclude(runs=runs, outcomes=outcomes)


def _runs_conclude(
    *, runs: list[EnrichmentRun], outcomes: dict[int, Gathered | Exception]
) -> list[EnrichmentRun]:
    """Write what the pipelines gathered and finish their runs together; the runs that
    ended otherwise (skipped, waiting, failed) are recorded one by one."""
    gathered = [run for run in runs if isinstance(outcomes[run.id], Gathered)]
    endings: list[_Ending] = []
    try:
        with transaction.atomic():
            written = proposals_write(
                [
                    Proposal(lead_id=run.lead_id, gathered=outcomes[run.id], run=run)
                    for run in gathered
                ]
            )
            for run, result in zip(gathered, written, strict=True):
                if isinstance(result, Exception):
                    outcomes[run.id] = result
                    continue
                learned = result["applied"] + result["pending_review"]
                state = EnrichmentRun.State.DONE if learned else EnrichmentRun.State.NOT_FOUND
                endings.append(_Ending(run, state, summary=result))
            endings += [
                _Ending(run, EnrichmentRun.State.SKIPPED, summary={"reason": str(outcomes[run.id])})
                for run in runs
                if isinstance(outcomes[run.id], _Skip)
            ]
            _runs_finish(endings)
    except Exception as exc:
        if len(runs) == 1:
            outcomes[runs[0].id] = exc
        else:
            # A bug or bad data in one lead must not cost the others: write them one by one.
            logger.warning("batch write failed (%s); writing its runs one by one", exc)
            return [
                run for single in runs for run in _runs_conclude(runs=[single], outcomes=outcomes)
            ]
    done = {ending.run.id for ending in endings}
    return [ending.run for ending in endings] + [
        _run_conclude(run=run, outcome=outcomes[run.id]) for run in runs if run.id not in done
    ]


def _run_conclude(*, run: EnrichmentRun, outcome: Exception) -> EnrichmentRun:
    """Record how the pipeline ended for a run it did not finish: the exception that ended it."""
    if isinstance(outcome, _Skip):
        return run_finish(
            run=run, state=EnrichmentRun.State.SKIPPED, summary={"reason": str(outcome)}
        )
    if isinstance(outcome, Suppressed):
        lead_suppress(lead=run.lead, reason=str(outcome))
        return run_finish(
            run=run, state=EnrichmentRun.State.SKIPPED, summary={"reason": f"suppressed: {outcome}"}
        )
    if isinstance(outcome, _HeldBack):
        return run_defer(run=run, reason=str(outcome), delay=outcome.retry_after)
    if isinstance(outcome, ProviderError):
        if outcome.retryable:
            return run_retry_later(
                run=run, error=str(outcome), delay=getattr(outcome, "retry_after", None)
            )
        return run_finish(run=run, state=EnrichmentRun.State.FAILED, error=str(outcome))
    if isinstance(outcome, SoftTimeLimitExceeded):
        return run_retry_later(run=run, error="took longer than the soft time limit")
    # A bug or bad data must cost this run, not the worker or the other leads.
    logger.error("run %s failed", run.id, exc_info=outcome)
    return run_finish(run=run, state=EnrichmentRun.State.FAILED, error=repr(outcome)[:1000])


# --- Driving the pipeline -----------------------------------------------------------------
# `_lead_pipeline` is a generator: it yields each question it wants answered through the
# ledger (an `_Ask`) and is sent the answer, or has the ProviderError thrown in where it
# asked. That keeps one lead's logic in one place while a driver decides how questions
# travel: one at a time (`run_execute`) or gathered into bulk requests (a batch).


@dataclass(frozen=True)
class _Ask:
    """One question for one provider, as the ledger needs it."""

    provider: Provider
    operation: str
    lookup: Lookup
    call: Callable[[str], ProviderAnswer]
    # What a bulk request carries for this question instead of `call`: the PersonQuery of
    # a person lookup, the domain of a company lookup.
    bulk_item: PersonQuery | str | None = None


Answered = tuple[ProviderAnswer, ProviderCall]
LeadPipeline = Generator[_Ask, Answered, Gathered]


class _PipelineDone(Exception):
    def __init__(self, outcome: Gathered | Exception) -> None:
        self.outcome = outcome


@dataclass(frozen=True)
class _Reply:
    """What goes back into a pipeline where it asked: an answer, or the error instead."""

    answered: Answered | None = None
    error: Exception | None = None

    def resume(self, pipeline: LeadPipeline) -> _Ask:
        """Run the pipeline to its next question; raise _PipelineDone when it ends."""
        try:
            if self.error is not None:
                return pipeline.throw(self.error)
            return pipeline.send(self.answered)  # type: ignore[arg-type]
        except StopIteration as stop:
            raise _PipelineDone(stop.value) from None
        except Exception as exc:
            raise _PipelineDone(exc) from None


# The operations a vendor may answer in bulk: its bulk size attribute and bulk method.
_BULK_OPERATIONS = {
    "person_enrich": ("person_bulk_size", "person_enrich_bulk"),
    "company_enrich": ("company_bulk_size", "company_enrich_bulk"),
}


def _answer_together(asks: dict[int, _Ask]) -> dict[int, _Reply]:
    """Answer one round of questions: each provider's questions of one kind go to the
    ledger together, which asks the vendor in as few requests as it allows."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for run_id, ask in asks.items():
        groups[(ask.provider.name, ask.operation)].append(run_id)
    replies: dict[int, _Reply] = {}
    for (_, operation), run_ids in groups.items():
        group = [asks[run_id] for run_id in run_ids]
        provider = group[0].provider
        bulk = _BULK_OPERATIONS.get(operation)
        per_request = getattr(provider, bulk[0]) if bulk else 1

        def call(key: str, positions: list[int], group=group, provider=provider, bulk=bulk):
            if len(positions) == 1:
                return [group[positions[0]].call(key)]
            return getattr(provider, bulk[1])(
                [group[position].bulk_item for position in positions], idempotency_key=key
            )

        try:
            results = call_many_with_ledger(
                provider=provider.name,
                operation=operation,
                lookups=[ask.lookup for ask in group],
                call=call,
                per_request=per_request,
            )
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            # Thrown in where each pipeline asked: a ProviderError is its to handle,
            # anything else ends those runs as failed.
            results = [exc] * len(group)
        for run_id, result in zip(run_ids, results, strict=True):
            replies[run_id] = (
                _Reply(error=result) if isinstance(result, Exception) else _Reply(answered=result)
            )
    return replies


class _HeldBack(Exception):
    """Providers that could fill the remaining fields were held back (throttle, pause,
    budget, quota): the run waits for them without spending an attempt."""

    def __init__(self, reasons: list[str], retry_after: float) -> None:
        super().__init__("; ".join(reasons))
        self.retry_after = retry_after


# Errors that say "not now" about a provider rather than anything about the lead.
_WAIT_ERRORS = (Deferred, RateLimited, QuotaExhausted)


def _wanted_fields(run: EnrichmentRun) -> list[str]:
    return list(run.fields) or list(FIELDS)


class _ProviderOrders:
    """The waterfall's order for each field, read once per batch (per provider list)."""

    def __init__(self) -> None:
        self._enabled = enabled_providers()
        self._orders: dict[tuple[str, ...], dict[str, list[Provider]]] = {}

    def for_run(self, run: EnrichmentRun) -> dict[str, list[Provider]]:
        allowed = tuple(sorted(run.providers))
        if allowed not in self._orders:
            providers = [p for p in self._enabled if not allowed or p.name in allowed]
            self._orders[allowed] = field_orders(providers)
        return self._orders[allowed]


def _lead_pipeline(
    *, run: EnrichmentRun, context: GateContext, orders: _ProviderOrders
) -> LeadPipeline:
    """Gate and look up one lead; return what it gathered for the write.

    Each provider question is yielded to the driver (see `_Ask`)."""
    lead = run.lead
    company = lead.company
    plan = lead_plan(lead, _wanted_fields(run), context)
    if plan.skip_reason:
        raise _Skip(plan.skip_reason)
    query, lead_current, company_current = plan.query, plan.lead_current, plan.company_current
    lead_wanted, company_wanted = plan.lead_wanted, plan.company_wanted
    can_look_up = bool(query.lookup_keys())

    gathered = Gathered(lead_candidates=local_checks.email_candidates(lead.email or ""))
    orders = orders.for_run(run)
    asked: set[str] = set()
    errors: list[ProviderError] = []
    if "email" in lead_wanted and not lead.email:
        # The free guess first: verified, it can save the paid finder call.
        guess = pattern_candidate(lead, context.email_patterns.get(lead.company_id, []))
        if guess is not None:
            gathered.lead_candidates.extend(
                (
                    yield from _verified_guess(
                        guess, verifiers=orders["email"], run=run, gathered=gathered
                    )
                )
            )
            lead_wanted = _unsatisfied(lead, lead_wanted, lead_current, gathered.lead_candidates)
    while provider := next_provider(lead_wanted + company_wanted, orders, asked):
        asked.add(provider.name)
        try:
            if (
                "person_enrich" in provider.operations
                and can_look_up
                and (provider.fields & set(lead_wanted))
            ):
                yield from _ask(
                    provider=provider,
                    operation="person_enrich",
                    lookup_keys=query.lookup_keys(),
                    run=run,
                    gathered=gathered,
                    into=gathered.lead_candidates,
                    wanted=lead_wanted,
                    call=lambda key, p=provider: p.person_enrich(query, idempotency_key=key),
                    bulk_item=query,
                )
            if "company_enrich" in provider.operations and provider.fields & set(company_wanted):
                yield from _ask(
                    provider=provider,
                    operation="company_enrich",
                    lookup_keys=[f"domain:{company.domain}"],
                    run=run,
                    gathered=gathered,
                    into=gathered.company_candidates,
                    wanted=company_wanted,
                    call=lambda key, p=provider: p.company_enrich(
                        company.domain, idempotency_key=key
                    ),
                    bulk_item=company.domain,
                )
        except Suppressed:
            raise
        except ProviderError as exc:
            # One provider failing is the next provider's turn, not the run's end.
            logger.info("run %s: %s held back: %s", run.id, provider.name, exc)
            errors.append(exc)
        # The waterfall stops as soon as every wanted field would be applied.
        lead_wanted = _unsatisfied(lead, lead_wanted, lead_current, gathered.lead_candidates)
        if company_wanted:
            company_wanted = _unsatisfied(
                company, company_wanted, company_current, gathered.company_candidates
            )
    if errors and (lead_wanted or company_wanted):
        _raise_for_missing(errors)
        if not (gathered.answered or gathered.calls):
            # Every provider failed for good (a broken answer, a bad key): "not found" would
            # state an answer nobody gave. The run fails with the reason and writes nothing.
            raise errors[0]
    return gathered


def _verified_guess(
    guess: Candidate, *, verifiers: list[Provider], run: EnrichmentRun, gathered: Gathered
) -> Generator[_Ask, Answered, list[Candidate]]:
    """Return the pattern guess, applicable only if a verifier says the mailbox is valid,
    together with the verifier's own statement about it."""
    for provider in verifiers:
        if "email_verify" not in provider.operations:
            continue
        try:
            answer, ledger_row = yield _Ask(
                provider=provider,
                operation="email_verify",
                lookup=Lookup(
                    lookup_keys=[f"email:{guess.value}"],
                    scope=f"run:{run.id}",
                    hit_ttl=timedelta(days=FIELDS["email"].fresh_for_days),
                    miss_ttl=timedelta(days=settings.PROVIDER_MISS_TTL_DAYS),
                ),
                call=lambda key, p=provider: p.email_verify(guess.value, idempotency_key=key),
            )
        except ProviderError as exc:
            logger.info("run %s: %s could not verify a guess: %s", run.id, provider.name, exc)
            continue
        verdicts = [c for c in answer.candidates if c.field == "email" and c.value == guess.value]
        if not verdicts:
            continue
        gathered.calls[(provider.name, "email")] = ledger_row
        verdict = verdicts[0]
        if verdict.verification == "valid":
            return [replace(guess, verification="valid"), verdict]
        if verdict.verification == "invalid":
            return []
        # accept_all, unknown…: the mailbox may exist; a reviewer decides.
        return [replace(guess, verification=verdict.verification, review_only=True)]
    return [replace(guess, review_only=True)]


def _raise_for_missing(errors: list[ProviderError]) -> None:
    """Fields are missing and some provider could not answer: wait, retry, or accept it."""
    waits = [e for e in errors if isinstance(e, _WAIT_ERRORS)]
    transient = [e for e in errors if e.retryable and not isinstance(e, _WAIT_ERRORS)]
    if transient:
        raise transient[0]
    if waits:
        raise _HeldBack(
            [str(e) for e in waits],
            retry_after=min(
                getattr(e, "retry_after", settings.PROVIDER_QUOTA_PAUSE_SECONDS) for e in waits
            ),
        )
    # Only permanent refusals (bad key, a question the vendor cannot answer): finish with
    # what the others said rather than retrying something that will fail again.


def _ask(
    *,
    provider: Provider,
    operation: str,
    lookup_keys: list[str],
    run: EnrichmentRun,
    gathered: Gathered,
    into: list[Candidate],
    wanted: list[str],
    call: Callable[[str], ProviderAnswer],
    bulk_item: PersonQuery | str | None = None,
) -> Generator[_Ask, Answered, None]:
    """Ask one provider through the ledger and collect its candidates."""
    answer, ledger_row = yield _Ask(
        provider=provider,
        operation=operation,
        lookup=Lookup(
            lookup_keys=lookup_keys,
            scope=f"run:{run.id}",
            # A hit is good for as long as the longest-lived field it was asked for.
            hit_ttl=timedelta(days=max(FIELDS[name].fresh_for_days for name in wanted)),
            miss_ttl=timedelta(days=settings.PROVIDER_MISS_TTL_DAYS),
        ),
        call=call,
        bulk_item=bulk_item,
    )
    gathered.answered += 1
    if not answer.candidates:
        gathered.misses += 1
    # Only what was asked for: re-stating a fresh field would churn its provenance.
    for candidate in answer.candidates:
        if candidate.field in wanted:
            gathered.calls[(candidate.source, candidate.field)] = ledger_row
            into.append(candidate)


def _unsatisfied(
    subject: Lead | Company,
    wanted: list[str],
    current: dict[str, CurrentValue],
    candidates: list[Candidate],
) -> list[str]:
    """Return the wanted fields no candidate so far would fill at the accept threshold."""
    decisions = decide(
        MergeInput(
            current=current,
            candidates=candidates,
            thresholds=thresholds(),
            company_domain=company_domain(subject),
        )
    )
    applied = {
        d.candidate.field
        for d in decisions
        if d.outcome is Outcome.APPLIED and d.candidate.confidence is not None
    }
    return [name for name in wanted if name not in applied]


def lead_candidates_merge(
    *, lead_id: int, candidates: Sequence[Candidate], provider_call: ProviderCall | None = None
) -> dict:
    """Merge values that arrived outside a run (a provider's asynchronous callback) into the
    lead exactly as a run's answers are merged; return the counts of what happened."""
    gathered = Gathered(lead_candidates=list(candidates))
    if provider_call is not None:
        gathered.calls = {(c.source, c.field): provider_call for c in candidates}
    [result] = proposals_write([Proposal(lead_id=lead_id, gathered=gathered)])
    if isinstance(result, Exception):
        raise result
    return result


# --- Finishing, retrying and sweeping runs ----------------------------------------------


@dataclass
class _Ending:
    run: EnrichmentRun
    state: str
    summary: dict = field(default_factory=dict)
    error: str = ""


def _runs_finish(endings: list[_Ending]) -> None:
    """Record the runs' ends, their leads' statuses and their jobs' counters together;
    called inside the transaction that wrote their values."""
    if not endings:
        return
    now = timezone.now()
    # Locked so the sweep cannot take one back between this look and the update; a run it
    # already took back is its new owner's to report.
    ours = set(
        EnrichmentRun.objects.select_for_update()
        .filter(id__in=[e.run.id for e in endings], state=EnrichmentRun.State.RUNNING)
        .values_list("id", flat=True)
    )
    endings = [e for e in endings if e.run.id in ours]
    for ending in endings:
        run = ending.run
        run.state, run.summary, run.last_error = ending.state, ending.summary, ending.error
        run.finished_at = run.updated_at = now
    rows_update(
        [e.run for e in endings], ["state", "summary", "last_error", "finished_at", "updated_at"]
    )
    _runs_counted(runs=[e.run for e in endings], now=now)
    runs_finished.send(sender=EnrichmentRun, runs=[e.run for e in endings])


def _runs_counted(*, runs: list[EnrichmentRun], now) -> None:
    """Set the leads' statuses and add the runs to their jobs' counters (run.state is the
    final state)."""
    by_status: dict[str, list[int]] = defaultdict(list)
    skipped = []
    for run in runs:
        if run.state == EnrichmentRun.State.SKIPPED:
            skipped.append(run.lead_id)
        else:
            by_status[_LEAD_STATUS_BY_RUN_STATE[run.state]].append(run.lead_id)
    if skipped:
        leads = Lead.objects.filter(id__in=skipped)
        # A lead skipped because its data is still fresh stays enriched.
        leads.filter(last_enriched_at__isnull=False).update(
            enrichment_status=Lead.EnrichmentStatus.ENRICHED, updated_at=now
        )
        leads.filter(last_enriched_at__isnull=True).update(
            enrichment_status=Lead.EnrichmentStatus.SKIPPED, updated_at=now
        )
    for status, lead_ids in by_status.items():
        Lead.objects.filter(id__in=lead_ids).update(enrichment_status=status, updated_at=now)
    counters: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for run in runs:
        if run.job_id:
            counters[run.job_id][_JOB_COUNTER_BY_RUN_STATE[run.state]] += 1
    for job_id, counts in sorted(counters.items()):
        EnrichmentJob.objects.filter(id=job_id).update(
            done=F("done") + sum(counts.values()),
            **{counter: F(counter) + n for counter, n in counts.items()},
        )
    if counters:
        EnrichmentJob.objects.filter(
            id__in=counters, finished_at__isnull=True, done__gte=F("total")
        ).update(finished_at=now)


def run_finish(
    *, run: EnrichmentRun, state: str, summary: dict | None = None, error: str = ""
) -> EnrichmentRun:
    """Record the run's end, its lead's status and its job's counters in one transaction."""
    with transaction.atomic():
        _runs_finish([_Ending(run, state, summary=summary or {}, error=error)])
    return run


def run_defer(*, run: EnrichmentRun, reason: str, delay: float) -> EnrichmentRun:
    """Send the run back to wait for a provider; the claim's attempt is given back."""
    now = timezone.now()
    EnrichmentRun.objects.filter(id=run.id, state=EnrichmentRun.State.RUNNING).update(
        state=EnrichmentRun.State.QUEUED,
        attempts=F("attempts") - 1,
        available_at=now + timedelta(seconds=delay),
        enqueued_at=None,
        last_error=f"waiting: {reason}"[:1000],
        updated_at=now,
    )
    Lead.objects.filter(id=run.lead_id).update(enrichment_status=Lead.EnrichmentStatus.QUEUED)
    run.refresh_from_db()
    return run


def run_retry_later(*, run: EnrichmentRun, error: str, delay: float | None = None) -> EnrichmentRun:
    """Put the run back in the queue after a backoff, or declare it dead at the cap."""
    run.refresh_from_db(fields=["attempts"])
    if run.attempts >= settings.ENRICHMENT_MAX_ATTEMPTS:
        return run_finish(
            run=run,
            state=EnrichmentRun.State.DEAD,
            error=f"gave up after {run.attempts} attempts: {error}",
        )
    backoff = (
        delay
        if delay is not None
        else settings.ENRICHMENT_RETRY_BACKOFF_SECONDS * 2 ** (run.attempts - 1)
    )
    now = timezone.now()
    EnrichmentRun.objects.filter(id=run.id, state=EnrichmentRun.State.RUNNING).update(
        state=EnrichmentRun.State.QUEUED,
        available_at=now + timedelta(seconds=backoff),
        enqueued_at=None,
        last_error=error,
        updated_at=now,
    )
    Lead.objects.filter(id=run.lead_id).update(enrichment_status=Lead.EnrichmentStatus.QUEUED)
    run.refresh_from_db()
    return run


@dataclass(frozen=True)
class SweepResult:
    requeued: int
    dead: int
    sent: int


def runs_sweep() -> SweepResult:
    """Take back runs whose worker died, declare dead the ones past the cap, send the rest."""
    now = timezone.now()
    requeued = dead = 0
    stale = runs_stale(
        grace=timedelta(seconds=settings.ENRICHMENT_RUN_STALE_GRACE_SECONDS),
        hard_time_limit=settings.CELERY_TASK_TIME_LIMIT,
    )
    for run in stale:
        if run.attempts >= settings.ENRICHMENT_MAX_ATTEMPTS:
            with transaction.atomic():
                taken = EnrichmentRun.objects.filter(
                    id=run.id, state=EnrichmentRun.State.RUNNING, started_at=run.started_at
                ).update(
                    state=EnrichmentRun.State.DEAD,
                    finished_at=now,
                    updated_at=now,
                    last_error=f"worker lost on each of {run.attempts} attempts",
                )
                if taken:
                    run.state = EnrichmentRun.State.DEAD
                    _runs_counted(runs=[run], now=now)
                    runs_finished.send(sender=EnrichmentRun, runs=[run])
                    dead += 1
            continue
        requeued += EnrichmentRun.objects.filter(
            id=run.id, state=EnrichmentRun.State.RUNNING, started_at=run.started_at
        ).update(
            state=EnrichmentRun.State.QUEUED,
            available_at=now,
            enqueued_at=None,
            last_error="worker lost; queued again",
            updated_at=now,
        )

    due = runs_unsent(requeue_after=timedelta(seconds=settings.ENRICHMENT_REQUEUE_AFTER_SECONDS))
    with transaction.atomic():
        # Locked and checked again, so two sweeps running at once do not both send a run: the
        # second skips the rows the first holds, and finds them sent once it commits.
        sent = list(
            EnrichmentRun.objects.select_for_update(skip_locked=True)
            .filter(id__in=due, state=EnrichmentRun.State.QUEUED)
            .exclude(
                enqueued_at__gte=now - timedelta(seconds=settings.ENRICHMENT_REQUEUE_AFTER_SECONDS)
            )
            .values_list("id", flat=True)
        )
        EnrichmentRun.objects.filter(id__in=sent).update(enqueued_at=now)
    _send(sent)
    return SweepResult(requeued=requeued, dead=dead, sent=len(sent))


def run_retry(*, run_id: int) -> EnrichmentRun:
    """Queue a dead or failed run again from its first attempt (an operator's decision)."""
    now = timezone.now()
    with transaction.atomic():
        updated = EnrichmentRun.objects.filter(
            id=run_id, state__in=[EnrichmentRun.State.DEAD, EnrichmentRun.State.FAILED]
        ).update(
            state=EnrichmentRun.State.QUEUED,
            attempts=0,
            available_at=now,
            enqueued_at=now,
            finished_at=None,
            updated_at=now,
        )
        if updated != 1:
            raise ValueError(f"run {run_id} is not dead or failed")
        run = EnrichmentRun.objects.get(id=run_id)
        Lead.objects.filter(id=run.lead_id).update(enrichment_status=Lead.EnrichmentStatus.QUEUED)
        transaction.on_commit(lambda: _send([run_id]))
    return run
