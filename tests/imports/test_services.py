"""imports.services: upload, dry run, import, enrichment job, and the enriched copy."""

import csv
import io

import pytest

from enrichment.models import EnrichmentJob, EnrichmentRun
from enrichment.services import run_execute
from imports.models import CsvImport
from imports.services import (
    ImportStateError,
    csv_import_estimate,
    csv_import_run,
    csv_import_start,
    enriched_columns,
    enriched_csv_write,
)
from leads.csv_import import ImportFileError
from leads.models import Company, Lead, Suppression
from leads.normalize import identity_hash
from providers.ledger import lookup_key_hash
from providers.models import ProviderCall

PEOPLE = (
    "First Name,Last Name,Email,Website,Title,Notes\n"
    "Ada,Lovelace,ada@acme.com,https://acme.com,CTO,first\n"
    'Grace,Hopper,,https://cobol.dev,,"two\nlines"\n'
    "Bad,Email,bad@@acme.com,,,\n"
    "Ada,L.,ADA@acme.com,,Chief Technology Officer,repeat\n"
    "Gone,Person,gone@acme.com,,,\n"
    ",,,,,\n"
    'Alan,Turing,alan@bletchley.org.uk,,=HYPERLINK("http://evil"),\n'
)


def _run(upload_or_id, **kwargs) -> CsvImport:
    pk = upload_or_id.pk if isinstance(upload_or_id, CsvImport) else upload_or_id
    CsvImport.objects.filter(pk=pk).update(state=CsvImport.State.QUEUED)
    return csv_import_run(csv_import_id=pk, enqueue=False, **kwargs)


def _read(csv_import: CsvImport) -> list[list[str]]:
    out = io.StringIO()
    enriched_csv_write(csv_import=csv_import, out=out)
    text = out.getvalue()
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.fixture
def suppressed(db):
    Suppression.objects.create(
        kind="email", identifier_hash=identity_hash("gone@acme.com"), reason="erasure request"
    )


def test_an_upload_is_checked_and_stored_before_anything_is_imported(upload):
    csv_import = upload(PEOPLE, name="../../people list.csv")
    assert csv_import.state == CsvImport.State.UPLOADED
    assert csv_import.name == "people_list.csv"
    assert (csv_import.encoding, csv_import.delimiter) == ("utf-8-sig", ",")
    assert csv_import.mapping == ["first_name", "last_name", "email", "website", "job_title", ""]
    assert csv_import.source == "csv:people_list.csv"
    assert csv_import.file.read() == PEOPLE.encode()
    assert not Lead.objects.exists()


def test_a_bad_file_or_mapping_is_refused_and_nothing_is_stored(upload, media_root):
    with pytest.raises(ImportFileError, match="no column identifying a lead"):
        upload("Name,Notes\nAda,hi\n")
    with pytest.raises(ImportFileError, match="does not have"):
        upload(PEOPLE, overrides={"Work Email": "email"})
    with pytest.raises(ImportFileError, match=r"'e-mail' .* is not a field"):
        upload(PEOPLE, overrides={"Notes": "e-mail"})
    assert not CsvImport.objects.exists()
    assert not any(media_root.rglob("*.csv"))


def test_an_import_counts_merges_reports_and_remembers_each_rows_lead(upload, suppressed):
    done = _run(upload(PEOPLE, enrich=False))
    assert done.state == CsvImport.State.DONE
    counts = (
        done.rows_total,
        done.rows_created,
        done.rows_updated,
        done.rows_duplicate,
        done.rows_invalid,
        done.rows_suppressed,
    )
    assert counts == (6, 3, 0, 1, 1, 1)
    assert done.progress == 1.0
    ada = Lead.objects.get(email="ada@acme.com")
    grace = Lead.objects.get(first_name="Grace")
    alan = Lead.objects.get(email="alan@bletchley.org.uk")
    # One entry per record after the header, blank ones included, in file order.
    assert list(done.lead_ids()) == [ada.id, grace.id, 0, ada.id, 0, 0, alan.id]
    assert ada.job_title == "CTO"  # the repeat filled nothing already there
    report = list(csv.reader(io.StringIO(done.error_report.read().decode("utf-8-sig"))))
    assert [row[:2] for row in report[1:]] == [
        ["4", report[1][1]],
        ["6", "its email or LinkedIn URL is suppressed"],
    ]
    assert report[1][1].startswith("email 'bad@@acme.com' is not valid")
    assert not EnrichmentRun.objects.exists()


def test_an_import_enriches_every_lead_of_the_file_in_one_job(upload, settings):
    Lead.objects.create(email="alan@bletchley.org.uk", job_title="Mathematician")
    done = _run(upload(PEOPLE, enrich=True))
    job = done.enrichment_job
    assert job is not None and job.kind == EnrichmentJob.Kind.BULK
    assert job.total == 4
    runs = EnrichmentRun.objects.filter(job=job)
    assert set(runs.values_list("lead__email", flat=True)) == {
        "ada@acme.com",
        "alan@bletchley.org.uk",
        "gone@acme.com",
        None,
    }
    # Alan's lead had no company: the file gave it one.
    assert done.rows_updated == 1 and done.rows_duplicate == 1


