"""The enrich and demo management commands, and enrichment on create."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from enrichment.models import EnrichmentRun, Observation
from leads.models import Lead
from leads.services import lead_create
from providers.models import ProviderCall
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_enrich_sync_runs_the_pipeline_here_and_reports(sandbox, capsys):
    leads = [LeadFactory(company=CompanyFactory(domain=f"sync{i}.com")) for i in range(3)]
    call_command("enrich", "--lead", *[str(lead.id) for lead in leads], "--sync")
    out = capsys.readouterr().out
    runs = EnrichmentRun.objects.filter(lead__in=leads)
    assert runs.count() == 3
    assert all(run.is_terminal for run in runs)
    assert "done" in out or "not_found" in out


def test_enrich_names_the_lead_ids_that_do_not_exist():
    lead = LeadFactory()
    with pytest.raises(CommandError, match="No lead with id 999999"):
        call_command("enrich", "--lead", str(lead.id), "999999", "--sync")


def test_enrich_stale_picks_never_enriched_leads(sandbox, capsys):
    fresh, never = LeadFactory(), LeadFactory()
    call_command("enrich", "--lead", str(fresh.id), "--sync")
    capsys.readouterr()
    call_command("enrich", "--stale", "--sync")
    assert EnrichmentRun.objects.filter(lead=never).count() == 1


def test_creating_a_lead_queues_its_enrichment_after_commit(
    settings, django_capture_on_commit_callbacks
):
    settings.ENRICH_ON_CREATE = True
    with django_capture_on_commit_callbacks() as callbacks:
        lead = lead_create(values={"email": "new.person@acme.com"}, source="test", origin="test")
    run = EnrichmentRun.objects.get(lead=lead)
    assert run.trigger == "create"
    assert run.state == "queued"
    assert Lead.objects.get(id=lead.id).enrichment_status == "queued"
    # The message is sent only once the transaction has committed.
    assert len(callbacks) == 1


def test_no_run_is_created_when_enrich_on_create_is_off(settings):
    settings.ENRICH_ON_CREATE = False
    lead = lead_create(values={"email": "quiet@acme.com"}, source="test", origin="test")
    assert not EnrichmentRun.objects.filter(lead=lead).exists()


def test_demo_without_serving_creates_the_login_and_the_leads(capsys):
    call_command("demo", "--no-serve", "--leads", "50")
    assert get_user_model().objects.get(username="admin").is_superuser
    assert Lead.objects.filter(source="demo").count() == 50
    call_command("demo", "--no-serve", "--leads", "50")
    assert Lead.objects.filter(source="demo").count() == 50
    assert "already there" in capsys.readouterr().out


def test_a_dry_run_estimates_lookups_and_credits_and_spends_nothing(sandbox, capsys):
    shared = CompanyFactory(domain="estimate.com")
    leads = [LeadFactory(company=shared) for _ in range(3)]
    leads.append(LeadFactory(company=None, first_name="", last_name="", email=None))
    call_command("enrich", "--lead", *[str(lead.id) for lead in leads], "--dry-run")
    out = capsys.readouterr().out
    assert "Dry run for 4 lead(s)" in out
    # Three people, one company shared by them, one lead with nothing to look up.
    assert "sandbox: 3 person and 1 company lookup(s), about 4 credit(s)" in out
    assert "skipped (nothing to look up" in out
    assert not EnrichmentRun.objects.exists()
    assert not ProviderCall.objects.exists()


def test_a_dry_run_counts_what_the_cache_would_answer(sandbox, capsys):
    lead = LeadFactory(company=CompanyFactory(domain="cached-estimate.com"))
    call_command("enrich", "--lead", str(lead.id), "--sync")
    Observation.objects.update(expires_at=timezone.now())
    capsys.readouterr()
    call_command("enrich", "--lead", str(lead.id), "--dry-run")
    out = capsys.readouterr().out
    assert "answered from the cache: 2" in out
    assert "no paid lookups" in out
