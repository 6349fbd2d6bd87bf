"""Free local sources: facts about an email address that cost no credit."""

from leads.models import Lead
from leads.normalize import is_disposable_domain, is_webmail_domain
from providers.base import Candidate

SOURCE = "local"

# Mailboxes of a function, not a person: outreach to them is rarely what an SDR wants.
ROLE_LOCAL_PARTS = frozenset(
    """admin administrator billing contact enquiries hello help hr info inquiries jobs
    marketing no-reply noreply office postmaster privacy sales security support team
    webmaster""".split()
)


def email_verification(email: str) -> str:
    """Return what can be told of a syntactically valid address without any network."""
    local_part, domain = email.casefold().rsplit("@", 1)
    if is_disposable_domain(domain):
        return Lead.EmailVerification.DISPOSABLE
    if local_part in ROLE_LOCAL_PARTS:
        return Lead.EmailVerification.ROLE
    if is_webmail_domain(domain):
        return Lead.EmailVerification.WEBMAIL
    return Lead.EmailVerification.UNKNOWN


def email_candidates(email: str) -> list[Candidate]:
    """Return the deterministic check of the lead's current email as a candidate."""
    if not email:
        return []
    return [Candidate("email", email, None, SOURCE, verification=email_verification(email))]
