"""`manage.py import_leads` and leads.csv_import on real files in a temporary directory."""

import csv
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from leads.csv_import import import_leads_csv
from leads.models import Company, Lead, Suppression
from leads.normalize import identity_hash


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("import_leads", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def read_report(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream, delimiter=delimiter))


@pytest.mark.django_db
def test_imports_a_utf8_bom_file_and_prints_the_counts(tmp_path):
    path = write(
        tmp_path / "leads.csv",
        "\ufeffEmail,First Name,Last Name,Company Website,Job Title,Phone\r\n"
        "ada@example.com,Ada,Lovelace,https://www.example.com,CTO,+1 415 555 2671\r\n"
        "bob@example.co.uk,Bob,Smith,,Engineer,\r\n",
    )
    out, _ = run(str(path))
    assert "created 2 / updated 0 / duplicate 0 / invalid 0" in out
    assert "suppressed" not in out
    ada = Lead.objects.get(email="ada@example.com")
    assert (ada.first_name, ada.job_title, ada.phone) == ("Ada", "CTO", "+14155552671")
    assert ada.company.domain == "example.com"
    assert ada.source == "csv:leads.csv"
    assert Lead.objects.get(email="bob@example.co.uk").company.domain == "example.co.uk"
    assert not (tmp_path / "leads.invalid.csv").exists()


@pytest.mark.django_db
def test_semicolons_and_a_quoted_newline(tmp_path):
    path = write(
        tmp_path / "export.csv",
        "e-mail;firstname;lastname;city\n"
        'ada@example.com;Ada;Lovelace;"London\nUnited Kingdom"\n'
        "not-an-email;Bob;Smith;Paris\n",
    )
    out, _ = run(str(path), "--source", "fair-2025")
    assert "created 1 / updated 0 / duplicate 0 / invalid 1" in out
    ada = Lead.objects.get(email="ada@example.com")
    assert (ada.location, ada.source) == ("London United Kingdom", "fair-2025")
    # The quoted newline does not shift row numbers: the bad row is the third record.
    [bad] = read_report(tmp_path / "export.invalid.csv", delimiter=";")
    assert bad["row_number"] == "3"


@pytest.mark.django_db
def test_tab_separated_with_other_header_spellings(tmp_path):
    path = write(
        tmp_path / "vendor.tsv",
        "Work Email\tPerson Linkedin Url\tMobile\tSeniority\tDepartment\n"
        "ada@example.com\tlinkedin.com/in/Ada\t+44 20 7946 0958\tc_suite\tengineering\n",
    )
    out, _ = run(str(path))
    assert "created 1 /" in out
    ada = Lead.objects.get()
    assert ada.linkedin_url == "https://www.linkedin.com/in/ada"
    assert (ada.phone, ada.seniority, ada.department) == ("+442079460958", "c_suite", "engineering")


@pytest.mark.django_db
def test_bad_rows_are_reported_with_row_numbers_and_reasons_and_good_rows_imported(tmp_path):
    path = write(
        tmp_path / "leads.csv",
        "email,first_name,last_name,domain,phone\n"
        "ada@example.com,Ada,Lovelace,,\n"
        "bob@,Bob,Smith,,\n"
        ",Carol,,example.com,\n"
        "dan@example.com,Dan,Brown,,12345\n"
        "\n"
        ",Erin,Stone,example.com,\n"
        "fay@example.com,Fay,Wong,,,surplus\n",
    )
    out, _ = run(str(path))
    assert "created 2 / updated 0 / duplicate 0 / invalid 4" in out
    report_path = tmp_path / "leads.invalid.csv"
    assert f"Rows not imported, with reasons: {report_path}" in out
    assert set(Lead.objects.values_list("first_name", flat=True)) == {"Ada", "Erin"}

    rows = read_report(report_path)
    assert list(rows[0]) == [
        "row_number",
        "reason",
        "email",
        "first_name",
        "last_name",
        "domain",
        "phone",
    ]
    assert [row["row_number"] for row in rows] == ["3", "4", "5", "8"]
    assert rows[0]["reason"].startswith("email 'bob@' is not valid")
    assert rows[0]["first_name"] == "Bob"
    assert rows[1]["reason"].startswith(
        "identity 'first_name=Carol, company_domain=example.com' is not valid: "
    )
    assert (
        "needs an email, a LinkedIn URL, or first name + last name + company domain"
        in (rows[1]["reason"])
    )
    assert rows[2]["reason"].startswith("phone '12345' is not valid")
    assert "the header names 5 columns" in rows[3]["reason"]


