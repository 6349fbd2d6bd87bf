"""Lead score and queue priority: high-value leads are enriched first, and their owner
hears about it when enrichment makes one high-value.

The score (0-100) adds up where the lead came from (up to 20), its ICP fit (up to 40),
its company's size and revenue (up to 25) and its seniority (up to 15). It decides the
priority of the run's message: on Redis, 0 is taken first and 9 last (config: one list
per priority step), and a run somebody waits for on a page (Find Email, Re-enrich) is 0.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.apps import apps
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from common.db import rows_update
from enrichment.icp import icp_evaluate, icp_rules_active, parse_employee_range
from enrichment.models import EnrichmentRun, IcpRule
from leads.models import Lead

logger = logging.getLogger(__name__)

HIGH_VALUE_EVENT = "lead.high_value"
# Redis message priorities: 0 is served first.
PRIORITY_INTERACTIVE = 0
PRIORITY_BEST = 1
PRIORITY_WORST = 9
_SCORE_SLICE = 500
_INTERACTIVE_TRIGGERS = frozenset({EnrichmentRun.Trigger.FIND_EMAIL, EnrichmentRun.Trigger.MANUAL})

# Points by what the lead's source says, first match wins; any other source gets 5.
_SOURCE_POINTS = (
    (("referral", "inbound", "demo request", "demo_request", "contact form"), 20),
    (("event", "webinar", "conference", "trade show"), 15),
    (("api", "crm", "hubspot", "salesforce"), 10),
)
_OTHER_SOURCE_POINTS = 5
# Points by the upper end of the company's headcount and revenue.
_EMPLOYEE_POINTS = ((1001, 15), (201, 10), (51, 6), (11, 3))
_REVENUE_POINTS = ((50_000_000, 10), (10_000_000, 6), (1_000_000, 3))
_SENIORITY_POINTS = {
    "c_suite": 15,
    "owner": 15,
    "founder": 15,
    "partner": 12,
    "vp": 12,
    "head": 10,
    "director": 10,
    "manager": 6,
    "senior": 3,
}


def _source_points(source: str) -> int:
    source = source.casefold().replace("-", " ")
    if not source:
        return 0
    for words, points in _SOURCE_POINTS:
        if any(word in source for word in words):
            return points
    return _OTHER_SOURCE_POINTS


def _band_points(upper: int | None, bands: tuple[tuple[int, int], ...]) -> int:
    if upper is None:
        return bands[0][1]
    return next((points for floor, points in bands if upper >= floor), 0)


def _revenue_upper(text: str) -> int | bool | None:
    """Return the upper end of "$10M-$50M", "$500M+" (None: open), or False if unreadable."""
    cleaned = text.replace("$", "").replace(" ", "").upper()
    multiplier = {"K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
    for suffix, factor in multiplier.items():
        cleaned = cleaned.replace(suffix, f"*{factor}")
    if cleaned.endswith("+"):
        return None
    below = cleaned.startswith("<")
    number, _, factor = cleaned.lstrip("<").split("-")[-1].partition("*")
    try:
        upper = int(float(number) * (int(factor) if factor else 1))
    except ValueError:
        return False
    return upper - 1 if below else upper


def _firmographic_points(lead: Lead) -> int:
    company = lead.company if lead.company_id else None
    if company is None:
        return 0
    points = 0
    size = parse_employee_range(company.employee_range) if company.employee_range else None
    if size is not None:
        points += _band_points(size[1], _EMPLOYEE_POINTS)
    if company.revenue_range:
        upper = _revenue_upper(company.revenue_range)
        if upper is not False:
            points += _band_points(upper, _REVENUE_POINTS)
    return points


def lead_score(*, lead: Lead, rules: Sequence[IcpRule] | None = None) -> int:
    """Return the lead's score, 0-100, from what is known of it now."""
    verdict = icp_evaluate(lead=lead, rules=rules)
    score = (
        _source_points(lead.source)
        + verdict.score_part
        + _firmographic_points(lead)
        + _SENIORITY_POINTS.get(lead.seniority.strip().casefold(), 0)
    )
    return max(0, min(100, score))


def priority_for(*, score: int, trigger: str) -> int:
    """Return the Redis message priority of a run: 0 first, 9 last."""
    if trigger in _INTERACTIVE_TRIGGERS:
        return PRIORITY_INTERACTIVE
    return PRIORITY_BEST + (100 - score) * (PRIORITY_WORST - PRIORITY_BEST) // 100


