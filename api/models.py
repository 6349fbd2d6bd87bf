"""API keys: one per integration, stored hashed, each with a role."""

from django.conf import settings
from django.db import models


class ApiKey(models.Model):
    """A key another tool sends as `Authorization: Bearer <key>`.

    Only the prefix (to recognise the key in lists and logs) and a SHA-256 of the whole key
    are kept; the key itself is shown once, when it is created. A key has high entropy, so
    a fast hash is enough: there is nothing to brute-force that a slow hash would protect.
    """

    class Role(models.TextChoices):
        SDR = "sdr", "SDR"
        REVIEWER = "reviewer", "Reviewer"
        ADMIN = "admin", "Admin"

    name = models.CharField(max_length=100, unique=True, help_text="The integration it is for.")
    role = models.CharField(max_length=16, choices=Role.choices)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_key",
        help_text="The account the key acts as: reviews and manual edits are recorded on it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.role})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
