"""ICP rules (enrichment/icp.py): who is worth paying a provider for, and the reason why
not, from the rule to the gate to the lead page."""

import pytest
from django.core.exceptions import ValidationError

from enrichment.icp import icp_evaluate, parse_employee_range
from enrichment.models import IcpRule
from providers.models import ProviderCall
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


def _rule(**criteria) -> IcpRule:
    criteria.setdefault("name", "Default")
    return IcpRule.objects.create(**criteria)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("51-200", (51, 200)),
        ("5,001 - 10,000", (5001, 10000)),
        ("1k-5k", (1000, 5000)),
        ("5001+", (5001, None)),
        ("<50", (0, 49)),
        ("10", (10, 10)),
        ("lots", None),
        ("200-51", None),
    ],
)
def test_it_reads_employee_ranges_as_vendors_write_them(text, parsed):
    assert parse_employee_range(text) == parsed


def test_without_rules_every_lead_fits():
    verdict = icp_evaluate(lead=LeadFactory())
    assert verdict.fits
    assert verdict.reasons == ["no ICP rules"]


def test_it_says_which_criterion_a_lead_fails():
    _rule(
        industries="Computer Software\nFinancial Services",
        employee_ranges="51-200\n201-1000",
        countries="United States",
        seniorities="vp\ndirector",
        title_keywords="sales",
    )
    company = CompanyFactory(domain="shop.example", industry="Retail", employee_range="11-50")
    lead = LeadFactory(
        company=company,
        location="London, England, United Kingdom",
        seniority="entry",
        job_title="Software Engineer",
    )
    verdict = icp_evaluate(lead=lead)
    assert not verdict.fits
    assert verdict.score_part == 0
    assert verdict.reasons == [
        "industry Retail not in Computer Software, Financial Services",
        "employees 11-50 not in 51-200, 201-1000",
        "country United Kingdom not in United States",
        "seniority entry and title 'Software Engineer': wants seniority in vp, director or "
        "title with sales",
    ]


def test_a_lead_inside_fits_fully_and_one_not_yet_known_fits_for_now():
    _rule(industries="Computer Software", employee_ranges="201-1000", title_keywords="sales")
    inside = LeadFactory(
        company=CompanyFactory(industry="computer software", employee_range="501-1000"),
        job_title="VP of Sales",
    )
    unknown = LeadFactory(company=CompanyFactory())
    full, partial = icp_evaluate(lead=inside), icp_evaluate(lead=unknown)
    assert full.fits and partial.fits
    assert full.score_part > partial.score_part > 0
    assert partial.reasons == ["Default: fits; not known yet: industry, employees, role"]


def test_deny_wins_over_allow_and_allow_wins_over_everything_else():
    _rule(
        industries="Computer Software",
        allowed_domains="bigtarget.com\nboth.com",
        denied_domains="competitor.com\nboth.com",
    )
    target = LeadFactory(company=CompanyFactory(domain="eu.bigtarget.com", industry="Retail"))
    rival = LeadFactory(
        company=CompanyFactory(domain="competitor.com", industry="Computer Software")
    )
    both = LeadFactory(company=CompanyFactory(domain="both.com"))
    assert icp_evaluate(lead=target).fits
    assert icp_evaluate(lead=rival).reasons == ["domain competitor.com is on the deny list"]
    assert not icp_evaluate(lead=both).fits


def test_free_mail_without_a_company_is_outside_unless_the_rule_allows_it():
    rule = _rule()
    lead = LeadFactory(email="someone@gmail.com", company=None)
    assert icp_evaluate(lead=lead).reasons == [
        "free-mail address (gmail.com) and no company domain"
    ]
    rule.skip_free_mail = False
    rule.save()
    assert icp_evaluate(lead=lead).fits


def test_a_lead_fits_when_any_active_rule_set_takes_it():
    _rule(name="Enterprise", employee_ranges="1001+")
    _rule(name="Fintech", industries="Financial Services")
    _rule(name="Retired", industries="Retail", active=False)
    bank = LeadFactory(
        company=CompanyFactory(industry="Financial Services", employee_range="11-50")
    )
    shop = LeadFactory(company=CompanyFactory(industry="Retail", employee_range="11-50"))
    assert icp_evaluate(lead=bank).reasons == ["Fintech: fits"]
    assert icp_evaluate(lead=shop).reasons == [
        "Enterprise: employees 11-50 not in 1001+",
        "Fintech: industry Retail not in Financial Services",
    ]


def test_a_rule_with_an_unreadable_range_is_refused():
    rule = IcpRule(name="Bad", employee_ranges="51-200\nlots")
    with pytest.raises(ValidationError, match="Not a range: lots"):
        rule.full_clean()


def test_the_gate_sends_a_lead_outside_to_no_paid_provider_and_the_page_says_why(
    sandbox, enrich_now, admin_client
):
    _rule(industries="Computer Software")
    outside = LeadFactory(
        email="buyer@shop.example",
        company=CompanyFactory(domain="shop.example", industry="Retail"),
    )
    inside = LeadFactory(
        company=CompanyFactory(domain="softco.example", industry="Computer Software")
    )
    (skipped,) = enrich_now(outside)
    assert skipped.state == "skipped"
    assert skipped.summary["reason"] == "outside ICP: industry Retail not in Computer Software"
    assert not ProviderCall.objects.exists()
    # The control: the same sandbox is asked for a lead inside.
    (enriched,) = enrich_now(inside)
    assert enriched.state in {"done", "not_found"}
    assert ProviderCall.objects.filter(provider="sandbox").exists()
    page = admin_client.get(f"/leads/{outside.id}/")
    assert page.status_code == 200
    assert "industry Retail not in Computer Software" in page.content.decode()
