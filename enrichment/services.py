"""The enrichment pipeline and the life of a run.

A run is a row first and a Celery message second: `runs_create` writes the rows and sends
the messages after commit; `run_execute` claims a run with a conditional UPDATE so it
executes once however often its message arrives; `runs_sweep` finds runs whose message or
worker was lost and sends them again, or declares them dead after ENRICHMENT_MAX_ATTEMPTS.
"""

import logging
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from enrichment import local_checks
from enrichment.email_patterns import pattern_candidate
from enrichment.fields import FIELDS
from enrichment.merge import CurrentValue, Decision, MergeInput, Outcome, Thresholds, decide
from enrichment.models import EnrichmentJob, EnrichmentRun, Observation
from enrichment.priority import runs_by_priority
from enrichment.selectors import (
    current_observations,
    current_values,
    lead_plan,
    rejected_proposals,
    runs_stale,
    runs_unsent,
)
from enrichment.signals import observations_flagged, run_finished
from enrichment.waterfall import field_orders, next_provider
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
from providers.ledger import Lookup, call_many_with_ledger, call_with_ledger
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
            transaction.on_commit(lambda: _send(run_ids))
    return runs


def _send(run_ids: Iterable[int]) -> None:
    """Send runs to the workers: alone, or several to a message so bulk endpoints serve them.
    Each message carries the priority of its leads' score (enrichment.priority), so
    high-value leads are taken first."""
    size = settings.ENRICHMENT_BATCH_SIZE
    for priority, group in runs_by_priority(run_ids=run_ids):
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
    now = timezone.now()
    claimed = EnrichmentRun.objects.filter(
        id=run_id, state=EnrichmentRun.State.QUEUED, available_at__lte=now
    ).update(
        state=EnrichmentRun.State.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        updated_at=now,
    )
    if claimed != 1:
        return None
    run = EnrichmentRun.objects.select_related("lead__company").get(id=run_id)
    Lead.objects.filter(id=run.lead_id).update(enrichment_status=Lead.EnrichmentStatus.ENRICHING)
    return run


@dataclass
class _Gathered:
    """What the waterfall collected for one lead before anything is written."""

    lead_candidates: list[Candidate] = field(default_factory=list)
    company_candidates: list[Candidate] = field(default_factory=list)
    calls: dict[tuple[str, str], ProviderCall] = field(default_factory=dict)
    misses: int = 0
    # Questions a provider answered, hit or miss (not counting the ones that failed).
    answered: int = 0


class _Skip(Exception):
    """The gate said no: nothing will be looked up for this lead."""


def run_execute(*, run_id: int) -> EnrichmentRun | None:
    """Claim the run and take its lead through the pipeline; None if it was not ours."""
    run = run_claim(run_id=run_id)
    if run is None:
        return None
    try:
        outcome = _pipeline_alone(_lead_pipeline(run=run))
    except Exception as exc:
        outcome = exc
    return _run_conclude(run=run, outcome=outcome)


def runs_execute_batch(*, run_ids: Sequence[int]) -> list[EnrichmentRun]:
    """Take several leads through the pipeline together, so that a provider with a bulk
    endpoint answers them in one request (PDL 100 people, Apollo 10).

    The leads advance in step: each round, every lead asks its next provider; the
    questions put to a bulk-capable provider go out together, the rest one by one. What
    each lead asks, and when it stops, is exactly what `run_execute` would do for it.
    """
    runs = [run for run_id in run_ids if (run := run_claim(run_id=run_id)) is not None]
    pipelines = {run.id: _lead_pipeline(run=run) for run in runs}
    by_id = {run.id: run for run in runs}
    finished: list[EnrichmentRun] = []
    replies: dict[int, _Reply] = dict.fromkeys(pipelines, _Reply())
    try:
        while replies:
            asks: dict[int, _Ask] = {}
            for run_id, reply in replies.items():
                try:
                    asks[run_id] = reply.resume(pipelines[run_id])
                except _PipelineDone as done:
                    finished.append(_run_conclude(run=by_id[run_id], outcome=done.outcome))
            replies = _answer_together(asks)
    except SoftTimeLimitExceeded as exc:
        for run_id in pipelines.keys() - {run.id for run in finished}:
            finished.append(_run_conclude(run=by_id[run_id], outcome=exc))
    return finished


