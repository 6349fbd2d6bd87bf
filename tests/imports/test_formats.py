"""Real-format exports of Apollo, HubSpot, Salesforce and a Sales Navigator tool, imported
through `manage.py import_leads` (see fixtures/README.md for where each format comes from)."""

import csv
import io
import shutil

import pytest
from django.core.management import call_command

from leads.models import Company, Lead
from tests.imports.conftest import FIXTURES


def run_import(tmp_path, fixture: str, *args: str) -> tuple[str, list[dict[str, str]]]:
    path = tmp_path / fixture
    shutil.copy(FIXTURES / fixture, path)
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("import_leads", str(path), *args, stdout=stdout, stderr=stderr)
    report = path.with_name(f"{path.stem}.invalid.csv")
    rows = []
    if report.exists():
        with report.open(encoding="utf-8-sig", newline="") as stream:
            rows = list(csv.DictReader(stream))
    return stdout.getvalue() + stderr.getvalue(), rows


@pytest.mark.django_db
def test_an_apollo_people_export(tmp_path):
    out, rejected = run_import(tmp_path, "apollo_people_export.csv")
    assert "created 4 / updated 0 / duplicate 1 / invalid 1" in out
    dave = Lead.objects.get(email="dave@affinitystone.com")
    assert (dave.first_name, dave.last_name, dave.job_title) == ("Dave", "Witbeck", "Owner")
    # The direct/mobile number wins over the switchboard; Apollo's leading quote is dropped.
    assert dave.phone == "+12172549641"
    assert dave.linkedin_url == "https://www.linkedin.com/in/dave-witbeck-31746125"
    assert (dave.seniority, dave.department) == ("Owner", "C-Suite")
    assert dave.location == "Arthur, Illinois, United States"
    assert (dave.company.domain, dave.company.name) == ("affinitystone.com", "Affinity Stone")
    laurence = Lead.objects.get(email="laurence.brophy@moons.co.uk")
    assert laurence.phone == "+441943873181"  # only the corporate phone: the last resort
    assert laurence.company.domain == "moons.co.uk"
    ana = Lead.objects.get(email="ana.gomez@acme.io")
    assert (ana.last_name, ana.job_title, ana.phone) == ("Gómez", "VP of Sales", "+14155552671")
    assert ana.company.name == "Acme, Inc."
    tom = Lead.objects.get(linkedin_url="https://www.linkedin.com/in/tombaker")
    assert tom.email is None and tom.company == ana.company
    [broken] = rejected
    assert broken["row_number"] == "7"
    assert broken["reason"].startswith("email 'broken@@acme.io' is not valid")
    assert "Columns not imported:" in out and "Apollo Contact Id" in out


@pytest.mark.django_db
def test_a_hubspot_contacts_export(tmp_path):
    out, rejected = run_import(tmp_path, "hubspot_contacts_export.csv")
    assert "created 3 / updated 0 / duplicate 1 / invalid 1" in out
    grace = Lead.objects.get(email="grace@cobol.dev")
    # The repeat of record 51 filled nothing the first copy had, and kept its phone.
    assert grace.phone == "+12125550147"
    assert grace.job_title == "Rear Admiral of Engineering"
    assert grace.linkedin_url == "https://www.linkedin.com/in/gracehopper"
    assert grace.location == "New York, New York, United States"
    assert (grace.company.domain, grace.company.name) == ("cobol.dev", "Cobol Labs")
    alan = Lead.objects.get(email="alan@bletchley.org.uk")
    assert (alan.phone, alan.company.domain) == ("+442079460958", "bletchley.org.uk")
    margaret = Lead.objects.get(email="margaret@gmail.com")
    assert margaret.company is None  # a webmail address names no employer
    [nobody] = rejected
    assert nobody["row_number"] == "6"
    assert (
        "needs an email, a LinkedIn URL, or first name + last name + company domain"
        in (nobody["reason"])
    )


@pytest.mark.django_db
def test_a_salesforce_lead_report_in_windows_1252(tmp_path):
    out, rejected = run_import(tmp_path, "salesforce_leads_report.csv")
    assert "created 2 / updated 0 / duplicate 0 / invalid 1" in out
    assert "read it as cp1252" in out
    francois = Lead.objects.get(email="francois.lefevre@sge-equipement.fr")
    assert (francois.first_name, francois.last_name) == ("François", "Lefèvre")
    assert francois.company.name == "Société Générale Équipement"
    assert francois.company.domain == "sge-equipement.fr"
    assert francois.phone == "+33142685300"
    jurgen = Lead.objects.get(email="j.mueller@mueller-praezision.de")
    assert (jurgen.phone, jurgen.location) == ("+491711234567", "München, Bayern, Germany")
    [bob] = rejected
    assert (bob["row_number"], bob["Last Name"]) == ("4", "Smith")
    assert bob["reason"].startswith("phone '12345' is not valid")


@pytest.mark.django_db
def test_a_phantombuster_sales_navigator_export(tmp_path):
    out, rejected = run_import(tmp_path, "phantombuster_salesnav_export.csv")
    assert "created 2 / updated 0 / duplicate 0 / invalid 1" in out
    priya = Lead.objects.get(linkedin_url="https://www.linkedin.com/in/priya-raman-revops")
    assert (priya.first_name, priya.last_name) == ("Priya", "Raman")
    assert priya.job_title == "Head of Revenue Operations"
    assert priya.location == "Seattle, Washington, United States"
    assert Lead.objects.filter(linkedin_url="https://www.linkedin.com/in/marcusoneil").exists()
    # A lone Sales Navigator URL names no public profile: reported, not guessed.
    [li] = rejected
    assert (li["row_number"], li["fullName"]) == ("4", "Li Wei")
    assert "not a profile URL" in li["reason"]
    assert not Company.objects.exists()


@pytest.mark.django_db
def test_each_format_maps_its_columns_without_help(upload):
    expected = {
        "apollo_people_export.csv": {
            "Email": "email",
            "Mobile Phone": "phone",
            "Corporate Phone": "phone",
            "Person Linkedin Url": "linkedin_url",
            "Company": "company_name",
            "City": "city",
            "Apollo Contact Id": "",
        },
        "hubspot_contacts_export.csv": {
            "Company Domain Name": "company_domain",
            "Website URL": "website",
            "Job Title": "job_title",
            "State/Region": "state",
            "Contact owner": "",
        },
        "salesforce_leads_report.csv": {
            "Company / Account": "company_name",
            "Mobile": "phone",
            "Title": "job_title",
            "Lead Owner": "",
        },
        "phantombuster_salesnav_export.csv": {
            "linkedInProfileUrl": "linkedin_url",
            "profileUrl": "linkedin_url",
            "firstName": "first_name",
            "fullName": "full_name",
            "companyUrl": "",
        },
    }
    for fixture, columns in expected.items():
        mapping = dict(zip(upload(fixture).header, upload(fixture).mapping, strict=True))
        assert {column: mapping[column] for column in columns} == columns, fixture
