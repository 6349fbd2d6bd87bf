from django.contrib import admin

from leads.models import Company, Lead, Suppression


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
        "last_enriched_at",
    ]
    list_filter = ["enrichment_status", "email_verification", "source"]
    list_select_related = ["company"]
    search_fields = ["email", "first_name", "last_name", "company__domain"]
    raw_id_fields = ["company", "owner"]
    readonly_fields = ["enrichment_status", "last_enriched_at", "created_at", "updated_at"]
    show_full_result_count = False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["kind", "identifier_hash", "reason", "created_at"]
    list_filter = ["kind"]
    search_fields = ["identifier_hash"]
