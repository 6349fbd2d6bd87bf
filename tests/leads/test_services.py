"""leads.services: normalizing raw records, and upserting leads without losing a value."""

import pytest
from django.db import connection

from leads.models import Company, Lead, Suppression
from leads.normalize import InvalidValue, identity_hash
from leads.services import (
    LeadInput,
    company_get_or_create,
    lead_create,
    lead_input_from_mapping,
    leads_upsert,
)
from leads.signals import leads_created


def upsert(*inputs: LeadInput):
    return leads_upsert(inputs=list(inputs), source="test", origin="test")


def suppress(kind: str, value: str) -> None:
    Suppression.objects.create(kind=kind, identifier_hash=identity_hash(value), reason="erasure")


# --- lead_input_from_mapping -----------------------------------------------------------


def test_lead_input_from_mapping_normalizes_every_field():
    item = lead_input_from_mapping(
        {
            "email": "  Ada@Example.COM ",
            "first_name": " Ada ",
            "last_name": "Lovelace",
            "website": "https://www.example.co.uk/team",
            "linkedin_url": "linkedin.com/in/Ada-Lovelace/",
            "phone": "(415) 555-2671",
            "job_title": "  Head   of Analytics ",
            "seniority": "head",
            "department": "engineering",
            "location": "London",
        }
    )
    assert item == LeadInput(
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        company_domain="example.co.uk",
        linkedin_url="https://www.linkedin.com/in/ada-lovelace",
        phone="+14155552671",
        job_title="Head of Analytics",
        seniority="head",
        department="engineering",
        location="London",
    )


def test_company_domain_comes_from_the_email_when_no_domain_is_given():
    assert lead_input_from_mapping({"email": "ada@mail.example.com"}).company_domain == (
        "example.com"
    )


@pytest.mark.parametrize("email", ["ada@gmail.com", "ada@yahoo.co.uk", "ada@mailinator.com"])
def test_webmail_and_disposable_addresses_do_not_name_a_company(email):
    assert lead_input_from_mapping({"email": email}).company_domain == ""


def test_an_explicit_company_domain_wins_over_the_email_domain():
    item = lead_input_from_mapping({"email": "ada@gmail.com", "domain": "Example.com"})
    assert item.company_domain == "example.com"


def test_names_and_company_domain_are_enough_identity():
    item = lead_input_from_mapping(
        {"first_name": "Ada", "last_name": "Lovelace", "company_domain": "example.com"}
    )
    assert (item.email, item.company_domain) == ("", "example.com")


@pytest.mark.parametrize(
    ("values", "field", "value"),
    [
        ({"email": "ada@"}, "email", "ada@"),
        ({"email": "ada@example.com", "phone": "12345"}, "phone", "12345"),
        ({"linkedin_url": "https://example.com/ada"}, "linkedin_url", "https://example.com/ada"),
        ({"email": "ada@example.com", "website": "co.uk"}, "website", "co.uk"),
        ({"email": "ada@example.com", "job_title": "x" * 300}, "job_title", "x" * 300),
    ],
)
def test_lead_input_from_mapping_names_the_invalid_field_and_value(values, field, value):
    with pytest.raises(InvalidValue) as caught:
        lead_input_from_mapping(values)
    assert (caught.value.field, caught.value.value) == (field, value)
    assert str(caught.value).startswith(f"{field} {value!r} is not valid: ")


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"first_name": "Ada", "last_name": "Lovelace"},
        {"first_name": "Ada", "company_domain": "example.com"},
        {"email": "   ", "phone": "+14155552671"},
    ],
)
def test_a_record_without_identity_is_invalid(values):
    with pytest.raises(InvalidValue) as caught:
        lead_input_from_mapping(values)
    assert caught.value.field == "identity"
    assert "needs an email, a LinkedIn URL, or first name + last name + company domain" in str(
        caught.value
    )


# --- company_get_or_create -------------------------------------------------------------


@pytest.mark.django_db
def test_company_get_or_create_keeps_one_company_per_domain():
    first = company_get_or_create(domain="example.com")
    again = company_get_or_create(domain="https://www.Example.com/about")
    assert again.pk == first.pk
    assert Company.objects.count() == 1


# --- leads_upsert ----------------------------------------------------------------------


@pytest.mark.django_db
def test_new_identities_are_created_with_their_company_and_source():
    result = upsert(
        LeadInput(email="ada@example.com", first_name="Ada", company_domain="example.com"),
        LeadInput(email="bob@example.com", company_domain="example.com"),
        LeadInput(linkedin_url="https://www.linkedin.com/in/carol"),
    )
    assert len(result.created) == 3
    assert (result.updated, result.unchanged, result.duplicate, result.suppressed) == (
        [],
        [],
        0,
        0,
    )
    ada = Lead.objects.get(email="ada@example.com")
    assert (ada.first_name, ada.company.domain, ada.source) == ("Ada", "example.com", "test")
    assert Company.objects.count() == 1
    carol = Lead.objects.get(linkedin_url="https://www.linkedin.com/in/carol")
    assert carol.email is None
    assert carol.company is None


