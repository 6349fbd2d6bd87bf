"""Observations with their provenance, enrichment runs and the jobs that batch them."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from enrichment.fields import FIELD_CHOICES
from leads.models import Company, Lead
from providers.models import ProviderCall


class EnrichmentJob(models.Model):
    """A batch of runs (import, bulk request, scheduled refresh) with live counters."""

    class Kind(models.TextChoices):
        IMPORT = "import", "CSV import"
        BULK = "bulk", "Bulk request"
        REFRESH = "refresh", "Scheduled refresh"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=255, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    enriched = models.PositiveIntegerField(default=0)
    not_found = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.done}/{self.total})"


class EnrichmentRun(models.Model):
    """One request to enrich one lead. A row first, a Celery message second (outbox)."""

    class Trigger(models.TextChoices):
        CREATE = "create", "On create"
        FIND_EMAIL = "find_email", "Find Email"
        MANUAL = "manual", "Manual"
        BULK = "bulk", "Bulk"
        REFRESH = "refresh", "Refresh"
        WEBHOOK = "webhook", "Webhook"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        NOT_FOUND = "not_found", "Not found"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"
        DEAD = "dead", "Dead"

    TERMINAL_STATES = (State.DONE, State.NOT_FOUND, State.SKIPPED, State.FAILED, State.DEAD)

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="enrichment_runs")
    job = models.ForeignKey(
        EnrichmentJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    fields = models.JSONField(default=list, blank=True, help_text="Wanted fields; empty: all.")
    providers = models.JSONField(
        default=list, blank=True, help_text="Providers it may ask; empty: every enabled one."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now, help_text="Not claimed before.")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "available_at"], name="run_sweep"),
            models.Index(fields=["lead", "-created_at"], name="run_lead_latest"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL_STATES


class Observation(models.Model):
    """One value one source stated for one field of one lead or company, and its fate."""

    class State(models.TextChoices):
        APPLIED = "applied", "Applied"
        PENDING_REVIEW = "pending_review", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"
        DISCARDED = "discarded", "Discarded"

    CURRENT_STATES = (State.APPLIED, State.APPROVED)

    # Every write of a batch inserts about ten observations a lead, and each index costs
    # each of them an insert: lead and company are searched through observation_lead_field
    # and observation_company_field (they lead with the subject), not indexes of their own.
    lead = models.ForeignKey(
        Lead,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="observations",
        db_index=False,
    )
    company = models.ForeignKey(
        Company,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="observations",
        db_index=False,
    )
    field = models.CharField(max_length=32, choices=FIELD_CHOICES)
    value = models.JSONField()
    confidence = models.FloatField(null=True, blank=True, help_text="Null: deterministic check.")
    verification = models.CharField(
        max_length=16, choices=Lead.EmailVerification.choices, blank=True
    )
    source = models.CharField(max_length=32)
    provider_call = models.ForeignKey(
        ProviderCall, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        EnrichmentRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="observations",
    )
    state = models.CharField(max_length=16, choices=State.choices)
    reason = models.CharField(max_length=255, blank=True, help_text="Why it got its state.")
    observed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Null until a reviewer decides: indexed only where set (observation_decided_by).
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-observed_at"]
        constraints = [
            models.CheckConstraint(
                name="observation_one_subject",
                condition=(
                    Q(lead__isnull=False, company__isnull=True)
                    | Q(lead__isnull=True, company__isnull=False)
                ),
            ),
        ]
        indexes = [
            # The review queue, newest first, and filtered by field.
            models.Index(
                fields=["-observed_at"],
                name="observation_review_queue",
                condition=Q(state="pending_review"),
            ),
            models.Index(
                fields=["field", "-observed_at"],
                name="observation_review_by_field",
                condition=Q(state="pending_review"),
            ),
            # Stale selection: current values whose data passed its expiry.
            models.Index(
                fields=["expires_at"],
                name="observation_current_expiry",
                condition=Q(state__in=["applied", "approved"]),
            ),
            models.Index(fields=["lead", "field", "state"], name="observation_lead_field"),
            models.Index(fields=["company", "field", "state"], name="observation_company_field"),
            # A user's deletion clears their decisions.
            models.Index(
                fields=["decided_by"],
                name="observation_decided_by",
                condition=Q(decided_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.field}={self.value!r} from {self.source} ({self.state})"


class WaterfallStep(models.Model):
    """One provider's place in one field's waterfall; fields without steps use the
    providers' own order (ProviderConfig.position)."""

    field = models.CharField(max_length=32, choices=FIELD_CHOICES)
    provider = models.CharField(max_length=32)
    position = models.PositiveSmallIntegerField(default=0, help_text="Low first.")

    class Meta:
        ordering = ["field", "position"]
        constraints = [
            models.UniqueConstraint(fields=["field", "provider"], name="waterfall_step_once"),
        ]

    def __str__(self) -> str:
        return f"{self.field}: {self.provider} ({self.position})"


class ReviewQueueManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(state=Observation.State.PENDING_REVIEW)


class ReviewItem(Observation):
    """An observation waiting for a reviewer: the review queue, with its own permissions
    (view to see the queue, change to approve, reject and correct)."""

    objects = ReviewQueueManager()

    class Meta:
        proxy = True
        verbose_name = "review item"
        verbose_name_plural = "review queue"


class IcpRule(models.Model):
    """A named set of ideal-customer-profile criteria. A lead outside every active rule set
    is not sent to paid providers; with no active rule set every lead is inside.

    List fields hold one entry a line. An empty list does not restrict; a value the lead
    does not have yet (no industry before its company is enriched) does not exclude it.
    """

    name = models.CharField(max_length=100, unique=True)
    active = models.BooleanField(default=True)
    industries = models.TextField(
        blank=True, help_text="One per line, as providers spell them (Computer Software)."
    )
    employee_ranges = models.TextField(
        blank=True, help_text="One per line: 51-200, 201-1000, 5001+. Overlapping counts."
    )
    countries = models.TextField(
        blank=True,
        help_text="One per line, as locations end (United States, United Kingdom).",
    )
    seniorities = models.TextField(
        blank=True, help_text="One per line: c_suite, vp, director, manager, senior, entry."
    )
    title_keywords = models.TextField(
        blank=True,
        help_text="One per line; a job title containing any is inside. With seniorities, "
        "either one is enough.",
    )
    allowed_domains = models.TextField(
        blank=True,
        help_text="Target accounts, one per line: always inside, whatever else says.",
    )
    denied_domains = models.TextField(
        blank=True,
        help_text="One per line (customers, competitors): never sent to paid providers.",
    )
    skip_free_mail = models.BooleanField(
        default=True,
        help_text="Leads with only a free-mail address (gmail.com…) and no company domain are "
        "outside.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "ICP rule set"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from enrichment.icp import lines, parse_employee_range

        bad = [line for line in lines(self.employee_ranges) if parse_employee_range(line) is None]
        if bad:
            raise ValidationError(
                {"employee_ranges": f"Not a range: {', '.join(bad)} (write 51-200 or 5001+)."}
            )
