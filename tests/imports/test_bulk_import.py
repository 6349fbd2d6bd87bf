"""leads.bulk_import keeps leads_upsert's rules: the same normalization (property-tested
against lead_input_from_mapping) and the same merge (the same inputs give the same rows
through either path)."""

import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.bulk_import import BulkItem, BulkNormalizer, leads_bulk_upsert
from leads.models import Company, Lead, Suppression
from leads.normalize import InvalidValue, identity_hash, normalize_phone
from leads.services import lead_input_from_mapping, leads_upsert

_label = st.text("abcxyz09-", min_size=1, max_size=8)
_local = st.text("abcXYZ09._+-!#&'", min_size=1, max_size=12)
_domain = st.one_of(
    st.sampled_from(["acme.com", "ACME.io", "mail.example.co.uk", "gmail.com", "a.b", "x.test"]),
    st.builds(lambda a, b, tld: f"{a}.{b}.{tld}", _label, _label, st.sampled_from(["com", "de"])),
    st.text("abc.-_", min_size=1, max_size=10),
)
_email = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain),
    st.text("ab@.x ", max_size=12),
    st.just("Ada.Lovelace+crm@Example.COM"),
    st.builds(lambda n: "a" * n + "@acme.com", st.integers(60, 70)),
)
_linkedin = st.one_of(
    st.builds(
        lambda scheme, host, kind, slug, tail: f"{scheme}{host}linkedin.com/{kind}/{slug}{tail}",
        st.sampled_from(["", "https://", "http://", "HTTPS://", "//"]),
        st.sampled_from(["", "www.", "uk.", "WWW.", "sub.domain."]),
        st.sampled_from(["in", "pub", "IN", "sales/lead", "company"]),
        st.text("abc-09%é\x01\x85", min_size=0, max_size=8),
        st.sampled_from(["", "/", "?trk=x", "/details", "#top", "//"]),
    ),
    st.text("linkedin.com/in/x ", max_size=20),
)
# North American numbers in the shapes BulkNormalizer reads without phonenumbers' parser,
# and near misses: any area code and exchange (most are not valid), other separators.
_nanp = st.builds(
    lambda quote, prefix, area, exchange, line, sep: (
        f"{quote}{prefix}{area}{sep}{exchange}{sep}{line}"
    ),
    st.sampled_from(["", "'"]),
    st.sampled_from(["", "+1 ", "+1", "+1-", "+1.", "1 ", "+1 (", "("]),
    st.from_regex(r"[0-9]{3}\)?", fullmatch=True),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.sampled_from(["", " ", "-", ".", "  ", "/"]),
)
# Ones phonenumbers accepts: real area codes and exchanges of the US and of Canada (416).
_valid_nanp = st.builds(
    lambda fmt, area, exchange, line: fmt.format(area, exchange, line),
    st.sampled_from(["+1 {}-{}-{}", "'+1 {}-{}-{}", "({}) {}-{}", "{}.{}.{}", "+1{}{}{}"]),
    st.sampled_from(["212", "415", "617", "713", "416", "800", "900"]),
    st.integers(200, 999),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
)
_phone = st.one_of(
    st.sampled_from(["+1 415 555 2671", "'+44 20 7946 0958", "12345", "(212) 555-0147", "x"]),
    st.text("+0123456789 -()", max_size=16),
    _nanp,
    _valid_nanp,
)
# NUL too: PostgreSQL text cannot hold it, so both paths strip it.
_text = st.text("Ab é\t\x00", max_size=6)


@st.composite
def raw_records(draw) -> dict[str, str]:
    keys = {
        "email": _email,
        "linkedin_url": _linkedin,
        "phone": _phone,
        "first_name": _text,
        "last_name": _text,
        "job_title": _text,
        "company_domain": _domain,
        "website": st.one_of(_domain, st.builds(lambda d: f"https://www.{d}/", _domain)),
        "location": _text,
    }
    return {key: draw(strategy) for key, strategy in keys.items() if draw(st.booleans())}


def _outcome(function, values):
    try:
        return function(values)
    except InvalidValue as exc:
        return ("invalid", exc.field, str(exc.value), exc.reason)


@given(values=raw_records())
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_bulk_normalizer_gives_exactly_what_lead_input_from_mapping_gives(values):
    normalizer = BulkNormalizer()
    # Twice: the second answer comes from the caches.
    assert _outcome(normalizer.lead_input, values) == _outcome(lead_input_from_mapping, values)
    assert _outcome(normalizer.lead_input, values) == _outcome(lead_input_from_mapping, values)


@pytest.mark.parametrize("region", ["US", "CA", "GB"])
@given(raw=_phone)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_phone_read_the_short_way_is_what_normalize_phone_gives(raw, region):
    # The everyday North American number skips phonenumbers' parser; it must land on the
    # same E.164 form, and anything else on normalize_phone's own answer and reason.
    with override_settings(PHONE_DEFAULT_REGION=region):
        normalizer = BulkNormalizer()
    assert _outcome(normalizer.phone, raw) == _outcome(
        lambda value: normalize_phone(value, region=region), raw
    )


def _state() -> list[tuple]:
    return sorted(
        (
            lead.email or "",
            lead.first_name,
            lead.last_name,
            lead.linkedin_url,
            lead.phone,
            lead.job_title,
            lead.location,
            lead.company.domain if lead.company else "",
            lead.source,
        )
        for lead in Lead.objects.select_related("company")
    )


