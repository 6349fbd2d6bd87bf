from django.contrib import admin
from django.http import StreamingHttpResponse

from leads.export import leads_csv_chunks
from leads.models import Company, Lead, Suppression
from privacy.admin_actions import erase_personal_data, export_personal_data


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["domain", "name", "industry", "employee_range", "last_enriched_at"]
    search_fields = ["domain", "name"]
    readonly_fields = ["created_at", "updated_at", "last_enriched_at"]


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "email",
        "email_verification",
        "company",
        "job_title",
        "enrichment_status",
        "score",
        "last_enriched_at",
    ]
    list_filter = ["enrichment_status", "email_verification", "source"]
    list_select_related = ["company"]
    search_fields = ["email", "first_name", "last_name", "company__domain"]
    raw_id_fields = ["company", "owner"]
    readonly_fields = [
        "enrichment_status",
        "score",
        "last_enriched_at",
        "created_at",
        "updated_at",
    ]
    show_full_result_count = False
    actions = [export_personal_data, erase_personal_data, "export_csv"]

    @admin.action(description="Export the selected leads as CSV")
    def export_csv(self, request, queryset):
        response = StreamingHttpResponse(
            leads_csv_chunks(queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="leads.csv"'
        return response


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["kind", "identifier_hash", "reason", "created_at"]
    list_filter = ["kind"]
    search_fields = ["identifier_hash"]
