"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec 1.0.0, symmetric).

The secret is `whsec_` + base64 of random bytes (24 to 64); the HMAC key is those bytes.
The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, and the signature header
is `v1,` + base64 of the HMAC-SHA256, several separated by spaces during a key rotation.
"""

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
_SECRET_BYTES = 32


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """Return the HMAC key a `whsec_` secret stands for; raise ValueError if malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 random bytes")
    return key


def signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
