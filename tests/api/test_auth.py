"""API keys: created by the command, stored hashed, sent as Bearer; roles decide."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from api.models import ApiKey
from api.services import api_key_revoke, key_hash
from tests.factories import ObservationFactory

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_key_once_and_stores_only_its_hash():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "crm-sync", "--role", "reviewer", stdout=out, stderr=err)
    key = out.getvalue().strip()
    api_key = ApiKey.objects.get(name="crm-sync")
    assert api_key.role == "reviewer"
    assert key.startswith(f"lsk_{api_key.prefix}_")
    assert api_key.key_hash == key_hash(key)
    stored = [str(v) for v in ApiKey.objects.values_list(flat=False).get(id=api_key.id)]
    assert key not in stored
    assert key not in err.getvalue()
    assert api_key.prefix in err.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/leads/").status_code == 200


def test_create_api_key_refuses_a_taken_name_and_a_bad_role(issue_key):
    issue_key("sdr", name="taken")
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_api_key", "taken", "--role", "sdr", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("create_api_key", "x", "--role", "boss", stdout=io.StringIO())


def test_no_key_is_a_401_that_says_how_to_authenticate():
    response = APIClient().get("/api/leads/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert "Authorization: Bearer" in body["message"]


@pytest.mark.parametrize(
    "header",
    ["Bearer lsk_00000000_nope", "Bearer not-a-key", "Bearer ", "Bearer a b"],
)
def test_a_wrong_key_is_a_401(header, issue_key):
    issue_key("admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/leads/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_key_with_a_changed_secret_is_refused(issue_key):
    _api_key, key = issue_key("admin")
    tampered = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert client.get("/api/leads/").status_code == 401


def test_a_revoked_key_is_refused(issue_key):
    api_key, key = issue_key("admin")
    api_key_revoke(api_key=api_key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/leads/").status_code == 401


def test_the_key_acts_as_its_own_account_and_records_its_use(reviewer):
    observation = ObservationFactory()
    response = reviewer.post(f"/api/observations/{observation.id}/approve/")
    assert response.status_code == 200
    observation.refresh_from_db()
    assert observation.decided_by == reviewer.api_key.user
    reviewer.api_key.refresh_from_db()
    assert reviewer.api_key.last_used_at is not None
    assert not reviewer.api_key.user.has_usable_password()


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("sdr", False), ("reviewer", True), ("admin", True)],
)
def test_only_reviewers_and_admins_review(client_as, role, allowed):
    observation = ObservationFactory()
    response = client_as(role).post(f"/api/observations/{observation.id}/reject/")
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert "reviewer" in response.json()["message"]


def test_only_admins_delete(client_as):
    from tests.factories import LeadFactory

    lead = LeadFactory()
    assert client_as("sdr").delete(f"/api/leads/{lead.id}/").status_code == 403
    assert client_as("reviewer").delete(f"/api/leads/{lead.id}/").status_code == 403
    assert client_as("admin").delete(f"/api/leads/{lead.id}/").status_code == 204


def test_a_signed_in_person_uses_the_api_from_the_browser():
    user = get_user_model().objects.create_user("ada", password="pw-for-tests-only")
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/leads/").status_code == 200
    observation = ObservationFactory()
    # A plain account is an SDR: it may read the queue but not decide.
    assert client.get("/api/observations/?state=pending_review").status_code == 200
    response = client.post(f"/api/observations/{observation.id}/approve/")
    assert response.status_code == 403
    assert "reviewer" in response.json()["message"]
