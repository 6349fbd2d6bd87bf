"""Provider settings in the admin: budgets and their alert."""

import pytest

from providers.models import ProviderCall, ProviderConfig

pytestmark = pytest.mark.django_db


def test_a_budget_past_80_percent_is_flagged_in_the_admin(admin_client):
    ProviderConfig.objects.create(provider="hunter", daily_credit_budget=10)
    ProviderConfig.objects.create(provider="pdl", daily_credit_budget=10)
    ProviderCall.objects.create(
        provider="hunter",
        operation="person_enrich",
        lookup_key_hash="k",
        outcome="hit",
        credits=8.5,
    )
    ProviderCall.objects.create(
        provider="pdl", operation="person_enrich", lookup_key_hash="k", outcome="hit", credits=2
    )
    page = admin_client.get("/admin/providers/providerconfig/").content.decode().lower()
    assert "hunter has spent 85% of its budget today (8.50 of 10.00 credits)" in page
    assert "pdl has spent" not in page
    assert "today 8.50 / 10.00 (85%) ⚠" in page
