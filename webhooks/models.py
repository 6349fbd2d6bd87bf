"""Outbound webhook subscriptions and their delivery log; inbound provider callbacks."""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Event(models.TextChoices):
    LEAD_ENRICHED = "lead.enriched", "A lead's enrichment run finished with new data"
    OBSERVATION_FLAGGED = "observation.flagged", "Values went to the review queue"
    JOB_COMPLETED = "job.completed", "Every run of a job finished"
    LEAD_HIGH_VALUE = "lead.high_value", "An enriched lead's score crossed the high-value mark"


class Subscription(models.Model):
    """An endpoint that receives some events, signed with its own secret."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=255, blank=True)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    secret = models.CharField(
        max_length=100,
        help_text="whsec_… (Standard Webhooks): the receiver verifies signatures with it.",
    )
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.description or self.url


class Delivery(models.Model):
    """One event for one subscription, and how its sending went (the delivery log)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # gave up: attempts used up, or the endpoint said 410
        CANCELLED = "cancelled", "Cancelled"  # the subscription was disabled meanwhile

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=64, choices=Event.choices)
    message_id = models.CharField(
        max_length=64, help_text="webhook-id: the same on every attempt, for idempotency."
    )
    body = models.TextField(help_text="Exactly the bytes signed and sent.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=500, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            # One message per event per endpoint, however often the event is published.
            models.UniqueConstraint(
                fields=["subscription", "message_id"], name="delivery_once_per_message"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=Q(state__in=["pending", "sending"]),
            ),
            models.Index(fields=["subscription", "-created_at"], name="delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription_id} ({self.state})"


class InboundToken(models.Model):
    """A one-use callback address given to a provider for an asynchronous answer.

    The URL carries `<public_id>.<secret>`; only a SHA-256 of the secret is kept. The
    answer that arrives with it is stored here, and the token is used up by it.
    """

    provider = models.CharField(max_length=32)
    public_id = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    run = models.ForeignKey(
        "enrichment.EnrichmentRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True, help_text="What the provider sent.")
    result = models.JSONField(
        null=True,
        blank=True,
        help_text="The candidates read from the delivery, and what merging them into the lead did.",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.provider} {self.public_id} ({'used' if self.used_at else 'open'})"
