"""leads.csv_import: reading, column mapping, overrides, the command's --map and
--dry-run, and normalizing in several processes giving what one gives."""

import gc
import io
import threading
from dataclasses import astuple

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import leads.csv_import
from leads.bulk_import import BulkItem, LeadRow
from leads.csv_import import (
    CsvReader,
    ImportFileError,
    RowNormalizer,
    RowValues,
    column_mapping,
    detect_format,
    import_leads_csv,
    normalized_rows,
    parse_mapping_overrides,
)
from leads.models import Lead
from leads.normalize import InvalidValue
from leads.services import lead_input_from_mapping


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        ("\ufeffEmail;Name\nada@acme.com;Ada\n", "utf-8", ("utf-8-sig", ";")),
        ("Email\tName\nada@acme.com\tAda\n", "utf-8", ("utf-8-sig", "\t")),
        ("Email,Nom\nzoe@acme.com,Zoë\n", "cp1252", ("cp1252", ",")),
        ("Email,Name\nzoe@acme.com,Zoë\n", "utf-16", ("utf-16", ",")),
    ],
)
def test_the_encoding_and_delimiter_are_detected(tmp_path, text, encoding, expected):
    fmt = detect_format(write(tmp_path / "x.csv", text, encoding))
    assert (fmt.encoding, fmt.delimiter) == expected
    assert fmt.header[0] == "Email"


def test_headers_are_mapped_by_their_names_whatever_their_spelling():
    mapping = column_mapping(
        ["E-Mail", "first_name", "LastName", "Company Website", "Person Linkedin Url", "Notes"]
    )
    assert mapping.targets == (
        "email",
        "first_name",
        "last_name",
        "website",
        "linkedin_url",
        "",
    )
    assert mapping.ignored() == ["Notes"]


def test_an_override_maps_ignores_and_takes_precedence():
    overrides = parse_mapping_overrides(["Courriel=email", "Phone=ignore", "Mobile = phone"])
    assert overrides == {"Courriel": "email", "Phone": "ignore", "Mobile": "phone"}
    mapping = column_mapping(["Courriel", "Phone", "Mobile", "Email"], overrides)
    assert mapping.targets == ("email", "", "phone", "email")
    # The column chosen by hand is tried before the one recognized by its name.
    assert mapping.columns()["email"] == [0, 3]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Nope": "email"}, "names column 'Nope', which file does not have"),
        ({"Email": "emails"}, "'emails' (for column 'Email') is not a field"),
        ({"Email": "ignore"}, "has no column identifying a lead"),
    ],
)
def test_a_wrong_override_is_refused_with_the_reason(overrides, message):
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        column_mapping(["Email", "Name"], overrides)


def test_pairs_that_are_not_column_equals_field_are_refused():
    with pytest.raises(ImportFileError, match="is not COLUMN=FIELD"):
        parse_mapping_overrides(["Email email"])


def test_row_values_split_a_full_name_join_a_location_and_prefer_a_profile_url():
    header = ["fullName", "profileUrl", "linkedInProfileUrl", "City", "Country", "Company"]
    values = RowValues(column_mapping(header))
    lead, company = values(
        [
            "Priya Raman Iyer",
            "https://www.linkedin.com/sales/lead/ACw,NAME",
            "https://www.linkedin.com/in/priya",
            "Seattle",
            "United States",
            "Northwind  Traders",
        ]
    )
    assert (lead["first_name"], lead["last_name"]) == ("Priya", "Raman Iyer")
    assert lead["linkedin_url"] == "https://www.linkedin.com/in/priya"
    assert lead["location"] == "Seattle, United States"
    assert company == "Northwind Traders"