PEOPLE = [
    {"email": "ada@acme.com"},
    {"email": "ADA@acme.com", "phone": "+1 415 555 2671", "job_title": "CTO"},
    {"linkedin_url": "linkedin.com/in/ada", "first_name": "Ada", "last_name": "Lovelace"},
    {"first_name": "Ada", "last_name": "Lovelace", "company_domain": "acme.com"},
    {"first_name": "ada", "last_name": "LOVELACE", "website": "https://www.acme.com"},
    {"email": "bob@acme.com", "linkedin_url": "https://www.linkedin.com/in/ada/"},
    {"email": "carol@beta.io", "location": "Paris"},
    {"first_name": "Carol", "last_name": "Ng", "company_domain": "beta.io", "job_title": "VP"},
    {"email": "gone@acme.com"},
    {"linkedin_url": "https://linkedin.com/in/known", "job_title": "Founder"},
    {"email": "dan@gmail.com", "first_name": "Dan", "last_name": "Ek"},
]


def _seed() -> None:
    acme = Company.objects.create(domain="acme.com")
    Lead.objects.create(email="known@acme.com", linkedin_url="https://www.linkedin.com/in/known")
    Lead.objects.create(
        first_name="Carol", last_name="Ng", company=Company.objects.create(domain="beta.io")
    )
    Lead.objects.create(email="full@acme.com", job_title="CEO", phone="+14155550100", company=acme)
    Suppression.objects.create(
        kind="email", identifier_hash=identity_hash("gone@acme.com"), reason="erasure"
    )


@pytest.mark.django_db
@given(picks=st.lists(st.integers(0, len(PEOPLE) - 1), min_size=1, max_size=12))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_bulk_upsert_writes_what_leads_upsert_writes(picks):
    inputs = [lead_input_from_mapping(PEOPLE[i]) for i in picks]
    outcomes = []
    for upsert in (leads_upsert, leads_bulk_upsert):
        with transaction.atomic():
            _seed()
            if upsert is leads_upsert:
                result = upsert(inputs=inputs, source="t", origin="t")
            else:
                result = upsert(items=[BulkItem(item) for item in inputs], source="t", origin="t")
            created = {Lead.objects.get(pk=pk).email for pk in result.created}
            outcomes.append(
                (
                    _state(),
                    len(result.created),
                    len(result.updated),
                    len(result.unchanged),
                    result.duplicate,
                    result.suppressed_positions,
                    created,
                )
            )
            transaction.set_rollback(True)
    assert outcomes[0] == outcomes[1]


@pytest.mark.django_db
def test_each_input_knows_its_lead_and_a_suppressed_one_none():
    _seed()
    items = [BulkItem(lead_input_from_mapping(PEOPLE[i])) for i in (0, 1, 8, 9, 3)]
    result = leads_bulk_upsert(items=items, source="t", origin="t")
    ada = Lead.objects.get(email="ada@acme.com")
    known = Lead.objects.get(email="known@acme.com")
    # Ada's email lead has no name, so "Ada Lovelace at acme.com" is another person.
    named = Lead.objects.get(first_name="Ada", last_name="Lovelace")
    assert result.lead_ids == [ada.id, ada.id, None, known.id, named.id]
    assert result.suppressed_positions == [2]
    assert (ada.job_title, ada.phone, ada.company.domain) == ("CTO", "+14155552671", "acme.com")
    assert known.job_title == "Founder"


@pytest.mark.django_db
def test_a_company_name_fills_only_a_blank_name():
    Company.objects.create(domain="named.com", name="Named Ltd")
    items = [
        BulkItem(lead_input_from_mapping({"email": "a@named.com"}), "Other Name"),
        BulkItem(lead_input_from_mapping({"email": "b@fresh.com"}), "Fresh Inc"),
        BulkItem(lead_input_from_mapping({"email": "c@fresh.com"}), "Ignored, second"),
    ]
    leads_bulk_upsert(items=items, source="t", origin="t")
    assert Company.objects.get(domain="named.com").name == "Named Ltd"
    assert Company.objects.get(domain="fresh.com").name == "Fresh Inc"


@pytest.mark.django_db
def test_new_leads_are_announced_once_per_batch_unless_asked_not_to(settings):
    from leads.signals import leads_created

    seen = []

    def receiver(sender, lead_ids, origin, **kwargs):
        seen.append((sorted(lead_ids), origin))

    leads_created.connect(receiver)
    try:
        first = leads_bulk_upsert(
            items=[BulkItem(lead_input_from_mapping({"email": "x@acme.com"}))],
            source="t",
            origin="csv:x.csv",
        )
        leads_bulk_upsert(
            items=[BulkItem(lead_input_from_mapping({"email": "y@acme.com"}))],
            source="t",
            origin="csv:y.csv",
            notify=False,
        )
    finally:
        leads_created.disconnect(receiver)
    assert seen == [(first.created, "csv:x.csv")]


def test_a_lead_row_has_the_fields_of_a_lead_input_in_the_same_order():
    import dataclasses

    from leads.bulk_import import LeadRow
    from leads.services import LeadInput

    assert LeadRow._fields == tuple(f.name for f in dataclasses.fields(LeadInput))