def test_without_enrich_only_new_leads_get_runs_and_only_when_on_create_is_on(upload, settings):
    Lead.objects.create(email="alan@bletchley.org.uk")
    settings.ENRICH_ON_CREATE = False
    assert _run(upload(PEOPLE, enrich=False)).enrichment_job is None
    assert not EnrichmentRun.objects.exists()

    settings.ENRICH_ON_CREATE = True
    done = _run(upload(PEOPLE + "Linus,T,linus@kernel.org,,,\n", enrich=False))
    runs = EnrichmentRun.objects.filter(job=done.enrichment_job)
    assert list(runs.values_list("trigger", "lead__email")) == [("create", "linus@kernel.org")]


def test_an_import_starts_once_and_runs_once(upload):
    csv_import = upload(PEOPLE)
    csv_import_start(csv_import_id=csv_import.pk)
    with pytest.raises(ImportStateError, match="queued, so it cannot be started again"):
        csv_import_start(csv_import_id=csv_import.pk)
    assert csv_import_run(csv_import_id=csv_import.pk, enqueue=False).state == "done"
    assert csv_import_run(csv_import_id=csv_import.pk, enqueue=False) is None


def test_a_broken_line_fails_the_import_after_keeping_the_rows_before_it(upload):
    text = 'email,notes\nada@acme.com,ok\nbob@acme.com,"never closed\n' + "x@y.com,z\n" * 20_000
    done = _run(upload(text))
    assert done.state == CsvImport.State.FAILED
    assert "cannot be read as CSV at line" in done.error
    assert list(Lead.objects.values_list("email", flat=True)) == ["ada@acme.com"]
    assert done.rows_created == 1


def test_the_dry_run_estimates_without_writing_or_spending(upload, suppressed, sandbox):
    Lead.objects.create(
        email="alan@bletchley.org.uk", company=Company.objects.create(domain="bletchley.org.uk")
    )
    csv_import = upload(PEOPLE)
    estimate = csv_import_estimate(csv_import=csv_import).as_dict()
    assert estimate["rows"] == 6
    assert (estimate["new_leads"], estimate["existing_leads"]) == (2, 1)
    assert (estimate["duplicates"], estimate["invalid"], estimate["suppressed"]) == (1, 1, 1)
    # Ada, Grace and Alan go to the sandbox once each, their companies once per domain.
    assert estimate["providers"] == {
        "sandbox": {"person_lookups": 3, "company_lookups": 3, "credits": 6.0}
    }
    assert estimate["credits"] == 6.0
    assert Lead.objects.count() == 1 and Company.objects.count() == 1
    assert not ProviderCall.objects.exists()
    csv_import.refresh_from_db()
    assert csv_import.estimate == estimate and csv_import.state == CsvImport.State.UPLOADED


def test_the_dry_run_counts_a_cached_answer_as_free(upload, sandbox):
    ProviderCall.objects.create(
        provider="sandbox",
        operation="company_enrich",
        lookup_key_hash=lookup_key_hash("domain:acme.com"),
        outcome=ProviderCall.Outcome.HIT,
    )
    estimate = csv_import_estimate(csv_import=upload("email\nada@acme.com\n")).as_dict()
    assert estimate["cached"] == 1
    assert estimate["providers"]["sandbox"] == {
        "person_lookups": 1,
        "company_lookups": 0,
        "credits": 1.0,
    }


def test_the_enriched_copy_has_the_same_rows_in_order_with_enriched_columns(upload, sandbox):
    done = _run(upload(PEOPLE, enrich=True))
    for run in EnrichmentRun.objects.filter(job=done.enrichment_job):
        run_execute(run_id=run.id)
    rows = _read(done)
    original = list(csv.reader(io.StringIO(PEOPLE)))
    header = original[0]
    assert rows[0] == header + enriched_columns(header)
    assert len(rows) == len(original)
    width = len(header)
    # The original cells come back as they were, a formula neutralized.
    for got, sent in zip(rows[1:], original[1:], strict=True):
        sent = [f"'{cell}" if cell.startswith("=") else cell for cell in sent]
        assert got[:width] == sent
    names = rows[0][width:]
    by_row = [dict(zip(names, row[width:], strict=True)) for row in rows[1:]]
    ada = Lead.objects.select_related("company").get(email="ada@acme.com")
    assert by_row[0]["lead_id"] == by_row[3]["lead_id"] == str(ada.id)
    assert by_row[0]["email"] == "ada@acme.com"
    assert by_row[0]["job_title"] == ada.job_title
    assert by_row[2] == dict.fromkeys(names, "")  # the invalid row keeps its place
    enriched = [
        (row[f"{field}"], row[f"{field}_confidence"], row[f"{field}_source"])
        for row in by_row
        for field in ("phone", "seniority", "company_name", "industry")
        if row[f"{field}_source"] == "sandbox"
    ]
    assert enriched, "the sandbox should have filled some fields"
    for value, confidence, _ in enriched:
        assert value and 0 < float(confidence) <= 1
    for row in by_row:
        if row["phone"]:
            assert row["phone"].startswith("'+")  # E.164 neutralized like Apollo does


def test_the_enriched_copy_exists_only_once_the_import_is_done(upload):
    with pytest.raises(ImportStateError, match="exists once it is done"):
        enriched_csv_write(csv_import=upload(PEOPLE), out=io.StringIO())


def test_enriched_columns_avoid_clashing_with_the_file(upload):
    assert enriched_columns(["Email", "Phone"])[:3] == ["email", "email_confidence", "email_source"]
    clashing = enriched_columns(["email", "name"])
    assert clashing[:2] == ["enriched_email", "enriched_email_confidence"]
