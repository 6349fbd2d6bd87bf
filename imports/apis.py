"""CSV imports over the API: upload (optionally a dry run), watch, start, and download the
error report and the enriched copy. Thin views: the work is in imports.services."""

import csv
import io
import json

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.fields import empty
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from api.exceptions import Conflict
from api.parsers import unstorable_text
from api.schema import ErrorSerializer
from imports.models import CsvImport
from imports.services import (
    ImportStateError,
    csv_import_create,
    csv_import_enrichment_progress,
    csv_import_estimate,
    csv_import_start,
    enriched_csv_chunks,
)
from leads.csv_import import TARGETS, ImportFileError

_MAX_SOURCE = CsvImport._meta.get_field("source").max_length


class CsvRenderer(BaseRenderer):
    """Lets a client ask for `Accept: text/csv`; an error then comes as a two-line CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict):
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerows([("code", "message"), (data.get("code", ""), data.get("message", ""))])
            return out.getvalue()
        return "" if data is None else str(data)


class _Flag(serializers.BooleanField):
    # A multipart form leaves an unticked box out: absent means the default here, not False.
    default_empty_html = empty


class CsvImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The CSV file: comma, semicolon or tab separated.")
    mapping = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='Columns mapped by hand, as a JSON object {"column": "field"}; field is one '
        f"of {', '.join(TARGETS)}, or ignore. Other columns are mapped by their names.",
    )
    dry_run = _Flag(
        default=False,
        help_text="Store and estimate only: nothing imported, nothing spent. Start it later "
        "with POST …/start/.",
    )
    enrich = _Flag(default=True, help_text="Enrich every lead of the file once imported.")
    source = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=_MAX_SOURCE,
        help_text="Stored on each new lead (default csv:<file name>).",
    )

    def validate_mapping(self, value: str) -> dict[str, str]:
        if not value.strip():
            return {}
        try:
            mapping = json.loads(value)
        except ValueError as exc:
            raise ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise ValidationError('must be a JSON object of strings: {"column": "field"}')
        for text in [*mapping, *mapping.values()]:
            if problem := unstorable_text(text):
                raise ValidationError(f"has {problem}, which cannot be stored")
        return mapping

    def validate_source(self, value: str) -> str:
        if problem := unstorable_text(value):
            raise ValidationError(f"has {problem}, which cannot be stored")
        return value


class ColumnSerializer(serializers.Serializer):
    column = serializers.CharField()
    field = serializers.CharField(help_text="The field it feeds; empty when not imported.")


class RowCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    invalid = serializers.IntegerField()
    suppressed = serializers.IntegerField()


class EnrichmentProgressSerializer(serializers.Serializer):
    job_id = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    enriched = serializers.IntegerField()
    not_found = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()


class CsvImportLinksSerializer(serializers.Serializer):
    status = serializers.CharField()
    start = serializers.CharField(allow_null=True)
    errors_csv = serializers.CharField(allow_null=True)
    enriched_csv = serializers.CharField(allow_null=True)


class CsvImportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes.")
    state = serializers.ChoiceField(choices=CsvImport.State.choices)
    encoding = serializers.CharField()
    delimiter = serializers.CharField()
    columns = ColumnSerializer(many=True)
    enrich = serializers.BooleanField()
    source = serializers.CharField()
    progress = serializers.FloatField(help_text="Share of the file read, 0 to 1.")
    rows = RowCountsSerializer()
    notes = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField(help_text="Why the import stopped, if it did.")
    estimate = serializers.JSONField(allow_null=True, help_text="The last dry run, if any.")
    enrichment = EnrichmentProgressSerializer()
    links = CsvImportLinksSerializer()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def _body(csv_import: CsvImport) -> dict:
    pk = csv_import.pk
    done = csv_import.state == CsvImport.State.DONE
    return {
        "id": pk,
        "name": csv_import.name,
        "size": csv_import.size,
        "state": csv_import.state,
        "encoding": csv_import.encoding,
        "delimiter": csv_import.delimiter,
        "columns": [
            {"column": column, "field": field}
            for column, field in zip(csv_import.header, csv_import.mapping, strict=False)
        ],
        "enrich": csv_import.enrich,
        "source": csv_import.source,
        "progress": csv_import.progress,
        "rows": {
            "total": csv_import.rows_total,
            "created": csv_import.rows_created,
            "updated": csv_import.rows_updated,
            "duplicate": csv_import.rows_duplicate,
            "invalid": csv_import.rows_invalid,
            "suppressed": csv_import.rows_suppressed,
        },
        "notes": csv_import.notes,
        "error": csv_import.error,
        "estimate": csv_import.estimate,
        "enrichment": {
            "job_id": csv_import.enrichment_job_id,
            **csv_import_enrichment_progress(csv_import),
        },
        "links": {
            "status": reverse("imports:detail", args=[pk]),
            "start": reverse("imports:start", args=[pk])
            if csv_import.state == CsvImport.State.UPLOADED
            else None,
            "errors_csv": reverse("imports:errors", args=[pk]) if csv_import.error_report else None,
            "enriched_csv": reverse("imports:enriched", args=[pk]) if done else None,
        },
        "created_at": csv_import.created_at,
        "started_at": csv_import.started_at,
        "finished_at": csv_import.finished_at,
    }


def _get(pk: int) -> CsvImport:
    return get_object_or_404(CsvImport.objects.select_related("enrichment_job"), pk=pk)


class CsvImportCreateApi(APIView):
    parser_classes = [MultiPartParser]
    required_permissions = {"POST": "leads.write"}
    queryset = CsvImport.objects.all()

    @extend_schema(
        request={"multipart/form-data": CsvImportUploadSerializer},
        responses={201: CsvImportSerializer},
    )
    def post(self, request):
        """Upload a CSV export (Apollo, HubSpot, Salesforce, Sales Navigator tools, or any
        file with a header row). It is checked and stored; then imported by a worker, or
        with dry_run only estimated: rows new, known, duplicate, invalid and suppressed,
        and the credits enriching them would cost per provider."""
        upload = CsvImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        try:
            csv_import = csv_import_create(
                file=data["file"],
                name=data["file"].name,
                overrides=data.get("mapping") or {},
                enrich=data["enrich"],
                source=data.get("source", ""),
                created_by=request.user if request.user.is_authenticated else None,
            )
        except ImportFileError as exc:
            raise ValidationError({"file": [str(exc)]}) from exc
        if data["dry_run"]:
            csv_import_estimate(csv_import=csv_import)
        else:
            csv_import = csv_import_start(csv_import_id=csv_import.pk)
        return Response(CsvImportSerializer(_body(csv_import)).data, status=status.HTTP_201_CREATED)


class CsvImportDetailApi(APIView):
    required_permissions = {"GET": "leads.read"}
    queryset = CsvImport.objects.all()

    @extend_schema(responses=CsvImportSerializer)
    def get(self, request, pk: int):
        """An import's state, row counters, enrichment progress and download links."""
        return Response(CsvImportSerializer(_body(_get(pk))).data)