@pytest.mark.django_db
def test_an_existing_lead_gets_its_blanks_filled_and_keeps_its_values():
    lead = Lead.objects.create(email="ada@example.com", job_title="CTO", source="crm")
    result = upsert(
        LeadInput(
            email="ada@example.com",
            job_title="Intern",
            phone="+14155552671",
            company_domain="example.com",
        )
    )
    assert (result.created, result.updated, result.unchanged) == ([], [lead.pk], [])
    lead.refresh_from_db()
    assert lead.job_title == "CTO"
    assert lead.phone == "+14155552671"
    assert lead.company.domain == "example.com"
    assert lead.source == "crm"


@pytest.mark.django_db
def test_an_existing_lead_with_nothing_new_is_unchanged():
    company = Company.objects.create(domain="example.com")
    lead = Lead.objects.create(email="ada@example.com", first_name="Ada", company=company)
    before = lead.updated_at
    result = upsert(
        LeadInput(email="ada@example.com", first_name="Adeline", company_domain="other.com")
    )
    assert (result.created, result.updated, result.unchanged) == ([], [], [lead.pk])
    lead.refresh_from_db()
    assert (lead.first_name, lead.company_id, lead.updated_at) == ("Ada", company.pk, before)


@pytest.mark.django_db
def test_matching_falls_back_to_linkedin_then_to_name_at_company():
    company = Company.objects.create(domain="example.com")
    by_linkedin = Lead.objects.create(linkedin_url="https://www.linkedin.com/in/ada")
    by_name = Lead.objects.create(first_name="Bob", last_name="Smith", company=company)
    result = upsert(
        LeadInput(email="ada@example.com", linkedin_url="https://www.linkedin.com/in/ada"),
        LeadInput(first_name="BOB", last_name="smith", company_domain="example.com", phone="1"),
    )
    assert result.created == []
    assert sorted(result.updated) == sorted([by_linkedin.pk, by_name.pk])
    by_linkedin.refresh_from_db()
    by_name.refresh_from_db()
    assert by_linkedin.email == "ada@example.com"
    assert (by_name.first_name, by_name.phone) == ("Bob", "1")


@pytest.mark.django_db
def test_the_same_name_at_another_company_is_another_lead():
    Lead.objects.create(
        first_name="Bob", last_name="Smith", company=Company.objects.create(domain="a.com")
    )
    result = upsert(LeadInput(first_name="Bob", last_name="Smith", company_domain="b.com"))
    assert len(result.created) == 1


@pytest.mark.django_db
def test_repeats_inside_one_call_are_merged_into_the_first():
    result = upsert(
        LeadInput(email="ada@example.com", job_title="CTO"),
        LeadInput(email="ada@example.com", job_title="Intern", phone="+14155552671"),
        LeadInput(linkedin_url="https://www.linkedin.com/in/ada", location="London"),
        LeadInput(email="ada@example.com", linkedin_url="https://www.linkedin.com/in/ada"),
    )
    assert len(result.created) == 2
    assert result.duplicate == 2
    ada = Lead.objects.get(email="ada@example.com")
    assert (ada.job_title, ada.phone) == ("CTO", "+14155552671")
    # The profile already belonged to the third input's lead, so it is not copied to Ada.
    assert ada.linkedin_url == ""
    assert Lead.objects.get(linkedin_url="https://www.linkedin.com/in/ada").location == "London"


@pytest.mark.django_db
def test_a_repeat_that_fills_blanks_of_an_existing_lead_makes_it_updated():
    lead = Lead.objects.create(email="ada@example.com")
    result = upsert(
        LeadInput(email="ada@example.com"),
        LeadInput(email="ada@example.com", job_title="CTO"),
    )
    assert (result.updated, result.unchanged, result.duplicate) == ([lead.pk], [], 1)
    lead.refresh_from_db()
    assert lead.job_title == "CTO"


@pytest.mark.django_db
def test_suppressed_emails_and_profiles_are_refused():
    suppress(Suppression.Kind.EMAIL, "gone@example.com")
    suppress(Suppression.Kind.LINKEDIN, "https://www.linkedin.com/in/gone")
    result = upsert(
        LeadInput(email="ada@example.com"),
        LeadInput(email="gone@example.com"),
        LeadInput(email="other@example.com", linkedin_url="https://www.linkedin.com/in/gone"),
    )
    assert len(result.created) == 1
    assert result.suppressed == 2
    assert result.suppressed_positions == [1, 2]
    assert not Lead.objects.filter(email__in=["gone@example.com", "other@example.com"]).exists()


