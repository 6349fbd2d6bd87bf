"""Outbound webhooks: publish an event to its subscribers, deliver it, retry on a backoff.

A delivery is a row first and a Celery message second. `webhook_event_publish` writes the
rows in the caller's transaction and sends the messages after commit; `delivery_attempt`
claims a delivery with a conditional UPDATE, so a message that arrives twice sends once;
`deliveries_retry_due` (celery-beat, `webhooks.retry_due`) sends the deliveries whose next
attempt is due, and takes back those whose worker died while sending.
"""

import json
import logging
import random
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from common.cached_tables import CachedTable, cached_tables_changed
from providers.http import retry_after_seconds
from webhooks.http import SendFailed, post
from webhooks.models import Delivery, Subscription
from webhooks.signing import signature

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver"
DELIVER_QUEUE = "webhooks"
# A retry this soon rides on the message's countdown; a later one waits for the sweep
# (DESIGN: no long countdowns, which a broker may hold past its visibility timeout).
_COUNTDOWN_MAX_SECONDS = 60
# A Retry-After longer than this is not honoured beyond it.
_RETRY_AFTER_MAX_SECONDS = 24 * 3600


def _send(delivery_ids: Iterable[int], *, countdown: float = 0) -> None:
    for delivery_id in delivery_ids:
        current_app.send_task(
            DELIVER_TASK, args=[delivery_id], queue=DELIVER_QUEUE, countdown=countdown or None
        )


_ACTIVE_SUBSCRIPTIONS = CachedTable(
    "webhook_subscriptions_active",
    models=(Subscription,),
    load=lambda: list(Subscription.objects.filter(is_active=True)),
)


def subscriptions_for(event: str) -> list[Subscription]:
    # Filtered here rather than with a JSON lookup: SQLite has no `contains` on JSON, and
    # subscriptions are few.
    return [s for s in _ACTIVE_SUBSCRIPTIONS.get() if event in (s.events or [])]


def webhook_event_publish(
    *, event: str, payload: Mapping[str, Any], message_id: str = ""
) -> list[int]:
    """Write a delivery of the event to each active subscription that wants it; send them
    after the surrounding transaction commits. Return the ids of the new deliveries.

    `message_id` (the webhook-id) defaults to a new one; give a stable one for an event
    that several callers may publish: each subscription gets a message id once.
    """
    subscriptions = subscriptions_for(event)
    if not subscriptions:
        return []
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    now = timezone.now()
    body = json.dumps(
        {"type": event, "timestamp": now.isoformat(), "data": dict(payload)},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )
    with transaction.atomic():
        Delivery.objects.bulk_create(
            [
                Delivery(
                    subscription=subscription,
                    event=event,
                    message_id=message_id,
                    body=body,
                    next_attempt_at=now,
                )
                for subscription in subscriptions
            ],
            ignore_conflicts=True,
        )
        # Rows an earlier publish of the same message made were sent by that publish.
        fresh = list(
            Delivery.objects.filter(
                message_id=message_id, subscription__in=subscriptions, enqueued_at__isnull=True
            ).values_list("id", flat=True)
        )
        Delivery.objects.filter(id__in=fresh).update(enqueued_at=now)
        transaction.on_commit(lambda: _send(fresh))
    return fresh


