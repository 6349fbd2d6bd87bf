"""Ledger and budget upkeep (providers/services.py and the beat tasks around it)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from enrichment.tasks import cache_purge
from providers.models import ProviderCall, ProviderConfig
from providers.services import budget_alerts_notify, provider_payloads_expire
from providers.tasks import budget_alerts

pytestmark = pytest.mark.django_db


def _call(outcome: str, days_old: int, credits: str = "1") -> ProviderCall:
    row = ProviderCall.objects.create(
        provider="sandbox",
        operation="person_enrich",
        lookup_key_hash=f"{outcome}{days_old}".ljust(64, "0"),
        outcome=outcome,
        credits=Decimal(credits),
        response={"candidates": [{"field": "phone"}], "raw": {"person": {}}},
    )
    ProviderCall.objects.filter(id=row.id).update(
        created_at=timezone.now() - timedelta(days=days_old)
    )
    return row


def test_cache_purge_drops_only_payloads_the_cache_can_no_longer_serve(settings):
    settings.PROVIDER_MISS_TTL_DAYS = 30
    old_hit, young_hit = _call("hit", 181), _call("hit", 100)
    old_miss, young_miss = _call("miss", 31, credits="0"), _call("miss", 10, credits="0")
    cache_purge()
    for row in (old_hit, young_hit, old_miss, young_miss):
        row.refresh_from_db()
    # A hit can be served for up to the longest field freshness (180 days), a miss 30.
    assert old_hit.response is None and old_miss.response is None
    assert young_hit.response and young_miss.response
    # The rows are the spend record: they stay, credits and all.
    assert ProviderCall.objects.count() == 4
    assert old_hit.credits == Decimal("1")
    assert provider_payloads_expire(hits_before=timezone.now(), misses_before=timezone.now()) == 2


def test_budget_alerts_log_and_mail_the_admins_once_per_period(settings, caplog):
    cache.clear()
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.PROVIDER_BUDGET_ALERT_AT = 0.8
    ProviderConfig.objects.create(provider="sandbox", daily_credit_budget=Decimal("10"))
    ProviderConfig.objects.create(provider="hunter", daily_credit_budget=Decimal("100"))
    for _ in range(9):
        _call("hit", 0)

    budget_alerts()
    (logged,) = [r.getMessage() for r in caplog.records if "budget alert" in r.getMessage()]
    assert logged.startswith("budget alert: sandbox has spent 9") and "(90%)" in logged
    (message,) = mail.outbox
    assert message.to == ["ops@example.com"]
    assert "sandbox" in message.subject and "hunter" not in message.subject
    # The next tick logs again but mails nobody: already told for today.
    assert budget_alerts_notify() == []
    assert len(mail.outbox) == 1
    # Reaching the budget itself is news again.
    _call("hit", 0)
    assert [use.provider for use in budget_alerts_notify()] == ["sandbox"]
    assert len(mail.outbox) == 2
