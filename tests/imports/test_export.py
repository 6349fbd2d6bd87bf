"""Lead export: streamed from a server-side cursor, formulas neutralized, memory flat."""

import csv
import io
import tracemalloc

import pytest
from django.core.management import call_command

from leads.export import csv_safe, leads_csv_chunks
from leads.models import Company, Lead


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+14155552671", "'+14155552671"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("Ada", "Ada"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_cells_a_spreadsheet_would_run_are_neutralized(value, cell):
    assert csv_safe(value) == cell


@pytest.mark.django_db
def test_the_export_command_writes_every_lead_neutralized(tmp_path):
    company = Company.objects.create(domain="acme.com", name="=cmd|' /C calc'!A0")
    Lead.objects.create(
        email="ada@acme.com", first_name="Ada", phone="+14155552671", company=company
    )
    Lead.objects.create(email="bob@acme.com", job_title="@boss")
    path = tmp_path / "leads.csv"
    call_command("export_leads", "--output", str(path))
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert [row["email"] for row in rows] == ["ada@acme.com", "bob@acme.com"]
    assert rows[0]["company_name"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["phone"] == "'+14155552671"
    assert rows[1]["job_title"] == "'@boss"


def _peak(rows: int) -> int:
    Lead.objects.bulk_create(
        Lead(email=f"lead{n}@example.com", first_name="Person", last_name=f"N{n}")
        for n in range(Lead.objects.count(), rows)
    )
    tracemalloc.start()
    written = 0
    for piece in leads_csv_chunks(chunk_size=500):
        written += piece.count("\n")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert written == rows + 1
    return peak


@pytest.mark.django_db
def test_memory_stays_flat_however_many_leads_are_exported():
    small = _peak(2_000)
    large = _peak(20_000)
    # Ten times the rows, about the same peak: rows are never all in memory.
    assert large < small * 1.5, (small, large)


@pytest.mark.django_db
def test_the_admin_action_streams_the_selected_leads(admin_client):
    ada = Lead.objects.create(email="ada@acme.com")
    Lead.objects.create(email="bob@acme.com")
    response = admin_client.post(
        "/admin/leads/lead/", {"action": "export_csv", "_selected_action": [ada.pk]}
    )
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    assert [row["email"] for row in csv.DictReader(io.StringIO(text))] == ["ada@acme.com"]
