"""schemathesis against the API's own OpenAPI schema, through the WSGI app.

Every operation under /api/ is exercised with generated input (and, where an operation
takes an id, often with the id of a real row, so the happy paths run too). Two checks:
no answer is a server error, and every answer matches the schema the API publishes.
"""

import io
import itertools

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.services import api_key_create
from config.wsgi import application
from enrichment.models import EnrichmentJob, EnrichmentRun
from imports.services import csv_import_create, csv_import_run, csv_import_start
from tests.factories import LeadFactory, ObservationFactory

# Small enough that the whole module runs in a minute or two on two cores; every
# operation still gets this many generated cases, plus schemathesis's own examples.
MAX_EXAMPLES = 60

_turn = itertools.count()

# One row imported, one rejected: the import has both an enriched copy and an error report.
IMPORT_CSV = (
    b"email,first_name,last_name,company_domain\nbob@acme.com,Bob,Smith,acme.com\nnot-an-email,,,\n"
)


# Served by the app itself (no database needed), exactly as a client would read it.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def wsgi_in_test_transaction():
    """Keep the test's database connection open across WSGI requests.

    Django closes "old" connections when a request starts and ends; inside the test's
    transaction that would close the connection the test runs on. Django's own test client
    disconnects the same hook for the same reason.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def real_rows(db, settings, tmp_path, wsgi_in_test_transaction):
    """Rows for ids to point at, and an admin key (every operation is allowed to it)."""
    settings.API_THROTTLE_RATE = "1000000/minute"
    # Uploads, generated ones included, go to a folder of the test's own.
    settings.MEDIA_ROOT = str(tmp_path / "media")
    cache.clear()
    lead = LeadFactory(email="ada@acme.com")
    observation = ObservationFactory(lead=lead)
    job = EnrichmentJob.objects.create(kind="bulk", total=2, done=1, enriched=1)
    run = EnrichmentRun.objects.create(lead=lead, job=job, trigger="manual", state="done")
    issued = api_key_create(name="schemathesis", role="admin")
    # Two imports through the imports service, each with its stored file: one uploaded and
    # not started (detail and start/), one imported (its error report and enriched copy).
    uploaded = csv_import_create(file=io.BytesIO(IMPORT_CSV), name="crm.csv", enrich=False)
    imported = csv_import_create(file=io.BytesIO(IMPORT_CSV), name="crm.csv", enrich=False)
    csv_import_start(csv_import_id=imported.id)
    imported = csv_import_run(csv_import_id=imported.id, enqueue=False)
    assert imported.state == "done" and imported.error_report
    return {
        "leads": lead.id,
        "observations": observation.id,
        "jobs": job.id,
        "runs": run.id,
        "companies": lead.company_id,
        "imports": uploaded.id,
        "imports.csv": imported.id,
        "key": issued.key,
    }


def _collection(path: str) -> str:
    """The real_rows key for an operation's path: /api/<collection>/{id}/…, with the CSV
    downloads of an import pointed at the import that has them."""
    collection = path.strip("/").split("/")[1]
    return f"{collection}.csv" if path.endswith(".csv") else collection


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, real_rows):
    if case.path_parameters and "id" in case.path_parameters and next(_turn) % 2 == 0:
        collection = _collection(case.path)
        case.path_parameters["id"] = real_rows.get(collection, case.path_parameters["id"])
    if _is_upload(case) and next(_turn) % 2 == 0:
        # A generated file is random bytes (a PNG, as often as not), never a CSV: half the
        # uploads carry a real one, with the generated mapping, flags and source.
        case.body = {**case.body, "file": IMPORT_CSV}
    case.call_and_validate(
        headers={"Authorization": f"Bearer {real_rows['key']}"},
        checks=[not_a_server_error, response_schema_conformance],
    )


def _is_upload(case) -> bool:
    return case.method == "POST" and case.path == "/api/imports/" and isinstance(case.body, dict)
