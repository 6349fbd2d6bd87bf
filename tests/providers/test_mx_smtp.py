"""The MX + SMTP mailbox check against a real SMTP server on localhost.

DNS is the one thing not real here (no network): MX answers come from a stand-in resolver.
"""

import socketserver
import threading

import pytest

from enrichment.models import Observation
from enrichment.services import run_execute, runs_create
from leads.models import Lead
from providers.base import Transient
from providers.models import ProviderCall
from providers.mx_smtp import client
from providers.mx_smtp.adapter import MxSmtpProvider
from providers.mx_smtp.client import MailboxChecker
from tests.factories import CompanyFactory, LeadFactory


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough RFC 5321 for a RCPT check: greeting, EHLO, MAIL, RCPT, RSET, QUIT."""

    def handle(self):
        server = self.server
        self._send("220 test.local ESMTP ready")
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            server.seen.append(command)
            if verb in ("EHLO", "HELO"):
                self._send("250 test.local")
            elif verb == "MAIL":
                self._send("250 2.1.0 sender ok")
            elif verb == "RCPT":
                address = command.partition("<")[2].partition(">")[0].lower()
                self._send(server.rcpt_reply(address))
            elif verb == "QUIT":
                self._send("221 bye")
                return
            else:
                self._send("250 ok")

    def _send(self, text):
        self.wfile.write(f"{text}\r\n".encode())


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, mailboxes=(), catch_all=False, greylist=False):
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.mailboxes = set(mailboxes)
        self.catch_all = catch_all
        self.greylist = greylist
        self.seen = []

    def rcpt_reply(self, address):
        if self.greylist:
            return "451 4.7.1 greylisted, try again later"
        if self.catch_all or address in self.mailboxes:
            return "250 2.1.5 recipient ok"
        return "550 5.1.1 no such user"


@pytest.fixture
def smtp_server():
    servers = []

    def start(**kwargs):
        server = SmtpServer(**kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def checker_for(server, **kwargs):
    return MailboxChecker(
        mail_from="verify@leadsmith.test",
        helo="leadsmith.test",
        timeout=5,
        port=server.server_address[1],
        resolve_mx=lambda domain, timeout: ["127.0.0.1"],
        **kwargs,
    )


def test_an_accepted_mailbox_on_a_strict_server_is_valid(smtp_server):
    server = smtp_server(mailboxes={"ann.lee@acme.com"})
    verdict = checker_for(server).check("ann.lee@acme.com")
    assert verdict.status == "valid"
    # The envelope introduced itself and no message was ever sent.
    assert any(line.lower().startswith("mail from:<verify@leadsmith.test>") for line in server.seen)
    assert not any(line.upper().startswith("DATA") for line in server.seen)


def test_a_refused_mailbox_is_invalid(smtp_server):
    server = smtp_server(mailboxes={"ann.lee@acme.com"})
    assert checker_for(server).check("bob.ray@acme.com").status == "invalid"


def test_a_server_that_accepts_anything_proves_nothing(smtp_server):
    server = smtp_server(catch_all=True)
    assert checker_for(server).check("ann.lee@acme.com").status == "accept_all"


def test_a_greylisting_server_leaves_it_unknown(smtp_server):
    server = smtp_server(greylist=True)
    verdict = checker_for(server).check("ann.lee@acme.com")
    assert verdict.status == "unknown"
    assert "451" in verdict.detail


def test_a_domain_without_mail_hosts_is_invalid_without_a_connection():
    checker = MailboxChecker(
        mail_from="verify@leadsmith.test",
        helo="leadsmith.test",
        timeout=1,
        resolve_mx=lambda domain, timeout: [],
    )
    assert checker.check("ann@nomail.example").status == "invalid"


def test_an_unreachable_mail_server_is_a_transient_error(smtp_server):
    server = smtp_server()
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    checker = MailboxChecker(
        mail_from="verify@leadsmith.test",
        helo="leadsmith.test",
        timeout=1,
        port=port,
        resolve_mx=lambda domain, timeout: ["127.0.0.1"],
    )
    with pytest.raises(Transient, match=r"no mail server of acme\.com answered"):
        checker.check("ann@acme.com")


def test_the_provider_states_the_verdict_as_an_email_candidate_for_free(smtp_server):
    server = smtp_server(mailboxes={"ann.lee@acme.com"})
    answer = MxSmtpProvider(checker_for(server)).email_verify(
        "ann.lee@acme.com", idempotency_key="k"
    )
    assert answer.credits == 0
    [candidate] = answer.candidates
    assert (candidate.field, candidate.value, candidate.verification, candidate.source) == (
        "email",
        "ann.lee@acme.com",
        "valid",
        "mx_smtp",
    )


# --- In the pipeline: it verifies the pattern finder's guesses -------------------------


@pytest.fixture
def smtp_verifier(smtp_server, settings, monkeypatch):
    """Turn the check on, with the test server as every domain's mail host."""

    def configure(**kwargs):
        server = smtp_server(**kwargs)
        settings.SANDBOX_BASE_URL = ""
        settings.SMTP_VERIFY_FROM = "verify@leadsmith.test"
        settings.SMTP_VERIFY_PORT = server.server_address[1]
        monkeypatch.setattr(client, "mx_hosts", lambda domain, timeout: ["127.0.0.1"])
        return server

    return configure


def _company_with_a_known_pattern():
    company = CompanyFactory(domain="patterned.com")
    for first, last in [("Uma", "Verne"), ("Raj", "Iyer"), ("Li", "Wong")]:
        LeadFactory(
            company=company,
            first_name=first,
            last_name=last,
            email=f"{first.lower()}.{last.lower()}@patterned.com",
            email_verification="valid",
        )
    return LeadFactory(company=company, first_name="Ann", last_name="Lee")


def _find_email(lead):
    [run] = runs_create(lead_ids=[lead.id], trigger="find_email", fields=["email"], enqueue=False)
    return run_execute(run_id=run.id)


@pytest.mark.django_db
def test_a_guess_the_mail_server_accepts_is_applied(smtp_verifier):
    smtp_verifier(mailboxes={"ann.lee@patterned.com"})
    lead = _company_with_a_known_pattern()

    run = _find_email(lead)

    lead.refresh_from_db()
    assert run.state == "done"
    assert (lead.email, lead.email_verification) == ("ann.lee@patterned.com", "valid")
    assert ProviderCall.objects.get(provider="mx_smtp").credits == 0


@pytest.mark.django_db
def test_a_guess_the_mail_server_refuses_is_not_kept(smtp_verifier):
    smtp_verifier(mailboxes=set())
    lead = _company_with_a_known_pattern()

    _find_email(lead)

    assert Lead.objects.get(id=lead.id).email is None
    assert not Observation.objects.filter(
        lead=lead, source="pattern", state__in=["applied", "pending_review"]
    ).exists()


@pytest.mark.django_db
def test_a_guess_at_a_catch_all_domain_waits_for_a_reviewer(smtp_verifier):
    smtp_verifier(catch_all=True)
    lead = _company_with_a_known_pattern()

    _find_email(lead)

    assert Lead.objects.get(id=lead.id).email is None
    guess = Observation.objects.get(lead=lead, source="pattern")
    assert (guess.state, guess.verification) == ("pending_review", "accept_all")
