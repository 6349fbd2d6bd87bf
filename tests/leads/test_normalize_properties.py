"""Properties of leads.normalize and of names on the way in, for input in any script.

For any text at all, a normalizer either raises InvalidValue (naming its field, with a
reason) or returns the one stored form, which it maps to itself; the other forms of the
same identity (case, spaces, a URL around a domain, punycode, a number's national format)
map to that same stored form.
"""

import re

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from leads.models import Lead
from leads.normalize import (
    InvalidValue,
    email_domain,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
    normalize_phone,
    person_name_key,
)
from leads.services import lead_input_from_mapping

# Enough examples to reach the odd corners; database=None: nothing persists between runs.
PROPERTY = hypothesis_settings(max_examples=400, database=None, deadline=None)

# Text in any script, including marks, symbols, controls and unassigned code points.
any_text = st.text(max_size=60)
# Letters and digits of every script: what names, local parts and slugs are made of.
script_letters = st.characters(categories=["L", "M", "N"])
SUFFIXES = ["com", "co.uk", "de", "io", "com.au", "рф", "中国", "org"]

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
LINKEDIN_PREFIX = "https://www.linkedin.com/in/"


def outcome(normalize, raw, **kwargs):
    """Return the normalized value, or None after checking the InvalidValue is a good one."""
    try:
        return normalize(raw, **kwargs)
    except InvalidValue as exc:
        assert exc.value == raw
        assert exc.reason
        assert str(exc).startswith(f"{exc.field} ")
        return None


# --- Emails -------------------------------------------------------------------------------

unicode_emails = st.builds(
    "{}@{}.{}".format,
    st.text(script_letters, min_size=1, max_size=16),
    st.text(script_letters, min_size=1, max_size=12),
    st.sampled_from(SUFFIXES),
)


@PROPERTY
@given(any_text | st.emails() | unicode_emails)
def test_an_email_is_refused_or_stored_in_one_form_that_maps_to_itself(raw):
    email = outcome(normalize_email, raw)
    if email is None:
        return
    assert normalize_email(email) == email
    assert email == email.strip() == email.lower()
    assert email.count("@") >= 1 and email_domain(email)


@PROPERTY
@given(st.emails())
def test_case_and_surrounding_space_do_not_make_another_email(raw):
    assert outcome(normalize_email, f"  {raw.upper()}\t") == outcome(normalize_email, raw)


@PROPERTY
@given(unicode_emails)
def test_an_internationalized_domain_is_one_company_however_it_is_written(raw):
    email = outcome(normalize_email, raw)
    assume(email is not None)
    local, domain = email.rsplit("@", 1)
    punycode = validate_email(email, check_deliverability=False).ascii_domain
    if punycode is None:
        return
    # The same mailbox written with its punycode domain is the same address.
    assert normalize_email(f"{local}@{punycode}") == email
    company = outcome(normalize_domain, domain)
    assert outcome(normalize_domain, punycode) == company
    assert outcome(normalize_domain, f"https://www.{punycode.upper()}/about") == company


# --- Phones -------------------------------------------------------------------------------

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@PROPERTY
@given(any_text | st.from_regex(r"\+?[0-9 ().\-]{3,22}", fullmatch=True), st.sampled_from(REGIONS))
def test_a_phone_is_refused_or_stored_as_e164_whatever_the_region(raw, region):
    phone = outcome(normalize_phone, raw, region=region)
    if phone is None:
        return
    assert E164.match(phone)
    # E.164 carries its country: the default region no longer matters.
    assert normalize_phone(phone) == phone
    assert normalize_phone(phone, region="GB") == phone


@PROPERTY
@given(
    st.sampled_from(REGIONS),
    st.sampled_from(
        [
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
            phonenumbers.PhoneNumberFormat.RFC3966,
        ]
    ),
)
def test_every_format_of_a_number_is_one_phone(region, number_format):
    number = phonenumbers.example_number(region)
    assume(number is not None)
    written = phonenumbers.format_number(number, number_format)
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    assert normalize_phone(written, region=region) == expected


# --- Domains ------------------------------------------------------------------------------

domain_labels = st.text(script_letters, min_size=1, max_size=12) | st.from_regex(
    r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True
)


@PROPERTY
@given(any_text | st.builds("https://{}/x".format, any_text))
def test_a_domain_is_refused_or_stored_in_one_form_that_maps_to_itself(raw):
    domain = outcome(normalize_domain, raw)
    if domain is None:
        return
    assert normalize_domain(domain) == domain
    assert domain == domain.lower()
    assert not re.search(r"[\s/:@?#\[\]]", domain)
    assert "." in domain


