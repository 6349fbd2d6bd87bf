"""The SDR's pages: the lead list and the lead page, with Find Email, Re-enrich, manual
edits and (for reviewers) decisions on suggested values.

Views stay thin: they read through leads.selectors and write through enrichment's
services. Every button is a plain form POST that redirects, so the pages work without
JavaScript; with htmx the same POST answers with a fragment and the page updates in place.
A run's POST waits briefly for the run and answers with its outcome when it is quick;
otherwise with the run's status, a long poll that answers the moment the run is over.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import ROLES
from enrichment.fields import FIELDS, Entity
from enrichment.models import EnrichmentRun, Observation
from enrichment.review import (
    ReviewError,
    field_set_manually,
    observation_approve,
    observation_reject,
)
from enrichment.run_waits import run_wait_over
from enrichment.services import runs_create
from leads.forms import FieldEditForm, LeadFilterForm
from leads.models import Lead
from leads.normalize import InvalidValue
from leads.selectors import (
    SORTS,
    LeadSheet,
    find_email_can_help,
    lead_sheet,
    leads_filtered,
    leads_for_find_email,
    leads_with_pending_review,
    page_of,
    run_outcome,
    runs_recent,
)

REVIEW_PERMISSION = "enrichment.change_reviewitem"


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _lead(pk: int) -> Lead:
    return get_object_or_404(Lead.objects.select_related("company", "owner"), pk=pk)


# --- The list ---------------------------------------------------------------------------


@require_GET
@login_required
@permission_required("leads.view_lead", raise_exception=True)
def lead_list(request: HttpRequest) -> HttpResponse:
    # The people leads can belong to: everyone with a role (a short list, unlike leads).
    owners = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=ROLES)
        .distinct()
        .order_by("username")
    )
    form = LeadFilterForm(request.GET or None, owners=owners, user=request.user)
    filters = form.filters()
    page = page_of(leads_filtered(filters), form.page_number())
    pending = leads_with_pending_review([lead.id for lead in page.items])
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "rows": [(lead, lead.id in pending) for lead in page.items],
        "sorts": [(key, label) for key, (label, _) in SORTS.items()],
        "filters": filters,
        "query_string": query.urlencode(),
    }
    # A search-as-you-type request swaps the results only.
    if _is_htmx(request) and request.headers.get("HX-Target") == "lead-results":
        return render(request, "leads/_results.html", context)
    return render(request, "leads/list.html", context)


# --- The lead page ----------------------------------------------------------------------


def _sheet_context(request: HttpRequest, lead: Lead, sheet: LeadSheet | None = None) -> dict:
    if sheet is None:
        sheet = lead_sheet(lead)
    user = request.user
    return {
        "lead": lead,
        "sheet": sheet,
        "can_enrich": user.has_perm("enrichment.add_enrichmentrun"),
        "can_edit_lead": user.has_perm("leads.change_lead"),
        "can_edit_company": user.has_perm("leads.change_company"),
        "can_review": user.has_perm(REVIEW_PERMISSION),
    }


@require_GET
@login_required
@permission_required("leads.view_lead", raise_exception=True)
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "leads/detail.html", _sheet_context(request, _lead(pk)))


def _start_run(request: HttpRequest, lead: Lead, *, trigger: str, fields: list[str]):
    created = runs_create(lead_ids=[lead.id], trigger=trigger, fields=fields)
    if created:
        return created[0]
    # One run per lead at a time: a second click follows the run already going.
    return (
        EnrichmentRun.objects.filter(
            lead=lead, state__in=[EnrichmentRun.State.QUEUED, EnrichmentRun.State.RUNNING]
        )
        .order_by("-created_at")
        .first()
    )


def _after_run_started(request: HttpRequest, lead: Lead, run, message: str) -> HttpResponse:
    if not _is_htmx(request):
        messages.info(request, message)
        return redirect("leads:detail", pk=lead.pk)
    at_once = _prefers_async(request)
    wait = 0.0 if at_once else settings.RUN_ANSWER_WAIT_SECONDS
    # A quick run (a vendor that answers at once, an answer the ledger holds) is answered
    # here: no second request to make, render and wait for, beside the worker's run.
    if run is not None and wait > 0 and run_wait_over(run_id=run.id, timeout=wait):
        return _run_answer(request, *_run_and_recent(lead.pk, run.id))
    # The running fragment names the lead and the run, nothing else: no sheet to read.
    response = render(request, "leads/_run_status.html", {"lead": lead, "run": run})
    if at_once:
        response["Preference-Applied"] = "respond-async"
    return response


def _prefers_async(request: HttpRequest) -> bool:
    """The client asked for an answer at once, whatever the run (RFC 7240)."""
    preferences = request.headers.get("Prefer", "").split(",")
    return any(p.split(";")[0].strip().lower() == "respond-async" for p in preferences)


@require_POST
@login_required
@permission_required("enrichment.add_enrichmentrun", raise_exception=True)
def lead_find_email(request: HttpRequest, pk: int) -> HttpResponse:
    # The button's rule from a few columns, not the whole sheet: the click is on the clock.
    lead = get_object_or_404(leads_for_find_email(), pk=pk)
    if not find_email_can_help(lead):
        message = (
            "Find Email needs a first name, a last name and a company domain, and no valid "
            "or locked email yet."
        )
        if _is_htmx(request):
            return HttpResponseBadRequest(message)
        messages.error(request, message)
        return redirect("leads:detail", pk=lead.pk)
    run = _start_run(request, lead, trigger=EnrichmentRun.Trigger.FIND_EMAIL, fields=["email"])
    return _after_run_started(request, lead, run, "Searching for an email…")


@require_POST
@login_required
@permission_required("enrichment.add_enrichmentrun", raise_exception=True)
def lead_reenrich(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _lead(pk)
    run = _start_run(request, lead, trigger=EnrichmentRun.Trigger.MANUAL, fields=[])
    return _after_run_started(request, lead, run, "Enriching this lead…")


def _run_and_recent(pk: int, run_id: int) -> tuple[EnrichmentRun, list[EnrichmentRun]]:
    """The run with its lead, and the lead's newest runs for the sheet: one query."""
    recent = runs_recent(pk)
    run = next((r for r in recent if r.id == run_id), None)
    if run is None:
        # Older than the newest few, or not this lead's.
        run = get_object_or_404(
            EnrichmentRun.objects.select_related("lead__company", "lead__owner"),
            pk=run_id,
            lead_id=pk,
        )
    return run, recent