@pytest.mark.django_db(transaction=True)
def test_leads_created_is_sent_with_the_new_ids_inside_the_transaction():
    existing = Lead.objects.create(email="old@example.com")
    calls = []

    def receiver(sender, *, lead_ids, origin, **kwargs):
        calls.append(
            {
                "sender": sender,
                "lead_ids": lead_ids,
                "origin": origin,
                "in_transaction": connection.in_atomic_block,
                "visible": Lead.objects.filter(pk__in=lead_ids).count(),
            }
        )

    leads_created.connect(receiver)
    try:
        result = leads_upsert(
            inputs=[
                LeadInput(email="old@example.com", job_title="CTO"),
                LeadInput(email="new@example.com"),
                LeadInput(email="newer@example.com"),
            ],
            source="test",
            origin="csv:leads.csv",
        )
        upsert(LeadInput(email="old@example.com"))
    finally:
        leads_created.disconnect(receiver)

    new_ids = list(Lead.objects.exclude(pk=existing.pk).values_list("pk", flat=True))
    assert sorted(result.created) == sorted(new_ids)
    assert calls == [
        {
            "sender": Lead,
            "lead_ids": result.created,
            "origin": "csv:leads.csv",
            "in_transaction": True,
            "visible": 2,
        }
    ]


@pytest.mark.django_db
def test_upsert_queries_do_not_grow_with_the_number_of_inputs(django_assert_max_num_queries):
    existing_company = Company.objects.create(domain="old0.com")
    for n in range(50):
        Lead.objects.create(email=f"old{n}@old{n % 5}.com", company=existing_company)
    inputs = [
        LeadInput(email=f"new{n}@new{n % 20}.com", company_domain=f"new{n % 20}.com")
        for n in range(300)
    ] + [LeadInput(email=f"old{n}@old{n % 5}.com", phone="+14155552671") for n in range(50)]
    # Suppression, lead lookups, companies read/created/re-read, the INSERTs (SQLite caps a
    # statement at 999 parameters, so Django splits 300 leads into a few), one UPDATE and
    # the savepoint: a handful for 350 rows, not one per row.
    with django_assert_max_num_queries(20):
        result = upsert(*inputs)
    assert (len(result.created), len(result.updated)) == (300, 50)
    assert Company.objects.count() == 21


@pytest.mark.django_db
def test_nul_characters_are_stripped_before_the_upsert():
    # PostgreSQL text cannot hold NUL: a broken export's NUL must not fail the insert.
    item = lead_input_from_mapping(
        {
            "email": "ada@acme\x00.com",
            "first_name": "A\x00da",
            "last_name": "\x00Lovelace",
            "job_title": "C\x00TO",
            "location": "Lon\x00don",
        }
    )
    assert (item.email, item.first_name, item.last_name) == ("ada@acme.com", "Ada", "Lovelace")
    (lead_id,) = upsert(item).created
    lead = Lead.objects.get(pk=lead_id)
    assert (lead.first_name, lead.last_name, lead.job_title, lead.location) == (
        "Ada",
        "Lovelace",
        "CTO",
        "London",
    )
    assert (
        lead_create(
            values={"first_name": "G\x00race", "email": "g@acme.com"}, source="t", origin="t"
        ).first_name
        == "Grace"
    )


# --- lead_create -----------------------------------------------------------------------


@pytest.mark.django_db
def test_lead_create_returns_the_new_or_the_matched_lead():
    lead = lead_create(values={"email": "Ada@Example.com"}, source="api", origin="api")
    assert (lead.email, lead.company.domain, lead.source) == (
        "ada@example.com",
        "example.com",
        "api",
    )
    again = lead_create(
        values={"email": "ada@example.com", "phone": "+14155552671"}, source="api", origin="api"
    )
    assert again.pk == lead.pk
    assert again.phone == "+14155552671"


@pytest.mark.django_db
def test_lead_create_refuses_a_suppressed_identity():
    suppress(Suppression.Kind.LINKEDIN, "https://www.linkedin.com/in/gone")
    with pytest.raises(InvalidValue) as caught:
        lead_create(
            values={"email": "ada@example.com", "linkedin_url": "linkedin.com/in/Gone"},
            source="api",
            origin="api",
        )
    assert caught.value.field == "linkedin_url"
    assert "suppression list" in str(caught.value)
    assert not Lead.objects.exists()
