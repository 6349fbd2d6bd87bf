"""The SDR's pages and the reviewer's queue, through Django's test client."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.services import user_role_set
from enrichment.models import EnrichmentRun, Observation
from enrichment.services import run_execute
from leads.models import Lead, Suppression
from leads.normalize import identity_hash
from tests.factories import CompanyFactory, LeadFactory, ObservationFactory
from tests.sandbox_people import findable_person

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _user(username: str, role: str | None):
    user = get_user_model().objects.create_user(username, password="pw")
    if role:
        user_role_set(user=user, role=role)
    return user


@pytest.fixture
def sdr(client):
    user = _user("sam", Role.SDR)
    client.force_login(user)
    return user


@pytest.fixture
def reviewer_client(client):
    client.force_login(_user("rita", Role.REVIEWER))
    return client


# --- Roles and login --------------------------------------------------------------------


def test_the_roles_exist_with_their_permissions():
    def codes(role):
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    assert {"view_lead", "change_lead", "add_enrichmentrun"} <= codes(Role.SDR)
    assert not {"view_reviewitem", "change_reviewitem"} & codes(Role.SDR)
    assert {"view_reviewitem", "change_reviewitem", "view_lead"} <= codes(Role.REVIEWER)
    assert {"change_providerconfig", "change_waterfallstep", "change_user"} <= codes(Role.ADMIN)


def test_a_role_decides_staff_status():
    user = _user("x", Role.REVIEWER)
    assert user.is_staff
    user_role_set(user=user, role=Role.SDR)
    user.refresh_from_db()
    assert not user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == [Role.SDR]
    with pytest.raises(ValueError, match="unknown role"):
        user_role_set(user=user, role="Boss")


def test_pages_need_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    response = client.get(reverse("login"))
    assert b"Sign in" in response.content


def test_login_with_a_password_lands_on_the_lead_list(client):
    _user("sam", Role.SDR)
    response = client.post(reverse("login"), {"username": "sam", "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("leads:list")
    client.logout()
    bad = client.post(reverse("login"), {"username": "sam", "password": "nope"})
    assert b"do not match" in bad.content


def test_a_user_without_a_role_sees_no_leads(client):
    client.force_login(_user("nobody", None))
    assert client.get("/").status_code == 403


# --- The lead list ----------------------------------------------------------------------


def _names(response) -> list[str]:
    return [str(lead) for lead, _ in response.context["rows"]]


def test_the_list_searches_name_email_and_company(client, sdr):
    LeadFactory(first_name="Ada", last_name="Lovelace", company=CompanyFactory(domain="engine.io"))
    LeadFactory(first_name="Alan", last_name="Turing", email="alan@bletchley.uk")
    LeadFactory(first_name="Grace", last_name="Hopper", company=CompanyFactory(domain="navy.mil"))

    assert _names(client.get("/", {"q": "lovelace"})) == ["Ada Lovelace"]
    assert _names(client.get("/", {"q": "bletchley"})) == ["Alan Turing"]
    assert _names(client.get("/", {"q": "navy"})) == ["Grace Hopper"]
    assert _names(client.get("/", {"q": "ada engine"})) == ["Ada Lovelace"]
    assert _names(client.get("/", {"q": "ada navy"})) == []
    assert _names(client.get("/", {"q": "LOVELACE"})) == ["Ada Lovelace"]
    # Wildcards are text to find, not patterns.
    assert _names(client.get("/", {"q": "%"})) == []
    assert _names(client.get("/", {"q": "a_a"})) == []


def test_the_list_filters_by_status_owner_review_and_staleness(client, sdr):
    mine = LeadFactory(first_name="Mine", last_name="A", owner=sdr, enrichment_status="enriched")
    LeadFactory(first_name="Other", last_name="B", enrichment_status="not_found")
    flagged = LeadFactory(first_name="Flagged", last_name="C")
    ObservationFactory(lead=flagged)
    stale = LeadFactory(first_name="Stale", last_name="D")
    ObservationFactory(lead=stale, state="applied", expires_at=timezone.now() - timedelta(days=1))

    assert _names(client.get("/", {"status": "enriched"})) == [str(mine)]
    assert _names(client.get("/", {"owner": "me"})) == [str(mine)]
    assert str(mine) not in _names(client.get("/", {"owner": "none"}))
    assert _names(client.get("/", {"pending": "on"})) == [str(flagged)]
    assert _names(client.get("/", {"stale": "on"})) == [str(stale)]
    # A bad value is ignored, not an error page.
    assert client.get("/", {"status": "bogus", "page": "x"}).status_code == 200


def test_the_list_sorts_and_pages_without_counting(client, sdr):
    for index in range(55):
        LeadFactory(first_name=f"P{index:02d}", last_name="Same")
    with CaptureQueriesContext(connection) as queries:
        first = client.get("/", {"sort": "name"})
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert first.context["page"].has_next
    assert _names(first)[:2] == ["P00 Same", "P01 Same"]
    second = client.get("/", {"sort": "name", "page": 2})
    assert _names(second) == [f"P{i} Same" for i in range(50, 55)]
    assert not second.context["page"].has_next
    assert b"page=1" in second.content


def test_the_list_marks_leads_waiting_for_review_and_answers_htmx_with_the_rows(client, sdr):
    ObservationFactory(lead=LeadFactory(first_name="Flagged", last_name="X"))
    response = client.get("/", {"q": "flagged"}, HTTP_HX_TARGET="lead-results", **HTMX)
    assert b"<html" not in response.content
    assert b'id="lead-results"' in response.content
    assert b"pill-review" in response.content


# --- The lead page ----------------------------------------------------------------------


def test_the_lead_page_shows_facts_badges_suggestions_and_history(client, sdr):
    lead = LeadFactory(
        email="ada@engine.io",
        email_verification="valid",
        job_title="CTO",
        company=CompanyFactory(domain="engine.io"),
    )
    ObservationFactory(
        lead=lead,
        field="email",
        value="ada@engine.io",
        state="applied",
        confidence=0.95,
        verification="valid",
    )
    ObservationFactory(lead=lead, field="job_title", value="CTO", state="applied", confidence=0.8)
    ObservationFactory(lead=lead, field="job_title", value="Chief Architect", confidence=0.55)

    response = client.get(reverse("leads:detail", args=[lead.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "ada@engine.io" in html
    assert "badge-high" in html and "95%" in html
    assert "verif-valid" in html
    # The doubtful title is a suggestion next to the fact, never the fact itself.
    sheet = response.context["sheet"]
    title = next(row for row in sheet.lead_fields if row.name == "job_title")
    assert title.value == "CTO"
    assert [s.observation.value for s in title.suggestions] == ["Chief Architect"]
    assert 'class="suggestion"' in html and "Chief Architect" in html
    assert "History · 2 observations" in html
    # SDRs see suggestions but cannot decide them.
    assert "suggestion_decide" not in html and "/approve/" not in html


def test_find_email_is_offered_only_when_it_can_help(client, sdr):
    needs = LeadFactory(company=CompanyFactory(domain="engine.io"))
    has_valid = LeadFactory(email="a@b.io", email_verification="valid")
    webmail = LeadFactory(company=CompanyFactory(domain="gmail.com"))
    no_name = LeadFactory(first_name="", company=CompanyFactory(domain="x.io"))

    def offered(lead):
        return b'id="find-email"' in client.get(reverse("leads:detail", args=[lead.pk])).content

    assert offered(needs)
    assert not offered(has_valid)
    assert not offered(webmail)
    assert not offered(no_name)
    response = client.post(reverse("leads:find_email", args=[has_valid.pk]))
    assert response.status_code == 302
    assert not EnrichmentRun.objects.filter(lead=has_valid).exists()


def test_find_email_without_javascript_starts_a_run_and_redirects(client, sdr):
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    response = client.post(reverse("leads:find_email", args=[lead.pk]))
    assert response.status_code == 302
    assert response.url == reverse("leads:detail", args=[lead.pk])
    run = EnrichmentRun.objects.get(lead=lead)
    assert (run.trigger, run.fields, run.state) == ("find_email", ["email"], "queued")
    page = client.get(response.url)
    # The page follows the run by itself: htmx long-polls, and without JS a meta refresh.
    assert b'hx-trigger="load, every 10s"' in page.content
    assert b'http-equiv="refresh"' in page.content
    # A second click follows the same run.
    client.post(reverse("leads:find_email", args=[lead.pk]))
    assert EnrichmentRun.objects.filter(lead=lead).count() == 1


def test_find_email_with_htmx_polls_until_the_email_arrives(client, sdr, sandbox, settings):
    # The status request answers "still running" at once (tests/leads/test_run_wait.py
    # covers the waiting).
    settings.RUN_STATUS_WAIT_SECONDS = 0
    first, last = findable_person("mail.io")
    lead = LeadFactory(first_name=first, last_name=last, company=CompanyFactory(domain="mail.io"))
    response = client.post(reverse("leads:find_email", args=[lead.pk]), **HTMX)
    assert b'hx-trigger="load, every 10s"' in response.content
    run = EnrichmentRun.objects.get(lead=lead)
    status_url = reverse("leads:run_status", args=[lead.pk, run.pk])
    assert b"Searching for an email" in client.get(status_url, **HTMX).content

    finished = run_execute(run_id=run.id)
    assert finished.state == "done", (finished.state, finished.last_error)
    lead.refresh_from_db()
    response = client.get(status_url, **HTMX)
    html = response.content.decode()
    assert "Email found" in html
    assert lead.email in html
    confidence = lead.observations.get(field="email", state="applied").confidence
    assert f"{confidence:.0%}" in html
    assert "verif-valid" in html
    assert "hx-trigger" not in html
    # The status in place, the email row beside it (tests/leads/test_find_email_path.py).
    assert "HX-Retarget" not in response
    assert 'id="field-email" hx-swap-oob="true"' in html


def test_re_enrich_starts_a_manual_run_for_every_field(client, sdr):
    lead = LeadFactory()
    client.post(reverse("leads:reenrich", args=[lead.pk]))
    run = EnrichmentRun.objects.get(lead=lead)
    assert (run.trigger, run.fields) == ("manual", [])


def test_a_run_that_failed_says_why_and_so_does_a_reached_budget(client, sdr):
    lead = LeadFactory()
    EnrichmentRun.objects.create(
        lead=lead,
        trigger="manual",
        state="queued",
        last_error="waiting: sandbox budget of 10 credits reached (10 spent)",
    )
    html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Budget reached" in html and "sandbox budget of 10 credits" in html


def test_a_suppressed_lead_says_so(client, sdr):
    lead = LeadFactory(email="gone@engine.io")
    Suppression.objects.create(
        kind="email", identifier_hash=identity_hash("gone@engine.io"), reason="erasure request"
    )
    html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Suppressed" in html and "erasure request" in html


def test_a_lead_never_found_says_nothing_was_found(client, sdr):
    lead = LeadFactory()
    EnrichmentRun.objects.create(
        lead=lead, trigger="manual", state="not_found", finished_at=timezone.now()
    )
    assert b"Nothing found" in client.get(reverse("leads:detail", args=[lead.pk])).content


# --- Manual edits -----------------------------------------------------------------------


def test_a_manual_edit_is_stored_locked_and_shown(client, sdr):
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    url = reverse("leads:field_edit", args=[lead.pk, "phone"])
    assert client.get(url).status_code == 200
    response = client.post(url, {"value": "+44 20 7946 0123"})
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.phone == "+442079460123"
    observation = lead.observations.get(field="phone")
    assert (observation.source, observation.decided_by) == ("manual", sdr)
    html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Manual · locked" in html


def test_a_bad_manual_edit_names_the_field_and_changes_nothing(client, sdr):
    lead = LeadFactory(phone="+442079460123")
    url = reverse("leads:field_edit", args=[lead.pk, "phone"])
    response = client.post(url, {"value": "call me maybe"})
    assert response.status_code == 400
    assert b"Phone:" in response.content
    htmx = client.post(url, {"value": "call me maybe"}, **HTMX)
    assert htmx.status_code == 200
    assert htmx["HX-Retarget"] == "#field-phone"
    lead.refresh_from_db()
    assert lead.phone == "+442079460123"
    assert not lead.observations.exists()


def test_a_company_field_is_edited_on_the_company(client, sdr):
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    client.post(reverse("leads:field_edit", args=[lead.pk, "industry"]), {"value": "Rail"}, **HTMX)
    lead.company.refresh_from_db()
    assert lead.company.industry == "Rail"
    assert client.get(reverse("leads:field_edit", args=[lead.pk, "nope"])).status_code == 404


# --- Reviewing ---------------------------------------------------------------------------


def test_an_sdr_cannot_decide_suggestions_anywhere(client, sdr):
    pending = ObservationFactory(lead=LeadFactory())
    url = reverse("leads:suggestion_decide", args=[pending.lead_id, pending.pk, "approve"])
    assert client.post(url).status_code == 403
    queue = reverse("admin:enrichment_reviewitem_changelist")
    assert client.get(queue).status_code == 302  # the admin's login: SDRs are not staff
    approve = reverse("admin:enrichment_reviewitem_approve", args=[pending.pk])
    client.post(approve)
    pending.refresh_from_db()
    assert pending.state == "pending_review"


def test_staff_without_the_reviewer_role_cannot_decide(client):
    user = _user("ops", Role.SDR)
    user.is_staff = True
    user.save()
    client.force_login(user)
    pending = ObservationFactory(lead=LeadFactory())
    assert client.get(reverse("admin:enrichment_reviewitem_changelist")).status_code == 403
    assert (
        client.post(reverse("admin:enrichment_reviewitem_approve", args=[pending.pk])).status_code
        == 403
    )
    pending.refresh_from_db()
    assert pending.state == "pending_review"


def test_a_reviewer_approves_on_the_lead_page(reviewer_client):
    lead = LeadFactory()
    pending = ObservationFactory(lead=lead, value="Head of Data")
    url = reverse("leads:suggestion_decide", args=[lead.pk, pending.pk, "approve"])
    response = reviewer_client.post(url, **HTMX)
    assert b"Approved \xc2\xb7 locked" in response.content
    lead.refresh_from_db()
    assert lead.job_title == "Head of Data"


def test_the_queue_shows_proposed_beside_current_in_constant_queries(reviewer_client):
    lead = LeadFactory(job_title="Sales Manager", company=CompanyFactory(domain="engine.io"))
    ObservationFactory(lead=lead, value="VP of Sales", confidence=0.7, reason="disagrees")
    ObservationFactory(lead=None, company=lead.company, field="industry", value="Rail")
    url = reverse("admin:enrichment_reviewitem_changelist")
    reviewer_client.get(url)  # a serving process holds the permissions (accounts.backends)
    with CaptureQueriesContext(connection) as few:
        response = reviewer_client.get(url)
    html = response.content.decode()
    assert "VP of Sales" in html and "Sales Manager" in html and "70%" in html
    assert "Rail" in html and "engine.io" in html
    for _ in range(20):
        ObservationFactory(lead=LeadFactory())
    with CaptureQueriesContext(connection) as many:
        reviewer_client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)
    counts = [q["sql"] for q in many.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"field__exact": "phone"}, {"+14155550100"}),
        ({"source": "pdl"}, {"Analyst"}),
        ({"confidence": "high"}, {"Analyst"}),
        ({"confidence": "low"}, {"+14155550100"}),
        ({"age": "older_30"}, {"Old Title"}),
    ],
)
def test_the_queue_filters(reviewer_client, params, expected):
    ObservationFactory(field="phone", value="+14155550100", confidence=0.55)
    ObservationFactory(value="Analyst", source="pdl", confidence=0.85)
    ObservationFactory(
        value="Old Title", confidence=0.7, observed_at=timezone.now() - timedelta(days=40)
    )
    response = reviewer_client.get(reverse("admin:enrichment_reviewitem_changelist"), params)
    shown = {row.value for row in response.context["cl"].result_list}
    assert shown == expected


def test_the_queue_approves_one_row_and_many_and_corrects(reviewer_client):
    leads = [LeadFactory() for _ in range(3)]
    one, *many = [ObservationFactory(lead=lead, value=f"Title {i}") for i, lead in enumerate(leads)]
    url = reverse("admin:enrichment_reviewitem_changelist")

    reviewer_client.post(reverse("admin:enrichment_reviewitem_approve", args=[one.pk]))
    one.refresh_from_db()
    assert one.state == "approved"
    assert Lead.objects.get(id=one.lead_id).job_title == "Title 0"

    reviewer_client.post(
        url, {"action": "reject_selected", "_selected_action": [o.pk for o in many]}
    )
    assert set(
        Observation.objects.filter(id__in=[o.pk for o in many]).values_list("state", flat=True)
    ) == {"rejected"}

    phone = ObservationFactory(field="phone", value="+14155550100")
    change = reverse("admin:enrichment_reviewitem_change", args=[phone.pk])
    bad = reviewer_client.post(change, {"decision": "correct", "corrected_value": "nope"})
    assert bad.status_code == 200
    assert b"not a valid number" in bad.content or b"phone" in bad.content.lower()
    phone.refresh_from_db()
    assert phone.state == "pending_review"
    good = reviewer_client.post(
        change, {"decision": "correct", "corrected_value": "+44 20 7946 0999"}
    )
    assert good.status_code == 302
    assert Lead.objects.get(id=phone.lead_id).phone == "+442079460999"


def test_the_queue_approves_in_bulk(reviewer_client):
    pending = [ObservationFactory(lead=LeadFactory(), value=f"T{i}") for i in range(4)]
    reviewer_client.post(
        reverse("admin:enrichment_reviewitem_changelist"),
        {"action": "approve_selected", "_selected_action": [o.pk for o in pending]},
    )
    assert sorted(Lead.objects.values_list("job_title", flat=True)) == ["T0", "T1", "T2", "T3"]


def test_a_lead_outside_the_icp_says_so(client, sdr):
    lead = LeadFactory()
    EnrichmentRun.objects.create(
        lead=lead,
        trigger="create",
        state="skipped",
        finished_at=timezone.now(),
        summary={"reason": "outside ICP: industry Retail is not a target"},
    )
    html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Outside your ICP" in html and "industry Retail is not a target" in html
