"""Property tests of the merge policy (enrichment/merge.py)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from enrichment.merge import (
    CurrentValue,
    MergeInput,
    Outcome,
    Thresholds,
    decide,
    value_key,
)
from providers.base import Candidate

FIELDS = ["email", "job_title", "phone"]
SOURCES = ["sandbox", "hunter", "pdl"]
THRESHOLDS = {
    "email": Thresholds(accept=0.90, floor=0.60),
    "job_title": Thresholds(accept=0.75, floor=0.45),
    "phone": Thresholds(accept=0.85, floor=0.50),
}
VALUES = {
    "email": ["ann@acme.com", "a.lee@acme.com", "ann@gmail.com"],
    "job_title": ["VP Sales", "Head of Sales", "CFO"],
    "phone": ["+14155550100", "+442079460958"],
}

confidences = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def candidates(draw, field=None):
    field = field or draw(st.sampled_from(FIELDS))
    return Candidate(
        field=field,
        value=draw(st.sampled_from(VALUES[field])),
        confidence=draw(confidences),
        source=draw(st.sampled_from(SOURCES)),
    )


@st.composite
def currents(draw):
    current = {}
    for field in draw(st.lists(st.sampled_from(FIELDS), unique=True)):
        current[field] = CurrentValue(
            value=draw(st.sampled_from(VALUES[field])),
            source=draw(st.sampled_from(["manual", "sandbox", "record", "hunter"])),
            confidence=draw(st.none() | confidences),
            locked=draw(st.booleans()),
        )
    return current


@st.composite
def merge_inputs(draw):
    cands = draw(st.lists(candidates(), max_size=8))
    rejected = frozenset()
    if cands:
        rejected = draw(
            st.frozensets(
                st.sampled_from(cands).map(lambda c: (c.field, c.source, value_key(c.value))),
                max_size=3,
            )
        )
    return MergeInput(
        current=draw(currents()),
        candidates=cands,
        thresholds=THRESHOLDS,
        rejected=rejected,
        company_domain=draw(st.sampled_from(["", "acme.com"])),
    )


@given(merge_inputs())
def test_a_locked_value_is_never_replaced(merge_input):
    for decision in decide(merge_input):
        current = merge_input.current.get(decision.candidate.field)
        if current is not None and current.locked:
            assert decision.outcome is Outcome.DISCARDED


@given(merge_inputs())
def test_a_value_that_differs_from_an_applied_one_is_never_applied(merge_input):
    for decision in decide(merge_input):
        current = merge_input.current.get(decision.candidate.field)
        if current is not None and decision.outcome is Outcome.APPLIED:
            assert value_key(decision.candidate.value) == value_key(current.value)


@given(st.data())
def test_thresholds_route_a_lone_candidate_to_its_band(data):
    field = data.draw(st.sampled_from(FIELDS))
    candidate = data.draw(candidates(field=field))
    (decision,) = decide(MergeInput(current={}, candidates=[candidate], thresholds=THRESHOLDS))
    band = THRESHOLDS[field]
    if candidate.confidence >= band.accept:
        assert decision.outcome is Outcome.APPLIED
    elif candidate.confidence >= band.floor:
        assert decision.outcome is Outcome.PENDING_REVIEW
    else:
        assert decision.outcome is Outcome.DISCARDED
    assert decision.confidence == candidate.confidence


@given(merge_inputs(), st.randoms(use_true_random=False))
def test_the_same_inputs_give_the_same_decisions_in_any_order(merge_input, rnd):
    shuffled = list(merge_input.candidates)
    rnd.shuffle(shuffled)
    again = MergeInput(
        current=dict(merge_input.current),
        candidates=shuffled,
        thresholds=THRESHOLDS,
        rejected=merge_input.rejected,
        company_domain=merge_input.company_domain,
    )
    assert decide(merge_input) == decide(again)


@given(merge_inputs())
def test_a_rejected_value_is_not_proposed_again_by_the_same_source(merge_input):
    for decision in decide(merge_input):
        c = decision.candidate
        if (c.field, c.source, value_key(c.value)) in merge_input.rejected:
            assert decision.outcome is Outcome.DISCARDED


@given(merge_inputs())
def test_at_most_one_value_per_field_is_applied(merge_input):
    applied = {}
    for decision in decide(merge_input):
        if decision.outcome is Outcome.APPLIED:
            applied.setdefault(decision.candidate.field, set()).add(
                value_key(decision.candidate.value)
            )
    assert all(len(values) == 1 for values in applied.values())


@settings(max_examples=50)
@given(st.sampled_from(FIELDS), confidences, confidences)
def test_agreeing_sources_raise_confidence(field, first, second):
    value = VALUES[field][0]
    both = decide(
        MergeInput(
            current={},
            candidates=[
                Candidate(field, value, first, "sandbox"),
                Candidate(field, value, second, "hunter"),
            ],
            thresholds=THRESHOLDS,
        )
    )
    assert all(d.confidence >= max(first, second) - 1e-9 for d in both)


def test_a_disagreeing_newcomer_goes_to_review_instead_of_replacing():
    (decision,) = decide(
        MergeInput(
            current={"job_title": CurrentValue("CFO", "sandbox", 0.9)},
            candidates=[Candidate("job_title", "VP Sales", 0.99, "hunter")],
            thresholds=THRESHOLDS,
        )
    )
    assert decision.outcome is Outcome.PENDING_REVIEW
    assert "disagrees" in decision.reason


def test_an_email_on_the_company_domain_is_raised_above_the_accept_threshold():
    candidate = Candidate("email", "ann@acme.com", 0.85, "sandbox")
    alone = decide(MergeInput(current={}, candidates=[candidate], thresholds=THRESHOLDS))
    on_domain = decide(
        MergeInput(
            current={}, candidates=[candidate], thresholds=THRESHOLDS, company_domain="acme.com"
        )
    )
    assert alone[0].outcome is Outcome.PENDING_REVIEW
    assert on_domain[0].outcome is Outcome.APPLIED
    assert on_domain[0].confidence > 0.9


def test_a_deterministic_check_only_annotates_the_current_value():
    current = {"email": CurrentValue("ann@acme.com", "record")}
    check = Candidate("email", "ann@acme.com", None, "local", verification="unknown")
    other = Candidate("email", "bob@acme.com", None, "local", verification="role")
    decisions = decide(
        MergeInput(current=current, candidates=[check, other], thresholds=THRESHOLDS)
    )
    by_value = {d.candidate.value: d.outcome for d in decisions}
    assert by_value == {"ann@acme.com": Outcome.APPLIED, "bob@acme.com": Outcome.DISCARDED}


def test_value_key_ignores_case_space_and_list_order():
    assert value_key(" VP Sales ") == value_key("vp sales")
    assert value_key(["HubSpot", "Slack"]) == value_key(["slack", "hubspot"])
    assert value_key("CFO") != value_key("CEO")


def test_an_unconfirmed_guess_waits_for_review_however_confident():
    guess = Candidate("email", "ann@acme.com", 0.99, "pattern", review_only=True)
    (decision,) = decide(
        MergeInput(current={}, candidates=[guess], thresholds=THRESHOLDS, company_domain="acme.com")
    )
    assert decision.outcome is Outcome.PENDING_REVIEW


def test_a_pattern_guess_gets_no_boost_from_the_domain_it_was_built_on():
    guess = Candidate("email", "ann@acme.com", 0.85, "pattern")
    (decision,) = decide(
        MergeInput(current={}, candidates=[guess], thresholds=THRESHOLDS, company_domain="acme.com")
    )
    assert decision.confidence == 0.85
    assert decision.outcome is Outcome.PENDING_REVIEW


# --- Deterministic checks, unconfirmed guesses, and running the same merge twice ----------


@st.composite
def any_candidates(draw, field=None):
    """Candidates as every source makes them: also deterministic checks (no confidence)
    and guesses nobody confirmed yet (`review_only`)."""
    candidate = draw(candidates(field=field))
    kind = draw(st.sampled_from(["scored", "scored", "check", "guess"]))
    if kind == "check":
        return Candidate(candidate.field, candidate.value, None, "local", verification="unknown")
    if kind == "guess":
        return Candidate(
            candidate.field, candidate.value, candidate.confidence, "pattern", review_only=True
        )
    return candidate


@st.composite
def any_merge_inputs(draw):
    merge_input = draw(merge_inputs())
    extra = draw(st.lists(any_candidates(), max_size=4))
    return MergeInput(
        current=merge_input.current,
        candidates=[*merge_input.candidates, *extra],
        thresholds=THRESHOLDS,
        rejected=merge_input.rejected,
        company_domain=merge_input.company_domain,
    )


def _proposal(candidate: Candidate) -> tuple[str, str, str]:
    return (candidate.field, candidate.source, value_key(candidate.value))


@given(any_merge_inputs())
def test_every_distinct_proposal_gets_exactly_one_decision(merge_input):
    decided = [_proposal(d.candidate) for d in decide(merge_input)]

    assert sorted(decided) == sorted({_proposal(c) for c in merge_input.candidates})


@given(any_merge_inputs())
def test_confidence_stays_a_probability_and_agreement_never_lowers_it(merge_input):
    best: dict[tuple[str, str, str], float] = {}
    for c in merge_input.candidates:
        if c.confidence is not None:
            best[_proposal(c)] = max(best.get(_proposal(c), 0.0), c.confidence)
    for decision in decide(merge_input):
        if decision.candidate.confidence is None:
            assert decision.confidence is None
            continue
        assert 0.0 <= decision.confidence <= 1.0
        if _proposal(decision.candidate) not in merge_input.rejected:
            assert decision.confidence >= best[_proposal(decision.candidate)] - 1e-9


@given(any_merge_inputs())
def test_a_check_or_an_unconfirmed_guess_never_puts_a_new_value_in_a_field(merge_input):
    for decision in decide(merge_input):
        candidate = decision.candidate
        if decision.outcome is not Outcome.APPLIED:
            continue
        if candidate.confidence is None or candidate.review_only:
            current = merge_input.current.get(candidate.field)
            assert current is not None
            assert value_key(current.value) == value_key(candidate.value)


def _values_after(current, decisions) -> dict[str, str]:
    values = {name: value_key(held.value) for name, held in current.items()}
    for d in decisions:
        if d.outcome is Outcome.APPLIED and d.candidate.confidence is not None:
            values[d.candidate.field] = value_key(d.candidate.value)
    return values


@given(any_merge_inputs())
def test_merging_the_same_answers_again_changes_nothing(merge_input):
    # What a retried run does: the same candidates, against what the first attempt wrote.
    # (A source restating what it alone now stands behind may be discarded as too weak
    # the second time; the value held stays the same either way.)
    first = decide(merge_input)
    written = dict(merge_input.current)
    for d in first:
        if d.outcome is Outcome.APPLIED and d.candidate.confidence is not None:
            written[d.candidate.field] = CurrentValue(
                value=d.candidate.value, source=d.candidate.source, confidence=d.confidence
            )
    again = decide(
        MergeInput(
            current=written,
            candidates=merge_input.candidates,
            thresholds=THRESHOLDS,
            rejected=merge_input.rejected,
            company_domain=merge_input.company_domain,
        )
    )

    assert _values_after(written, again) == _values_after(written, [])
