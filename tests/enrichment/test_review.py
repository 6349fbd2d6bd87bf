"""People's decisions (enrichment/review.py): approve, reject, correct, set by hand."""

import pytest
from django.contrib.auth import get_user_model

from enrichment.models import Observation
from enrichment.review import (
    ReviewError,
    field_set_manually,
    observation_approve,
    observation_correct,
    observation_reject,
)
from enrichment.selectors import current_observations, current_values, rejected_proposals
from leads.models import Lead
from leads.normalize import InvalidValue
from tests.factories import CompanyFactory, LeadFactory, ObservationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer():
    return get_user_model().objects.create_user("rita", password="x")


def _current(subject, field):
    return current_values(subject, current_observations(subject))[field]


def test_approve_applies_the_value_locks_it_and_supersedes_the_old_one(reviewer):
    lead = LeadFactory(job_title="Sales Manager")
    old = ObservationFactory(lead=lead, value="Sales Manager", state="applied", confidence=0.9)
    pending = ObservationFactory(lead=lead, value="VP of Sales", confidence=0.7)

    approved = observation_approve(observation=pending, reviewer=reviewer)

    lead.refresh_from_db()
    assert lead.job_title == "VP of Sales"
    assert (approved.state, approved.decided_by) == ("approved", reviewer)
    assert approved.decided_at is not None
    old.refresh_from_db()
    assert old.state == "superseded"
    current = _current(lead, "job_title")
    assert (current.value, current.locked) == ("VP of Sales", True)


def test_approve_sets_the_email_and_its_verification(reviewer):
    lead = LeadFactory(company=CompanyFactory(domain="acme.com"))
    pending = ObservationFactory(
        lead=lead, field="email", value="ada@acme.com", verification="accept_all", confidence=0.8
    )
    observation_approve(observation=pending, reviewer=reviewer)
    lead.refresh_from_db()
    assert (lead.email, lead.email_verification) == ("ada@acme.com", "accept_all")


def test_approve_works_on_company_fields(reviewer):
    company = CompanyFactory(domain="globex.com")
    pending = ObservationFactory(
        lead=None, company=company, field="industry", value="Retail", confidence=0.6
    )
    observation_approve(observation=pending, reviewer=reviewer)
    company.refresh_from_db()
    assert company.industry == "Retail"
    assert _current(company, "industry").locked


def test_a_decided_observation_cannot_be_decided_again(reviewer):
    lead = LeadFactory()
    pending = ObservationFactory(lead=lead)
    observation_reject(observation=pending, reviewer=reviewer)
    with pytest.raises(ReviewError, match="rejected, not pending review"):
        observation_approve(observation=pending, reviewer=reviewer)
    lead.refresh_from_db()
    assert lead.job_title == ""
    assert Observation.objects.get(id=pending.id).state == "rejected"


def test_approving_an_email_another_lead_holds_changes_nothing(reviewer):
    LeadFactory(email="taken@acme.com")
    lead = LeadFactory()
    pending = ObservationFactory(lead=lead, field="email", value="taken@acme.com")
    with pytest.raises(ReviewError, match="already the email of lead"):
        observation_approve(observation=pending, reviewer=reviewer)
    lead.refresh_from_db()
    assert lead.email is None
    assert Observation.objects.get(id=pending.id).state == "pending_review"


def test_reject_is_remembered_for_that_source(reviewer):
    lead = LeadFactory()
    pending = ObservationFactory(lead=lead, value="CEO", source="pdl")
    rejected = observation_reject(observation=pending, reviewer=reviewer, reason="wrong person")
    assert (rejected.state, rejected.reason, rejected.decided_by) == (
        "rejected",
        "wrong person",
        reviewer,
    )
    assert ("job_title", "pdl", "ceo") in rejected_proposals(lead)
    lead.refresh_from_db()
    assert lead.job_title == ""


def test_a_rejected_value_is_not_proposed_again_by_a_real_rerun(sandbox, enrich_now, reviewer):
    leads = [LeadFactory(company=CompanyFactory(domain=f"rerun{i}.com")) for i in range(12)]
    enrich_now(*leads, fields=["job_title", "seniority", "location", "phone"])
    pending = Observation.objects.filter(state="pending_review", source="sandbox").first()
    assert pending is not None, "the sandbox gave no value between the review bands"
    observation_reject(observation=pending, reviewer=reviewer)

    (run,) = enrich_now(pending.lead, fields=[pending.field])

    again = Observation.objects.filter(
        run=run, field=pending.field, source="sandbox", value=pending.value
    ).get()
    assert again.state == "discarded"
    assert "rejected" in again.reason
    assert not Observation.objects.filter(lead=pending.lead, state="pending_review", run=run)


