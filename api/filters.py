"""Query filters for the lists; each normalizes what it is given like the data was."""

from datetime import UTC, datetime

import django_filters
from django.db.models import QuerySet

from api.selectors import leads_stale
from enrichment.fields import FIELDS
from enrichment.models import Observation
from leads.models import Lead
from leads.normalize import normalize_domain, normalize_email


class LeadFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(
        method="filter_email", max_length=254, help_text="Exact, in any case."
    )
    domain = django_filters.CharFilter(
        method="filter_domain", max_length=253, help_text="The company's domain or website."
    )
    status = django_filters.ChoiceFilter(
        field_name="enrichment_status", choices=Lead.EnrichmentStatus.choices
    )
    stale = django_filters.BooleanFilter(
        method="filter_stale", help_text="Has a current value past its freshness (or not)."
    )
    updated_since = django_filters.IsoDateTimeFilter(
        method="filter_updated_since", help_text="ISO 8601, e.g. 2025-01-31T00:00Z."
    )

    class Meta:
        model = Lead
        fields = ["email", "domain", "status", "stale", "updated_since"]

    def filter_email(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        try:
            return queryset.filter(email=normalize_email(value))
        except ValueError:
            # No lead can have an address that does not normalize.
            return queryset.none()

    def filter_domain(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        try:
            return queryset.filter(company__domain=normalize_domain(value))
        except ValueError:
            # InvalidValue, or urlsplit's own ValueError on text like "[": no such domain.
            return queryset.none()

    def filter_updated_since(
        self, queryset: QuerySet[Lead], name: str, value: datetime
    ) -> QuerySet[Lead]:
        try:
            # In UTC: PostgreSQL refuses offsets past ±15:59 that ISO 8601 allows.
            value = value.astimezone(UTC)
        except OverflowError:
            # Before year 1 or after 9999 in UTC: before everything, or after everything.
            return queryset if value.year < 5000 else queryset.none()
        return queryset.filter(updated_at__gte=value)

    def filter_stale(self, queryset: QuerySet[Lead], name: str, value: bool) -> QuerySet[Lead]:
        return leads_stale(queryset, stale=value)


class ObservationFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=Observation.State.choices)
    field = django_filters.ChoiceFilter(choices=[(name, name) for name in FIELDS])
    source = django_filters.CharFilter(max_length=32)

    class Meta:
        model = Observation
        fields = ["state", "field", "source"]
