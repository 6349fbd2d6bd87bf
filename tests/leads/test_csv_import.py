"""leads.csv_import: reading, column mapping, overrides, the command's --map and
--dry-run, and normalizing in several processes giving what one gives."""

import io

import pytest
from django.core.management import CommandError, call_command

from leads.csv_import import (
    CsvReader,
    ImportFileError,
    RowValues,
    column_mapping,
    detect_format,
    import_leads_csv,
    normalized_rows,
    parse_mapping_overrides,
)
from leads.models import Lead


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
