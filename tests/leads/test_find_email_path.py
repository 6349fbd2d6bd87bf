"""Find Email's web path, click to result: the POST checks its rule from a few columns and
answers at once, and the finished answer carries only what the run changed. Their queries
are pinned here, so a regression (a sheet read again, an N+1 in a template) fails."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.services import user_role_set
from enrichment.icp import icp_rules_active
from enrichment.models import EnrichmentRun
from enrichment.services import run_execute
from leads.models import Lead
from leads.selectors import find_email_can_help, lead_sheet, leads_for_find_email
from tests.factories import CompanyFactory, LeadFactory, ObservationFactory
from tests.sandbox_people import findable_person

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}

# Every signed-in request: the user (the session comes from the cache, the permissions are
# held by the process: accounts.backends).
REQUEST_QUERIES = 1
# runs_create (enrichment.services): its transaction (here a savepoint, the test's own
# transaction around it), the runs in flight, the insert and the lead's status.
RUNS_CREATE_QUERIES = 5
# The finished answer: the run with its lead among the lead's newest runs, the lead's and
# its company's observations, and the gate's suppressions (its ICP rules are held by the
# process: common.cached_tables).
FINISHED_QUERIES = 3


@pytest.fixture
def sdr(client):
    user = get_user_model().objects.create_user("sam", password="pw")
    user_role_set(user=user, role=Role.SDR)
    client.force_login(user)
    # What a serving process holds after its first request (common.cached_tables): the
    # permissions and the ICP rules.
    get_user_model().objects.get(pk=user.pk).get_all_permissions()
    icp_rules_active()
    return user


def _findable_lead(domain: str = "mail.io") -> Lead:
    first, last = findable_person(domain)
    return LeadFactory(first_name=first, last_name=last, company=CompanyFactory(domain=domain))


def _finished_find_email(client, lead: Lead) -> EnrichmentRun:
    client.post(reverse("leads:find_email", args=[lead.pk]), **HTMX)
    run = EnrichmentRun.objects.get(lead=lead, trigger="find_email")
    finished = run_execute(run_id=run.id)
    assert finished.state == "done", (finished.state, finished.last_error)
    return run


# --- The click ----------------------------------------------------------------------------


def test_the_post_reads_the_lead_once_and_answers_with_the_status(
    client, sdr, django_assert_num_queries
):
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    url = reverse("leads:find_email", args=[lead.pk])

    # The lead and its company's domain in one query; no sheet (observations, runs, gate).
    with django_assert_num_queries(REQUEST_QUERIES + 1 + RUNS_CREATE_QUERIES) as captured:
        response = client.post(url, **HTMX)

    assert response.status_code == 200
    run = EnrichmentRun.objects.get(lead=lead)
    html = response.content.decode()
    assert 'id="run-status"' in html and "Searching for an email" in html
    assert reverse("leads:run_status", args=[lead.pk, run.pk]) in html
    sql = " ".join(query["sql"] for query in captured.captured_queries)
    assert "enrichment_observation" not in sql and "leads_suppression" not in sql


def test_a_run_not_over_within_the_wait_is_answered_with_its_status(client, sdr, settings):
    """The POST waits RUN_ANSWER_WAIT_SECONDS for its run (answered in the POST when quick:
    tests/browser), then answers with the status, which long-polls."""
    settings.RUN_ANSWER_WAIT_SECONDS = 0.2
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))

    # No worker takes the run: this test's transaction never commits it.
    with CaptureQueriesContext(connection) as captured:
        response = client.post(reverse("leads:find_email", args=[lead.pk]), **HTMX)

    html = response.content.decode()
    assert "run-active" in html and "Searching for an email" in html
    assert "Preference-Applied" not in response
    # The wait read the run's state.
    assert len(captured.captured_queries) > REQUEST_QUERIES + 1 + RUNS_CREATE_QUERIES


def test_a_client_that_prefers_an_answer_at_once_gets_it_without_a_wait(
    client, sdr, settings, django_assert_num_queries
):
    settings.RUN_ANSWER_WAIT_SECONDS = 30
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))

    with django_assert_num_queries(REQUEST_QUERIES + 1 + RUNS_CREATE_QUERIES):
        response = client.post(
            reverse("leads:find_email", args=[lead.pk]),
            headers={"Prefer": "wait=5, respond-async"},
            **HTMX,
        )

    assert response["Preference-Applied"] == "respond-async"
    assert "Searching for an email" in response.content.decode()


def test_the_post_asks_about_a_lock_only_for_an_email_the_lead_has(
    client, sdr, django_assert_num_queries
):
    lead = LeadFactory(
        email="ada@engine.io",
        email_verification="unknown",
        company=CompanyFactory(domain="engine.io"),
    )
    with django_assert_num_queries(REQUEST_QUERIES + 2 + RUNS_CREATE_QUERIES):
        response = client.post(reverse("leads:find_email", args=[lead.pk]), **HTMX)
    assert response.status_code == 200
    assert EnrichmentRun.objects.filter(lead=lead, trigger="find_email").exists()


def test_the_post_refuses_a_locked_email_with_htmx_and_without(client, sdr):
    lead = LeadFactory(
        email="ada@engine.io",
        email_verification="unknown",
        company=CompanyFactory(domain="engine.io"),
    )
    ObservationFactory(
        lead=lead, field="email", value="ada@engine.io", source="manual", state="applied"
    )
    url = reverse("leads:find_email", args=[lead.pk])

    htmx = client.post(url, **HTMX)
    plain = client.post(url)

    assert htmx.status_code == 400 and b"no valid or locked email" in htmx.content
    assert plain.status_code == 302 and plain.url == reverse("leads:detail", args=[lead.pk])
    assert not EnrichmentRun.objects.filter(lead=lead).exists()


def test_the_cheap_rule_agrees_with_the_sheet():
    engine = CompanyFactory(domain="engine.io")

    def lead(email: str = "", *, lock: dict | None = None, **fields) -> Lead:
        """A lead at engine.io; `email` unverified, with an email observation `lock`."""
        verification = "unknown" if email else ""
        subject = LeadFactory(
            **{
                "company": engine,
                "email": email or None,
                "email_verification": verification,
                **fields,
            }
        )
        if lock is not None:
            ObservationFactory(lead=subject, field="email", **{"value": email, **lock})
        return subject

    cases = {
        "no email": (lead(), True),
        "an unverified email": (lead("a@engine.io"), True),
        "a valid email": (lead("b@engine.io", email_verification="valid"), False),
        "a manual email": (
            lead("c@engine.io", lock={"source": "manual", "state": "applied"}),
            False,
        ),
        "an approved email": (lead("d@engine.io", lock={"state": "approved"}), False),
        # A person locked an address the lead no longer has: nothing locks the one it has.
        "a lock on another address": (
            lead(
                "e@engine.io",
                lock={"value": "old@engine.io", "source": "manual", "state": "applied"},
            ),
            True,
        ),
        "a provider's email": (lead("f@engine.io", lock={"state": "applied"}), True),
        "a webmail company": (LeadFactory(company=CompanyFactory(domain="gmail.com")), False),
        "no first name": (lead(first_name=""), False),
        "no last name": (lead(last_name=""), False),
        "no company": (LeadFactory(company=None), False),
    }
    for name, (subject, expected) in cases.items():
        cheap = find_email_can_help(leads_for_find_email().get(pk=subject.pk))
        sheet = lead_sheet(Lead.objects.select_related("company", "owner").get(pk=subject.pk))
        assert (cheap, sheet.find_email_can_help) == (expected, expected), name


# --- The answer ---------------------------------------------------------------------------


def test_the_finished_answer_swaps_in_only_what_the_run_changed(
    client, sdr, sandbox, settings, django_assert_num_queries
):
    settings.RUN_STATUS_WAIT_SECONDS = 0
    lead = _findable_lead()
    run = _finished_find_email(client, lead)
    lead.refresh_from_db()

    with django_assert_num_queries(REQUEST_QUERIES + FINISHED_QUERIES):
        response = client.get(reverse("leads:run_status", args=[lead.pk, run.pk]), **HTMX)

    html = response.content.decode()
    # In place of the status (no retarget): the outcome with the email.
    assert "HX-Retarget" not in response
    assert html.lstrip().startswith('<div id="run-status" class="run run-success"')
    assert "Email found" in html and f'<span class="found">{lead.email}</span>' in html
    # Out of band, by id: the email row with its confidence, source and age, the head (the
    # email, the status, Find Email gone), the notices and the record's last run.
    assert '<li class="field" id="field-email" hx-swap-oob="true">' in html
    confidence = lead.observations.get(field="email", state="applied").confidence
    assert f"{confidence:.0%}" in html and "verif-valid" in html
    assert "Sandbox" in html and "just now" in html
    assert 'id="lead-head" hx-swap-oob="true"' in html
    assert f'<strong id="head-email">{lead.email}</strong>' in html
    assert 'id="find-email"' not in html and 'id="re-enrich"' in html
    assert 'id="lead-notices" hx-swap-oob="true"' in html
    assert 'id="lead-record" hx-swap-oob="true"' in html and "Find Email: done" in html
    # Nothing else: no other field, no company card.
    assert 'id="field-job_title"' not in html and 'id="lead-body"' not in html
    assert html.count("hx-swap-oob") == 4


def test_the_finished_answer_costs_the_same_however_long_the_history(
    client, sdr, settings, django_assert_num_queries
):
    """No N+1: every observation, the person who decided it and every suggestion come with
    the sheet's one read."""
    settings.RUN_STATUS_WAIT_SECONDS = 0
    lead = LeadFactory(
        email="ada@engine.io",
        email_verification="valid",
        company=CompanyFactory(domain="engine.io"),
    )
    run = EnrichmentRun.objects.create(
        lead=lead,
        trigger="find_email",
        fields=["email"],
        state="done",
        finished_at=timezone.now(),
    )
    reviewers = [
        get_user_model().objects.create_user(f"reviewer{i}", password="pw") for i in range(6)
    ]
    for i, reviewer in enumerate(reviewers):
        ObservationFactory(
            lead=lead,
            field="email",
            value=f"old{i}@engine.io",
            state="rejected",
            decided_by=reviewer,
            observed_at=timezone.now() - timedelta(days=i + 2),
        )
        ObservationFactory(lead=lead, field="email", value=f"maybe{i}@engine.io", source="pdl")
        ObservationFactory(lead=None, company=lead.company, field="industry", value=f"I{i}")
    ObservationFactory(
        lead=lead,
        field="email",
        value="ada@engine.io",
        state="applied",
        confidence=0.95,
        verification="valid",
        run=run,
    )
    url = reverse("leads:run_status", args=[lead.pk, run.pk])

    with django_assert_num_queries(REQUEST_QUERIES + FINISHED_QUERIES):
        response = client.get(url, **HTMX)

    html = response.content.decode()
    assert "Email found" in html and "History · 13 observations" in html
    assert "reviewer5" in html and "maybe5@engine.io" in html
    # The pill counts the company's suggestions too, as on the page.
    assert "12 suggestions waiting for review" in html


