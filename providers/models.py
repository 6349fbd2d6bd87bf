"""The ledger of every provider call (also the cache of what was already paid for), and
what an admin sets per provider: order, rate limit and credit budgets."""

from django.db import models
from django.db.models import Q


class ProviderCall(models.Model):
    """One call (or cache reuse) to one provider for one normalized lookup key."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "In flight"
        HIT = "hit", "Hit"
        MISS = "miss", "Miss"
        ERROR = "error", "Error"
        RATE_LIMITED = "rate_limited", "Rate limited"
        QUOTA_EXHAUSTED = "quota_exhausted", "Quota exhausted"
        SUPPRESSED = "suppressed", "Suppressed"
        CACHED = "cached", "Cached"

    provider = models.CharField(max_length=32)
    operation = models.CharField(max_length=64)
    lookup_key_hash = models.CharField(max_length=64, help_text="sha256 of the normalized key")
    idempotency_key = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="Sent to the vendor; every attempt of one lookup in one run shares it.",
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    credits = models.DecimalField(max_digits=10, decimal_places=3, default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    response = models.JSONField(null=True, blank=True, help_text="Trimmed vendor answer.")
    error = models.CharField(max_length=500, blank=True)
    cached_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reuses"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One question in flight at a time: a second worker asking the same thing
            # waits for the first answer instead of paying for it again.
            models.UniqueConstraint(
                fields=["provider", "operation", "lookup_key_hash"],
                condition=Q(outcome="pending"),
                name="providercall_one_in_flight",
            ),
        ]
        indexes = [
            # Ledger by provider and day.
            models.Index(fields=["provider", "created_at"], name="providercall_provider_day"),
            # Cache lookups: latest hit or miss for (provider, operation, key). The key comes
            # first: with (provider, operation) first, a table too new to have statistics
            # (a first big batch) made PostgreSQL scan every row of the operation and filter
            # the keys (15 ms a look at 10k rows, growing with the ledger) instead of seeking
            # each key (2 ms).
            models.Index(
                fields=["lookup_key_hash", "provider", "operation", "-created_at"],
                name="providercall_cache",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}.{self.operation} {self.outcome}"


class ProviderConfig(models.Model):
    """An admin's settings for one provider; a provider without a row runs on defaults."""

    provider = models.CharField(max_length=32, unique=True)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(
        default=100, help_text="Waterfall order for fields with no order of their own; low first."
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Shared by every worker on every machine. Empty: no limit of our own.",
    )
    daily_credit_budget = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Paid calls stop for the day once reached; runs wait and resume.",
    )
    monthly_credit_budget = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Paid calls stop for the month once reached; runs wait and resume.",
    )

    class Meta:
        ordering = ["position", "provider"]
        verbose_name = "provider setting"

    def __str__(self) -> str:
        return self.provider


class ProviderThrottle(models.Model):
    """The shared rate-limit state of one provider when there is no Redis (embedded mode)."""

    provider = models.CharField(max_length=32, primary_key=True)
    next_slot_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.provider