def runs_by_priority(
    *, run_ids: Iterable[int], trigger: str | None = None
) -> list[tuple[int, list[int]]]:
    """Group runs by the priority of their message, the most urgent group first.

    The score is computed now from the lead as it is, so a lead whose company was
    enriched meanwhile is ranked by what is known today. `trigger`, when every run has it:
    runs someone is waiting for go first whatever their score, so no lead is read for them.
    """
    run_ids = list(run_ids)
    if not run_ids:
        return []
    if trigger in _INTERACTIVE_TRIGGERS:
        return [(PRIORITY_INTERACTIVE, run_ids)]
    rules = icp_rules_active()
    groups: dict[int, list[int]] = defaultdict(list)
    found = set()
    # In slices: a 100k-lead import sends 100k runs, and SQLite caps bound parameters.
    for start in range(0, len(run_ids), _SCORE_SLICE):
        runs = EnrichmentRun.objects.filter(id__in=run_ids[start : start + _SCORE_SLICE])
        for run in runs.select_related("lead__company"):
            score = lead_score(lead=run.lead, rules=rules)
            groups[priority_for(score=score, trigger=run.trigger)].append(run.id)
            found.add(run.id)
    # A run deleted meanwhile is still sent: its message finds no row and does nothing.
    groups[PRIORITY_WORST].extend(run_id for run_id in run_ids if run_id not in found)
    order = {run_id: index for index, run_id in enumerate(run_ids)}
    return [
        (priority, sorted(ids, key=order.__getitem__))
        for priority, ids in sorted(groups.items())
        if ids
    ]


def lead_score_record(*, lead_id: int, notify: bool) -> int:
    """Store the lead's score (see `leads_score_record`); return it (0 if the lead is gone)."""
    return leads_score_record(lead_ids=[lead_id], notify_ids={lead_id} if notify else set()).get(
        lead_id, 0
    )


def leads_score_record(*, lead_ids: Sequence[int], notify_ids: set[int]) -> dict[int, int]:
    """Store the leads' scores; when one crosses LEAD_HIGH_VALUE_SCORE upwards and is in
    `notify_ids`, tell its owner (mail, after commit) and publish `lead.high_value`. Return
    the scores.

    A crossing is claimed with a conditional UPDATE, so two runs finishing at once for one
    lead notify once. A lead erased meanwhile is skipped: nothing to score, nobody to tell.
    """
    rules = icp_rules_active()
    threshold = settings.LEAD_HIGH_VALUE_SCORE
    scores: dict[int, int] = {}
    not_crossing = []
    for lead in Lead.objects.select_related("company", "owner").filter(id__in=lead_ids):
        score = scores[lead.id] = lead_score(lead=lead, rules=rules)
        if score >= threshold and lead.score < threshold:
            crossed = Lead.objects.filter(id=lead.id, score__lt=threshold).update(score=score)
            if crossed and lead.id in notify_ids:
                _high_value_announce(lead=lead, score=score, threshold=threshold)
            if crossed:
                continue
        if lead.score != score:
            lead.score = score
            not_crossing.append(lead)
    rows_update(not_crossing, ["score"])
    return scores


def _high_value_announce(*, lead: Lead, score: int, threshold: int) -> None:
    payload = {"lead_id": lead.id, "score": score, "threshold": threshold}
    if apps.is_installed("webhooks"):
        from webhooks.services import webhook_event_publish

        webhook_event_publish(event=HIGH_VALUE_EVENT, payload=payload)
    owner = lead.owner
    if owner is not None and owner.email:
        subject = f"High-value lead: {lead} (score {score})"
        company = (lead.company.name or lead.company.domain) if lead.company_id else "no company"
        body = (
            f"{lead} ({lead.job_title or 'title unknown'}, {company}) was just enriched and "
            f"scores {score}, at or above the high-value mark of {threshold}.\n\n"
            f"Lead #{lead.id}: /admin/leads/lead/{lead.id}/change/\n"
        )
        recipient = owner.email
        # After commit: a rolled-back run announces nothing. robust: a mail server that is
        # down is logged, and does not fail the run that already committed.
        transaction.on_commit(
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient]),
            robust=True,
        )
    logger.info("lead %s is high-value (score %s)", lead.id, score)
