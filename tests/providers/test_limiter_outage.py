"""The shared rate limiter's Redis going away (restarted, unreachable) holds calls back.

Found by bench/fault_injection.py: with the script's Redis killed mid-batch, every run then
asking for its rate-limit slot failed for good on a redis ConnectionError. A run must wait
for the limiter without spending an attempt, and a vendor's 429 must still be recorded when
the pause cannot be shared.
"""

import socket
from datetime import timedelta

import pytest
import redis

from enrichment.services import run_execute, runs_create
from providers import ledger
from providers.base import Deferred, ProviderAnswer, RateLimited
from providers.ledger import call_with_ledger
from providers.models import ProviderCall
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable_redis(settings) -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Released just now, so nothing listens there: every connection is refused.
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    return settings.REDIS_URL


def ask(call) -> tuple[ProviderAnswer, ProviderCall]:
    return call_with_ledger(
        provider="sandbox",
        operation="company_enrich",
        lookup_keys=["domain:acme.com"],
        scope="run:1",
        hit_ttl=timedelta(days=90),
        miss_ttl=timedelta(days=30),
        call=call,
    )


def test_an_unreachable_limiter_holds_the_call_back_unasked(unreachable_redis):
    asked = []

    with pytest.raises(Deferred, match="rate limiter is unreachable") as caught:
        ask(lambda key: asked.append(key))

    assert caught.value.retry_after == ledger.LIMITER_DOWN_RETRY_SECONDS
    assert asked == []
    assert not ProviderCall.objects.exists()


def test_a_429_is_recorded_though_the_pause_cannot_be_shared(settings, monkeypatch):
    settings.REDIS_URL = ""

    class LimiterWithoutPause:
        def pause(self, provider: str, *, seconds: float) -> None:
            raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(ledger, "rate_limiter", LimiterWithoutPause)

    def refused(key: str) -> ProviderAnswer:
        raise RateLimited("sandbox answered 429", retry_after=3, http_status=429)

    with pytest.raises(RateLimited):
        ask(refused)

    (row,) = ProviderCall.objects.all()
    assert (row.outcome, row.http_status, row.credits) == ("rate_limited", 429, 0)


def test_a_run_waits_for_the_limiter_without_spending_an_attempt(unreachable_redis, settings):
    settings.SANDBOX_BASE_URL = "http://sandbox.invalid"
    lead = LeadFactory(company=CompanyFactory(domain="limiter-down.com"))
    (run,) = runs_create(lead_ids=[lead.id], trigger="manual", enqueue=False)

    run = run_execute(run_id=run.id)

    assert (run.state, run.attempts) == ("queued", 0)
    assert run.last_error.startswith("waiting: ")
    assert "rate limiter is unreachable" in run.last_error
    assert run.available_at > run.started_at