def _run_conclude(*, run: EnrichmentRun, outcome: tuple[str, dict] | Exception) -> EnrichmentRun:
    """Record how the pipeline ended for this run: a result, or the exception that ended it."""
    if not isinstance(outcome, Exception):
        state, summary = outcome
        return run_finish(run=run, state=state, summary=summary)
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
    # For a person lookup: what a bulk request would carry instead of `call`.
    query: PersonQuery | None = None


Answered = tuple[ProviderAnswer, ProviderCall]
LeadPipeline = Generator[_Ask, Answered, tuple[str, dict]]


class _PipelineDone(Exception):
    def __init__(self, outcome: tuple[str, dict] | Exception) -> None:
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


def _pipeline_alone(pipeline: LeadPipeline) -> tuple[str, dict]:
    reply = _Reply()
    while True:
        try:
            ask = reply.resume(pipeline)
        except _PipelineDone as done:
            if isinstance(done.outcome, Exception):
                raise done.outcome from None
            return done.outcome
        reply = _answer_alone(ask)


def _answer_alone(ask: _Ask) -> _Reply:
    """Ask one question; any error goes back into the pipeline that asked it."""
    try:
        return _Reply(
            answered=call_with_ledger(
                provider=ask.provider.name,
                operation=ask.operation,
                lookup_keys=ask.lookup.lookup_keys,
                scope=ask.lookup.scope,
                hit_ttl=ask.lookup.hit_ttl,
                miss_ttl=ask.lookup.miss_ttl,
                call=ask.call,
            )
        )
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        # Thrown in where the pipeline asked: a ProviderError is its to handle, anything
        # else ends that one run as failed.
        return _Reply(error=exc)


def _answer_together(asks: dict[int, _Ask]) -> dict[int, _Reply]:
    """Answer one round of questions, person lookups to a bulk-capable provider in bulk."""
    replies: dict[int, _Reply] = {}
    bulk: dict[str, list[int]] = {}
    for run_id, ask in asks.items():
        if ask.query is not None and ask.provider.person_bulk_size > 1:
            bulk.setdefault(ask.provider.name, []).append(run_id)
        else:
            replies[run_id] = _answer_alone(ask)
    for run_ids in bulk.values():
        provider = asks[run_ids[0]].provider
        for start in range(0, len(run_ids), provider.person_bulk_size):
            chunk = run_ids[start : start + provider.person_bulk_size]
            if len(chunk) == 1:
                replies[chunk[0]] = _answer_alone(asks[chunk[0]])
                continue
            queries = [asks[run_id].query for run_id in chunk]
            try:
                results = call_many_with_ledger(
                    provider=provider.name,
                    operation="person_enrich",
                    lookups=[asks[run_id].lookup for run_id in chunk],
                    call=lambda key, positions, p=provider, q=queries: p.person_enrich_bulk(
                        [q[position] for position in positions], idempotency_key=key
                    ),
                )
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:
                results = [exc] * len(chunk)
            for run_id, result in zip(chunk, results, strict=True):
                replies[run_id] = (
                    _Reply(error=result)
                    if isinstance(result, Exception)
                    else _Reply(answered=result)
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


def _allowed_providers(run: EnrichmentRun) -> list[Provider]:
    enabled = enabled_providers()
    if not run.providers:
        return enabled
    return [provider for provider in enabled if provider.name in run.providers]


def _lead_pipeline(*, run: EnrichmentRun) -> LeadPipeline:
    """Gate, look up, merge and write one lead; return the run's final state and summary.

    Each provider question is yielded to the driver (see `_Ask`)."""
    lead = run.lead
    company = lead.company
    plan = lead_plan(lead, _wanted_fields(run))
    if plan.skip_reason:
        raise _Skip(plan.skip_reason)
    query, lead_current, company_current = plan.query, plan.lead_current, plan.company_current
    lead_wanted, company_wanted = plan.lead_wanted, plan.company_wanted
    can_look_up = bool(query.lookup_keys())

    gathered = _Gathered(lead_candidates=local_checks.email_candidates(lead.email or ""))
    orders = field_orders(_allowed_providers(run))
    asked: set[str] = set()
    errors: list[ProviderError] = []
    if "email" in lead_wanted and not lead.email:
        # The free guess first: verified, it can save the paid finder call.
        guess = pattern_candidate(lead)
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
                    query=query,
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

    summary = _write(run=run, gathered=gathered)
    learned = summary["applied"] + summary["pending_review"]
    state = EnrichmentRun.State.DONE if learned else EnrichmentRun.State.NOT_FOUND
    return state, summary


def _verified_guess(
    guess: Candidate, *, verifiers: list[Provider], run: EnrichmentRun, gathered: _Gathered
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
    gathered: _Gathered,
    into: list[Candidate],
    wanted: list[str],
    call: Callable[[str], ProviderAnswer],
    query: PersonQuery | None = None,
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
        query=query,
    )
    gathered.answered += 1
    if not answer.candidates:
        gathered.misses += 1
    # Only what was asked for: re-stating a fresh field would churn its provenance.
    for candidate in answer.candidates:
        if candidate.field in wanted:
            gathered.calls[(candidate.source, candidate.field)] = ledger_row
            into.append(candidate)


def _thresholds() -> dict[str, Thresholds]:
    return {
        name: Thresholds(spec.accept_threshold, spec.review_floor) for name, spec in FIELDS.items()
    }


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
            thresholds=_thresholds(),
            company_domain=_company_domain(subject),
        )
    )
    applied = {
        d.candidate.field
        for d in decisions
        if d.outcome is Outcome.APPLIED and d.candidate.confidence is not None
    }
    return [name for name in wanted if name not in applied]