@PROPERTY
@given(domain_labels, st.sampled_from(SUFFIXES), st.text(script_letters, max_size=8))
def test_a_url_an_address_or_a_subdomain_names_the_same_company(label, suffix, sub):
    domain = outcome(normalize_domain, f"{label}.{suffix}")
    assume(domain is not None)
    # Upper case only where it is reversible: "ß".upper() is "SS", another name.
    shouting = label.upper() if label.isascii() else label
    forms = [
        f"https://www.{label}.{suffix}/about?utm=1",
        f"HTTP://{shouting}.{suffix.upper() if suffix.isascii() else suffix}:8080",
        f"  {label}.{suffix}  ",
        f"ada@{label}.{suffix}",
    ]
    if sub:
        forms.append(f"{sub}.{label}.{suffix}")
    for form in forms:
        assert outcome(normalize_domain, form) in (domain, None), form
    assert normalize_domain(forms[0]) == domain


# --- LinkedIn URLs --------------------------------------------------------------------------

slugs = st.text(script_letters, min_size=1, max_size=20) | st.from_regex(
    r"[a-z0-9][a-z0-9-]{1,30}", fullmatch=True
)


@PROPERTY
@given(
    any_text
    | st.builds("linkedin.com/in/{}".format, any_text)
    | st.builds("https://www.linkedin.com/in/{}/".format, any_text)
)
def test_a_profile_url_is_refused_or_stored_canonical(raw):
    url = outcome(normalize_linkedin_url, raw)
    if url is None:
        return
    assert normalize_linkedin_url(url) == url
    assert url.startswith(LINKEDIN_PREFIX)
    slug = url.removeprefix(LINKEDIN_PREFIX)
    assert slug and not re.search(r"[\s/?#\x00-\x1f\x7f-\x9f]", slug)


@PROPERTY
@given(slugs)
def test_every_way_of_writing_a_profile_is_one_url(slug):
    url = outcome(normalize_linkedin_url, f"{LINKEDIN_PREFIX}{slug}")
    assume(url is not None)
    # Upper case only where it is reversible: "ß".upper() is "SS", another name.
    shouting = slug.upper() if slug.isascii() else slug
    for form in [
        f"http://linkedin.com/in/{shouting}/",
        f"linkedin.com/in/{slug}",
        f"www.linkedin.com/in/{slug}?trk=public_profile#about",
        f"https://uk.linkedin.com/in/{slug}/details/experience/",
        f"https://www.linkedin.com/pub/{slug}",
        f"  {LINKEDIN_PREFIX}{slug}  ",
    ]:
        assert normalize_linkedin_url(form) == url, form


# --- Names, in any script --------------------------------------------------------------------

# Names hold letters, marks, digits, punctuation, symbols and spaces of any script; control
# characters and unpaired surrogates are not text a person types.
name_text = st.text(
    st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=60
)


@PROPERTY
@given(name_text, name_text)
def test_names_in_any_script_come_through_with_only_their_spacing_tidied(first, last):
    try:
        lead = lead_input_from_mapping(
            {"first_name": first, "last_name": last, "company_domain": "acme.com"}
        )
    except InvalidValue as exc:
        # The one reason a name is refused: nothing but spaces, so no identity is left.
        assert exc.field == "identity"
        assert not first.split() or not last.split()
        return
    assert lead.first_name == " ".join(first.split())
    assert lead.last_name == " ".join(last.split())
    again = lead_input_from_mapping(
        {"first_name": lead.first_name, "last_name": lead.last_name, "company_domain": "acme.com"}
    )
    assert again == lead
    key = person_name_key(lead.first_name, lead.last_name, lead.company_domain)
    assert key == person_name_key(f" {lead.first_name} ", lead.last_name, "acme.com")
    assert key == person_name_key(lead.first_name.casefold(), lead.last_name, "acme.com")


@pytest.mark.django_db
@hypothesis_settings(max_examples=60, database=None, deadline=None)
@given(name_text, name_text)
def test_names_in_any_script_are_stored_and_read_back_unchanged(first, last):
    lead_input = (
        lead_input_from_mapping(
            {"first_name": first, "last_name": last, "company_domain": "acme.com"}
        )
        if first.split() and last.split()
        else None
    )
    assume(lead_input is not None)
    lead = Lead.objects.create(first_name=lead_input.first_name, last_name=lead_input.last_name)

    stored = Lead.objects.get(id=lead.id)

    assert (stored.first_name, stored.last_name) == (lead_input.first_name, lead_input.last_name)
    stored.delete()


def test_the_strategies_reach_internationalized_domains():
    # The IDN property is not vacuous: this one has a punycode form and one company.
    checked = validate_email("ada@bücher.de", check_deliverability=False)
    assert checked.ascii_domain == "xn--bcher-kva.de"
    assert normalize_domain("xn--bcher-kva.de") == normalize_domain("BÜCHER.de") == "bücher.de"
    with pytest.raises(EmailNotValidError):
        validate_email("ada@☃.com", check_deliverability=False)
    with pytest.raises(InvalidValue, match="internationalized"):
        normalize_domain("☃.com")
