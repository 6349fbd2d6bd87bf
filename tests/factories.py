"""factory_boy factories for the domain models, with normalized identities."""

from datetime import timedelta

import factory
from django.utils import timezone

from leads.models import Company, Lead


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ("domain",)

    domain = factory.Sequence(lambda n: f"company{n}.com")


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    company = factory.SubFactory(CompanyFactory)
    email = None


class ObservationFactory(factory.django.DjangoModelFactory):
    """A value a provider proposed for a lead, waiting for review unless told otherwise."""

    class Meta:
        model = "enrichment.Observation"

    lead = factory.SubFactory(LeadFactory)
    field = "job_title"
    value = "VP of Sales"
    confidence = 0.7
    source = "sandbox"
    state = "pending_review"
    reason = "below the accept threshold 0.75"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=90))