@pytest.mark.django_db
def test_nul_characters_are_stripped_on_the_bulk_path(tmp_path):
    # PostgreSQL text cannot hold NUL, so a NUL from a broken export used to fail the COPY
    # of the whole batch; now it is dropped wherever it sits, and the row is imported. (A
    # NUL at the start of a file says it is not UTF-8 at all, and the file is refused.)
    filler = "".join(f"p{n}@beta.com,P,Q{n},Beta,beta.com,VP,Rome\n" for n in range(200))
    path = write(
        tmp_path / "leads.csv",
        "Email,First Name,Last Name,Company,Website,Title,City\n"
        + filler
        + "ada@acme.com,A\x00da,Love\x00lace,Acme\x00 Inc,acme.com,C\x00TO,Lon\x00don\n"
        "\x00bob@acme.com,Bob,Smith,Acme Inc,acme.com,\x00,Paris\n",
    )
    report = import_leads_csv(path=path, source="t", report_path=tmp_path / "bad.csv")
    assert (report.created, report.invalid) == (202, 0)
    ada = Lead.objects.select_related("company").get(email="ada@acme.com")
    assert (ada.first_name, ada.last_name, ada.job_title, ada.location) == (
        "Ada",
        "Lovelace",
        "CTO",
        "London",
    )
    assert ada.company.name == "Acme Inc"
    assert Lead.objects.get(email="bob@acme.com").job_title == ""


@pytest.mark.django_db
def test_repeats_and_existing_leads_count_as_updated_or_duplicate(tmp_path):
    company = Company.objects.create(domain="example.com")
    Lead.objects.create(email="known@example.com", job_title="CEO", company=company)
    Lead.objects.create(email="complete@example.com", job_title="CFO", company=company)
    path = write(
        tmp_path / "leads.csv",
        "email,title,phone\n"
        "known@example.com,Intern,+14155552671\n"
        "complete@example.com,Intern,\n"
        "new@example.com,,\n"
        "NEW@example.com,Engineer,\n"
        "new@example.com,,\n",
    )
    out, _ = run(str(path))
    assert "created 1 / updated 1 / duplicate 3 / invalid 0" in out
    known = Lead.objects.get(email="known@example.com")
    assert (known.job_title, known.phone) == ("CEO", "+14155552671")
    assert Lead.objects.get(email="new@example.com").job_title == "Engineer"


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_counts_do_not_depend_on_the_batch_size(tmp_path, batch_size):
    # The known lead has nothing to gain from row 3, but row 6 fills its title: the lead
    # counts as updated once and its other row as a duplicate, whichever batches they are in.
    company = Company.objects.create(domain="example.com")
    Lead.objects.create(email="known@example.com", company=company)
    path = write(
        tmp_path / "leads.csv",
        "email,title\n"
        "a@example.com,\n"
        "known@example.com,\n"
        "b@example.com,\n"
        "a@example.com,CTO\n"
        "known@example.com,CEO\n"
        "broken,\n",
    )
    seen = []
    report = import_leads_csv(
        path=path,
        source="test",
        report_path=None,
        batch_size=batch_size,
        progress=lambda report: seen.append(report.total),
    )
    counts = (report.created, report.updated, report.duplicate, report.invalid, report.total)
    assert counts == (2, 1, 2, 1, 6)
    assert seen[-1] == 6
    assert Lead.objects.get(email="a@example.com").job_title == "CTO"
    assert Lead.objects.get(email="known@example.com").job_title == "CEO"
    assert report.report_path is None


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
def test_a_terminal_gets_a_progress_bar_and_a_log_gets_none(tmp_path):
    rows = "".join(f"lead{n}@company{n % 50}.com,Lead {n}\n" for n in range(2500))
    path = write(tmp_path / "big.csv", "email,job title\n" + rows)
    terminal = Terminal()
    call_command("import_leads", str(path), stdout=io.StringIO(), stderr=terminal)
    bar = terminal.getvalue()
    assert "\r[" in bar
    assert "] 100% 2500 rows" in bar
    assert bar.endswith("\n")
    assert Lead.objects.count() == 2500
    assert Company.objects.count() == 50

    out, err = run(str(path))
    assert "created 0 / updated 0 / duplicate 2500 / invalid 0" in out
    assert "\r" not in err


