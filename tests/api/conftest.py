import pytest
from rest_framework.test import APIClient

from api.services import api_key_create


@pytest.fixture
def issue_key(db):
    """Create a real API key with a role; return (ApiKey row, the key string)."""
    counter = iter(range(1_000_000))

    def issue(role: str = "sdr", name: str = ""):
        issued = api_key_create(name=name or f"{role}-integration-{next(counter)}", role=role)
        return issued.api_key, issued.key

    return issue


@pytest.fixture
def client_as(issue_key):
    """An APIClient that sends `Authorization: Bearer <key>` for a new key of the role."""

    def make(role: str = "sdr") -> APIClient:
        api_key, key = issue_key(role)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        client.api_key = api_key
        return client

    return make


@pytest.fixture
def sdr(client_as):
    return client_as("sdr")


@pytest.fixture
def reviewer(client_as):
    return client_as("reviewer")


@pytest.fixture
def admin(client_as):
    return client_as("admin")
