"""Publishing, delivering through a real local HTTP endpoint, retries, 410, the sweep."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks.models import Delivery, Subscription
from webhooks.services import (
    deliveries_retry_due,
    delivery_attempt,
    delivery_retry,
    retry_delay,
    webhook_event_publish,
)

pytestmark = pytest.mark.django_db

SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


def _due_now(delivery_id: int) -> None:
    """Move the next attempt to now: the schedule's waits, without waiting."""
    Delivery.objects.filter(id=delivery_id).update(next_attempt_at=timezone.now())


def test_publish_writes_one_delivery_per_interested_active_subscription(
    subscribe, receiver, django_capture_on_commit_callbacks
):
    wanted = subscribe(receiver.url, events=["lead.enriched", "job.completed"])
    subscribe(receiver.url, events=["job.completed"])
    subscribe(receiver.url, events=["lead.enriched"], is_active=False)
    with django_capture_on_commit_callbacks() as callbacks:
        ids = webhook_event_publish(event="lead.enriched", payload={"lead_id": 3})
    assert len(callbacks) == 1  # the messages go out after commit
    (delivery,) = Delivery.objects.filter(id__in=ids)
    assert delivery.subscription == wanted
    assert delivery.state == Delivery.State.PENDING
    assert delivery.message_id.startswith("msg_")
    assert delivery.enqueued_at is not None


def test_a_stable_message_id_is_delivered_once_per_subscription(subscribe, receiver):
    subscribe(receiver.url, events=["job.completed"])
    first = webhook_event_publish(event="job.completed", payload={}, message_id="msg_job1")
    again = webhook_event_publish(event="job.completed", payload={}, message_id="msg_job1")
    assert len(first) == 1
    assert again == []
    assert Delivery.objects.count() == 1


def test_a_2xx_answer_delivers(subscribe, receiver):
    subscribe(receiver.url)
    receiver.answer(204)
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={"lead_id": 1})
    delivery = delivery_attempt(delivery_id=delivery_id)
    assert delivery.state == Delivery.State.DELIVERED
    assert delivery.attempts == 1
    assert delivery.response_status == 204
    assert delivery.delivered_at is not None
    assert receiver.received[0].body == delivery.body.encode()


def test_a_delivery_is_sent_once_however_often_its_message_arrives(subscribe, receiver):
    subscribe(receiver.url)
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={})
    assert delivery_attempt(delivery_id=delivery_id) is not None
    assert delivery_attempt(delivery_id=delivery_id) is None
    assert len(receiver.received) == 1


def test_failures_retry_on_the_backoff_schedule_then_give_up(subscribe, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = SCHEDULE
    subscribe(receiver.url)
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={})
    waits = []
    for attempt in range(1, len(SCHEDULE) + 2):
        receiver.answer(500)
        before = timezone.now()
        delivery = delivery_attempt(delivery_id=delivery_id)
        assert delivery.attempts == attempt
        assert delivery.response_status == 500
        if attempt <= len(SCHEDULE):
            assert delivery.state == Delivery.State.PENDING
            waits.append((delivery.next_attempt_at - before).total_seconds())
            # Not due yet: a message arriving early sends nothing.
            assert delivery_attempt(delivery_id=delivery_id) is None
            _due_now(delivery_id)
    assert delivery.state == Delivery.State.FAILED
    assert "gave up after 8 attempts" in delivery.last_error
    assert len(receiver.received) == len(SCHEDULE) + 1
    for wait, planned in zip(waits, SCHEDULE, strict=True):
        jitter = 0.1 * planned if planned >= 60 else 0
        assert planned - jitter - 1 <= wait <= planned + jitter + 1
    # The whole schedule spans about a day (Standard Webhooks' suggestion, to 10 h).
    assert 24 * 3600 <= sum(SCHEDULE) <= 28 * 3600


