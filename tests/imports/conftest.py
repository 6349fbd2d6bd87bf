import io
from pathlib import Path

import pytest

from imports.models import CsvImport
from imports.services import csv_import_create

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploads and error reports go to a folder of the test's own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def upload(db):
    """Store a CSV (a fixture name, text or bytes) as an upload, not started."""

    def make(content, *, name: str = "leads.csv", encoding: str = "utf-8", **options) -> CsvImport:
        if isinstance(content, str) and content.endswith(".csv") and "\n" not in content:
            name, content = content, (FIXTURES / content).read_bytes()
        elif isinstance(content, str):
            content = content.encode(encoding)
        return csv_import_create(file=io.BytesIO(content), name=name, **options)

    return make


@pytest.fixture
def sdr(db):
    """An API client with a real key of the SDR role (the least an importer needs)."""
    from rest_framework.test import APIClient

    from api.services import api_key_create

    issued = api_key_create(name="imports-sdr", role="sdr")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.key}")
    return client
