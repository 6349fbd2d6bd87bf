"""CSV imports in the admin: upload with a mapping override, watch the counters, estimate,
start, and download the error report and the enriched copy. The work is in services."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from imports.models import CsvImport
from imports.services import (
    ImportStateError,
    csv_import_create,
    csv_import_enrichment_progress,
    csv_import_estimate,
    csv_import_start,
    enriched_csv_chunks,
)
from leads.csv_import import TARGETS, ImportFileError, parse_mapping_overrides


class CsvUploadForm(forms.Form):
    file = forms.FileField(help_text="Comma, semicolon or tab separated, with a header row.")
    mapping = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Columns whose names are not recognized, one per line as COLUMN=FIELD "
        f"(FIELD: {', '.join(TARGETS)}, or ignore). For example: Work Email=email",
    )
    enrich = forms.BooleanField(
        required=False, initial=True, help_text="Enrich every lead of the file once imported."
    )
    start = forms.BooleanField(
        required=False,
        initial=True,
        label="Import now",
        help_text="Untick to upload and estimate the cost first (a dry run).",
    )
    source = forms.CharField(
        required=False,
        max_length=CsvImport._meta.get_field("source").max_length,
        help_text="Stored on each new lead (default csv:<file name>).",
    )

    def clean_mapping(self) -> dict[str, str]:
        lines = [line for line in self.cleaned_data["mapping"].splitlines() if line.strip()]
        try:
            return parse_mapping_overrides(lines)
        except ImportFileError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(CsvImport)
class CsvImportAdmin(admin.ModelAdmin):
    change_list_template = "admin/imports/csvimport/change_list.html"
    change_form_template = "admin/imports/csvimport/change_form.html"
    list_display = [
        "id",
        "name",
        "state",
        "progress_bar",
        "rows_total",
        "rows_created",
        "rows_updated",
        "rows_duplicate",
        "rows_invalid",
        "rows_suppressed",
        "enrichment",
        "created_at",
    ]
    list_filter = ["state"]
    list_select_related = ["enrichment_job"]
    search_fields = ["name"]
    actions = ["start_imports", "estimate_imports"]
    fields = [
        "name",
        "state",
        "progress_bar",
        "rows_total",
        "rows_created",
        "rows_updated",
        "rows_duplicate",
        "rows_invalid",
        "rows_suppressed",
        "enrichment",
        "downloads",
        "error",
        "notes_list",
        "columns",
        "estimate_table",
        "estimated_at",
        "encoding",
        "delimiter",
        "size",
        "source",
        "enrich",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        # Uploads go through the upload page, which calls the service.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="imports_csvimport_upload"),
            path(
                "<int:pk>/enriched.csv",
                view(self.enriched_view),
                name="imports_csvimport_enriched",
            ),
            path("<int:pk>/errors.csv", view(self.errors_view), name="imports_csvimport_errors"),
            *super().get_urls(),
        ]

    def _require_upload_permission(self, request) -> None:
        if not request.user.has_perm("imports.add_csvimport"):
            raise PermissionDenied

    def upload_view(self, request):
        self._require_upload_permission(request)
        form = CsvUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                csv_import = csv_import_create(
                    file=data["file"],
                    name=data["file"].name,
                    overrides=data["mapping"],
                    enrich=data["enrich"],
                    source=data["source"],
                    created_by=request.user,
                )
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                if data["start"]:
                    csv_import_start(csv_import_id=csv_import.pk)
                    self.message_user(request, f"{csv_import.name} is queued for import.")
                else:
                    csv_import_estimate(csv_import=csv_import)
                    self.message_user(
                        request, f"{csv_import.name} is uploaded; see the estimate below."
                    )
                return redirect("admin:imports_csvimport_change", csv_import.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Upload a CSV of leads",
            "form": form,
        }
        return TemplateResponse(request, "admin/imports/csvimport/upload.html", context)

    def enriched_view(self, request, pk: int):
        csv_import = get_object_or_404(CsvImport, pk=pk)
        if not self.has_view_permission(request, csv_import):
            raise PermissionDenied
        try:
            chunks = enriched_csv_chunks(csv_import=csv_import)
        except ImportStateError as exc:
            raise Http404(str(exc)) from exc
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{pk}-enriched.csv"'
        return response

    def errors_view(self, request, pk: int):
        csv_import = get_object_or_404(CsvImport, pk=pk)
        if not self.has_view_permission(request, csv_import) or not csv_import.error_report:
            raise Http404("no error report")
        response = StreamingHttpResponse(
            csv_import.error_report.open("rb"), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="import-{pk}-errors.csv"'
        return response

    @admin.action(description="Start importing the selected uploads")
    def start_imports(self, request, queryset):
        self._require_upload_permission(request)
        started = 0
        for pk in queryset.values_list("id", flat=True):
            try:
                csv_import_start(csv_import_id=pk)
            except ImportStateError as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                started += 1
        self.message_user(request, f"Queued {started} import(s).", messages.SUCCESS)

    @admin.action(description="Estimate enrichment credits (dry run)")
    def estimate_imports(self, request, queryset):
        for csv_import in queryset:
            estimate = csv_import_estimate(csv_import=csv_import)
            self.message_user(request, f"{csv_import.name}: " + "; ".join(estimate.lines()[:3]))

    @admin.display(description="Progress")
    def progress_bar(self, obj: CsvImport) -> str:
        return format_html(
            '<progress value="{}" max="100"></progress> {}%',
            round(obj.progress * 100),
            round(obj.progress * 100),
        )

    @admin.display(description="Enrichment")
    def enrichment(self, obj: CsvImport) -> str:
        if obj.enrichment_job_id is None:
            return "—"
        counts = csv_import_enrichment_progress(obj)
        url = reverse("admin:enrichment_enrichmentjob_change", args=[obj.enrichment_job_id])
        return format_html(
            '<a href="{}">{}/{} done</a> ({} enriched, {} not found, {} failed, {} skipped)',
            url,
            counts["done"],
            counts["total"],
            counts["enriched"],
            counts["not_found"],
            counts["failed"],
            counts["skipped"],
        )

    @admin.display(description="Downloads")
    def downloads(self, obj: CsvImport) -> str:
        links = []
        if obj.state == CsvImport.State.DONE:
            links.append(
                (reverse("admin:imports_csvimport_enriched", args=[obj.pk]), "Enriched CSV")
            )
        if obj.error_report:
            links.append(
                (reverse("admin:imports_csvimport_errors", args=[obj.pk]), "Rows not imported")
            )
        return format_html_join(" · ", '<a href="{}">{}</a>', links) or "—"

    @admin.display(description="Columns")
    def columns(self, obj: CsvImport) -> str:
        pairs = zip(obj.header, obj.mapping, strict=False)
        return format_html_join(
            "", "<div>{} → {}</div>", ((column, field or "not imported") for column, field in pairs)
        )

    @admin.display(description="Notes")
    def notes_list(self, obj: CsvImport) -> str:
        return format_html_join("", "<div>{}</div>", ((note,) for note in obj.notes)) or "—"

    @admin.display(description="Estimate (dry run)")
    def estimate_table(self, obj: CsvImport) -> str:
        if not obj.estimate:
            return "— (use the action “Estimate enrichment credits”)"
        return format_html("<pre>{}</pre>", json.dumps(obj.estimate, indent=2))
