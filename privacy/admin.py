import contextlib

from django.contrib import admin

from leads.normalize import InvalidValue, identity_hash, normalize_email
from privacy.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the log is only ever added to, by the privacy services."""

    list_display = ["at", "action", "actor_label", "subject_hash", "reason", "counts"]
    list_filter = ["action"]
    search_fields = ["subject_hash", "actor_label"]
    date_hierarchy = "at"
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        # The log holds hashes only: searching for an address searches for its hash.
        if "@" in search_term:
            with contextlib.suppress(InvalidValue):
                search_term = identity_hash(normalize_email(search_term.strip()))
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
