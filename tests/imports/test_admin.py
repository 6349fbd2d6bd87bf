"""The admin: upload with a mapping override, estimate, counters, downloads."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imports.models import CsvImport
from imports.services import csv_import_run
from leads.models import Lead

pytestmark = pytest.mark.django_db

CSV = "Work Email,Person\nada@acme.com,Ada Lovelace\nnot-an-email,Bob\n"


def test_an_admin_uploads_estimates_imports_and_downloads(admin_client):
    page = admin_client.get("/admin/imports/csvimport/")
    assert b"Upload a CSV" in page.content
    form = admin_client.get("/admin/imports/csvimport/upload/")
    assert form.status_code == 200 and b"COLUMN=FIELD" in form.content

    response = admin_client.post(
        "/admin/imports/csvimport/upload/",
        {
            "file": SimpleUploadedFile("crm.csv", CSV.encode()),
            "mapping": "Person=full_name\n",
            "enrich": "",
            "source": "",
        },
    )
    csv_import = CsvImport.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/imports/csvimport/{csv_import.pk}/change/")
    # Not ticked "Import now": uploaded and estimated, nothing imported.
    assert csv_import.state == CsvImport.State.UPLOADED
    assert csv_import.estimate["new_leads"] == 1
    assert csv_import.mapping == ["email", "full_name"]
    assert not Lead.objects.exists()
    detail = admin_client.get(response["Location"])
    assert b"Person \xe2\x86\x92 full_name" in detail.content
    assert b"new_leads&quot;: 1" in detail.content

    admin_client.post(
        "/admin/imports/csvimport/",
        {"action": "start_imports", "_selected_action": [csv_import.pk]},
    )
    assert CsvImport.objects.get().state == CsvImport.State.QUEUED
    csv_import_run(csv_import_id=csv_import.pk, enqueue=False)
    assert Lead.objects.get().first_name == "Ada"

    detail = admin_client.get(f"/admin/imports/csvimport/{csv_import.pk}/change/")
    assert b"Enriched CSV" in detail.content and b"Rows not imported" in detail.content
    enriched = admin_client.get(f"/admin/imports/csvimport/{csv_import.pk}/enriched.csv")
    text = b"".join(enriched.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[1].startswith("ada@acme.com,Ada Lovelace,")
    errors = admin_client.get(f"/admin/imports/csvimport/{csv_import.pk}/errors.csv")
    assert b"not-an-email" in b"".join(errors.streaming_content)


def test_a_bad_upload_shows_the_reason_on_the_form(admin_client):
    response = admin_client.post(
        "/admin/imports/csvimport/upload/",
        {"file": SimpleUploadedFile("x.csv", b"Name,Notes\nAda,hi\n"), "mapping": "Oops"},
    )
    assert response.status_code == 200
    assert b"is not COLUMN=FIELD" in response.content
    response = admin_client.post(
        "/admin/imports/csvimport/upload/",
        {"file": SimpleUploadedFile("x.csv", b"Name,Notes\nAda,hi\n"), "start": "on"},
    )
    assert b"no column identifying a lead" in response.content
    assert not CsvImport.objects.exists()


def test_the_estimate_action_reports_in_a_message(admin_client, upload):
    csv_import = upload(CSV)
    response = admin_client.post(
        "/admin/imports/csvimport/",
        {"action": "estimate_imports", "_selected_action": [csv_import.pk]},
        follow=True,
    )
    assert b"Dry run: 2 row(s)" in response.content
    assert io.BytesIO(response.content)
