"""The run status is a long poll: it answers the moment the run ends (announced on Redis
by the worker's commit, or found by reading the run when there is no Redis), and after
RUN_STATUS_WAIT_SECONDS with the running fragment, which asks again at once."""

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from accounts.services import user_role_set
from enrichment import run_waits
from enrichment.models import EnrichmentRun
from enrichment.services import run_execute
from tests.factories import CompanyFactory, LeadFactory
from tests.sandbox_people import findable_person

HTMX = {"HTTP_HX_REQUEST": "true"}
# Far longer than any wake-up measured here: a quick answer can only come from the event.
NEVER = 30.0


@pytest.fixture
def sdr_client(client, django_user_model):
    user = django_user_model.objects.create_user("sam", password="pw")
    user_role_set(user=user, role=Role.SDR)
    client.force_login(user)
    return client


def _findable_lead(domain: str):
    first, last = findable_person(domain)
    return LeadFactory(first_name=first, last_name=last, company=CompanyFactory(domain=domain))


def _finish_later(run_id: int, *, after: float) -> tuple[threading.Thread, dict]:
    """Execute the run in another thread (its own database connection, as a worker would)
    `after` seconds from now; the returned dict gets the moment it committed."""
    finished = {}

    def work():
        try:
            time.sleep(after)
            run = run_execute(run_id=run_id)
            finished["at"] = time.monotonic()
            finished["state"] = run.state
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, finished


def _click_and_wait(sdr_client, lead, *, finish_after: float):
    """Find Email with htmx, the run finished by another thread meanwhile; return the status
    request's response, how long it took and when it answered after the run's end."""
    sdr_client.post(reverse("leads:find_email", args=[lead.pk]), **HTMX)
    run = EnrichmentRun.objects.get(lead=lead)
    thread, finished = _finish_later(run.id, after=finish_after)
    started = time.monotonic()
    response = sdr_client.get(reverse("leads:run_status", args=[lead.pk, run.pk]), **HTMX)
    answered = time.monotonic()
    thread.join()
    assert finished["state"] == "done"
    return response, answered - started, answered - finished["at"]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_status_answers_when_the_worker_announces_the_end_on_redis(
    postgres, redis_url, sandbox, sdr_client, settings, monkeypatch
):
    settings.RUN_STATUS_WAIT_SECONDS = NEVER
    # Reading the run again would find the end within RECHECK_SECONDS: make that never, so
    # only the announcement can wake the request.
    monkeypatch.setattr(run_waits, "RECHECK_SECONDS", NEVER)
    lead = _findable_lead("mail.io")

    with CaptureQueriesContext(connection) as captured:
        response, took, after_end = _click_and_wait(sdr_client, lead, finish_after=0.5)

    assert took >= 0.5
    assert after_end < 1.0, f"answered {after_end:.2f}s after the run ended"
    # The run's state is read once, before waiting: the announcement says it is over.
    state_reads = [
        query
        for query in captured.captured_queries
        if query["sql"].startswith('SELECT "enrichment_enrichmentrun"."state" ')
    ]
    assert len(state_reads) == 1, state_reads
    lead.refresh_from_db()
    html = response.content.decode()
    assert "Email found" in html
    assert lead.email in html
    # The email row comes along, swapped in by its id.
    assert 'id="field-email" hx-swap-oob="true"' in html


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_without_redis_the_status_answers_by_reading_the_run(
    postgres, sandbox, sdr_client, settings
):
    # The embedded way (make demo has no Redis), on PostgreSQL: SQLite's in-memory test
    # database cannot be read by one thread while another writes.
    settings.REDIS_URL = ""
    settings.RUN_STATUS_WAIT_SECONDS = NEVER
    lead = _findable_lead("mail.io")

    response, took, after_end = _click_and_wait(sdr_client, lead, finish_after=0.5)

    assert took >= 0.5
    assert after_end < 1.0, f"answered {after_end:.2f}s after the run ended"
    assert "Email found" in response.content.decode()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_announcement_goes_out_after_commit_and_only_for_its_run(
    postgres, redis_url, sandbox, sdr_client
):
    lead = _findable_lead("mail.io")
    sdr_client.post(reverse("leads:find_email", args=[lead.pk]), **HTMX)
    run = EnrichmentRun.objects.get(lead=lead)
    pubsub = run_waits._client(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(run_waits._channel(run.id), run_waits._channel(run.id + 1))
    pubsub.get_message(timeout=1)
    pubsub.get_message(timeout=1)

    run_execute(run_id=run.id)

    message = pubsub.get_message(timeout=2)
    assert message is not None and message["channel"].decode() == run_waits._channel(run.id)
    assert pubsub.get_message(timeout=0.2) is None
    pubsub.close()


@pytest.mark.django_db
def test_after_the_cap_the_running_fragment_comes_back_and_asks_again(sdr_client, settings):
    settings.RUN_STATUS_WAIT_SECONDS = 0.3
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    sdr_client.post(reverse("leads:find_email", args=[lead.pk]), **HTMX)
    run = EnrichmentRun.objects.get(lead=lead)

    started = time.monotonic()
    response = sdr_client.get(reverse("leads:run_status", args=[lead.pk, run.pk]), **HTMX)
    took = time.monotonic() - started

    assert 0.3 <= took < 3
    html = response.content.decode()
    assert "Searching for an email" in html
    assert 'hx-trigger="load, every 10s"' in html
    assert "HX-Retarget" not in response


@pytest.mark.django_db
def test_a_finished_run_answers_at_once(sdr_client, settings):
    settings.RUN_STATUS_WAIT_SECONDS = NEVER
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    run = EnrichmentRun.objects.create(
        lead=lead, trigger="find_email", fields=["email"], state="not_found"
    )

    started = time.monotonic()
    response = sdr_client.get(reverse("leads:run_status", args=[lead.pk, run.pk]), **HTMX)

    assert time.monotonic() - started < 2
    html = response.content.decode()
    assert "No email found" in html
    assert 'id="lead-notices" hx-swap-oob="true"' in html and "Nothing found" in html


@pytest.mark.django_db
def test_without_htmx_the_status_redirects_without_waiting(sdr_client, settings):
    settings.RUN_STATUS_WAIT_SECONDS = NEVER
    lead = LeadFactory(company=CompanyFactory(domain="engine.io"))
    sdr_client.post(reverse("leads:find_email", args=[lead.pk]))
    run = EnrichmentRun.objects.get(lead=lead)

    started = time.monotonic()
    response = sdr_client.get(reverse("leads:run_status", args=[lead.pk, run.pk]))

    assert time.monotonic() - started < 2
    assert response.status_code == 302
    assert response.url == reverse("leads:detail", args=[lead.pk])
