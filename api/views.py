"""The REST API: thin views that check input, call a service or selector, and shape the
answer. Errors are JSON through api.exceptions.api_exception_handler."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from api import selectors
from api.exceptions import Conflict, Refused
from api.filters import LeadFilter, ObservationFilter
from api.parsers import StrictJSONParser
from api.schema import ErrorSerializer
from api.serializers import (
    MAX_BULK,
    BulkResultSerializer,
    CompanySerializer,
    EnrichRequestSerializer,
    EraseRequestSerializer,
    ErasureSerializer,
    JobSerializer,
    LeadExportSerializer,
    LeadInputSerializer,
    LeadSerializer,
    LeadUpdateSerializer,
    ObservationSerializer,
    PhoneRevealSerializer,
    RejectSerializer,
    RunSerializer,
    UsageQuerySerializer,
    UsageSerializer,
)
from api.services import (
    ItemResult,
    lead_delete,
    lead_enrich,
    lead_update_manually,
    leads_upsert_items,
)
from enrichment.review import ReviewError, observation_approve, observation_reject
from leads.models import Lead
from privacy.services import lead_access_export, lead_erase
from webhooks.phone_reveal import PhoneRevealRefused, phone_reveal_request

# Ids are positive and fit a bigint; anything else is a 404 before any query.
ID_PATTERN = r"[0-9]{1,18}"


class CursorPage(CursorPagination):
    """Stable pages however many rows arrive meanwhile: newest first, by id."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ApiViewSet(viewsets.GenericViewSet):
    lookup_value_regex = ID_PATTERN
    pagination_class = CursorPage
    # The API speaks JSON only (the defaults add forms for the browser's other pages).
    parser_classes = [StrictJSONParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        for name, value in request.query_params.items():
            if "\x00" in name or "\x00" in value:
                raise ValidationError({name.replace("\x00", ""): ["contains a NUL character"]})

    def paginated(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)


def _bulk_counts(results: list[ItemResult]) -> dict[str, int]:
    counts = dict.fromkeys(
        ["created", "updated", "unchanged", "duplicate", "suppressed", "invalid"], 0
    )
    for result in results:
        counts[result.status] += 1
    return counts


class LeadViewSet(ApiViewSet):
    """Leads: list, create (one or up to 1000, an upsert), read, edit by hand, delete,
    enrich, and their observations."""

    queryset = selectors.leads_all()
    serializer_class = LeadSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = LeadFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_permissions = {
        "list": "leads.read",
        "retrieve": "leads.read",
        "create": "leads.write",
        "partial_update": "leads.write",
        "destroy": "leads.delete",
        "enrich": "leads.enrich",
        "reveal_phone": "leads.enrich",
        "observations": "observations.read",
        "export": "leads.export",
        "erase": "leads.erase",
    }

    def _lead(self, pk) -> Lead:
        return get_object_or_404(selectors.leads_all(), pk=pk)

    def list(self, request):
        return self.paginated(self.filter_queryset(self.get_queryset()), LeadSerializer)

    def retrieve(self, request, pk=None):
        return Response(LeadSerializer(self._lead(pk)).data)

    @extend_schema(
        request=LeadInputSerializer,
        responses={
            201: OpenApiResponse(LeadSerializer, description="One lead sent; it was new."),
            200: OpenApiResponse(
                LeadSerializer, description="One lead sent; it matched an existing lead."
            ),
            207: OpenApiResponse(
                BulkResultSerializer, description="A list sent: an answer for each item."
            ),
        },
    )
    def create(self, request):
        """Create a lead, or complete the one it matches (by normalized email, then LinkedIn
        URL, then name at company domain). Send a list of up to 1000 to get an answer per
        item: one invalid item costs the others nothing."""
        data = request.data
        if isinstance(data, list):
            return self._create_many(data)
        if not isinstance(data, dict):
            raise ValidationError(
                {"non_field_errors": ["Send one lead as a JSON object, or a list of them."]}
            )
        serializer = LeadInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        (result,) = leads_upsert_items(
            items=[serializer.validated_data], source="api", origin=self._origin()
        )
        if result.status in ("invalid", "suppressed"):
            raise ValidationError({e["field"]: [e["message"]] for e in result.errors})
        lead = self._lead(result.lead_id)
        code = status.HTTP_201_CREATED if result.status == "created" else status.HTTP_200_OK
        return Response(LeadSerializer(lead).data, status=code)

    def _create_many(self, data: list):
        if not data:
            raise ValidationError({"non_field_errors": ["The list is empty: send 1 to 1000."]})
        if len(data) > MAX_BULK:
            raise ValidationError(
                {"non_field_errors": [f"Send at most {MAX_BULK} leads per call, not {len(data)}."]}
            )
        results: list[ItemResult | None] = [None] * len(data)
        valid: list[tuple[int, dict]] = []
        for index, item in enumerate(data):
            serializer = LeadInputSerializer(data=item if isinstance(item, dict) else None)
            if isinstance(item, dict) and serializer.is_valid():
                valid.append((index, serializer.validated_data))
                continue
            if isinstance(item, dict):
                errors = [
                    {"field": name, "message": f"{name}: {' '.join(map(str, problems))}"}
                    for name, problems in serializer.errors.items()
                ]
            else:
                errors = [{"field": "item", "message": "Each item must be a JSON object."}]
            results[index] = ItemResult(index=index, status="invalid", errors=errors)
        upserted = leads_upsert_items(
            items=[item for _, item in valid], source="api", origin=self._origin()
        )
        for (index, _), result in zip(valid, upserted, strict=True):
            result.index = index
            results[index] = result
        answer = [result for result in results if result is not None]
        body = {
            "counts": _bulk_counts(answer),
            "results": [
                {"index": r.index, "status": r.status, "lead_id": r.lead_id, "errors": r.errors}
                for r in answer
            ],
        }
        return Response(BulkResultSerializer(body).data, status=status.HTTP_207_MULTI_STATUS)

    def _origin(self) -> str:
        auth = self.request.auth
        return f"api:{auth.name}" if hasattr(auth, "role") else "api"

    @extend_schema(request=LeadUpdateSerializer, responses=LeadSerializer)
    def partial_update(self, request, pk=None):
        """Set fields by hand. Each becomes a manual value: locked, never overwritten by a
        provider."""
        lead = self._lead(pk)
        serializer = LeadUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = lead_update_manually(lead=lead, values=serializer.validated_data, user=request.user)
        return Response(LeadSerializer(lead).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        """Delete the lead with its runs and observations. To honour a person's erasure
        request use /erase/, which also keeps them from coming back."""
        lead_delete(lead=self._lead(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=EnrichRequestSerializer, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def enrich(self, request, pk=None):
        """Queue an enrichment run for the lead; answers at once with the run to poll at
        /api/runs/{id}/. A run already queued or running is answered instead of a second."""
        lead = self._lead(pk)
        serializer = EnrichRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = lead_enrich(lead=lead, **serializer.validated_data)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            202: PhoneRevealSerializer,
            **{code: ErrorSerializer for code in (409, 429, 502)},
        },
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="reveal-phone", filter_backends=[])
    def reveal_phone(self, request, pk=None):
        """Ask Apollo for the lead's phone numbers: 1 credit for the person now, 8 more for
        each number when Apollo sends it. The numbers arrive later at a one-use callback
        and are merged like any value (a phone under its accept threshold waits for a
        reviewer). Asking again within the phone's freshness period pays nothing. Refused
        with the reason for a suppressed lead, one outside the ICP or a phone set by hand."""
        lead = self._lead(pk)
        try:
            reveal = phone_reveal_request(lead_id=lead.id)
        except PhoneRevealRefused as exc:
            raise Refused(exc.status, exc.code, str(exc), retry_after=exc.retry_after) from None
        return Response(PhoneRevealSerializer(reveal).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=ObservationSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], filterset_class=None, filter_backends=[])
    def observations(self, request, pk=None):
        """Every value any source stated about the lead and its company, newest first."""
        lead = self._lead(pk)
        return self.paginated(selectors.lead_observations(lead), ObservationSerializer)

    @extend_schema(responses=LeadExportSerializer, filters=False)
    @action(detail=True, methods=["get"], filterset_class=None, filter_backends=[])
    def export(self, request, pk=None):
        """Everything held about the person, with sources and dates (GDPR access request).
        The export is written to the audit log."""
        data = lead_access_export(lead=self._lead(pk), actor=request.user)
        return Response(data)

    @extend_schema(request=EraseRequestSerializer, responses=ErasureSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def erase(self, request, pk=None):
        """Erase the person (GDPR erasure request): the lead, its observations and runs go,
        provider answers about them are blanked, and their identities are suppressed so an
        import or enrichment never brings them back."""
        lead = self._lead(pk)
        serializer = EraseRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = lead_erase(
            lead=lead, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(ErasureSerializer(result).data)


class ObservationViewSet(ApiViewSet):
    """Observations; the review queue is `?state=pending_review`."""

    queryset = selectors.observations_all()
    serializer_class = ObservationSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ObservationFilter
    required_permissions = {
        "list": "observations.read",
        "retrieve": "observations.read",
        "approve": "observations.review",
        "reject": "observations.review",
    }

    def list(self, request):
        return self.paginated(self.filter_queryset(self.get_queryset()), ObservationSerializer)

    def retrieve(self, request, pk=None):
        return Response(ObservationSerializer(self._observation(pk)).data)

    def _observation(self, pk):
        return get_object_or_404(selectors.observations_all(), pk=pk)

    @extend_schema(request=None, responses={200: ObservationSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def approve(self, request, pk=None):
        """Apply a pending value and lock it (reviewers and admins)."""
        try:
            observation = observation_approve(
                observation=self._observation(pk), reviewer=request.user
            )
        except ReviewError as exc:
            raise Conflict(f"{exc}; reload it to see its current state.") from None
        return Response(ObservationSerializer(observation).data)

    @extend_schema(
        request=RejectSerializer, responses={200: ObservationSerializer, 409: ErrorSerializer}
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def reject(self, request, pk=None):
        """Reject a pending value; its source will not propose it again."""
        observation = self._observation(pk)
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            observation = observation_reject(
                observation=observation,
                reviewer=request.user,
                reason=serializer.validated_data.get("reason", ""),
            )
        except ReviewError as exc:
            raise Conflict(f"{exc}; reload it to see its current state.") from None
        return Response(ObservationSerializer(observation).data)


class CompanyViewSet(ApiViewSet):
    queryset = selectors.companies_all()
    serializer_class = CompanySerializer
    required_permissions = {"list": "companies.read", "retrieve": "companies.read"}

    def list(self, request):
        return self.paginated(self.get_queryset(), CompanySerializer)

    def retrieve(self, request, pk=None):
        return Response(CompanySerializer(get_object_or_404(self.get_queryset(), pk=pk)).data)


class RunViewSet(ApiViewSet):
    queryset = selectors.runs_all()
    serializer_class = RunSerializer
    required_permissions = {"retrieve": "leads.read"}

    def retrieve(self, request, pk=None):
        """One enrichment run: its state, attempts, summary and last error."""
        return Response(RunSerializer(get_object_or_404(self.get_queryset(), pk=pk)).data)


class JobViewSet(ApiViewSet):
    queryset = selectors.jobs_all()
    serializer_class = JobSerializer
    required_permissions = {"retrieve": "leads.read"}

    def retrieve(self, request, pk=None):
        """A batch of runs with its live counters and progress."""
        return Response(JobSerializer(get_object_or_404(self.get_queryset(), pk=pk)).data)


class UsageApi(APIView):
    parser_classes = [StrictJSONParser]
    required_permissions = {"GET": "usage.read"}

    @extend_schema(parameters=[UsageQuerySerializer], responses=UsageSerializer)
    def get(self, request):
        """Calls and credits per provider per day (UTC), and each budget's use."""
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since, until = query.validated_data["since"], query.validated_data["until"]
        body = {
            "since": since,
            "until": until,
            "days": selectors.usage_by_day(since=since, until=until),
            "budgets": selectors.budgets_all(),
        }
        return Response(UsageSerializer(body).data)


def api_not_found(request, path: str = ""):
    """JSON 404 for any path under /api/ that names no endpoint."""
    hint = "See /api/docs/ for the endpoints."
    if path and not path.endswith("/"):
        hint = f"API paths end with a slash: try /api/{path}/ . {hint}"
    return JsonResponse(
        {"code": "not_found", "message": f"There is no API endpoint at {request.path}. {hint}"},
        status=404,
    )
