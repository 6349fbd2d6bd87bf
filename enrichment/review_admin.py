"""The review queue in the Django admin: values waiting for a person, beside the value they
would replace, with their confidence, source and evidence.

Sized for 100k waiting rows: one query per page (lead, company joined), the partial indexes
on pending observations for the default order and the field filter, and a paginator that
counts no further than it needs to. Every decision goes through enrichment.review.
"""

from datetime import timedelta
from functools import cached_property
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from enrichment.email_patterns import SOURCE as PATTERN_SOURCE
from enrichment.fields import FIELDS
from enrichment.local_checks import SOURCE as LOCAL_SOURCE
from enrichment.models import Observation, ReviewItem
from enrichment.review import (
    ReviewError,
    field_value_normalize,
    observation_approve,
    observation_correct,
    observation_reject,
)
from leads.normalize import InvalidValue
from providers.registry import (
    ApolloProvider,
    HunterProvider,
    NetrowsProvider,
    PdlProvider,
    SandboxProvider,
)

# Counting 100k rows for a page of 50 is the slow part of a default admin list; past this
# many the queue says "more than" instead.
COUNT_CAP = 10_000
# One click decides at most this many, so a request never runs for minutes.
BULK_LIMIT = 500

SOURCES = sorted(
    {
        provider.name
        for provider in (
            SandboxProvider,
            HunterProvider,
            PdlProvider,
            ApolloProvider,
            NetrowsProvider,
        )
    }
    | {PATTERN_SOURCE, LOCAL_SOURCE}
)


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: enough for the page links, never the whole table."""

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: COUNT_CAP + 1].count()


def _value_text(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


def _subject(observation: Observation):
    return observation.lead if observation.lead_id else observation.company


def _current_value(observation: Observation):
    return getattr(_subject(observation), FIELDS[observation.field].column)


def _age(moment) -> str:
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment).split(',')[0]} ago"


def confidence_css(field: str, confidence: float | None) -> str:
    if confidence is None:
        return "check"
    spec = FIELDS[field]
    if confidence >= spec.accept_threshold:
        return "high"
    if confidence >= spec.review_floor:
        return "review"
    return "low"


# --- Filters ----------------------------------------------------------------------------


class SourceFilter(admin.SimpleListFilter):
    """Sources are a short fixed list: no DISTINCT over the whole queue to find them."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [(source, source) for source in SOURCES]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


class ConfidenceBandFilter(admin.SimpleListFilter):
    title = "confidence"
    parameter_name = "confidence"
    BANDS = {
        "high": ("80% and above", Q(confidence__gte=0.8)),
        "medium": ("60 to 80%", Q(confidence__gte=0.6, confidence__lt=0.8)),
        "low": ("below 60%", Q(confidence__lt=0.6)),
        "none": ("no score", Q(confidence__isnull=True)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.BANDS.items()]

    def queryset(self, request, queryset):
        band = self.BANDS.get(self.value() or "")
        return queryset.filter(band[1]) if band else queryset


class AgeFilter(admin.SimpleListFilter):
    title = "waiting since"
    parameter_name = "age"
    AGES = {
        "today": ("today", 0, 1),
        "week": ("the past 7 days", 0, 7),
        "older_7": ("more than 7 days", 7, None),
        "older_30": ("more than 30 days", 30, None),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _, _) in self.AGES.items()]

    def queryset(self, request, queryset):
        age = self.AGES.get(self.value() or "")
        if age is None:
            return queryset
        _, older_than, younger_than = age
        now = timezone.now()
        if younger_than is not None:
            queryset = queryset.filter(observed_at__gt=now - timedelta(days=younger_than))
        if older_than:
            queryset = queryset.filter(observed_at__lte=now - timedelta(days=older_than))
        return queryset


# --- One item at a time -----------------------------------------------------------------


