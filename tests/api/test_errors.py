"""Every error is JSON with a message a person can act on."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert "json" in response["Content-Type"]
    body = response.json()
    assert body["code"]
    assert len(body["message"]) > 10
    return body


def test_an_unknown_path_under_api_is_a_json_404(sdr):
    body = _error(sdr.get("/api/nothing-here/"), 404)
    assert "/api/docs/" in body["message"]
    body = _error(sdr.post("/api/leads", {}, format="json"), 404)
    assert "try /api/leads/" in body["message"]


@pytest.mark.parametrize("path", ["/api/leads/99999/", "/api/leads/-1/", "/api/leads/1e9/"])
def test_an_unknown_or_malformed_id_is_a_json_404(sdr, path):
    _error(sdr.get(path), 404)


def test_an_unknown_format_is_a_404_that_says_so_not_a_missing_row(sdr):
    lead = LeadFactory()
    body = _error(sdr.get(f"/api/leads/{lead.id}/?format=xml"), 404)
    assert body["message"] == (
        "There is no 'xml' format here: ask for json with ?format=, or leave it out."
    )
    assert _error(sdr.get("/api/leads/99999/?format=json"), 404)["message"].startswith(
        "There is no lead with id 99999"
    )


def test_a_huge_id_is_a_404_not_a_database_error(sdr):
    _error(sdr.get("/api/leads/99999999999999999999999/"), 404)
    _error(sdr.get("/api/runs/999999999999999999/"), 404)


def test_a_method_not_allowed_says_which_are(sdr):
    lead = LeadFactory()
    response = sdr.put(f"/api/leads/{lead.id}/", {}, format="json")
    body = _error(response, 405)
    assert "PATCH" in body["message"]


def test_a_body_that_is_not_json_is_a_415_or_400(sdr):
    body = _error(sdr.generic("POST", "/api/leads/", "email=a@b.com", "text/plain"), 415)
    assert "application/json" in body["message"]
    body = _error(sdr.generic("POST", "/api/leads/", "{not json", "application/json"), 400)
    assert body["code"] == "parse_error"
    assert "valid JSON" in body["message"]


@pytest.mark.parametrize(
    "payload",
    ['{"email": "a\\u0000@b.com"}', '{"first_name": "\\ud800", "email": "a@b.com"}'],
)
def test_text_a_database_cannot_store_is_a_400(sdr, payload):
    _error(sdr.generic("POST", "/api/leads/", payload, "application/json"), 400)


def test_a_nul_in_a_query_parameter_is_a_400(sdr):
    _error(sdr.get("/api/leads/", {"email": "a\x00b"}), 400)


def test_a_json_body_of_the_wrong_shape_is_a_400(sdr):
    body = _error(sdr.post("/api/leads/", "just a string", format="json"), 400)
    assert "JSON object" in body["message"]
    body = _error(sdr.post("/api/leads/", {"email": ["a@b.com"]}, format="json"), 400)
    assert "email" in body["errors"]


def test_too_many_requests_is_a_429_with_retry_after(sdr, settings):
    settings.API_THROTTLE_RATE = "3/minute"
    cache.clear()
    for _ in range(3):
        assert sdr.get("/api/leads/").status_code == 200
    response = sdr.get("/api/leads/")
    body = _error(response, 429)
    assert body["code"] == "throttled"
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"wait {retry_after} s" in body["message"] or "wait" in body["message"]


def test_anonymous_callers_are_throttled_by_address(settings):
    settings.API_THROTTLE_ANON_RATE = "2/minute"
    cache.clear()
    client = APIClient()
    assert client.get("/api/schema/", {"format": "json"}).status_code == 200
    assert client.get("/api/schema/", {"format": "json"}).status_code == 200
    _error(client.get("/api/schema/", {"format": "json"}), 429)


def test_the_docs_page_serves_swagger_ui_from_this_server(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn." not in page
