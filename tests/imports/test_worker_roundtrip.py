"""The whole trip with the real parts: a CSV uploaded, imported by a Celery worker on
PostgreSQL and Redis, its leads enriched through the sandbox over HTTP, and the enriched
copy downloaded with the same rows in the same order."""

import csv
import io
import time

import pytest

from imports.models import CsvImport
from imports.services import csv_import_start, enriched_columns, enriched_csv_write
from tests.enrichment import test_worker_integration
from tests.imports.conftest import FIXTURES

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# The worker and sandbox fixtures of the enrichment worker tests, used here as they are.
start_worker = test_worker_integration.start_worker
sandbox_for_workers = test_worker_integration.sandbox_for_workers


def test_a_worker_imports_enriches_and_the_copy_keeps_the_rows(
    upload,
    start_worker,
    sandbox_for_workers,
    settings,
    monkeypatch,
):
    # The worker is another process: it must read uploads from the test's media folder.
    monkeypatch.setenv("MEDIA_ROOT", settings.MEDIA_ROOT)
    start_worker("imports", sandbox_for_workers.url)
    csv_import = upload("apollo_people_export.csv", enrich=True)
    csv_import_start(csv_import_id=csv_import.pk)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        csv_import.refresh_from_db()
        job = csv_import.enrichment_job
        if csv_import.state == CsvImport.State.DONE and job and job.done == job.total:
            break
        assert csv_import.state != CsvImport.State.FAILED, csv_import.error
        time.sleep(0.5)
    else:
        raise AssertionError(f"not finished in time: {csv_import.state}, {csv_import.error}")
    assert (csv_import.rows_created, csv_import.rows_duplicate, csv_import.rows_invalid) == (
        4,
        1,
        1,
    )
    assert job.total == 4 and job.enriched + job.not_found + job.skipped == 4

    out = io.StringIO()
    enriched_csv_write(csv_import=csv_import, out=out)
    rows = list(csv.reader(io.StringIO(out.getvalue().lstrip("\ufeff"))))
    original = list(csv.reader((FIXTURES / "apollo_people_export.csv").open(encoding="utf-8")))
    header = original[0]
    assert rows[0] == header + enriched_columns(header)
    assert [row[: len(header)] for row in rows[1:]] == [
        [f"'{cell}" if cell.startswith("+") else cell for cell in row] for row in original[1:]
    ]
    names = rows[0][len(header) :]
    sources = {
        cell
        for row in rows[1:]
        for name, cell in zip(names, row[len(header) :], strict=True)
        if name.endswith("_source")
    }
    assert "sandbox" in sources
