"""People the sandbox provider knows, picked by asking its deterministic data directly."""

import json

from leads.demo_data import FIRST_NAMES, LAST_NAMES
from providers.sandbox.server import person_enrich


def findable_person(domain: str, *, min_confidence: float = 0.85) -> tuple[str, str]:
    """Return (first, last) of someone the sandbox knows at `domain` with a valid address
    of at least `min_confidence`: with the company-domain evidence the merge adds, Find
    Email applies it rather than sending it to review."""
    for first in FIRST_NAMES:
        for last in LAST_NAMES:
            body = json.dumps({"first_name": first, "last_name": last, "domain": domain})
            status, answer = person_enrich(body.encode())
            email = answer.get("person", {}).get("email", {}) if status == 200 else {}
            if (
                email.get("verification") == "valid"
                and email.get("confidence", 0) >= min_confidence
            ):
                return first, last
    raise AssertionError(f"the sandbox knows nobody confidently at {domain}")
