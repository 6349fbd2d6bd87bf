"""The admin pages for subscriptions, the delivery log, callback tokens and API keys."""

import pytest
from django.contrib.auth import get_user_model

from webhooks.models import Delivery, Subscription
from webhooks.services import webhook_event_publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-tests-only")
    client.force_login(user)
    return client


def test_adding_a_subscription_generates_its_secret(admin_client):
    response = admin_client.post(
        "/admin/webhooks/subscription/add/",
        {"url": "https://crm.example.com/hooks", "events": ["lead.enriched", "job.completed"]},
    )
    assert response.status_code == 302
    subscription = Subscription.objects.get()
    assert subscription.secret.startswith("whsec_")
    assert subscription.events == ["lead.enriched", "job.completed"]
    page = admin_client.get(f"/admin/webhooks/subscription/{subscription.id}/change/")
    assert subscription.secret in page.content.decode()


def test_the_delivery_log_lists_and_sends_failed_ones_again(admin_client, subscribe):
    subscription = subscribe("https://crm.example.com/hooks")
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={})
    Delivery.objects.filter(id=delivery_id).update(state=Delivery.State.FAILED, attempts=8)
    assert admin_client.get("/admin/webhooks/delivery/").status_code == 200
    assert admin_client.get(f"/admin/webhooks/delivery/{delivery_id}/change/").status_code == 200
    response = admin_client.post(
        "/admin/webhooks/delivery/",
        {"action": "send_again", "_selected_action": [delivery_id]},
    )
    assert response.status_code == 302
    delivery = Delivery.objects.get(id=delivery_id)
    assert delivery.state == Delivery.State.PENDING
    assert delivery.attempts == 0
    assert subscription.is_active


@pytest.mark.parametrize(
    "path", ["/admin/webhooks/inboundtoken/", "/admin/api/apikey/", "/admin/webhooks/subscription/"]
)
def test_the_lists_render(admin_client, path):
    assert admin_client.get(path).status_code == 200
