"""The audit log of privacy operations: who erased or exported whom, and when.

It names the person only by a hash of their strongest identity, so the log itself never
holds the personal data it accounts for.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditLog(models.Model):
    """One erasure, access export or retention purge. Rows are only ever added."""

    class Action(models.TextChoices):
        ERASE = "erase", "Erasure"
        EXPORT = "export", "Access export"
        RETENTION_PURGE = "retention_purge", "Retention purge"

    action = models.CharField(max_length=32, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept apart from the foreign key so the log still says who after the user is deleted.
    actor_label = models.CharField(max_length=150, help_text="User name, or what ran it.")
    subject_hash = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="sha256 of the person's identity."
    )
    reason = models.CharField(max_length=255, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor_label} at {self.at:%Y-%m-%d %H:%M}"