def _company_domain(subject: Lead | Company) -> str:
    if isinstance(subject, Company):
        return subject.domain
    return subject.company.domain if subject.company_id else ""


def lead_candidates_merge(
    *, lead_id: int, candidates: Sequence[Candidate], provider_call: ProviderCall | None = None
) -> dict:
    """Merge values that arrived outside a run (a provider's asynchronous callback) into the
    lead exactly as a run's answers are merged; return the counts of what happened."""
    gathered = _Gathered(lead_candidates=list(candidates))
    if provider_call is not None:
        gathered.calls = {(c.source, c.field): provider_call for c in candidates}
    return _write(run=None, lead_id=lead_id, gathered=gathered)


def _write(*, run: EnrichmentRun | None, gathered: _Gathered, lead_id: int | None = None) -> dict:
    """Merge against the rows as they are now and write it all in one transaction."""
    now = timezone.now()
    summary = {"applied": 0, "pending_review": 0, "discarded": 0, "misses": gathered.misses}
    with transaction.atomic():
        # Locked so two runs for one company (or one lead) merge one after the other.
        lead = Lead.objects.select_for_update().get(id=run.lead_id if run else lead_id)
        written = run and EnrichmentRun.objects.values_list("summary", flat=True).get(id=run.id)
        if written:
            # An earlier attempt of this run wrote, then was lost before it finished (its
            # worker killed): writing again would propose every value a second time.
            return written
        subjects: list[tuple[Lead | Company, list[Candidate]]] = [(lead, gathered.lead_candidates)]
        if lead.company_id and gathered.company_candidates:
            company = Company.objects.select_for_update().get(id=lead.company_id)
            lead.company = company
            subjects.append((company, gathered.company_candidates))
        for subject, candidates in subjects:
            observations = current_observations(subject)
            decisions = decide(
                MergeInput(
                    current=current_values(subject, observations),
                    candidates=candidates,
                    thresholds=_thresholds(),
                    rejected=rejected_proposals(subject),
                    company_domain=_company_domain(subject),
                )
            )
            decisions = [_unique_email_guard(subject, d) for d in decisions]
            _observations_write(
                subject=subject,
                decisions=decisions,
                run=run,
                calls=gathered.calls,
                observations=observations,
                now=now,
            )
            for decision in decisions:
                if decision.candidate.confidence is not None:
                    summary[decision.outcome.value] += 1
            subject.last_enriched_at = now
            subject.save()
        if run is not None:
            # Committed with the observations: the mark that this run has written.
            EnrichmentRun.objects.filter(id=run.id).update(summary=summary)
    return summary


