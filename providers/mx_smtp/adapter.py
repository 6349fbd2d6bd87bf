"""The MX + SMTP mailbox check as a Provider that only verifies emails, for free.

On when SMTP_VERIFY_FROM is set. Port 25 outbound is blocked on many networks and some
mail servers penalise senders that probe, so it is off unless an operator chooses it; it
verifies the pattern finder's guesses, like Hunter's verifier.
"""

from django.conf import settings

from providers.base import Permanent, ProviderAnswer
from providers.candidates import make_candidate
from providers.mx_smtp.client import MailboxChecker

# How much a mail server's answer says about the mailbox existing.
CONFIDENCE = {"valid": 0.9, "accept_all": 0.5, "unknown": 0.3, "invalid": 0.0}


class MxSmtpProvider:
    """Verifies an address with its domain's own mail server."""

    name = "mx_smtp"
    operations = frozenset({"email_verify"})
    fields = frozenset({"email"})
    person_bulk_size = 1
    company_bulk_size = 1

    def __init__(self, checker: MailboxChecker | None = None) -> None:
        self.checker = checker or MailboxChecker(
            mail_from=settings.SMTP_VERIFY_FROM,
            helo=settings.SMTP_VERIFY_HELO,
            timeout=settings.SMTP_VERIFY_TIMEOUT_SECONDS,
            port=settings.SMTP_VERIFY_PORT,
        )

    def email_verify(self, email: str, *, idempotency_key: str) -> ProviderAnswer:
        """Return the address with the mail server's verdict; it costs no credits."""
        if "@" not in email:
            raise Permanent("an SMTP check needs an email address")
        verdict = self.checker.check(email)
        candidate = make_candidate(
            "email",
            email,
            CONFIDENCE[verdict.status],
            source=self.name,
            verification=verdict.status,
        )
        return ProviderAnswer(
            candidates=[candidate] if candidate is not None else [],
            credits=0.0,
            raw={"status": verdict.status, "detail": verdict.detail},
        )