def test_retry_delay_follows_the_schedule_with_bounded_jitter(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = SCHEDULE
    assert retry_delay(attempts=1) == 5
    for attempt, planned in enumerate(SCHEDULE[1:], start=2):
        assert 0.9 * planned <= retry_delay(attempts=attempt) <= 1.1 * planned
    assert retry_delay(attempts=len(SCHEDULE) + 1) is None


def test_a_retry_after_header_is_honoured(subscribe, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = SCHEDULE
    subscribe(receiver.url)
    receiver.answer(503, {"Retry-After": "120"})
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={})
    before = timezone.now()
    delivery = delivery_attempt(delivery_id=delivery_id)
    assert delivery.state == Delivery.State.PENDING
    assert (delivery.next_attempt_at - before).total_seconds() >= 119


def test_a_410_disables_the_subscription_and_cancels_what_waits(subscribe, receiver):
    subscription = subscribe(receiver.url)
    first, second = (
        webhook_event_publish(event="lead.enriched", payload={"n": n})[0] for n in (1, 2)
    )
    receiver.answer(410)
    delivery = delivery_attempt(delivery_id=first)
    assert delivery.state == Delivery.State.FAILED
    assert delivery.response_status == 410
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert "410" in subscription.disabled_reason
    assert Delivery.objects.get(id=second).state == Delivery.State.CANCELLED
    assert webhook_event_publish(event="lead.enriched", payload={}) == []
    assert delivery_retry(delivery=delivery) is False


def test_a_redirect_is_a_failure_not_followed(subscribe, receiver):
    subscribe(receiver.url)
    receiver.answer(301, {"Location": "http://127.0.0.1:1/elsewhere"})
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={})
    delivery = delivery_attempt(delivery_id=delivery_id)
    assert delivery.state == Delivery.State.PENDING
    assert delivery.response_status == 301
    assert len(receiver.received) == 1


def test_a_closed_port_and_a_slow_endpoint_are_retried(subscribe, receiver, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    subscribe(f"http://127.0.0.1:{closed_port}/hooks")
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={})
    delivery = delivery_attempt(delivery_id=delivery_id)
    assert delivery.state == Delivery.State.PENDING
    assert "could not connect" in delivery.last_error

    Subscription.objects.all().delete()
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    subscribe(receiver.url)
    receiver.answer(200, delay=1.0)
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={})
    delivery = delivery_attempt(delivery_id=delivery_id)
    assert delivery.state == Delivery.State.PENDING
    assert "timed out after 0.3s" in delivery.last_error


def test_the_sweep_sends_due_deliveries_once_and_takes_back_lost_ones(
    subscribe, receiver, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = SCHEDULE
    subscribe(receiver.url)
    due, later, lost = (webhook_event_publish(event="lead.enriched", payload={})[0] for _ in "abc")
    now = timezone.now()
    Delivery.objects.filter(id=due).update(enqueued_at=None, next_attempt_at=now)
    Delivery.objects.filter(id=later).update(
        enqueued_at=None, next_attempt_at=now + timedelta(hours=1)
    )
    Delivery.objects.filter(id=lost).update(
        state=Delivery.State.SENDING, attempts=1, last_attempt_at=now - timedelta(hours=1)
    )
    assert deliveries_retry_due() == 2  # the due one and the one taken back
    assert deliveries_retry_due() == 0  # their messages are on their way
    assert Delivery.objects.get(id=lost).state == Delivery.State.PENDING
    assert Delivery.objects.get(id=later).enqueued_at is None
    assert delivery_attempt(delivery_id=lost).state == Delivery.State.DELIVERED


def test_an_operator_can_send_a_failed_delivery_again(subscribe, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = []
    subscribe(receiver.url)
    receiver.answer(500)
    (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={})
    delivery = delivery_attempt(delivery_id=delivery_id)
    assert delivery.state == Delivery.State.FAILED
    assert delivery_retry(delivery=delivery) is True
    assert delivery_attempt(delivery_id=delivery_id).state == Delivery.State.DELIVERED
