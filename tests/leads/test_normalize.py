"""leads.normalize: identities in their one stored form, and errors that say what is wrong."""

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from leads.normalize import (
    InvalidValue,
    email_domain,
    identity_hash,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
    normalize_phone,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        ("ADA+crm@Sub.Example.co.uk", "ada+crm@sub.example.co.uk"),
    ],
)
def test_normalize_email_lowercases_and_strips(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "ada", "ada@", "@example.com", "ada@@example.com"])
def test_normalize_email_rejects_bad_syntax(raw):
    with pytest.raises(InvalidValue) as caught:
        normalize_email(raw)
    assert caught.value.field == "email"
    assert caught.value.value == raw
    assert caught.value.reason


def test_email_domain_is_the_part_after_the_last_at():
    assert email_domain("ada@example.co.uk") == "example.co.uk"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("www.example.com", "example.com"),
        ("https://www.example.com/about?x=1", "example.com"),
        ("http://shop.example.com:8080/", "example.com"),
        ("ada@mail.example.com", "example.com"),
        ("example.co.uk", "example.co.uk"),
        ("https://blog.example.co.uk", "example.co.uk"),
        ("acme.com.au", "acme.com.au"),
    ],
)
def test_normalize_domain_returns_the_registrable_domain(raw, expected):
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("co.uk", "public suffix"),
        ("localhost", "public suffix"),
        ("https://", "no host name"),
        ("exa mple.com", "no host name"),
    ],
)
def test_normalize_domain_rejects_what_is_not_a_company_domain(raw, reason):
    with pytest.raises(InvalidValue) as caught:
        normalize_domain(raw)
    assert caught.value.field == "domain"
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 415 555 2671", "+14155552671"),
        ("(415) 555-2671", "+14155552671"),
        ("415.555.2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+49 30 901820", "+4930901820"),
    ],
)
def test_normalize_phone_formats_e164(raw, expected):
    assert normalize_phone(raw) == expected


def test_normalize_phone_uses_the_given_region_for_national_numbers():
    assert normalize_phone("020 7946 0958", region="GB") == "+442079460958"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("not a phone", "not"),
        ("+1 555 0100", "not a valid number"),
        ("12", "not a valid number"),
    ],
)
def test_normalize_phone_rejects_invalid_numbers(raw, reason):
    with pytest.raises(InvalidValue) as caught:
        normalize_phone(raw)
    assert caught.value.field == "phone"
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    "raw",
    [
        "https://www.linkedin.com/in/ada-lovelace",
        "http://linkedin.com/in/Ada-Lovelace/",
        "linkedin.com/in/ada-lovelace",
        "www.linkedin.com/in/ada-lovelace?trk=public_profile",
        "https://uk.linkedin.com/in/ada-lovelace/details/experience/",
        "https://www.linkedin.com/pub/ada-lovelace#about",
    ],
)
def test_normalize_linkedin_url_returns_the_canonical_profile(raw):
    assert normalize_linkedin_url(raw) == "https://www.linkedin.com/in/ada-lovelace"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("https://example.com/in/ada", "not a linkedin.com address"),
        ("https://notlinkedin.com/in/ada", "not a linkedin.com address"),
        ("https://www.linkedin.com/company/acme", "not a profile URL"),
        ("https://www.linkedin.com/in/", "not a profile URL"),
    ],
)
def test_normalize_linkedin_url_rejects_non_profiles(raw, reason):
    with pytest.raises(InvalidValue) as caught:
        normalize_linkedin_url(raw)
    assert caught.value.field == "linkedin_url"
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("normalize", "field", "raw"),
    [
        (normalize_email, "email", "not-an-email"),
        (normalize_domain, "domain", "co.uk"),
        (normalize_phone, "phone", "+1 555 0100"),
        (normalize_linkedin_url, "linkedin_url", "https://example.com/ada"),
    ],
)
def test_every_error_message_names_the_field_and_the_value(normalize, field, raw):
    with pytest.raises(InvalidValue) as caught:
        normalize(raw)
    message = str(caught.value)
    assert message.startswith(f"{field} {raw!r} is not valid: ")
    assert caught.value.reason in message


def test_identity_hash_is_a_stable_sha256_hex_digest():
    digest = identity_hash("ada@example.com")
    assert digest == identity_hash("ada@example.com")
    assert len(digest) == 64
    assert digest != identity_hash("bob@example.com")


# Internationalized local parts are where lowercasing after validation could go wrong.
_unicode_emails = st.builds(
    "{}@{}".format,
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20),
    st.sampled_from(["example.com", "Example.CO.UK", "bücher.de"]),
)


@hypothesis_settings(max_examples=300, database=None)
@given(st.emails() | _unicode_emails | st.text(max_size=80))
def test_normalize_email_is_idempotent_on_what_it_accepts(raw):
    try:
        once = normalize_email(raw)
    except InvalidValue:
        return
    assert normalize_email(once) == once