class CsvImportStartApi(APIView):
    required_permissions = {"POST": "leads.write"}
    queryset = CsvImport.objects.all()

    @extend_schema(
        request=None,
        responses={
            202: CsvImportSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Already started."),
        },
    )
    def post(self, request, pk: int):
        """Start importing a file uploaded with dry_run."""
        _get(pk)
        try:
            csv_import = csv_import_start(csv_import_id=pk)
        except ImportStateError as exc:
            raise Conflict(str(exc)) from exc
        body = CsvImportSerializer(_body(csv_import)).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class CsvImportErrorsApi(APIView):
    required_permissions = {"GET": "leads.read"}
    queryset = CsvImport.objects.all()
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The rows not imported: row number (the header is row 1), "
                "reason, and the row's cells.",
            ),
            409: OpenApiResponse(ErrorSerializer, description="No row was rejected."),
        }
    )
    def get(self, request, pk: int):
        """The invalid and suppressed rows with their row numbers and reasons."""
        csv_import = _get(pk)
        if not csv_import.error_report:
            raise Conflict(
                f"Import {pk} has no error report: it rejected no row"
                + ("" if csv_import.state == CsvImport.State.DONE else " so far")
                + "."
            )
        stream = csv_import.error_report.open("rb")
        response = StreamingHttpResponse(_closing(stream), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{pk}-errors.csv"'
        return response


class CsvImportEnrichedApi(APIView):
    required_permissions = {"GET": "leads.read"}
    queryset = CsvImport.objects.all()
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The uploaded rows in their order with, for each enrichable "
                "field, <field>, <field>_confidence and <field>_source appended.",
            ),
            409: OpenApiResponse(ErrorSerializer, description="The import is not done."),
        }
    )
    def get(self, request, pk: int):
        """The uploaded file with the enriched columns appended, streamed."""
        csv_import = _get(pk)
        try:
            chunks = enriched_csv_chunks(csv_import=csv_import)
        except ImportStateError as exc:
            raise Conflict(str(exc)) from exc
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{pk}-enriched.csv"'
        return response


def _closing(stream, size: int = 64 * 1024):
    with stream:
        while chunk := stream.read(size):
            yield chunk
