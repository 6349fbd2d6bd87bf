"""Lead score and queue priority (enrichment/priority.py): high-value leads go first, and
their owner hears when enrichment makes one high-value."""

import pytest
from celery import current_app
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enrichment.models import EnrichmentRun, IcpRule
from enrichment.priority import (
    PRIORITY_INTERACTIVE,
    lead_score,
    leads_score_record,
    priority_for,
    runs_by_priority,
)
from enrichment.services import runs_create
from enrichment.signals import runs_finished
from leads.models import Lead
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def icp():
    return IcpRule.objects.create(
        name="Mid-market SaaS", industries="Computer Software", employee_ranges="201-5000"
    )


def _high_value_lead(**extra) -> Lead:
    company = CompanyFactory(
        industry="Computer Software", employee_range="1001-5000", revenue_range="$100M-$500M"
    )
    return LeadFactory(company=company, source="referral", seniority="vp", **extra)


def _low_value_lead() -> Lead:
    company = CompanyFactory(industry="Retail", employee_range="1-10", revenue_range="<$1M")
    return LeadFactory(company=company, source="csv", seniority="entry")


def test_the_score_adds_source_icp_fit_firmographics_and_seniority(icp):
    high, low = _high_value_lead(), _low_value_lead()
    # referral 20 + full ICP fit 40 + 1001-5000 staff 15 + $500M revenue 10 + VP 12
    assert lead_score(lead=high) == 97
    # csv 5 + outside ICP 0 + tiny company 0 + entry level 0
    assert lead_score(lead=low) == 5
    unknown = LeadFactory(company=CompanyFactory(), source="")
    # Not known yet: a partial ICP fit and nothing else.
    assert lead_score(lead=unknown) == 25


def test_priority_follows_the_score_and_a_person_waiting_comes_first():
    assert priority_for(score=100, trigger="bulk") == 1
    assert priority_for(score=0, trigger="create") == 9
    assert priority_for(score=70, trigger="refresh") < priority_for(score=30, trigger="refresh")
    assert priority_for(score=0, trigger="find_email") == 0


def test_runs_someone_waits_for_go_first_without_reading_their_leads(
    icp, django_assert_num_queries
):
    run = EnrichmentRun.objects.create(lead=_low_value_lead(), trigger="find_email")
    # A Find Email click sends its run with no read: its priority does not hang on a score.
    with django_assert_num_queries(0):
        sent = runs_by_priority(run_ids=[run.id], trigger="find_email")
    assert sent == [(PRIORITY_INTERACTIVE, [run.id])]
    # Not told the trigger, the runs are read and scored, to the same answer.
    with django_assert_num_queries(2):
        assert runs_by_priority(run_ids=[run.id]) == sent


def test_a_score_is_written_only_when_it_changes(icp):
    lead = _low_value_lead()
    assert leads_score_record(lead_ids=[lead.id], notify_ids=set()) == {lead.id: 5}
    lead.refresh_from_db()
    assert lead.score == 5

    with CaptureQueriesContext(connection) as captured:
        leads_score_record(lead_ids=[lead.id], notify_ids=set())
    assert not [query for query in captured.captured_queries if query["sql"].startswith("UPDATE")]


@pytest.mark.services
def test_messages_carry_the_priority_and_high_value_leads_are_taken_first(
    icp, redis_url, settings, django_capture_on_commit_callbacks
):
    settings.ENRICHMENT_BATCH_SIZE = 1
    low, high = _low_value_lead(), _high_value_lead()
    # The low-value run is sent first: the broker still hands the high-value one out first.
    for lead in (low, high):
        with django_capture_on_commit_callbacks(execute=True):
            runs_create(lead_ids=[lead.id], trigger="create")
    runs = {run.lead_id: run.id for run in EnrichmentRun.objects.all()}

    received = []
    with current_app.connection_for_read() as connection:
        queue = connection.SimpleQueue("enrichment")
        for _ in range(2):
            message = queue.get(timeout=5)
            received.append((message.properties["priority"], message.payload[0][0]))
            message.ack()
        queue.close()
    assert received == [
        (priority_for(score=lead_score(lead=high), trigger="create"), runs[high.id]),
        (priority_for(score=lead_score(lead=low), trigger="create"), runs[low.id]),
    ]
    assert received[0][0] < received[1][0]


def _finish(lead: Lead, state: str = EnrichmentRun.State.DONE) -> EnrichmentRun:
    run = EnrichmentRun.objects.create(lead=lead, trigger="create", state=state)
    runs_finished.send(sender=EnrichmentRun, runs=[run])
    return run


def test_crossing_the_high_value_score_tells_the_owner_once(
    icp, settings, django_capture_on_commit_callbacks
):
    settings.LEAD_HIGH_VALUE_SCORE = 70
    owner = get_user_model().objects.create_user("ada", email="ada@example.com")
    lead = _high_value_lead(owner=owner, first_name="Grace", last_name="Hopper")

    with django_capture_on_commit_callbacks(execute=True):
        _finish(lead)
    lead.refresh_from_db()
    assert lead.score == 97
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    assert "Grace Hopper" in message.subject and "97" in message.subject

    # Already high-value: enriched again, nobody is told twice.
    with django_capture_on_commit_callbacks(execute=True):
        _finish(lead)
    assert len(mail.outbox) == 1


def test_a_lead_below_the_mark_or_not_enriched_tells_nobody(
    icp, settings, django_capture_on_commit_callbacks
):
    settings.LEAD_HIGH_VALUE_SCORE = 70
    owner = get_user_model().objects.create_user("bob", email="bob@example.com")
    low = _low_value_lead()
    low.owner = owner
    low.save()
    high = _high_value_lead(owner=owner)
    with django_capture_on_commit_callbacks(execute=True):
        _finish(low)
        _finish(high, state=EnrichmentRun.State.SKIPPED)
    assert mail.outbox == []
    assert Lead.objects.get(id=low.id).score == 5
    assert Lead.objects.get(id=high.id).score == 0


def test_crossing_publishes_a_lead_high_value_webhook(icp, settings):
    from webhooks.models import Delivery, Subscription

    settings.LEAD_HIGH_VALUE_SCORE = 70
    Subscription.objects.create(
        url="https://hooks.example.com/leadsmith",
        events=["lead.high_value"],
        secret="whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ=",
    )
    lead = _high_value_lead()
    _finish(lead)
    (delivery,) = Delivery.objects.filter(event="lead.high_value")
    assert f'"lead_id":{lead.id}' in delivery.body
    assert '"score":97' in delivery.body
