"""Request id: taken from X-Request-ID (a proxy's) or made here, echoed in the response and
put on every log record written while the request is handled."""

import re
import uuid

from config.logging import log_context

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is reused only when it is short and plain, so it cannot forge log lines.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _ACCEPTABLE.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        with log_context(request_id=request_id):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response