@pytest.mark.django_db
def test_suppressed_rows_are_refused_counted_and_reported(tmp_path):
    Suppression.objects.create(
        kind=Suppression.Kind.EMAIL,
        identifier_hash=identity_hash("gone@example.com"),
        reason="erasure request",
    )
    path = write(tmp_path / "leads.csv", "email\nada@example.com\nGone@Example.com\n")
    report_path = tmp_path / "out" / "rejected.csv"
    report_path.parent.mkdir()
    out, _ = run(str(path), "--report", str(report_path))
    assert "created 1 / updated 0 / duplicate 0 / invalid 0 / suppressed 1" in out
    assert not Lead.objects.filter(email="gone@example.com").exists()
    [row] = read_report(report_path)
    assert (row["row_number"], row["email"]) == ("3", "Gone@Example.com")
    assert "suppressed" in row["reason"]


@pytest.mark.django_db
def test_a_windows_1252_file_is_read_with_a_note(tmp_path):
    path = write(tmp_path / "excel.csv", "email,last name\nzoe@example.com,Müller\n", "cp1252")
    out, err = run(str(path))
    assert "created 1 /" in out
    assert "not valid UTF-8; read it as cp1252" in err
    assert Lead.objects.get().last_name == "Müller"


@pytest.mark.django_db
def test_a_utf16_file_with_a_byte_order_mark_is_read(tmp_path):
    path = write(tmp_path / "unicode.csv", "email\tfirst name\nzoe@example.com\tZoë\n", "utf-16")
    out, _ = run(str(path))
    assert "created 1 /" in out
    assert Lead.objects.get().first_name == "Zoë"


@pytest.mark.django_db
def test_an_excel_workbook_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "leads.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(CommandError, match=r"zip archive \(an Excel \.xlsx workbook\?\)"):
        run(str(path))


def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match=r"nope\.csv does not exist or is not a file"):
        run(str(tmp_path / "nope.csv"))


@pytest.mark.django_db
def test_a_file_without_an_identity_column_is_refused_before_importing(tmp_path):
    path = write(tmp_path / "leads.csv", "Name,Company,Notes\nAda Lovelace,Example,hi\n")
    with pytest.raises(CommandError) as caught:
        run(str(path))
    message = str(caught.value)
    assert "leads.csv has no column identifying a lead" in message
    assert "headers found: 'Name', 'Company', 'Notes'" in message
    assert not Lead.objects.exists()
    assert not Company.objects.exists()


@pytest.mark.django_db
def test_an_empty_file_is_refused(tmp_path):
    path = write(tmp_path / "empty.csv", "")
    with pytest.raises(CommandError, match=r"empty\.csv is empty"):
        run(str(path))


@pytest.mark.django_db
def test_an_unclosed_quote_stops_the_import_after_keeping_the_rows_before_it(tmp_path):
    swallowed = "carol@example.com,more\n" * 10_000
    path = write(
        tmp_path / "leads.csv",
        f'email,notes\nada@example.com,ok\nbob@example.com,"never closed\n{swallowed}',
    )
    with pytest.raises(CommandError, match=r"leads\.csv cannot be read as CSV at line \d+"):
        run(str(path))
    assert list(Lead.objects.values_list("email", flat=True)) == ["ada@example.com"]


@pytest.mark.django_db
def test_unknown_columns_are_named_in_a_note(tmp_path):
    path = write(tmp_path / "leads.csv", "email,Favourite colour\nada@example.com,green\n")
    _, err = run(str(path))
    assert "Columns not imported: Favourite colour." in err
