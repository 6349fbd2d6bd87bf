"""The inbound provider callback: POST /webhooks/inbound/<provider>/<token>/."""

import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from api.parsers import unstorable_text
from webhooks.inbound import InboundRejected, inbound_receive


@csrf_exempt  # a provider's server, not a browser: the token in the URL is the credential
@require_POST
def inbound_webhook(request, provider: str, token: str):
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"code": "invalid", "message": "The body is not JSON."}, status=400)
    if unstorable_text(payload):
        return JsonResponse(
            {"code": "invalid", "message": "The body has text that cannot be stored."}, status=400
        )
    try:
        result = inbound_receive(provider=provider, token=token, payload=payload)
    except InboundRejected as exc:
        return JsonResponse({"code": "rejected", "message": str(exc)}, status=exc.status)
    # A repeat is answered 200 too: the provider must stop retrying it.
    return JsonResponse(
        {
            "status": "processed" if result.processed else "already processed",
            "candidates": result.candidates,
        }
    )
