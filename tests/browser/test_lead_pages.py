"""What an SDR and a reviewer do, in Chromium: Find Email without a reload, approving a
flagged value in the admin queue, and an SDR kept away from the review actions."""

import re
import time

import pytest
from playwright.sync_api import expect

from enrichment.models import EnrichmentRun, Observation
from leads.models import Company, Lead
from tests.factories import ObservationFactory
from tests.sandbox_people import findable_person

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

DOMAIN = "brightpipe.io"


def _findable_lead() -> Lead:
    first, last = findable_person(DOMAIN)
    company, _ = Company.objects.get_or_create(domain=DOMAIN)
    return Lead.objects.create(first_name=first, last_name=last, company=company)


@pytest.mark.parametrize(
    "answer_wait",
    [30.0, 0.0],
    ids=["answered by the click's own request", "answered by the run's status"],
)
def test_an_sdr_finds_an_email_and_sees_it_arrive_without_a_reload(
    live_server, new_page, login, roles, celery_worker, settings, answer_wait
):
    settings.RUN_ANSWER_WAIT_SECONDS = answer_wait
    lead = _findable_lead()
    page = new_page()
    login(page, "sam", roles.SDR)
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    status_urls = []
    page.on("request", lambda r: status_urls.append(r.url) if "/runs/" in r.url else None)
    email_row = page.locator("#field-email")
    expect(email_row.locator(".value")).to_contain_text("—")
    # Set on this document only: a reload would lose it.
    page.evaluate("window.__sameDocument = true")

    started = time.monotonic()
    page.click("#find-email")
    expect(page.locator("#run-status")).to_contain_text("Email found", timeout=30_000)
    elapsed = time.monotonic() - started

    lead.refresh_from_db()
    assert lead.email and lead.email.endswith(f"@{DOMAIN}")
    observation = lead.observations.get(field="email", state="applied")
    expect(email_row.locator(".value")).to_contain_text(lead.email)
    expect(email_row.locator(".badge-high")).to_have_text(f"{observation.confidence:.0%}")
    expect(email_row.locator(".verif-valid")).to_have_text("Valid")
    expect(page.locator("#run-status .found")).to_have_text(lead.email)
    assert page.evaluate("window.__sameDocument") is True
    # The button is gone once there is a valid email: it could not help any more.
    expect(page.locator("#find-email")).to_have_count(0)
    # The parts the run changed came out of band, each in place of its old self.
    expect(page.locator("#head-email")).to_have_text(lead.email)
    expect(page.locator("#lead-record")).to_contain_text("Find Email: done")
    for part in ("#lead-head", "#field-email", "#lead-notices", "#lead-record", "#run-status"):
        expect(page.locator(part)).to_have_count(1)
    expect(page.locator("[hx-swap-oob]")).to_have_count(0)
    # A quick run is answered by the POST itself; without the wait, by its status.
    assert bool(status_urls) is (answer_wait == 0), status_urls
    print(f"\nFind Email: click to email on the page in {elapsed:.1f}s")


def test_without_javascript_find_email_is_a_post_that_redirects_and_follows_the_run(
    live_server, new_page, login, roles, celery_worker
):
    lead = _findable_lead()
    page = new_page(javascript=False)
    login(page, "sam", roles.SDR)
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    page.click("#find-email")
    # A plain POST, then the lead page again (its <noscript> refresh follows the run).
    expect(page).to_have_url(re.compile(rf"/leads/{lead.pk}/$"))
    assert EnrichmentRun.objects.filter(lead=lead, trigger="find_email").exists()
    expect(page.locator("#field-email .verif-valid")).to_have_text("Valid", timeout=30_000)
    lead.refresh_from_db()
    expect(page.locator("#field-email .value")).to_contain_text(lead.email)


def test_a_reviewer_approves_a_flagged_value_and_the_lead_shows_it_locked(
    live_server, new_page, login, roles
):
    lead = Lead.objects.create(
        first_name="Ada",
        last_name="Lovelace",
        job_title="Sales Manager",
        company=Company.objects.create(domain="engine.io"),
    )
    flagged = ObservationFactory(
        lead=lead, value="VP of Sales", confidence=0.68, reason="disagrees with the record"
    )
    page = new_page()
    login(page, "rita", roles.REVIEWER)
    page.goto(f"{live_server.url}/admin/enrichment/reviewitem/")
    row = page.locator("#result_list tr", has_text="VP of Sales")
    expect(row).to_contain_text("Sales Manager")  # the current value beside the proposal
    expect(row).to_contain_text("68%")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator(".messagelist")).to_contain_text("Approved and locked")
    expect(page.locator("#result_list tr", has_text="VP of Sales")).to_have_count(0)

    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    title = page.locator("#field-job_title")
    expect(title.locator(".value")).to_contain_text("VP of Sales")
    expect(title.locator(".badge-manual")).to_contain_text("Approved · locked")
    expect(title.locator(".suggestion")).to_have_count(0)
    flagged.refresh_from_db()
    assert (flagged.state, flagged.decided_by.username) == ("approved", "rita")


def test_an_sdr_cannot_reach_the_review_actions(live_server, new_page, login, roles):
    lead = Lead.objects.create(
        first_name="Grace", last_name="Hopper", company=Company.objects.create(domain="navy.mil")
    )
    flagged = ObservationFactory(lead=lead, value="Rear Admiral", confidence=0.7)
    page = new_page()
    login(page, "sam", roles.SDR)

    expect(page.get_by_role("link", name="Review queue")).to_have_count(0)
    page.goto(f"{live_server.url}/admin/enrichment/reviewitem/")
    # The admin sends a non-staff user to its own login page.
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    expect(page.locator("#result_list")).to_have_count(0)

    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    suggestion = page.locator("#field-job_title .suggestion")
    expect(suggestion).to_contain_text("Rear Admiral")
    expect(suggestion).to_contain_text("waiting for review")
    expect(suggestion.get_by_role("button", name="Approve")).to_have_count(0)

    # Posting the decision by hand, with a valid CSRF token, is refused too.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{live_server.url}/leads/{lead.pk}/suggestions/{flagged.pk}/approve/",
        headers={"X-CSRFToken": token, "Referer": live_server.url + "/"},
    )
    assert response.status == 403
    assert Observation.objects.get(id=flagged.id).state == "pending_review"
    assert Lead.objects.get(id=lead.id).job_title == ""
