"""What the API reads and writes. Serializers shape and check; services do the work."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from api.selectors import provider_names_enabled
from enrichment.fields import FIELDS
from enrichment.models import EnrichmentJob, EnrichmentRun, Observation
from leads.models import Company, Lead
from providers.registry import PROVIDER_NAMES

# The most leads one create call takes.
MAX_BULK = 1000
# The longest usage report one call returns.
MAX_USAGE_DAYS = 366
# DRF fills in {input}: the name that was sent.
_UNKNOWN_PROVIDER = f'"{{input}}" is not a provider; known: {", ".join(PROVIDER_NAMES)}.'


class CompanySerializer(serializers.ModelSerializer):
    class Meta:
        model = Company
        fields = [
            "id",
            "domain",
            "name",
            "industry",
            "employee_range",
            "revenue_range",
            "hq_location",
            "technologies",
            "last_enriched_at",
            "created_at",
            "updated_at",
        ]


def _blank_choice(choices) -> serializers.ChoiceField:
    # Declared, so the schema says "" is a possible value too (a field not yet known).
    return serializers.ChoiceField(choices=choices, allow_blank=True, read_only=True)


class LeadSerializer(serializers.ModelSerializer):
    company_domain = serializers.CharField(
        source="company.domain", read_only=True, allow_null=True, default=None
    )
    # Text, not a URI: "" when unknown.
    linkedin_url = serializers.CharField(read_only=True)
    email_verification = _blank_choice(Lead.EmailVerification.choices)

    class Meta:
        model = Lead
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "company_id",
            "company_domain",
            "linkedin_url",
            "phone",
            "job_title",
            "seniority",
            "department",
            "location",
            "email_verification",
            "enrichment_status",
            "last_enriched_at",
            "source",
            "legal_basis",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def _text(max_length: int, help_text: str = "") -> serializers.CharField:
    return serializers.CharField(
        required=False, allow_blank=True, max_length=max_length, help_text=help_text
    )


class LeadInputSerializer(serializers.Serializer):
    """One lead to create, or to complete if it exists (matched by email, then LinkedIn URL,
    then first name + last name + company domain). Blank columns are filled; values a lead
    already has are kept."""

    email = _text(254)
    first_name = _text(128)
    last_name = _text(128)
    company_domain = _text(253, "A domain or website; taken from a work email when missing.")
    linkedin_url = _text(255)
    phone = _text(64, "Any common format; stored as E.164.")
    job_title = _text(255)
    seniority = _text(64)
    department = _text(128)
    location = _text(255)


class BulkItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request.")
    status = serializers.ChoiceField(
        choices=["created", "updated", "unchanged", "duplicate", "suppressed", "invalid"]
    )
    lead_id = serializers.IntegerField(allow_null=True)
    errors = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))


class BulkResultSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    results = BulkItemSerializer(many=True)


class LeadUpdateSerializer(serializers.Serializer):
    """Fields to set by hand. Each becomes a manual value that no provider overwrites."""

    first_name = serializers.CharField(required=False, allow_blank=True, max_length=128)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=128)
    email = serializers.CharField(required=False, max_length=254)
    phone = serializers.CharField(required=False, max_length=64)
    job_title = serializers.CharField(required=False, max_length=255)
    seniority = serializers.CharField(required=False, max_length=64)
    department = serializers.CharField(required=False, max_length=128)
    location = serializers.CharField(required=False, max_length=255)
    linkedin_url = serializers.CharField(required=False, max_length=255)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                f"Send at least one field to change: {', '.join(self.fields)}."
            )
        return attrs


class PhoneRevealSerializer(serializers.Serializer):
    requested = serializers.BooleanField(
        help_text="True: Apollo was asked now and will send the numbers to a callback. False: "
        "the same question was asked within the phone's freshness period; nothing was paid."
    )
    provider_call = serializers.IntegerField(
        source="provider_call_id", help_text="The ledger row of the request."
    )
    merge = serializers.JSONField(
        allow_null=True,
        help_text="What the person's other values in Apollo's immediate answer did to the "
        "lead (applied, pending_review, discarded); null when nothing new was merged.",
    )


class EnrichRequestSerializer(serializers.Serializer):
    fields = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(FIELDS)),
        required=False,
        max_length=len(FIELDS),
        help_text="Fields to look for; all when missing or empty.",
    )
    providers = serializers.ListField(
        child=serializers.ChoiceField(
            choices=PROVIDER_NAMES,
            error_messages={"invalid_choice": _UNKNOWN_PROVIDER},
        ),
        required=False,
        max_length=len(PROVIDER_NAMES),
        help_text="Providers the run may ask, in the waterfall's own order; every enabled one "
        "when missing or empty. Each must be enabled (configured and not switched off).",
    )

    def validate_providers(self, value: list[str]) -> list[str]:
        named = list(dict.fromkeys(value))
        enabled = provider_names_enabled()
        off = [name for name in named if name not in enabled]
        if off:
            raise serializers.ValidationError(
                f"{', '.join(off)} {'is' if len(off) == 1 else 'are'} not enabled here; "
                f"enabled: {', '.join(enabled) if enabled else 'none'}."
            )
        return named


class RunSerializer(serializers.ModelSerializer):
    # Text, not the enum of known providers: a run keeps the names it was limited to even
    # after a provider is dropped from the registry.
    providers = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Providers the run may ask; empty: every enabled one.",
    )

    class Meta:
        model = EnrichmentRun
        fields = [
            "id",
            "lead_id",
            "job_id",
            "trigger",
            "state",
            "fields",
            "providers",
            "attempts",
            "available_at",
            "started_at",
            "finished_at",
            "last_error",
            "summary",
            "created_at",
        ]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField(help_text="Share of runs finished, 0 to 1.")

    class Meta:
        model = EnrichmentJob
        fields = [
            "id",
            "kind",
            "description",
            "total",
            "done",
            "enriched",
            "not_found",
            "failed",
            "skipped",
            "progress",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, job: EnrichmentJob) -> float:
        return round(job.done / job.total, 4) if job.total else 1.0


class ObservationSerializer(serializers.ModelSerializer):
    verification = _blank_choice(Lead.EmailVerification.choices)
    decided_by = serializers.CharField(
        source="decided_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Observation
        fields = [
            "id",
            "lead_id",
            "company_id",
            "field",
            "value",
            "confidence",
            "verification",
            "source",
            "state",
            "reason",
            "run_id",
            "observed_at",
            "expires_at",
            "decided_by",
            "decided_at",
        ]
        read_only_fields = fields


class LeadExportSerializer(serializers.Serializer):
    """Everything held about the person (GDPR art. 15), with sources and dates."""

    exported_at = serializers.DateTimeField()
    controller_note = serializers.CharField()
    lead = serializers.DictField(help_text="The record as it is now.")
    company = serializers.DictField(allow_null=True, help_text="Their company's record.")
    observations = serializers.ListField(
        child=serializers.DictField(), help_text="Every value stated, its source and dates."
    )
    provider_calls = serializers.ListField(
        child=serializers.DictField(), help_text="The provider lookups made for the person."
    )
    runs = serializers.ListField(child=serializers.DictField())


class EraseRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=255, help_text="Why, for the audit log: e.g. 'request by email, ticket 123'."
    )


class ErasureSerializer(serializers.Serializer):
    lead_id = serializers.IntegerField()
    subject_hash = serializers.CharField(help_text="How the audit log names the person.")
    suppressed_identities = serializers.IntegerField()
    observations_deleted = serializers.IntegerField()
    runs_deleted = serializers.IntegerField()
    provider_calls_blanked = serializers.IntegerField()


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255)


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    provider = serializers.CharField()
    calls = serializers.IntegerField()
    credits = serializers.DecimalField(max_digits=12, decimal_places=3, coerce_to_string=False)


class BudgetSerializer(serializers.Serializer):
    provider = serializers.CharField()
    period = serializers.CharField()
    spent = serializers.DecimalField(max_digits=12, decimal_places=3, coerce_to_string=False)
    budget = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False)
    share = serializers.FloatField()
    alert = serializers.BooleanField()


class UsageSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    days = UsageDaySerializer(many=True)
    budgets = BudgetSerializer(many=True)


class UsageQuerySerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day (UTC); 30 days ago.")
    until = serializers.DateField(required=False, help_text="Last day (UTC); today.")

    def validate(self, attrs):
        until = attrs.get("until") or timezone.now().date()
        since = attrs.get("since") or until - timedelta(days=30)
        if since > until:
            raise serializers.ValidationError("since must be on or before until.")
        if (until - since).days > MAX_USAGE_DAYS:
            raise serializers.ValidationError(
                f"Ask for at most {MAX_USAGE_DAYS} days at a time (since to until)."
            )
        if since.year < 2000 or until.year > 2999:
            raise serializers.ValidationError("Ask for days between the years 2000 and 2999.")
        return {"since": since, "until": until}