def test_a_finished_re_enrich_refreshes_the_whole_body_at_the_same_cost(
    client, sdr, settings, django_assert_num_queries
):
    settings.RUN_STATUS_WAIT_SECONDS = 0
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    run = EnrichmentRun.objects.create(
        lead=lead, trigger="manual", state="not_found", finished_at=timezone.now()
    )

    with django_assert_num_queries(REQUEST_QUERIES + FINISHED_QUERIES):
        response = client.get(reverse("leads:run_status", args=[lead.pk, run.pk]), **HTMX)

    assert response["HX-Retarget"] == "#lead-body"
    html = response.content.decode()
    assert 'id="lead-body"' in html and "hx-swap-oob" not in html
    assert "No new data" in html and "Nothing found" in html


def test_a_run_still_going_answers_with_the_running_fragment_and_no_sheet(
    client, sdr, settings, django_assert_num_queries
):
    settings.RUN_STATUS_WAIT_SECONDS = 0
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    run = EnrichmentRun.objects.create(lead=lead, trigger="find_email", fields=["email"])

    # The run with its lead, and the wait's one look at the run's state (the cap is 0 here).
    with django_assert_num_queries(REQUEST_QUERIES + 2):
        response = client.get(reverse("leads:run_status", args=[lead.pk, run.pk]), **HTMX)

    assert "Searching for an email" in response.content.decode()


