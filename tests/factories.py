"""factory_boy factories for the domain models, with normalized identities."""

import factory

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