@require_GET
@login_required
@permission_required("leads.view_lead", raise_exception=True)
def lead_run_status(request: HttpRequest, pk: int, run_id: int) -> HttpResponse:
    """The fragment a page asks for while a run is going: a long poll that answers when the
    run is over, with the outcome and what the run changed, or after
    RUN_STATUS_WAIT_SECONDS with the running fragment, which asks again at once."""
    run, recent = _run_and_recent(pk, run_id)
    if not _is_htmx(request):
        return redirect("leads:detail", pk=pk)
    if not run.is_terminal and run_wait_over(
        run_id=run.id, timeout=settings.RUN_STATUS_WAIT_SECONDS
    ):
        # Over meanwhile: read both again, the run wrote the lead.
        run, recent = _run_and_recent(pk, run_id)
    return _run_answer(request, run, recent)


def _run_answer(
    request: HttpRequest, run: EnrichmentRun, recent: list[EnrichmentRun]
) -> HttpResponse:
    """The run's fragment: still going, or its outcome and what it changed."""
    lead = run.lead
    if not run.is_terminal:
        # Still going: the same fragment, which asks again at once; no sheet to read.
        return render(request, "leads/_run_status.html", {"lead": lead, "run": run})
    context = _sheet_context(request, lead, lead_sheet(lead, recent_runs=recent))
    context["run"] = run
    context["outcome"] = run_outcome(run, context["sheet"])
    if run.trigger == EnrichmentRun.Trigger.FIND_EMAIL:
        # The outcome, and out of band only the parts of the page such a run changes.
        return render(request, "leads/_find_email_done.html", context)
    # Over: the outcome, and the whole lead refreshed around it (new values, badges).
    response = render(request, "leads/_body.html", context)
    response["HX-Retarget"] = "#lead-body"
    response["HX-Reswap"] = "outerHTML"
    return response


