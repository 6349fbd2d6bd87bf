"""/api/imports/: upload (with a mapping and a dry run), status, start, downloads."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from enrichment.models import EnrichmentRun
from imports.models import CsvImport
from imports.services import csv_import_run
from leads.models import Lead
from tests.imports.conftest import FIXTURES

pytestmark = pytest.mark.django_db

CRM = "Work Email;Given;Surname;Employer Site\nada@acme.com;Ada;Lovelace;acme.com\nbad;B;C;x.com\n"


def _file(content: bytes | str, name: str = "crm.csv") -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/csv")


def _post(client, content, **fields):
    return client.post("/api/imports/", {"file": _file(content), **fields}, format="multipart")


def test_an_upload_with_a_mapping_is_queued_and_described(sdr, django_capture_on_commit_callbacks):
    mapping = {"Given": "first_name", "Surname": "last_name", "Employer Site": "website"}
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(sdr, CRM, mapping=json.dumps(mapping), enrich="false")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "queued"
    assert body["delimiter"] == ";"
    assert body["columns"] == [
        {"column": "Work Email", "field": "email"},
        {"column": "Given", "field": "first_name"},
        {"column": "Surname", "field": "last_name"},
        {"column": "Employer Site", "field": "website"},
    ]
    assert body["enrich"] is False
    assert body["links"]["enriched_csv"] is None
    assert len(callbacks) == 1  # the task message, sent after commit


def test_a_dry_run_estimates_and_a_start_imports(sdr, settings):
    response = _post(sdr, (FIXTURES / "hubspot_contacts_export.csv").read_bytes(), dry_run="true")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "uploaded"
    assert body["estimate"]["rows"] == 5
    assert body["estimate"]["new_leads"] == 3
    assert (body["estimate"]["duplicates"], body["estimate"]["invalid"]) == (1, 1)
    assert not Lead.objects.exists()

    start = sdr.post(body["links"]["start"])
    assert start.status_code == 202
    assert start.json()["state"] == "queued"
    again = sdr.post(body["links"]["start"])
    assert again.status_code == 409
    assert "cannot be started again" in again.json()["message"]

    csv_import_run(csv_import_id=body["id"], enqueue=False)
    status = sdr.get(body["links"]["status"]).json()
    assert status["state"] == "done"
    assert status["rows"] == {
        "total": 5,
        "created": 3,
        "updated": 0,
        "duplicate": 1,
        "invalid": 1,
        "suppressed": 0,
    }
    assert status["enrichment"]["total"] == 3
    assert EnrichmentRun.objects.count() == 3

    errors = sdr.get(status["links"]["errors_csv"])
    assert errors.status_code == 200 and errors["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(errors.streaming_content).decode("utf-8-sig"))))
    assert rows[1][0] == "6"

    enriched = sdr.get(status["links"]["enriched_csv"], HTTP_ACCEPT="text/csv")
    assert enriched.status_code == 200
    text = b"".join(enriched.streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert len(lines) == 6
    assert lines[0][-3:] == ["email_verification", "enrichment_status", "lead_id"]


def test_the_enriched_file_is_a_conflict_before_the_import_is_done(sdr):
    body = _post(sdr, CRM, dry_run="true").json()
    response = sdr.get(f"/api/imports/{body['id']}/enriched.csv")
    assert response.status_code == 409
    assert "exists once it is done" in response.json()["message"]
    assert sdr.get(f"/api/imports/{body['id']}/errors.csv").status_code == 409


@pytest.mark.parametrize(
    ("fields", "content", "problem"),
    [
        ({"mapping": "{not json"}, CRM, "not valid JSON"),
        ({"mapping": '["email"]'}, CRM, "must be a JSON object"),
        ({"mapping": '{"Nope": "email"}'}, CRM, "does not have"),
        ({}, "Name,Notes\nAda,hi\n", "no column identifying a lead"),
        ({}, b"PK\x03\x04binary", "zip archive"),
        ({}, b"", "is empty"),
        ({"source": "x\x00y"}, CRM, "Null characters"),
    ],
)
def test_bad_input_is_a_400_that_says_why(sdr, fields, content, problem):
    response = _post(sdr, content, **fields)
    assert response.status_code == 400
    assert problem in json.dumps(response.json())
    assert not CsvImport.objects.exists()


def test_unknown_ids_are_404_and_anonymous_callers_are_refused(sdr, client):
    assert sdr.get("/api/imports/999999/").status_code == 404
    assert sdr.get("/api/imports/999999/enriched.csv").status_code == 404
    assert client.post("/api/imports/", {"file": _file(CRM)}).status_code in (401, 403)


def test_an_error_asked_for_as_csv_reads_back_whole_when_its_message_quotes_or_breaks():
    from imports.apis import CsvRenderer

    message = 'column "E-mail" is mapped twice,\nonce by hand'
    body = CsvRenderer().render({"code": "invalid", "message": message})
    assert list(csv.reader(io.StringIO(body))) == [["code", "message"], ["invalid", message]]
