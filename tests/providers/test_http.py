"""The outbound HTTP wrapper: timeouts always, failures in the providers' vocabulary."""

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses

from providers.base import Permanent, Transient
from providers.http import request_json, retry_after_seconds

URL = "http://vendor.invalid/v1/thing"


@responses.activate
def test_returns_status_headers_and_body_uninterpreted(settings):
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 3.5
    responses.post(URL, status=403, json={"error": "slow down"}, headers={"X-Thing": "1"})

    result = request_json(requests.Session(), "POST", URL, json={"a": 1})

    assert result.status == 403
    assert result.body == {"error": "slow down"}
    assert result.headers["x-thing"] == "1"
    assert result.duration_ms >= 0
    assert responses.calls[0].request.req_kwargs["timeout"] == 3.5


@responses.activate
def test_explicit_timeout_and_params():
    responses.get(URL, json=[{"id": 1}])

    result = request_json(requests.Session(), "GET", URL, params={"q": "x"}, timeout=0.5)

    assert result.body == [{"id": 1}]
    assert responses.calls[0].request.url == f"{URL}?q=x"
    assert responses.calls[0].request.req_kwargs["timeout"] == 0.5


@pytest.mark.parametrize(
    "failure", [requests.ConnectTimeout(), requests.ReadTimeout(), requests.ConnectionError()]
)
@responses.activate
def test_connection_failures_are_transient(failure):
    responses.post(URL, body=failure)

    with pytest.raises(Transient):
        request_json(requests.Session(), "POST", f"{URL}?api_key=secret", timeout=1)


def test_message_leaves_out_the_query_string():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # The port was just released, so the connection is refused.
    with pytest.raises(Transient) as caught:
        request_json(
            requests.Session(), "GET", f"http://127.0.0.1:{port}/x?api_key=secret", timeout=1
        )

    assert "secret" not in str(caught.value)


def test_unsendable_request_is_permanent():
    with pytest.raises(Permanent):
        request_json(requests.Session(), "GET", "not a url", timeout=1)


@responses.activate
def test_success_that_is_not_json_is_transient():
    # A proxy's page or JSON cut short: the request was fine, asking again can help.
    responses.post(URL, body="<html>Welcome</html>", content_type="text/html")

    with pytest.raises(Transient, match="not JSON") as caught:
        request_json(requests.Session(), "POST", URL)

    assert caught.value.http_status == 200


@responses.activate
def test_success_that_is_json_but_no_answer_is_permanent():
    responses.post(URL, body='"ok"', content_type="application/json")

    with pytest.raises(Permanent, match="JSON scalar") as caught:
        request_json(requests.Session(), "POST", URL)

    assert caught.value.http_status == 200


@responses.activate
def test_error_page_and_empty_body_decode_to_empty_dict():
    responses.post(URL, status=502, body="<html>Bad gateway</html>", content_type="text/html")
    responses.post(URL, status=204)

    session = requests.Session()
    assert request_json(session, "POST", URL).body == {}
    assert request_json(session, "POST", URL).body == {}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 60.0),
        ("12", 12.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("soon", 60.0),
        ("nan", 60.0),
        ("inf", 86400.0),
        ("1e400", 86400.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 86400.0),
    ],
)
def test_retry_after_seconds(header, expected):
    headers = {} if header is None else {"Retry-After": header}

    assert retry_after_seconds(headers) == expected


def test_retry_after_as_http_date():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    assert 25 <= retry_after_seconds({"Retry-After": when}) <= 30
