"""The records people work with: companies, leads, and identities never to be enriched."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Company(models.Model):
    """One company per registrable domain; firmographics live here once for all its leads."""

    domain = models.CharField(max_length=253, unique=True)
    name = models.CharField(max_length=255, blank=True)
    industry = models.CharField(max_length=255, blank=True)
    employee_range = models.CharField(max_length=32, blank=True)
    revenue_range = models.CharField(max_length=32, blank=True)
    hq_location = models.CharField(max_length=255, blank=True)
    technologies = models.JSONField(default=list, blank=True)
    last_enriched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.name or self.domain


class Lead(models.Model):
    """A person to reach: identity plus the currently applied value of each enrichable field."""

    class EnrichmentStatus(models.TextChoices):
        NEW = "new", "New"
        QUEUED = "queued", "Queued"
        ENRICHING = "enriching", "Enriching"
        ENRICHED = "enriched", "Enriched"
        NOT_FOUND = "not_found", "Not found"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    class EmailVerification(models.TextChoices):
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"
        ACCEPT_ALL = "accept_all", "Accept-all domain"
        UNKNOWN = "unknown", "Unknown"
        DISPOSABLE = "disposable", "Disposable"
        WEBMAIL = "webmail", "Webmail"
        ROLE = "role", "Role account"

    class LegalBasis(models.TextChoices):
        LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"
        CONSENT = "consent", "Consent"
        CONTRACT = "contract", "Contract"

    # Identity. The email may be missing (that is what Find Email is for).
    email = models.EmailField(max_length=254, unique=True, null=True, blank=True)
    first_name = models.CharField(max_length=128, blank=True)
    last_name = models.CharField(max_length=128, blank=True)
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    linkedin_url = models.URLField(max_length=255, blank=True, db_index=True)

    # Enrichable fields: the applied values; Observations hold where each came from.
    phone = models.CharField(max_length=32, blank=True, help_text="E.164")
    job_title = models.CharField(max_length=255, blank=True)
    seniority = models.CharField(max_length=64, blank=True)
    department = models.CharField(max_length=128, blank=True)
    location = models.CharField(max_length=255, blank=True)
    email_verification = models.CharField(
        max_length=16, choices=EmailVerification.choices, blank=True
    )

    enrichment_status = models.CharField(
        max_length=16, choices=EnrichmentStatus.choices, default=EnrichmentStatus.NEW
    )
    last_enriched_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
    )
    source = models.CharField(max_length=64, blank=True, help_text="Where the lead came from.")
    legal_basis = models.CharField(
        max_length=32, choices=LegalBasis.choices, default=LegalBasis.LEGITIMATE_INTEREST
    )
    score = models.PositiveSmallIntegerField(
        default=0, help_text="0-100 from source, ICP fit and firmographics; set when enriched."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["enrichment_status", "-created_at"]),
            models.Index(fields=["last_enriched_at"]),
            models.Index(fields=["-updated_at"]),
            # Matching by name at a company (imports, the API) looks leads up by their
            # lowercased last name: without this index, a scan of the whole table per batch.
            models.Index(Lower("last_name"), name="lead_last_name_lower"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"Lead {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Suppression(models.Model):
    """An identity that must never be enriched or imported again, kept only as a hash."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        LINKEDIN = "linkedin", "LinkedIn URL"
        NAME = "name", "Name at a company domain"
        DOMAIN = "domain", "Domain"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    identifier_hash = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.identifier_hash[:12]}…"