def _unique_email_guard(subject: Lead | Company, decision: Decision) -> Decision:
    """An email already on another lead is evidence, never a second owner of the address."""
    if not (
        isinstance(subject, Lead)
        and decision.candidate.field == "email"
        and decision.outcome is Outcome.APPLIED
        and decision.candidate.value != subject.email
    ):
        return decision
    other = Lead.objects.filter(email=decision.candidate.value).exclude(id=subject.id).first()
    if other is None:
        return decision
    return Decision(
        decision.candidate,
        Outcome.DISCARDED,
        decision.confidence,
        f"already the email of lead {other.id}",
    )


def _observations_write(
    *,
    subject: Lead | Company,
    decisions: list[Decision],
    run: EnrichmentRun | None,
    calls: dict,
    observations: dict[str, Observation],
    now,
) -> None:
    subject_kwargs = {"lead": subject} if isinstance(subject, Lead) else {"company": subject}
    rows = []
    for decision in decisions:
        candidate = decision.candidate
        spec = FIELDS[candidate.field]
        if decision.outcome is Outcome.APPLIED:
            if candidate.confidence is not None:
                setattr(subject, spec.column, candidate.value)
            if candidate.field == "email" and candidate.verification:
                subject.email_verification = candidate.verification
            previous = observations.get(candidate.field)
            if previous is not None and previous.state == Observation.State.APPLIED:
                Observation.objects.filter(id=previous.id).update(
                    state=Observation.State.SUPERSEDED
                )
        rows.append(
            Observation(
                **subject_kwargs,
                field=candidate.field,
                value=candidate.value,
                confidence=decision.confidence,
                verification=candidate.verification,
                source=candidate.source,
                provider_call=calls.get((candidate.source, candidate.field)),
                run=run,
                state=decision.outcome.value,
                reason=decision.reason[:255],
                observed_at=now,
                expires_at=now + timedelta(days=spec.fresh_for_days),
            )
        )
    created = Observation.objects.bulk_create(rows)
    if any(row.state == Observation.State.PENDING_REVIEW for row in created):
        observations_flagged.send(sender=Observation, observations=created)


# --- Finishing, retrying and sweeping runs ----------------------------------------------


def run_finish(
    *, run: EnrichmentRun, state: str, summary: dict | None = None, error: str = ""
) -> EnrichmentRun:
    """Record the run's end, its lead's status and its job's counters in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        finished = EnrichmentRun.objects.filter(
            id=run.id, state=EnrichmentRun.State.RUNNING
        ).update(
            state=state, finished_at=now, summary=summary or {}, last_error=error, updated_at=now
        )
        if finished != 1:
            # The sweep took this run back meanwhile; its new owner reports the outcome.
            return run
        _run_counted(run=run, state=state, now=now)
        run_finished.send(sender=EnrichmentRun, run=run, state=state)
    run.refresh_from_db()
    return run


def _run_counted(*, run: EnrichmentRun, state: str, now) -> None:
    lead_status = _LEAD_STATUS_BY_RUN_STATE[state]
    leads = Lead.objects.filter(id=run.lead_id)
    if state == EnrichmentRun.State.SKIPPED:
        # A lead skipped because its data is still fresh stays enriched.
        leads.filter(last_enriched_at__isnull=False).update(
            enrichment_status=Lead.EnrichmentStatus.ENRICHED, updated_at=now
        )
        leads = leads.filter(last_enriched_at__isnull=True)
    leads.update(enrichment_status=lead_status, updated_at=now)
    if run.job_id:
        counter = _JOB_COUNTER_BY_RUN_STATE[state]
        EnrichmentJob.objects.filter(id=run.job_id).update(
            done=F("done") + 1, **{counter: F(counter) + 1}
        )
        EnrichmentJob.objects.filter(
            id=run.job_id, finished_at__isnull=True, done__gte=F("total")
        ).update(finished_at=now)


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
                    _run_counted(run=run, state=EnrichmentRun.State.DEAD, now=now)
                    run_finished.send(sender=EnrichmentRun, run=run, state=EnrichmentRun.State.DEAD)
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
    sent = []
    for run_id in due:
        # Conditional, so two sweeps running at once do not both send the same run.
        if (
            EnrichmentRun.objects.filter(id=run_id, state=EnrichmentRun.State.QUEUED)
            .exclude(
                enqueued_at__gte=now - timedelta(seconds=settings.ENRICHMENT_REQUEUE_AFTER_SECONDS)
            )
            .update(enqueued_at=now)
        ):
            sent.append(run_id)
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
