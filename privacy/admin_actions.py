"""Admin actions on leads for privacy requests; they call privacy.services, nothing else."""

import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponse
from django.template.response import TemplateResponse

from privacy.services import lead_access_export, lead_erase


@admin.action(description="Export personal data (access request) as JSON", permissions=["view"])
def export_personal_data(modeladmin, request, queryset):
    exports = [lead_access_export(lead=lead, actor=request.user) for lead in queryset]
    ids = "-".join(str(export["lead"]["id"]) for export in exports[:10])
    response = HttpResponse(
        json.dumps(exports[0] if len(exports) == 1 else exports, indent=2, default=str),
        content_type="application/json",
    )
    response["Content-Disposition"] = f'attachment; filename="lead-export-{ids}.json"'
    return response


@admin.action(description="Erase the selected people (erasure request)…", permissions=["delete"])
def erase_personal_data(modeladmin, request, queryset):
    reason = request.POST.get("reason", "").strip()
    if request.POST.get("confirmed") == "yes" and reason:
        erased = [lead_erase(lead=lead, actor=request.user, reason=reason) for lead in queryset]
        modeladmin.message_user(
            request,
            f"Erased {len(erased)} lead(s); their identities are suppressed for good.",
            messages.SUCCESS,
        )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Erase personal data",
        "opts": modeladmin.model._meta,
        "leads": list(queryset[:100]),
        "count": queryset.count(),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "missing_reason": request.POST.get("confirmed") == "yes",
    }
    return TemplateResponse(request, "admin/privacy/erase_confirm.html", context)
