"""An uploaded CSV file: how it is read, what importing it did, and its enrichment job."""

from array import array

from django.conf import settings
from django.db import models

from enrichment.models import EnrichmentJob


class CsvImport(models.Model):
    """One uploaded file, imported once; its rows keep their order for the enriched copy."""

    class State(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded (not imported yet)"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    file = models.FileField(upload_to="imports/%Y/%m/", max_length=255)
    name = models.CharField(max_length=255, help_text="The file name as uploaded.")
    size = models.PositiveBigIntegerField(default=0, help_text="Bytes.")
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(
        default=list, blank=True, help_text="The field each column feeds, in header order."
    )
    overrides = models.JSONField(
        default=dict, blank=True, help_text="Columns mapped by hand: {column: field}."
    )
    source = models.CharField(max_length=64, blank=True, help_text="Stored on each new lead.")
    enrich = models.BooleanField(
        default=True, help_text="Enrich every lead of the file once it is imported."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.UPLOADED)
    progress = models.FloatField(default=0.0, help_text="Share of the file read, 0 to 1.")
    rows_total = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_duplicate = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    rows_suppressed = models.PositiveIntegerField(default=0)
    notes = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, help_text="Why the import stopped, if it did.")
    error_report = models.FileField(upload_to="imports/errors/", max_length=255, blank=True)
    # The lead each record became, as int64 in file order (0: none), so the enriched copy
    # lists the same rows in the same order; 8 bytes a row keeps a million rows at 8 MB.
    row_leads = models.BinaryField(default=b"", editable=False)
    estimate = models.JSONField(null=True, blank=True, help_text="The last dry run.")
    estimated_at = models.DateTimeField(null=True, blank=True)
    enrichment_job = models.ForeignKey(
        EnrichmentJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "CSV import"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_state_display()})"

    def lead_ids(self) -> array:
        """Return the lead id of each record in file order (0 for none)."""
        ids = array("q")
        ids.frombytes(bytes(self.row_leads or b""))
        return ids
