"""Ask a domain's mail server whether it would take mail for an address, sending none.

RFC 5321: connect to the most preferred MX host, EHLO, MAIL FROM, RCPT TO. 250/251 means
the server accepts the recipient; 550/551/553 that no such mailbox exists; 4xx "try later"
(greylisting) and other refusals say nothing about the mailbox. A server that also takes
a random address at the domain takes everything (catch-all), so its yes proves nothing.
A domain without MX records falls back to its own address (RFC 5321 §5.1); a "null MX"
(RFC 7505) or a domain that does not exist takes no mail at all.
"""

import secrets
import smtplib
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.resolver

from providers.base import Transient

# Refusals that name the mailbox: no such user, not local, mailbox name not allowed.
MAILBOX_REFUSED = frozenset({550, 551, 553})
ACCEPTED = frozenset({250, 251})
# Hosts tried before giving up: the first may be down, past two it is the domain.
HOSTS_TRIED = 2


@dataclass(frozen=True)
class MailboxVerdict:
    """What the mail server said: valid, invalid, accept_all or unknown, and its words."""

    status: str
    detail: str


def mx_hosts(domain: str, *, timeout: float) -> list[str]:
    """Return the domain's mail hosts, most preferred first; [] if it takes no mail."""
    try:
        answer = dns.resolver.resolve(domain, "MX", lifetime=timeout)
    except dns.resolver.NXDOMAIN:
        return []
    except dns.resolver.NoAnswer:
        return [domain]
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise Transient(f"MX lookup for {domain} failed: {exc}") from exc
    records = sorted(answer, key=lambda record: record.preference)
    hosts = [str(record.exchange).rstrip(".") for record in records]
    return [host for host in hosts if host]


class MailboxChecker:
    """One SMTP conversation per check, as `mail_from` introducing itself as `helo`."""

    def __init__(
        self,
        *,
        mail_from: str,
        helo: str,
        timeout: float,
        port: int = 25,
        resolve_mx: Callable[..., list[str]] | None = None,
    ) -> None:
        self.mail_from = mail_from
        self.helo = helo
        self.timeout = timeout
        self.port = port
        self.resolve_mx = resolve_mx or mx_hosts

    def check(self, email: str) -> MailboxVerdict:
        domain = email.rpartition("@")[2]
        hosts = self.resolve_mx(domain, timeout=self.timeout)
        if not hosts:
            return MailboxVerdict("invalid", f"{domain} takes no mail (no MX record)")
        failures = []
        for host in hosts[:HOSTS_TRIED]:
            try:
                return self._ask(host, email=email, domain=domain)
            except (OSError, smtplib.SMTPException) as exc:
                failures.append(f"{host}: {exc}")
        raise Transient(f"no mail server of {domain} answered ({'; '.join(failures)})")

    def _ask(self, host: str, *, email: str, domain: str) -> MailboxVerdict:
        with smtplib.SMTP(host, self.port, local_hostname=self.helo, timeout=self.timeout) as smtp:
            smtp.ehlo_or_helo_if_needed()
            code, message = smtp.mail(self.mail_from)
            if code not in ACCEPTED:
                return MailboxVerdict("unknown", f"{host} refused the sender: {code}")
            code, message = smtp.rcpt(email)
            if code in MAILBOX_REFUSED:
                return MailboxVerdict("invalid", f"{host} answered {code} for the mailbox")
            if code not in ACCEPTED:
                return MailboxVerdict("unknown", f"{host} answered {code}: {_text(message)}")
            probe = f"no-such-mailbox-{secrets.token_hex(8)}@{domain}"
            probe_code, _ = smtp.rcpt(probe)
            if probe_code in ACCEPTED:
                return MailboxVerdict("accept_all", f"{host} accepts any address at {domain}")
            return MailboxVerdict("valid", f"{host} accepts the mailbox")


def _text(message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return text[:200]