# One column per field (read by position) and several for some (read in order).
ONE_EACH = [
    "Email",
    "fullName",
    "First Name",
    "Last Name",
    "Person Linkedin Url",
    "Company",
    "Website",
    "Mobile Phone",
    "Title",
    "Seniority",
    "Departments",
    "City",
    "State",
    "Country",
]
# Several columns for most fields, read by position with fallbacks; several LinkedIn
# columns (SEVERAL), which are read in order.
FALLBACKS = [
    "Email",
    "Work Email",
    "fullName",
    "Contact Name",
    "First Name",
    "Last Name",
    "Person Linkedin Url",
    "Company",
    "Account Name",
    "Website",
    "Mobile Phone",
    "Corporate Phone",
    "Title",
    "City",
    "Person City",
    "State",
    "Country",
]
SEVERAL = [
    "Email",
    "Work Email",
    "fullName",
    "First Name",
    "Last Name",
    "profileUrl",
    "linkedInProfileUrl",
    "Company",
    "Website",
    "Mobile Phone",
    "Corporate Phone",
    "Title",
    "City",
    "State",
    "Country",
]
# Per kind of column: good values, and the ways a file spoils them.
_GOOD = {
    "email": ["ada@acme.com", "Ada.Lovelace@Example.COM", "bob@beta.io", "", "bob@@acme.com"],
    "name": ["Ada Lovelace", "Grace Brewster Hopper", "Zoë"],
    "linkedin": ["https://www.linkedin.com/in/ada/", "linkedin.com/in/bob", "example.com/x"],
    "sales_nav": ["https://www.linkedin.com/sales/lead/ACw,NAME"],
    "website": ["acme.com", "https://www.acme.co.uk/about", "co.uk"],
    "phone": ["'+1 415-555-2671", "(212) 555-0147", "+44 20 7946 0958", "12345"],
    "text": ["Ada", "Lovelace", "VP of Sales", "Acme Inc", "Paris", "x" * 300],
}
_KIND = {
    "Email": "email",
    "Work Email": "email",
    "fullName": "name",
    "Contact Name": "name",
    "Person Linkedin Url": "linkedin",
    "linkedInProfileUrl": "linkedin",
    "profileUrl": "sales_nav",
    "Website": "website",
    "Mobile Phone": "phone",
    "Corporate Phone": "phone",
}


def _cell(column: str):
    good = st.sampled_from(_GOOD[_KIND.get(column, "text")])
    spoiled = st.builds(
        lambda value, before, inside, after: before + value.replace(" ", inside, 1) + after,
        good,
        st.sampled_from(["", " ", "\t", "\x00"]),
        st.sampled_from([" ", "  ", "\t", " \x00"]),
        st.sampled_from(["", " ", "\n", "\x00"]),
    )
    blank = st.sampled_from(["", " ", "\t\n"])
    # Mostly good, so that most rows get past the validators to the values compared.
    return st.one_of(good, good, good, good, spoiled, spoiled, blank, st.text(max_size=4))


@pytest.mark.parametrize("header", [ONE_EACH, FALLBACKS, SEVERAL])
@given(data=st.data())
@hypothesis_settings(max_examples=200, deadline=None)
def test_a_row_normalizes_as_its_values_through_lead_input_from_mapping(header, data):
    # The import reads a row's values by position, checks them at once and caches what
    # repeats; what it makes of them must be what the plain path makes of the same
    # values by name.
    width = len(header)
    cells = data.draw(st.tuples(*(_cell(column) for column in header)))
    # Usually the header's width; sometimes short, or with blank or filled cells past it.
    cells = data.draw(
        st.one_of(
            st.just(list(cells)),
            st.builds(lambda n: list(cells[:n]), st.integers(0, width)),
            st.builds(lambda extra: [*cells, *extra], st.lists(st.sampled_from(["", "x"]))),
        )
    )
    mapping = column_mapping(header)
    normalize = RowNormalizer(mapping, ",")
    item = normalize(cells)
    assert repr(normalize(cells)) == repr(item)  # the second time from the caches
    if item is None or (isinstance(item, InvalidValue) and item.field == "row"):
        assert not "".join(cells).strip() or len(cells) > width
        return
    values, company_name = RowValues(mapping)(cells)
    try:
        expected = lead_input_from_mapping(values)
    except InvalidValue as exc:
        assert isinstance(item, InvalidValue)
        assert (item.field, item.value, item.reason) == (exc.field, exc.value, exc.reason)
        return
    assert item == BulkItem(LeadRow(*astuple(expected)), company_name)
    assert "\x00" not in company_name


@pytest.mark.parametrize(
    ("first", "last", "location", "expected"),
    [
        (" ", "\t", " ", ("Ada", "King Lovelace", "London, UK")),
        ("", "", "", ("Ada", "King Lovelace", "London, UK")),
        ("Augusta", " ", "Ockham", ("Augusta", "", "Ockham")),
    ],
)
def test_blank_cells_leave_a_full_name_and_places_to_fill_in(first, last, location, expected):
    # A cell of spaces is no value: the full name and the city and country fill in for it.
    header = ["Email", "Full Name", "First Name", "Last Name", "Location", "City", "Country"]
    cells = ["ada@acme.com", "Ada King Lovelace", first, last, location, " London ", "UK"]
    item = RowNormalizer(column_mapping(header), ",")(cells)
    assert (item.lead.first_name, item.lead.last_name, item.lead.location) == expected


