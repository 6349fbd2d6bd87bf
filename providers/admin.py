from django.contrib import admin, messages
from django.utils.html import format_html_join

from providers.models import ProviderCall, ProviderConfig
from providers.selectors import budget_alerts, budget_uses


@admin.register(ProviderConfig)
class ProviderConfigAdmin(admin.ModelAdmin):
    list_display = [
        "provider",
        "enabled",
        "position",
        "rate_limit_per_minute",
        "daily_credit_budget",
        "monthly_credit_budget",
        "budget_use",
    ]
    list_editable = ["enabled", "position", "rate_limit_per_minute"]

    @admin.display(description="Spent")
    def budget_use(self, config: ProviderConfig) -> str:
        return (
            format_html_join(
                " · ",
                "{} {} / {} ({}%){}",
                (
                    (
                        use.period,
                        f"{use.spent:.2f}",
                        f"{use.budget:.2f}",
                        round(use.share * 100),
                        " ⚠" if use.alert else "",
                    )
                    for use in budget_uses(config)
                ),
            )
            or "no budget"
        )

    def changelist_view(self, request, extra_context=None):
        for use in budget_alerts():
            messages.warning(
                request,
                f"{use.provider} has spent {round(use.share * 100)}% of its budget "
                f"{use.period} ({use.spent:.2f} of {use.budget:.2f} credits).",
            )
        return super().changelist_view(request, extra_context)


@admin.register(ProviderCall)
class ProviderCallAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "provider",
        "operation",
        "outcome",
        "http_status",
        "credits",
        "duration_ms",
    ]
    list_filter = ["provider", "outcome", "operation"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
