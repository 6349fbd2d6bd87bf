"""Turning a vendor's field into a Candidate: every adapter's values pass through here.

Values are normalized like any input before they are proposed; a value that does not
normalize, or comes without a usable confidence, is dropped with a log line that names the
reason but never the value (it is personal data).
"""

import logging
from collections.abc import Callable
from typing import Any

from leads.normalize import InvalidValue, normalize_email, normalize_linkedin_url, normalize_phone
from providers.base import Candidate

logger = logging.getLogger(__name__)

# The fields a vendor's person and company answers can fill (enrichment.fields names them).
PERSON_FIELDS = (
    "email",
    "phone",
    "job_title",
    "seniority",
    "department",
    "location",
    "linkedin_url",
)
COMPANY_FIELDS = (
    "company_name",
    "industry",
    "employee_range",
    "revenue_range",
    "hq_location",
    "technologies",
)

# ProviderCall.credits holds up to 9,999,999.999.
MAX_CREDITS_PER_CALL = 1_000_000

EMAIL_VERIFICATIONS = frozenset(
    {"valid", "invalid", "accept_all", "unknown", "disposable", "webmail", "role"}
)

_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "email": normalize_email,
    "phone": normalize_phone,
    "linkedin_url": normalize_linkedin_url,
}


def clean_value(field: str, value: Any, *, source: str) -> str | list[str] | None:
    """Return the value as it may be proposed for `field`, or None to drop it."""
    if field == "technologies":
        if not isinstance(value, list):
            return None
        # Dedupe, keeping the vendor's order.
        items = dict.fromkeys(item.strip() for item in value if isinstance(item, str))
        items.pop("", None)
        return list(items) or None
    if not isinstance(value, str) or not value.strip():
        return None
    normalize = _NORMALIZERS.get(field)
    if normalize is None:
        return " ".join(value.split())
    try:
        return normalize(value)
    except InvalidValue as exc:
        logger.info("%s %s dropped: %s", source, field, exc.reason)
        return None


def make_candidate(
    field: str, value: Any, confidence: Any, *, source: str, verification: str = ""
) -> Candidate | None:
    """Return a Candidate, or None when the value or its confidence is unusable."""
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        logger.info("%s %s dropped: no numeric confidence", source, field)
        return None
    if not 0.0 <= confidence <= 1.0:
        logger.info("%s %s dropped: confidence outside 0..1", source, field)
        return None
    cleaned = clean_value(field, value, source=source)
    if cleaned is None:
        return None
    if field == "email":
        # A vendor's verdict may be any JSON value: only a known word is taken.
        known = isinstance(verification, str) and verification in EMAIL_VERIFICATIONS
        verification = verification if known else "unknown"
    else:
        verification = ""
    return Candidate(field, cleaned, float(confidence), source, verification=verification)


def credits_from(value: Any) -> float:
    """Return a vendor's stated credit cost, or 0 for anything that is not a count."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    # Past the ledger's column (and past any real price) it is garbage, not a cost.
    if not 0 <= value <= MAX_CREDITS_PER_CALL:
        return 0.0
    return float(value)
