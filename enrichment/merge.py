"""The merge policy: a pure function from (current values, locks, candidates) to decisions.

Nothing here touches the database, the clock or a provider, so the same inputs always give
the same decisions, and the rules are checked by property tests (tests/enrichment/).

The rules, in the order they are applied to each candidate:
1. a value a reviewer rejected is not proposed again by the same source;
2. a locked field (manual or approved value) is never changed by a provider;
3. a deterministic check (confidence None) only annotates the value already current;
4. independent sources that agree raise each other's confidence (noisy-or), and so does an
   email whose domain is the lead's company domain;
5. below the review floor a candidate is kept as discarded evidence;
6. a value that confirms the current one is applied (it refreshes its provenance);
7. a value that disagrees with an applied one, or that loses to a stronger value for the
   same field, goes to review instead of silently replacing anything;
8. otherwise at or above the accept threshold it is applied, below it goes to review;
   a guess nobody confirmed (`review_only`, such as an unverified email pattern) goes to
   review even then.
"""

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from providers.base import Candidate

# How much an email on the company's own domain counts as independent evidence.
DOMAIN_MATCH_EVIDENCE = 0.4
# Sources whose emails are built on the company domain, so the match proves nothing.
DOMAIN_BUILT_SOURCES = frozenset({"pattern"})


class Outcome(StrEnum):
    APPLIED = "applied"
    PENDING_REVIEW = "pending_review"
    DISCARDED = "discarded"


@dataclass(frozen=True)
class Thresholds:
    accept: float
    floor: float


@dataclass(frozen=True)
class CurrentValue:
    """The value a field holds now and whether a person has locked it."""

    value: object
    source: str
    confidence: float | None = None
    locked: bool = False


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    outcome: Outcome
    confidence: float | None
    reason: str


@dataclass(frozen=True)
class MergeInput:
    current: Mapping[str, CurrentValue]
    candidates: Sequence[Candidate]
    thresholds: Mapping[str, Thresholds]
    # (field, source, value_key(value)) triples a reviewer rejected.
    rejected: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)
    company_domain: str = ""


def value_key(value: object) -> str:
    """Return the comparison key of a value: case and surrounding space do not matter."""
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, list | tuple):
        return json.dumps(sorted(value_key(v) for v in value))
    return json.dumps(value, sort_keys=True, default=str)


def _noisy_or(confidences: Sequence[float]) -> float:
    if len(confidences) == 1:
        # Exact, so a lone value on a threshold lands in the band its source meant.
        return confidences[0]
    remaining_doubt = 1.0
    # Sorted, so the float result does not depend on the order sources answered in.
    for confidence in sorted(confidences):
        remaining_doubt *= 1.0 - confidence
    return 1.0 - remaining_doubt


def _combined_confidence(
    candidate: Candidate,
    support: Mapping[str, float],
    agreeing_current: CurrentValue | None,
    company_domain: str,
) -> float:
    """Return the value's confidence raised by every independent source that agrees
    (`agreeing_current`: the current value, when it is this value)."""
    evidence = dict(support)
    if (
        agreeing_current is not None
        and agreeing_current.confidence is not None
        and agreeing_current.source not in evidence
    ):
        evidence[agreeing_current.source] = agreeing_current.confidence
    confidences = list(evidence.values())
    if (
        candidate.field == "email"
        and set(support) - DOMAIN_BUILT_SOURCES
        and company_domain
        and isinstance(candidate.value, str)
        and candidate.value.rsplit("@", 1)[-1].casefold() == company_domain.casefold()
    ):
        confidences.append(DOMAIN_MATCH_EVIDENCE)
    return _noisy_or(confidences)


def decide(merge_input: MergeInput) -> list[Decision]:
    """Return one decision per distinct (field, source, value), in a stable order."""
    best: dict[tuple[str, str, str], Candidate] = {}
    for candidate in merge_input.candidates:
        key = (candidate.field, candidate.source, value_key(candidate.value))
        kept = best.get(key)
        if kept is None or (candidate.confidence or 0.0) > (kept.confidence or 0.0):
            best[key] = candidate

    # Each candidate with its value's key, computed once: keys are compared many times.
    by_field: dict[str, list[tuple[Candidate, str]]] = defaultdict(list)
    for key in sorted(best):
        by_field[key[0]].append((best[key], key[2]))

    decisions: list[Decision] = []
    for field_name in sorted(by_field):
        decisions.extend(_decide_field(field_name, by_field[field_name], merge_input))
    return decisions


def _decide_field(
    field_name: str, keyed: list[tuple[Candidate, str]], merge_input: MergeInput
) -> list[Decision]:
    current = merge_input.current.get(field_name)
    thresholds = merge_input.thresholds[field_name]
    current_key = value_key(current.value) if current is not None else None
    rejected = [
        (field_name, candidate.source, key) in merge_input.rejected for candidate, key in keyed
    ]

    # Which sources stand behind each value (a rejected proposal supports nothing), and
    # the first candidate stating each value with a confidence.
    support: dict[str, dict[str, float]] = defaultdict(dict)
    stating: dict[str, Candidate] = {}
    for (candidate, key), is_rejected in zip(keyed, rejected, strict=True):
        if candidate.confidence is None:
            continue
        stating.setdefault(key, candidate)
        if not is_rejected:
            support[key][candidate.source] = candidate.confidence

    combined = {
        value: _combined_confidence(
            stating[value],
            sources,
            current if value == current_key else None,
            merge_input.company_domain,
        )
        for value, sources in support.items()
    }
    # The leading value: strongest evidence; ties go to the current value, then the key.
    leader = min(combined, key=lambda v: (-combined[v], v != current_key, v), default=None)

    decisions = []
    for (candidate, key), is_rejected in zip(keyed, rejected, strict=True):
        confidence = (
            None if candidate.confidence is None else combined.get(key, candidate.confidence)
        )
        if is_rejected:
            outcome, reason = Outcome.DISCARDED, "a reviewer rejected this value from this source"
        elif current is not None and current.locked:
            outcome = Outcome.DISCARDED
            reason = (
                "agrees with the locked value"
                if key == current_key
                else f"field is locked ({current.source} value kept)"
            )
        elif candidate.confidence is None:
            if key == current_key:
                outcome, reason = Outcome.APPLIED, "deterministic check of the current value"
            else:
                outcome, reason = Outcome.DISCARDED, "deterministic check of another value"
        elif confidence < thresholds.floor:
            outcome, reason = Outcome.DISCARDED, f"below the review floor {thresholds.floor:.2f}"
        elif key == current_key:
            outcome, reason = Outcome.APPLIED, "confirms the current value"
        elif current is not None:
            outcome = Outcome.PENDING_REVIEW
            reason = f"disagrees with the applied value from {current.source}"
        elif key != leader:
            outcome, reason = Outcome.PENDING_REVIEW, "another value has stronger evidence"
        elif candidate.review_only:
            outcome, reason = Outcome.PENDING_REVIEW, "an unconfirmed guess"
        elif confidence >= thresholds.accept:
            outcome, reason = Outcome.APPLIED, f"at or above {thresholds.accept:.2f}"
        else:
            outcome, reason = (
                Outcome.PENDING_REVIEW,
                f"below the accept threshold {thresholds.accept:.2f}",
            )
        decisions.append(Decision(candidate, outcome, confidence, reason))
    return decisions
