"""The settings tables ops edit by hand are read once per process, and every process sees a
change on its next read (common.cached_tables)."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common import cached_tables
from enrichment.icp import icp_rules_active
from enrichment.models import IcpRule, WaterfallStep
from enrichment.waterfall import field_orders
from providers.models import ProviderConfig
from providers.registry import enabled_providers, provider_configs
from webhooks.models import Subscription
from webhooks.services import subscription_disable, subscription_enable, subscriptions_for

pytestmark = pytest.mark.django_db


def _queries(read) -> int:
    with CaptureQueriesContext(connection) as captured:
        read()
    return len(captured.captured_queries)


def _another_process_changes(model, **values) -> None:
    """What a change made in another process looks like from here: rows changed without
    this process's signals, and a new token in the shared cache."""
    model.objects.update(**values)
    cache.set(cached_tables.TOKEN_KEY, "a token set elsewhere", timeout=None)


@pytest.mark.parametrize(
    ("read", "make"),
    [
        (provider_configs, lambda: ProviderConfig.objects.create(provider="sandbox")),
        (icp_rules_active, lambda: IcpRule.objects.create(name="SaaS", industries="saas")),
        (lambda: subscriptions_for("job.completed"), None),
    ],
    ids=["provider configs", "ICP rules", "webhook subscriptions"],
)
def test_a_table_is_read_once_until_it_changes(read, make):
    if make is not None:
        make()
    assert _queries(read) == 1
    assert _queries(read) == 0


def test_a_save_here_is_seen_by_the_next_read_here():
    ProviderConfig.objects.create(provider="sandbox", enabled=True)
    assert provider_configs()["sandbox"].enabled

    config = ProviderConfig.objects.get(provider="sandbox")
    config.enabled = False
    config.save()

    assert provider_configs()["sandbox"].enabled is False


def test_a_delete_here_is_seen_by_the_next_read_here():
    rule = IcpRule.objects.create(name="SaaS", industries="saas")
    assert icp_rules_active() == [rule]

    rule.delete()

    assert icp_rules_active() == []


def test_a_change_made_in_another_process_is_seen_within_a_second(settings, monkeypatch):
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    ProviderConfig.objects.create(provider="sandbox", enabled=True)
    assert [p.name for p in field_orders(enabled_providers())["email"]] == ["sandbox"]

    _another_process_changes(ProviderConfig, enabled=False)

    # Within TOKEN_RECHECK_SECONDS of its last look this process does not look again...
    assert provider_configs()["sandbox"].enabled is True
    # ...and once that has passed, it sees the new token and reads the table again.
    monkeypatch.setattr(cached_tables, "TOKEN_RECHECK_SECONDS", 0.0)
    assert provider_configs()["sandbox"].enabled is False
    assert field_orders(enabled_providers())["email"] == []


def test_rows_changed_without_a_new_token_are_not_seen_until_the_maximum_age(monkeypatch):
    """A lost token change (the cache down at that moment) costs at most MAX_AGE_SECONDS."""
    monkeypatch.setattr(cached_tables, "TOKEN_RECHECK_SECONDS", 0.0)
    ProviderConfig.objects.create(provider="sandbox", enabled=True)
    assert provider_configs()["sandbox"].enabled
    ProviderConfig.objects.update(enabled=False)
    assert provider_configs()["sandbox"].enabled

    monkeypatch.setattr(cached_tables, "MAX_AGE_SECONDS", 0.0)

    assert provider_configs()["sandbox"].enabled is False


def test_the_waterfall_follows_a_new_step_at_once(settings):
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.HUNTER_API_KEY = "test-key"
    assert next(p.name for p in field_orders(enabled_providers())["email"]) == "sandbox"

    WaterfallStep.objects.create(field="email", provider="hunter", position=1)
    WaterfallStep.objects.create(field="email", provider="sandbox", position=2)

    assert [p.name for p in field_orders(enabled_providers())["email"]] == ["hunter", "sandbox"]


def test_disabling_and_enabling_a_subscription_are_seen_at_once():
    subscription = Subscription.objects.create(
        url="https://example.com/hook", events=["job.completed"], secret="whsec_dGVzdA=="
    )
    assert subscriptions_for("job.completed") == [subscription]

    subscription_disable(subscription=subscription, reason="410 Gone")
    assert subscriptions_for("job.completed") == []

    subscription_enable(subscription=subscription)
    assert subscriptions_for("job.completed") == [subscription]


def test_a_change_is_announced_again_when_it_commits(django_capture_on_commit_callbacks):
    """A process that read between the change and its commit saw the old rows: the token
    changes once more at commit, so it reads again."""
    with django_capture_on_commit_callbacks() as callbacks:
        ProviderConfig.objects.create(provider="sandbox")
        token_before_commit = cache.get(cached_tables.TOKEN_KEY)
    assert token_before_commit is not None

    for callback in callbacks:
        callback()

    assert cache.get(cached_tables.TOKEN_KEY) not in (None, token_before_commit)


def test_without_the_shared_cache_every_read_goes_to_the_database(settings):
    ProviderConfig.objects.create(provider="sandbox")
    # A Redis cache nobody listens on: every cache call fails.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }

    assert _queries(provider_configs) == 1
    assert _queries(provider_configs) == 1
    assert "sandbox" in provider_configs()