# --- Manual edits -----------------------------------------------------------------------


def _editable_field(request: HttpRequest, lead: Lead, name: str):
    spec = FIELDS.get(name)
    if spec is None or (spec.entity is Entity.COMPANY and not lead.company_id):
        raise Http404("no such field")
    permission = "leads.change_lead" if spec.entity is Entity.LEAD else "leads.change_company"
    if not request.user.has_perm(permission):
        raise PermissionDenied
    return spec


def _body_response(request: HttpRequest, lead: Lead) -> HttpResponse:
    """The refreshed lead body for htmx; a redirect to the lead page otherwise."""
    if _is_htmx(request):
        # Read again: the decision or edit just changed the row.
        return render(request, "leads/_body.html", _sheet_context(request, _lead(lead.pk)))
    return redirect("leads:detail", pk=lead.pk)


@require_http_methods(["GET", "POST"])
@login_required
def lead_field_edit(request: HttpRequest, pk: int, field: str) -> HttpResponse:
    lead = _lead(pk)
    spec = _editable_field(request, lead, field)
    subject = lead if spec.entity is Entity.LEAD else lead.company
    current = getattr(subject, spec.column)
    form = FieldEditForm(request.POST or None, spec=spec, current=current)
    if request.method == "POST" and form.is_valid():
        try:
            field_set_manually(
                subject=subject, field=field, value=form.cleaned_data["value"], user=request.user
            )
        except InvalidValue as exc:
            form.add_error("value", f"{spec.label}: {exc.reason}.")
        else:
            if not _is_htmx(request):
                messages.success(request, f"{spec.label} saved and locked.")
            return _body_response(request, lead)
    context = {"lead": lead, "spec": spec, "form": form}
    if _is_htmx(request):
        # htmx swaps only 2xx answers: the form comes back in place of the field's row.
        response = render(request, "leads/_field_edit.html", context)
        if request.method == "POST":
            response["HX-Retarget"] = f"#field-{spec.name}"
            response["HX-Reswap"] = "outerHTML"
        return response
    status = 400 if request.method == "POST" else 200
    return render(request, "leads/field_edit.html", context, status=status)


# --- A reviewer's decision on a suggestion ----------------------------------------------


@require_POST
@login_required
@permission_required(REVIEW_PERMISSION, raise_exception=True)
def lead_suggestion_decide(
    request: HttpRequest, pk: int, observation_id: int, decision: str
) -> HttpResponse:
    lead = _lead(pk)
    about = Q(lead=lead)
    if lead.company_id:
        about |= Q(company_id=lead.company_id)
    observation = get_object_or_404(Observation.objects.filter(about), pk=observation_id)
    try:
        if decision == "approve":
            observation_approve(observation=observation, reviewer=request.user)
            done = f"{FIELDS[observation.field].label} approved and locked."
        elif decision == "reject":
            observation_reject(observation=observation, reviewer=request.user)
            done = f"{FIELDS[observation.field].label} suggestion rejected."
        else:
            raise Http404("no such decision")
    except ReviewError as exc:
        if _is_htmx(request):
            context = _sheet_context(request, lead)
            context["review_error"] = str(exc)
            return render(request, "leads/_body.html", context)
        messages.error(request, str(exc))
        return redirect("leads:detail", pk=lead.pk)
    if not _is_htmx(request):
        messages.success(request, done)
    return _body_response(request, lead)