def test_correct_rejects_the_proposal_and_applies_a_locked_manual_value(reviewer):
    lead = LeadFactory()
    pending = ObservationFactory(lead=lead, field="phone", value="+14155550000", confidence=0.6)

    manual = observation_correct(observation=pending, reviewer=reviewer, value="+44 20 7946 0321")

    assert Observation.objects.get(id=pending.id).state == "rejected"
    assert (manual.source, manual.state, manual.decided_by) == ("manual", "applied", reviewer)
    lead.refresh_from_db()
    assert lead.phone == manual.value == "+442079460321"
    assert _current(lead, "phone").locked


def test_correct_with_a_bad_value_changes_nothing(reviewer, settings):
    settings.PHONE_DEFAULT_REGION = "GB"
    lead = LeadFactory()
    pending = ObservationFactory(lead=lead, field="phone", value="+442079460000")
    with pytest.raises(InvalidValue) as raised:
        observation_correct(observation=pending, reviewer=reviewer, value="12")
    assert raised.value.field == "phone"
    assert Observation.objects.get(id=pending.id).state == "pending_review"
    assert Observation.objects.filter(lead=lead).count() == 1
    lead.refresh_from_db()
    assert lead.phone == ""


def test_set_manually_normalizes_locks_and_supersedes(reviewer):
    lead = LeadFactory(company=CompanyFactory(domain="acme.com"), email="old@acme.com")
    old = ObservationFactory(lead=lead, field="email", value="old@acme.com", state="applied")

    observation = field_set_manually(
        subject=lead, field="email", value=" Ada@ACME.com ", user=reviewer
    )

    assert (observation.value, observation.source, observation.state) == (
        "ada@acme.com",
        "manual",
        "applied",
    )
    assert observation.verification == "unknown"
    lead.refresh_from_db()
    assert (lead.email, lead.email_verification) == ("ada@acme.com", "unknown")
    old.refresh_from_db()
    assert old.state == "superseded"
    assert _current(lead, "email").locked


def test_set_manually_takes_technologies_as_text(reviewer):
    company = CompanyFactory(domain="initech.com")
    field_set_manually(
        subject=company, field="technologies", value="AWS, Stripe,, AWS", user=reviewer
    )
    company.refresh_from_db()
    assert company.technologies == ["AWS", "Stripe"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("phone", "not a phone", "phone"),
        ("email", "nobody@", "email"),
        ("linkedin_url", "https://example.com/ada", "not a linkedin.com address"),
        ("job_title", "   ", "it is empty"),
        ("job_title", "x" * 300, "longer than 255"),
        ("industry", "Retail", "not a field of a lead"),
        ("favourite_colour", "blue", "not an enrichable field"),
    ],
)
def test_set_manually_refuses_bad_input_and_changes_nothing(reviewer, field, value, reason):
    lead = LeadFactory(phone="+14155550123", job_title="CTO")
    with pytest.raises(InvalidValue) as raised:
        field_set_manually(subject=lead, field=field, value=value, user=reviewer)
    assert raised.value.field == field
    assert reason in str(raised.value)
    assert isinstance(raised.value, ValueError)
    stored = Lead.objects.get(id=lead.id)
    assert (stored.phone, stored.job_title) == ("+14155550123", "CTO")
    assert not Observation.objects.exists()


def test_set_manually_refuses_an_email_another_lead_holds(reviewer):
    other = LeadFactory(email="taken@acme.com")
    lead = LeadFactory()
    with pytest.raises(InvalidValue, match=f"already the email of lead {other.id}"):
        field_set_manually(subject=lead, field="email", value="taken@acme.com", user=reviewer)
    assert not Observation.objects.exists()


def test_deciding_a_value_settles_its_copies_waiting_in_the_queue(reviewer):
    company = CompanyFactory(domain="globex.com")
    copies = [
        ObservationFactory(lead=None, company=company, field="industry", value="Retail")
        for _ in range(3)
    ]
    other = ObservationFactory(lead=None, company=company, field="industry", value="Rail")
    observation_approve(observation=copies[0], reviewer=reviewer)
    states = {o.id: o.state for o in Observation.objects.all()}
    assert [states[c.id] for c in copies] == ["approved", "superseded", "superseded"]
    assert states[other.id] == "pending_review"

    lead = LeadFactory()
    by_pdl = [ObservationFactory(lead=lead, value="CEO", source="pdl") for _ in range(2)]
    by_apollo = ObservationFactory(lead=lead, value="ceo", source="apollo")
    observation_reject(observation=by_pdl[0], reviewer=reviewer)
    assert Observation.objects.get(id=by_pdl[1].id).state == "rejected"
    # A rejection is about one source's claim: another source saying the same still waits.
    assert Observation.objects.get(id=by_apollo.id).state == "pending_review"