def test_a_blank_first_column_leaves_the_field_to_the_next_one():
    header = ["Email", "Full Name", "Contact Name", "Company", "Account", "Phone", "Mobile"]
    cells = [" ", "  ", "Ada Lovelace", "", "Acme  Inc", "\t", "'+1 415-555-2671"]
    mapping = column_mapping([*header, "Work Email"])
    item = RowNormalizer(mapping, ",")([*cells, "ada@acme.com"])
    assert item == BulkItem(
        LeadRow(
            email="ada@acme.com",
            first_name="Ada",
            last_name="Lovelace",
            company_domain="acme.com",
            phone="+14155552671",
        ),
        "Acme Inc",
    )


@pytest.mark.django_db
def test_the_command_takes_a_mapping_by_hand(tmp_path):
    path = write(tmp_path / "crm.csv", "Courriel,Prénom\nada@acme.com,Ada\n")
    out = io.StringIO()
    call_command(
        "import_leads",
        str(path),
        "--map",
        "Courriel=email",
        "--map",
        "Prénom=first_name",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "created 1 /" in out.getvalue()
    assert Lead.objects.get().first_name == "Ada"
    with pytest.raises(CommandError, match="is not COLUMN=FIELD"):
        call_command("import_leads", str(path), "--map", "Courriel")


@pytest.mark.django_db
def test_the_dry_run_writes_nothing_and_prints_the_estimate(tmp_path, sandbox):
    Lead.objects.create(email="known@acme.com")
    path = write(
        tmp_path / "leads.csv",
        "email\nada@acme.com\nADA@acme.com\nknown@acme.com\nbroken\n",
    )
    out = io.StringIO()
    call_command("import_leads", str(path), "--dry-run", "--fields", "email", stdout=out)
    text = out.getvalue()
    assert "Dry run: 4 row(s); nothing was written or spent." in text
    assert "new leads 1 / known leads 1 / duplicate rows 1 / invalid rows 1" in text
    assert "sandbox: 2 person and 0 company lookup(s), about 2 credit(s)" in text
    assert Lead.objects.count() == 1
    assert not (tmp_path / "leads.invalid.csv").exists()
    with pytest.raises(CommandError, match="unknown fields"):
        call_command("import_leads", str(path), "--dry-run", "--fields", "shoe_size")


def test_several_processes_normalize_exactly_as_one(tmp_path, settings):
    rows = "".join(
        f"person{n}@company{n % 7}.com,+1 415 555 {n % 10000:04d},{'bad' if n % 97 == 0 else ''}\n"
        for n in range(5_000)
    )
    # An unclosed quote swallows what follows until the csv module's field limit breaks.
    swallowed = 'x@y.com,"unclosed\n' + "z@y.com,1,2\n" * 15_000
    path = write(tmp_path / "big.csv", "email,phone,notes\n" + rows + swallowed)
    fmt = detect_format(path)
    mapping = column_mapping(fmt.header)

    def read(workers):
        seen = []
        with CsvReader(path, fmt) as reader:
            try:
                for row_number, cells, item in normalized_rows(reader, mapping, workers=workers):
                    seen.append((row_number, cells, repr(item)))
            except Exception as exc:  # the broken last line, raised after every row before it
                seen.append(type(exc).__name__)
        return seen

    one, two = read(1), read(2)
    assert one == two
    assert len(one) == 5_001 and one[-1] == "Error"


@pytest.mark.django_db
def test_an_import_with_two_workers_counts_as_one_does(tmp_path):
    rows = "".join(f"p{n}@c{n % 5}.com,{'x' if n % 50 == 0 else 'CTO'}\n" for n in range(3_000))
    path = write(tmp_path / "leads.csv", "email,title\n" + rows + "bad@@c.com,\n")
    report = import_leads_csv(path=path, source="t", report_path=None, workers=2)
    assert (report.created, report.invalid, report.total) == (3_000, 1, 3_001)
    assert Lead.objects.count() == 3_000


@pytest.mark.django_db
def test_a_failing_batch_stops_the_reading_thread_and_restores_the_collector(tmp_path, monkeypatch):
    rows = "".join(f"p{n}@c{n % 5}.com\n" for n in range(5_000))
    path = write(tmp_path / "leads.csv", "email\n" + rows)
    calls = []

    def upsert_then_fail(**kwargs):
        calls.append(len(kwargs["items"]))
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real_upsert(**kwargs)

    real_upsert = leads.csv_import.leads_bulk_upsert
    monkeypatch.setattr(leads.csv_import, "leads_bulk_upsert", upsert_then_fail)
    with pytest.raises(RuntimeError, match="went away"):
        import_leads_csv(path=path, source="t", report_path=None, batch_size=100)
    assert calls == [100, 100]
    assert Lead.objects.count() == 100
    assert not [t for t in threading.enumerate() if t.name == "csv-import-reader"]
    assert gc.isenabled()