def retry_delay(*, attempts: int) -> float | None:
    """Return the wait before the next attempt after `attempts` failed ones, None when the
    schedule is used up. Waits of a minute or more get ±10% jitter, so endpoints that came
    back are not hit by every retry at once."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if not 1 <= attempts <= len(schedule):
        return None
    delay = float(schedule[attempts - 1])
    if delay >= 60:
        delay *= random.uniform(0.9, 1.1)
    return delay


def delivery_attempt(*, delivery_id: int) -> Delivery | None:
    """Claim the delivery and send it once; None when it is not due or another has it."""
    now = timezone.now()
    claimed = Delivery.objects.filter(
        id=delivery_id, state=Delivery.State.PENDING, next_attempt_at__lte=now
    ).update(state=Delivery.State.SENDING, attempts=F("attempts") + 1, last_attempt_at=now)
    if claimed != 1:
        return None
    delivery = Delivery.objects.select_related("subscription").get(id=delivery_id)
    subscription = delivery.subscription
    if not subscription.is_active:
        _conclude(delivery, state=Delivery.State.CANCELLED, error="the subscription is disabled")
        return _reloaded(delivery)
    timestamp = int(time.time())
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Leadsmith-Webhooks/1",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(
            secret=subscription.secret,
            message_id=delivery.message_id,
            timestamp=timestamp,
            body=body,
        ),
    }
    try:
        result = post(subscription.url, body=body, headers=headers)
    except SendFailed as exc:
        _retry_or_give_up(delivery, error=str(exc))
        return _reloaded(delivery)
    if 200 <= result.status < 300:
        _conclude(
            delivery,
            state=Delivery.State.DELIVERED,
            status=result.status,
            body=result.body,
            delivered_at=timezone.now(),
        )
    elif result.status == 410:
        # The endpoint says it wants nothing more from us (Standard Webhooks: disable it).
        with transaction.atomic():
            _conclude(
                delivery,
                state=Delivery.State.FAILED,
                status=410,
                body=result.body,
                error="the endpoint answered 410 Gone; the subscription was disabled",
            )
            subscription_disable(
                subscription=subscription,
                reason=f"answered 410 Gone at {timezone.now():%Y-%m-%d %H:%M} UTC",
            )
    else:
        wait = retry_after_seconds({"Retry-After": result.retry_after}, default=0)
        _retry_or_give_up(
            delivery,
            error=f"answered HTTP {result.status}",
            status=result.status,
            body=result.body,
            at_least=min(wait, _RETRY_AFTER_MAX_SECONDS),
        )
    return _reloaded(delivery)


def _reloaded(delivery: Delivery) -> Delivery:
    delivery.refresh_from_db()
    return delivery


def _conclude(
    delivery: Delivery,
    *,
    state: str,
    status: int | None = None,
    body: str = "",
    error: str = "",
    delivered_at=None,
) -> None:
    Delivery.objects.filter(id=delivery.id, state=Delivery.State.SENDING).update(
        state=state,
        response_status=status,
        response_body=body[:500],
        last_error=error[:500],
        delivered_at=delivered_at,
    )


def _retry_or_give_up(
    delivery: Delivery,
    *,
    error: str,
    status: int | None = None,
    body: str = "",
    at_least: float = 0,
) -> None:
    attempts = Delivery.objects.values_list("attempts", flat=True).get(id=delivery.id)
    delay = retry_delay(attempts=attempts)
    if delay is None:
        _conclude(
            delivery,
            state=Delivery.State.FAILED,
            status=status,
            body=body,
            error=f"gave up after {attempts} attempts; last: {error}",
        )
        return
    delay = max(delay, at_least)
    now = timezone.now()
    soon = delay <= _COUNTDOWN_MAX_SECONDS
    updated = Delivery.objects.filter(id=delivery.id, state=Delivery.State.SENDING).update(
        state=Delivery.State.PENDING,
        next_attempt_at=now + timedelta(seconds=delay),
        enqueued_at=now if soon else None,
        response_status=status,
        response_body=body[:500],
        last_error=error[:500],
    )
    if updated and soon:
        transaction.on_commit(lambda: _send([delivery.id], countdown=delay))


def subscription_disable(*, subscription: Subscription, reason: str) -> bool:
    """Stop sending to the subscription and cancel what waits for it; False if it was off."""
    with transaction.atomic():
        disabled = Subscription.objects.filter(id=subscription.id, is_active=True).update(
            is_active=False, disabled_reason=reason[:255], updated_at=timezone.now()
        )
        Delivery.objects.filter(subscription=subscription, state=Delivery.State.PENDING).update(
            state=Delivery.State.CANCELLED, last_error=f"subscription disabled: {reason}"[:500]
        )
        cached_tables_changed()
    subscription.refresh_from_db()
    return bool(disabled)


def subscription_enable(*, subscription: Subscription) -> None:
    Subscription.objects.filter(id=subscription.id).update(
        is_active=True, disabled_reason="", updated_at=timezone.now()
    )
    cached_tables_changed()
    subscription.refresh_from_db()


def delivery_retry(*, delivery: Delivery) -> bool:
    """Send a failed or cancelled delivery again now, from a fresh schedule (an operator's
    decision); False when it is not failed or cancelled, or its subscription is off."""
    now = timezone.now()
    with transaction.atomic():
        updated = Delivery.objects.filter(
            id=delivery.id,
            state__in=[Delivery.State.FAILED, Delivery.State.CANCELLED],
            subscription__is_active=True,
        ).update(state=Delivery.State.PENDING, attempts=0, next_attempt_at=now, enqueued_at=now)
        if updated:
            transaction.on_commit(lambda: _send([delivery.id]))
    return bool(updated)


def deliveries_retry_due() -> int:
    """Send every delivery whose next attempt is due and that no message is on its way for;
    take back deliveries whose worker died mid-send. Return how many were sent."""
    now = timezone.now()
    # Past the send timeout and the task's hard limit, nobody is sending it any more; the
    # attempt it was on counts.
    lost_before = now - timedelta(
        seconds=settings.WEBHOOK_TIMEOUT_SECONDS + settings.CELERY_TASK_TIME_LIMIT
    )
    Delivery.objects.filter(state=Delivery.State.SENDING, last_attempt_at__lt=lost_before).update(
        state=Delivery.State.PENDING,
        next_attempt_at=now,
        enqueued_at=None,
        last_error="the worker was lost while sending",
    )
    resend_before = now - timedelta(seconds=settings.WEBHOOK_REQUEUE_AFTER_SECONDS)
    due = list(
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=resend_before))
        .values_list("id", flat=True)[:1000]
    )
    sent = []
    for delivery_id in due:
        # Conditional, so two sweeps at once do not both send it.
        if (
            Delivery.objects.filter(id=delivery_id, state=Delivery.State.PENDING)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=resend_before))
            .update(enqueued_at=now)
        ):
            sent.append(delivery_id)
    _send(sent)
    return len(sent)