def test_an_older_run_or_another_leads_run_is_found_or_refused(client, sdr, settings):
    settings.RUN_STATUS_WAIT_SECONDS = 0
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    old = EnrichmentRun.objects.create(
        lead=lead,
        trigger="find_email",
        fields=["email"],
        state="not_found",
        finished_at=timezone.now(),
    )
    for _ in range(6):
        EnrichmentRun.objects.create(
            lead=lead, trigger="manual", state="done", finished_at=timezone.now()
        )
    other = LeadFactory()

    response = client.get(reverse("leads:run_status", args=[lead.pk, old.pk]), **HTMX)
    refused = client.get(reverse("leads:run_status", args=[other.pk, old.pk]), **HTMX)

    assert response.status_code == 200 and "No email found" in response.content.decode()
    assert refused.status_code == 404


def test_the_lead_page_costs_the_same_however_many_observations(
    client, sdr, django_assert_max_num_queries
):
    """The full page: one read for the sheet's observations whatever their number."""
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    url = reverse("leads:detail", args=[lead.pk])
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(8):
        reviewer = get_user_model().objects.create_user(f"r{i}", password="pw")
        ObservationFactory(lead=lead, field="job_title", value=f"T{i}", decided_by=reviewer)
        ObservationFactory(lead=None, company=lead.company, field="industry", value=f"I{i}")

    with django_assert_max_num_queries(len(few)):
        response = client.get(url)

    assert "r7" in response.content.decode()