class ReviewDecisionForm(forms.Form):
    DECISIONS = [
        ("approve", "Approve: apply this value and lock the field"),
        ("reject", "Reject: keep the current value; this source will not propose it again"),
        ("correct", "Correct: apply my own value instead (locked)"),
    ]

    decision = forms.ChoiceField(choices=DECISIONS, widget=forms.RadioSelect, initial="approve")
    corrected_value = forms.CharField(required=False, max_length=1000, label="Corrected value")
    reason = forms.CharField(required=False, max_length=200, label="Why (optional)")

    def __init__(self, *args, observation: Observation, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.observation = observation

    def clean(self):
        data = super().clean()
        if data.get("decision") == "correct":
            try:
                data["corrected_value"] = field_value_normalize(
                    field=self.observation.field, value=data.get("corrected_value", "")
                )
            except InvalidValue as exc:
                self.add_error("corrected_value", f"{exc.reason}.")
        return data


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = [
        "subject",
        "field_label",
        "proposed",
        "current",
        "confidence_badge",
        "evidence",
        "decide",
    ]
    list_display_links = None
    list_filter = ["field", SourceFilter, ConfidenceBandFilter, AgeFilter]
    list_select_related = ["lead__company", "company"]
    list_per_page = 50
    ordering = ["-observed_at"]
    sortable_by = ["evidence", "confidence_badge", "field_label"]
    paginator = CappedCountPaginator
    show_full_result_count = False
    actions = ["approve_selected", "reject_selected"]
    DONE = {
        "approve": "approved and locked",
        "reject": "rejected",
        "correct": "corrected and locked",
    }

    class Media:
        css = {"all": ["leads/review.css"]}

    # Nobody adds or deletes review items: they come from runs and leave by a decision.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- Columns

    @admin.display(description="Lead / company")
    def subject(self, obj: ReviewItem):
        if obj.lead_id:
            lead = obj.lead
            company = lead.company.domain if lead.company_id else ""
            return format_html(
                '<a href="{}">{}</a><div class="rq-sub">{}</div>',
                reverse("leads:detail", args=[lead.pk]),
                lead,
                company,
            )
        return format_html(
            '<span class="rq-company">{}</span><div class="rq-sub">company</div>', obj.company
        )

    @admin.display(description="Field", ordering="field")
    def field_label(self, obj: ReviewItem) -> str:
        return FIELDS[obj.field].label

    @admin.display(description="Proposed")
    def proposed(self, obj: ReviewItem):
        verification = (
            format_html(' <span class="rq-verif">{}</span>', obj.get_verification_display())
            if obj.verification
            else ""
        )
        return format_html(
            '<span class="rq-proposed">{}</span>{}', _value_text(obj.value), verification
        )

    @admin.display(description="Current")
    def current(self, obj: ReviewItem):
        value = _value_text(_current_value(obj))
        if not value:
            return format_html('<span class="rq-empty">{}</span>', "empty")
        return format_html('<span class="rq-current">{}</span>', value)

    @admin.display(description="Confidence", ordering="confidence")
    def confidence_badge(self, obj: ReviewItem):
        css = confidence_css(obj.field, obj.confidence)
        text = "check" if obj.confidence is None else f"{obj.confidence:.0%}"
        return format_html('<span class="badge badge-{}">{}</span>', css, text)

    @admin.display(description="Source and evidence", ordering="observed_at")
    def evidence(self, obj: ReviewItem):
        call = ""
        if obj.provider_call_id:
            call = format_html(
                ' · <a class="rq-call" href="{}">call #{}</a>',
                reverse("admin:providers_providercall_change", args=[obj.provider_call_id]),
                obj.provider_call_id,
            )
        return format_html(
            '<b class="rq-source">{}</b> <span class="rq-age">{}</span>'
            '<div class="rq-reason">{}{}</div>',
            obj.source,
            _age(obj.observed_at),
            obj.reason,
            call,
        )

    @admin.display(description="")
    def decide(self, obj: ReviewItem):
        # The buttons submit the changelist form (with its CSRF token) to their own URL.
        # URLs relative to the changelist: no reverse() per row on a page of 50.
        label = f"{FIELDS[obj.field].label} for {_subject(obj)}"
        return format_html(
            '<div class="rq-actions">'
            '<button type="submit" class="rq-approve" formaction="{}/approve/" '
            'aria-label="Approve {}">Approve</button>'
            '<button type="submit" class="rq-reject" formaction="{}/reject/" '
            'aria-label="Reject {}">Reject</button>'
            '<a class="rq-correct" href="{}/change/">Correct…</a></div>',
            obj.pk,
            label,
            obj.pk,
            label,
            obj.pk,
        )

    @admin.display(
        description=mark_safe(
            '<input type="checkbox" id="action-toggle" '
            'aria-label="Select all values on this page for an action">'
        )
    )
    def action_checkbox(self, obj):
        # The stock column renders a form widget template per row, a good part of a page.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="Select this value for an action">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
        )

    # --- Bulk

    def _decide_many(self, request, queryset, decide, verb: str) -> None:
        ids = list(queryset.order_by("observed_at").values_list("id", flat=True)[: BULK_LIMIT + 1])
        more = len(ids) > BULK_LIMIT
        done, errors = 0, []
        for observation in Observation.objects.filter(id__in=ids[:BULK_LIMIT]):
            try:
                decide(observation)
            except ReviewError as exc:
                errors.append(str(exc))
            else:
                done += 1
        self.message_user(request, f"{verb} {done} value{'s' if done != 1 else ''}.")
        for error in errors[:5]:
            self.message_user(request, error, messages.WARNING)
        if more:
            self.message_user(
                request,
                f"Only the oldest {BULK_LIMIT} were decided; run the action again for more.",
                messages.WARNING,
            )

    @admin.action(description="Approve the selected values", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._decide_many(
            request,
            queryset,
            lambda o: observation_approve(observation=o, reviewer=request.user),
            "Approved",
        )

    @admin.action(description="Reject the selected values", permissions=["change"])
    def reject_selected(self, request, queryset):
        self._decide_many(
            request,
            queryset,
            lambda o: observation_reject(
                observation=o, reviewer=request.user, reason="rejected in bulk"
            ),
            "Rejected",
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": "Values waiting for review", **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra_context)

    # --- One at a time

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/approve/", wrap(self.approve_view), name="enrichment_reviewitem_approve"
            ),
            path("<int:pk>/reject/", wrap(self.reject_view), name="enrichment_reviewitem_reject"),
            *super().get_urls(),
        ]

    def _changelist_url(self, request: HttpRequest) -> str:
        """The queue as the reviewer left it: back to the same filters and page."""
        url = reverse("admin:enrichment_reviewitem_changelist")
        referer = request.headers.get("Referer", "")
        if referer and url_has_allowed_host_and_scheme(
            referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            parts = urlsplit(referer)
            if parts.path == url:
                return f"{url}?{parts.query}" if parts.query else url
        return url

    def _one(self, request: HttpRequest, pk: int, decide, done: str):
        if request.method != "POST":
            return HttpResponseRedirect(self._changelist_url(request))
        observation = get_object_or_404(Observation, pk=pk)
        if not self.has_change_permission(request, observation):
            raise PermissionDenied
        try:
            decide(observation)
        except ReviewError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                f"{done}: {FIELDS[observation.field].label} “{_value_text(observation.value)}” "
                f"for {_subject(observation)}.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(self._changelist_url(request))

    def approve_view(self, request: HttpRequest, pk: int):
        return self._one(
            request,
            pk,
            lambda o: observation_approve(observation=o, reviewer=request.user),
            "Approved and locked",
        )

    def reject_view(self, request: HttpRequest, pk: int):
        return self._one(
            request,
            pk,
            lambda o: observation_reject(observation=o, reviewer=request.user),
            "Rejected",
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The decision page of one item: approve, reject or correct, then the next one."""
        observation = get_object_or_404(
            Observation.objects.select_related("lead__company", "company", "provider_call"),
            pk=unquote(object_id),
        )
        if not self.has_view_or_change_permission(request, observation):
            raise PermissionDenied
        can_decide = self.has_change_permission(request, observation)
        pending = observation.state == Observation.State.PENDING_REVIEW
        form = ReviewDecisionForm(request.POST or None, observation=observation)
        if request.method == "POST" and can_decide and pending and form.is_valid():
            decision = form.cleaned_data["decision"]
            try:
                if decision == "approve":
                    observation_approve(observation=observation, reviewer=request.user)
                elif decision == "reject":
                    observation_reject(
                        observation=observation,
                        reviewer=request.user,
                        reason=form.cleaned_data["reason"],
                    )
                else:
                    observation_correct(
                        observation=observation,
                        reviewer=request.user,
                        value=form.cleaned_data["corrected_value"],
                    )
            except (ReviewError, InvalidValue) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"{FIELDS[observation.field].label} for {_subject(observation)}: "
                    f"{self.DONE[decision]}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._next_url(request, observation))
        subject = _subject(observation)
        history = Observation.objects.filter(
            Q(lead=subject) if observation.lead_id else Q(company=subject),
            field=observation.field,
        ).order_by("-observed_at", "-id")[:20]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Review {FIELDS[observation.field].label.lower()} for {subject}",
            "observation": observation,
            "subject": subject,
            "field_label": FIELDS[observation.field].label,
            "proposed": _value_text(observation.value),
            "current": _value_text(_current_value(observation)),
            "badge": confidence_css(observation.field, observation.confidence),
            "form": form,
            "pending": pending,
            "can_decide": can_decide,
            "history": history,
            "changelist_url": self._changelist_url(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/enrichment/reviewitem/decide.html", context)

    def _next_url(self, request: HttpRequest, decided: Observation) -> str:
        """The next older item waiting, so a reviewer can work the queue one by one."""
        following = (
            ReviewItem.objects.filter(observed_at__lte=decided.observed_at)
            .exclude(id=decided.id)
            .order_by("-observed_at")
            .values_list("id", flat=True)
            .first()
        )
        if following is None:
            return self._changelist_url(request)
        return reverse("admin:enrichment_reviewitem_change", args=[following])
