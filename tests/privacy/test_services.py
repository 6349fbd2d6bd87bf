"""GDPR (privacy/services.py) against the real pipeline and sandbox: erase, re-import,
export, retention, and the audit log of each."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from enrichment.models import EnrichmentRun, Observation
from enrichment.services import run_execute
from leads.csv_import import import_leads_csv
from leads.models import Lead, Suppression
from leads.normalize import identity_hash
from privacy.models import AuditLog
from privacy.services import lead_access_export, lead_erase, provider_payloads_purge
from privacy.tasks import retention_purge
from providers.ledger import lookup_key_hash, reusable_answer
from providers.models import ProviderCall
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db

EMAIL = "jane.roe@northwind.io"


@pytest.fixture
def jane(sandbox, enrich_now):
    """A person enriched through the sandbox (her ledger rows hold its answers)."""
    lead = LeadFactory(
        email=EMAIL,
        first_name="Jane",
        last_name="Roe",
        company=CompanyFactory(domain="northwind.io"),
        source="csv:fair.csv",
    )
    (run,) = enrich_now(lead)
    assert run.state in {"done", "not_found"}
    return lead


@pytest.fixture
def officer():
    return get_user_model().objects.create_user("dpo", email="dpo@example.com")


def _person_rows(email: str):
    return ProviderCall.objects.filter(lookup_key_hash=lookup_key_hash(f"email:{email}"))


def test_erasure_removes_the_person_keeps_the_spend_and_suppresses_them(
    jane, sandbox, enrich_now, officer
):
    other = LeadFactory(email="max.other@contoso.io", company=CompanyFactory(domain="contoso.io"))
    enrich_now(other)
    spent = ProviderCall.objects.aggregate(total=Sum("credits"))["total"]
    jane_calls = list(_person_rows(EMAIL).values_list("id", flat=True))
    assert jane_calls and ProviderCall.objects.get(id=jane_calls[0]).response
    other_calls = list(_person_rows("max.other@contoso.io").values_list("id", "response"))

    result = lead_erase(lead=jane, actor=officer, reason="ticket DSR-42")

    assert not Lead.objects.filter(id=jane.id).exists()
    assert not Observation.objects.filter(lead_id=jane.id).exists()
    assert not EnrichmentRun.objects.filter(lead_id=jane.id).exists()
    assert result.observations_deleted > 0 and result.runs_deleted == 1
    # The ledger rows stay as the spend record, with nothing left that names her.
    erased = ProviderCall.objects.filter(id__in=jane_calls)
    assert erased.count() == len(jane_calls)
    assert all(row.response is None and row.lookup_key_hash == "" for row in erased)
    assert ProviderCall.objects.aggregate(total=Sum("credits"))["total"] == spent
    assert result.provider_calls_blanked >= len(jane_calls)
    # So the cache can never serve her answers again.
    assert (
        reusable_answer(
            provider="sandbox",
            operation="person_enrich",
            key_hashes=[lookup_key_hash(f"email:{EMAIL}")],
            hit_ttl=timedelta(days=365),
            miss_ttl=timedelta(days=365),
        )
        is None
    )
    # Someone else's rows and the company's are untouched.
    assert list(_person_rows("max.other@contoso.io").values_list("id", "response")) == other_calls
    assert ProviderCall.objects.filter(operation="company_enrich", response__isnull=False).exists()
    # Every identity is suppressed, hashed.
    kinds = set(
        Suppression.objects.filter(
            identifier_hash__in=[
                identity_hash(EMAIL),
                identity_hash("jane|roe|northwind.io"),
            ]
        ).values_list("kind", flat=True)
    )
    assert kinds == {"email", "name"}
    (entry,) = AuditLog.objects.filter(action="erase")
    assert entry.actor == officer and entry.actor_label == "dpo"
    assert entry.subject_hash == identity_hash(EMAIL)
    assert entry.reason == "ticket DSR-42"
    assert entry.counts["runs"] == 1
    assert (
        "jane"
        not in json.dumps(
            [entry.subject_hash, entry.reason, entry.counts, entry.actor_label]
        ).lower()
    )


def test_an_erased_person_imported_again_is_skipped_and_no_provider_is_called(
    jane, sandbox, settings, tmp_path
):
    lead_erase(lead=jane, actor="test", reason="erasure request by email")
    calls_before = ProviderCall.objects.count()
    billed_before = sum(sandbox.billed.values())
    settings.ENRICH_ON_CREATE = True

    path = tmp_path / "fair.csv"
    path.write_text(
        "email,first_name,last_name,company_domain\n"
        f"{EMAIL},Jane,Roe,northwind.io\n"
        # The same person without her address: the import cannot tell, the gate can.
        ",Jane,Roe,northwind.io\n"
        "new.person@fabrikam.io,New,Person,fabrikam.io\n",
        encoding="utf-8",
    )
    report_path = tmp_path / "fair.report.csv"
    report = import_leads_csv(path=path, source="csv:fair.csv", report_path=report_path)

    assert (report.created, report.suppressed) == (2, 1)
    assert not Lead.objects.filter(email=EMAIL).exists()
    with report_path.open(encoding="utf-8-sig", newline="") as stream:
        (refused,) = list(csv.DictReader(stream))
    assert refused["row_number"] == "2"
    assert refused["reason"] == "its email or LinkedIn URL is suppressed"

    by_name = Lead.objects.get(first_name="Jane", last_name="Roe")
    (run,) = EnrichmentRun.objects.filter(lead=by_name)
    run = run_execute(run_id=run.id)
    assert run.state == "skipped"
    assert run.summary["reason"] == "suppressed: erased on the person's request (GDPR art. 17)"
    assert ProviderCall.objects.count() == calls_before
    assert sum(sandbox.billed.values()) == billed_before

    # The control: the new person in the same file is enriched through the same sandbox.
    newcomer = Lead.objects.get(email="new.person@fabrikam.io")
    run_execute(run_id=EnrichmentRun.objects.get(lead=newcomer).id)
    assert ProviderCall.objects.count() > calls_before


def test_access_export_holds_everything_with_sources_and_dates(jane, officer):
    data = lead_access_export(lead=jane, actor=officer)
    json.dumps(data)  # ready to hand over as it is

    assert data["lead"]["email"] == EMAIL
    assert data["lead"]["source"] == "csv:fair.csv"
    assert data["lead"]["legal_basis"] == "legitimate_interest"
    assert data["company"]["domain"] == "northwind.io"
    observations = data["observations"]
    assert len(observations) == Observation.objects.filter(lead=jane).count() > 0
    for observation in observations:
        assert observation["source"] and observation["observed_at"] and observation["expires_at"]
    sandbox_values = [o for o in observations if o["source"] == "sandbox"]
    assert all(o["provider_call_id"] for o in sandbox_values)
    calls = {call["id"]: call for call in data["provider_calls"]}
    assert {o["provider_call_id"] for o in sandbox_values} <= set(calls)
    assert any(call["asked_by"] == "email" for call in calls.values())
    assert all(call["at"] and call["provider"] == "sandbox" for call in calls.values())
    (run,) = data["runs"]
    assert run["trigger"] == "manual" and run["created_at"]
    (entry,) = AuditLog.objects.filter(action="export")
    assert entry.subject_hash == identity_hash(EMAIL)
    assert entry.counts["observations"] == len(observations)


def test_retention_drops_raw_payloads_past_the_period_and_keeps_what_the_cache_serves(
    jane, settings
):
    settings.PROVIDER_PAYLOAD_RETENTION_DAYS = 90
    old = ProviderCall.objects.filter(response__isnull=False).first()
    recent = ProviderCall.objects.filter(response__isnull=False).exclude(id=old.id).first()
    ProviderCall.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=91))
    candidates, credits = old.response["candidates"], old.credits
    assert old.response["raw"]

    retention_purge()

    old.refresh_from_db()
    recent.refresh_from_db()
    assert "raw" not in old.response
    assert old.response["candidates"] == candidates
    assert recent.response["raw"]
    assert old.credits == credits
    (entry,) = AuditLog.objects.filter(action="retention_purge")
    assert entry.counts == {"provider_calls": 1}
    assert provider_payloads_purge(older_than=timezone.now() - timedelta(days=90)) == 0


def test_the_commands_export_and_erase_by_email(jane, tmp_path):
    output = tmp_path / "export.json"
    call_command("export_lead", "--email", EMAIL.upper(), "--output", str(output))
    assert json.loads(output.read_text())["lead"]["id"] == jane.id

    stdout = io.StringIO()
    call_command("erase_lead", "--lead", str(jane.id), "--reason", "DSR-7", "--yes", stdout=stdout)
    assert f"Erased lead {jane.id}" in stdout.getvalue()
    assert not Lead.objects.filter(id=jane.id).exists()
    assert list(AuditLog.objects.values_list("action", "actor_label")) == [
        ("erase", "manage.py erase_lead"),
        ("export", "manage.py export_lead"),
    ]


def test_admin_actions_export_and_erase_after_confirmation(jane, admin_client):
    changelist = "/admin/leads/lead/"
    exported = admin_client.post(
        changelist, {"action": "export_personal_data", "_selected_action": [jane.id]}
    )
    assert exported["Content-Type"] == "application/json"
    assert json.loads(exported.content)["lead"]["email"] == EMAIL

    asked = admin_client.post(
        changelist, {"action": "erase_personal_data", "_selected_action": [jane.id]}
    )
    assert asked.status_code == 200
    assert b"cannot be undone" in asked.content
    assert Lead.objects.filter(id=jane.id).exists()

    done = admin_client.post(
        changelist,
        {
            "action": "erase_personal_data",
            "_selected_action": [jane.id],
            "confirmed": "yes",
            "reason": "DSR-9",
        },
    )
    assert done.status_code == 302
    assert not Lead.objects.filter(id=jane.id).exists()
    assert AuditLog.objects.filter(action="erase", reason="DSR-9", actor_label="admin").exists()
