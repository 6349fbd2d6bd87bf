"""Forms of the lead pages: the list's filters and a one-field manual edit."""

from django import forms

from enrichment.fields import FieldSpec
from leads.models import Lead
from leads.selectors import DEFAULT_SORT, SORTS, LeadFilters

OWNER_ME = "me"
OWNER_NONE = "none"


class LeadFilterForm(forms.Form):
    """The list's query string: search, filters, sort and page. Bad values fall back to
    "any" rather than failing the page."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(required=False, label="Status")
    owner = forms.ChoiceField(required=False, label="Owner")
    stale = forms.BooleanField(required=False, label="Stale data")
    pending = forms.BooleanField(required=False, label="Waiting for review")
    sort = forms.ChoiceField(required=False, label="Sort")
    page = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args, owners, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["status"].choices = [("", "Any status"), *Lead.EnrichmentStatus.choices]
        self.fields["owner"].choices = [
            ("", "Anyone"),
            (OWNER_ME, "Me"),
            (OWNER_NONE, "Nobody"),
            *((str(owner.pk), owner.get_username()) for owner in owners if owner != user),
        ]
        self.fields["sort"].choices = [(key, label) for key, (label, _) in SORTS.items()]

    def filters(self) -> LeadFilters:
        if not self.is_bound:
            return LeadFilters()
        # An invalid field is dropped on its own; the others still apply.
        self.is_valid()
        data = self.cleaned_data
        owner = data.get("owner") or ""
        return LeadFilters(
            query=(data.get("q") or "").strip(),
            status=data.get("status") or "",
            owner_id=self.user.pk
            if owner == OWNER_ME
            else (int(owner) if owner.isdigit() else None),
            unowned=owner == OWNER_NONE,
            stale=bool(data.get("stale")),
            pending_review=bool(data.get("pending")),
            sort=data.get("sort") or DEFAULT_SORT,
        )

    def page_number(self) -> int:
        if not self.is_bound:
            return 1
        self.is_valid()
        return self.cleaned_data.get("page") or 1


class FieldEditForm(forms.Form):
    """One field typed in by hand; enrichment.review normalizes and validates it."""

    value = forms.CharField(max_length=1000, strip=True)

    def __init__(self, *args, spec: FieldSpec, current, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        value = self.fields["value"]
        value.label = spec.label
        if isinstance(current, list):
            current = ", ".join(current)
            value.help_text = "Separate names with commas."
        value.initial = current or ""
        if spec.name == "email":
            value.widget = forms.EmailInput()
        elif spec.name == "phone":
            value.help_text = "With the country code, e.g. +1 415 555 0100."
        elif spec.name == "linkedin_url":
            value.widget = forms.URLInput()
