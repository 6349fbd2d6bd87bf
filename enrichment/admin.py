from django.contrib import admin, messages

from enrichment.models import (
    EnrichmentJob,
    EnrichmentRun,
    IcpRule,
    Observation,
    WaterfallStep,
)
from enrichment.review_admin import ReviewItemAdmin  # noqa: F401  (registers the queue)
from enrichment.services import run_retry


@admin.register(Observation)
class ObservationAdmin(admin.ModelAdmin):
    list_display = [
        "observed_at",
        "lead",
        "company",
        "field",
        "value",
        "confidence",
        "verification",
        "source",
        "state",
    ]
    list_filter = ["state", "field", "source"]
    list_select_related = ["lead", "company"]
    raw_id_fields = ["lead", "company", "provider_call", "run", "decided_by"]
    show_full_result_count = False


@admin.register(EnrichmentRun)
class EnrichmentRunAdmin(admin.ModelAdmin):
    list_display = ["id", "lead", "trigger", "state", "attempts", "created_at", "finished_at"]
    list_filter = ["state", "trigger"]
    list_select_related = ["lead"]
    raw_id_fields = ["lead", "job"]
    readonly_fields = ["summary", "last_error"]
    show_full_result_count = False
    actions = ["retry_runs"]

    @admin.action(description="Retry the selected dead or failed runs")
    def retry_runs(self, request, queryset):
        retryable = queryset.filter(
            state__in=[EnrichmentRun.State.DEAD, EnrichmentRun.State.FAILED]
        ).values_list("id", flat=True)
        retried = [run_retry(run_id=run_id).id for run_id in retryable]
        self.message_user(request, f"Queued {len(retried)} run(s) again.", messages.SUCCESS)


@admin.register(EnrichmentJob)
class EnrichmentJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "description",
        "total",
        "done",
        "enriched",
        "not_found",
        "failed",
        "skipped",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind"]


@admin.register(WaterfallStep)
class WaterfallStepAdmin(admin.ModelAdmin):
    list_display = ["field", "position", "provider"]
    list_editable = ["position"]
    list_filter = ["field", "provider"]


@admin.register(IcpRule)
class IcpRuleAdmin(admin.ModelAdmin):
    """The ideal customer profile: leads outside every active rule set are not sent to
    paid providers (the run says which criterion failed)."""

    list_display = ["name", "active", "updated_at"]
    list_editable = ["active"]
    fieldsets = [
        (None, {"fields": ["name", "active"]}),
        ("Company", {"fields": ["industries", "employee_ranges", "countries"]}),
        ("Person", {"fields": ["seniorities", "title_keywords"]}),
        ("Domains", {"fields": ["allowed_domains", "denied_domains", "skip_free_mail"]}),
    ]
