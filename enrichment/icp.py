"""The ideal customer profile: is a lead worth paying a provider for, and why not.

`icp_evaluate` reads the lead, its company and the active IcpRule sets; the gate
(`enrichment.selectors.lead_plan`) keeps leads outside all of them away from paid
providers, and `enrichment.priority` adds the fit to the lead score.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from common.cached_tables import CachedTable
from enrichment.models import IcpRule
from leads.models import Lead
from leads.normalize import email_domain, is_webmail_domain

# What ICP fit adds to the lead score (enrichment.priority): every criterion known and
# met, some criteria not known yet, no rules at all.
SCORE_FULL_FIT = 40
SCORE_PARTIAL_FIT = 25
SCORE_NO_RULES = 20

_NUMBER = r"(\d[\d,.]*)\s*([kK])?"
_RANGE = re.compile(rf"^\s*{_NUMBER}\s*(?:-|\u2013|to)\s*{_NUMBER}\s*$")
_OPEN_RANGE = re.compile(rf"^\s*(?:{_NUMBER}\s*\+|(?:over|more than)\s+{_NUMBER})\s*$")
_LESS_THAN = re.compile(rf"^\s*(?:<|under|less than)\s*{_NUMBER}\s*$")


@dataclass(frozen=True)
class IcpVerdict:
    fits: bool
    reasons: list[str] = field(default_factory=list)
    score_part: int = 0


def lines(text: str) -> list[str]:
    """Return the non-blank lines of an admin list field, stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _number(digits: str, thousands: str | None) -> int:
    value = float(digits.replace(",", ""))
    return int(value * 1000 if thousands else value)


def parse_employee_range(text: str) -> tuple[int, int | None] | None:
    """Return (low, high) of "51-200", "5,001-10,000", "5001+", "1k-5k" (high None: open)."""
    if match := _RANGE.match(text):
        low, high = _number(*match.group(1, 2)), _number(*match.group(3, 4))
        return (low, high) if low <= high else None
    if match := _OPEN_RANGE.match(text):
        digits, thousands = match.group(1, 2) if match.group(1) else match.group(3, 4)
        return (_number(digits, thousands), None)
    if match := _LESS_THAN.match(text):
        return (0, max(_number(*match.group(1, 2)) - 1, 0))
    if re.fullmatch(r"\s*\d[\d,]*\s*", text):
        value = int(text.replace(",", ""))
        return (value, value)
    return None


def _overlaps(a: tuple[int, int | None], b: tuple[int, int | None]) -> bool:
    a_high = a[1] if a[1] is not None else float("inf")
    b_high = b[1] if b[1] is not None else float("inf")
    return a[0] <= b_high and b[0] <= a_high


def _domain_listed(domain: str, listed: Sequence[str]) -> bool:
    """Whether the domain or one of its parents is listed (eu.acme.com matches acme.com)."""
    entries = {entry.casefold().removeprefix("www.").removeprefix("@") for entry in listed}
    parts = domain.casefold().split(".")
    return any(".".join(parts[i:]) in entries for i in range(len(parts) - 1))


def _country(location: str) -> str:
    # Providers write "City, Region, Country"; the last part is the country.
    return location.rsplit(",", 1)[-1].strip()


def _join(values: Sequence[str]) -> str:
    return ", ".join(values)


class _Check:
    """The outcome of one rule set for one lead: what failed and what was not known."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.unknown: list[str] = []


def _evaluate_rule(rule: IcpRule, lead: Lead) -> _Check | None:
    """Return the check of one rule set, or None when an allow-list entry lets it in."""
    check = _Check()
    company = lead.company if lead.company_id else None
    company_domain = company.domain if company else ""
    mail_domain = email_domain(lead.email) if lead.email else ""
    domains = [d for d in (company_domain, mail_domain) if d]

    denied = lines(rule.denied_domains)
    for domain in domains:
        if denied and _domain_listed(domain, denied):
            check.failed.append(f"domain {domain} is on the deny list")
            return check
    allowed = lines(rule.allowed_domains)
    if allowed and any(_domain_listed(domain, allowed) for domain in domains):
        return None

    if (
        rule.skip_free_mail
        and mail_domain
        and is_webmail_domain(mail_domain)
        and (not company_domain or is_webmail_domain(company_domain))
    ):
        check.failed.append(f"free-mail address ({mail_domain}) and no company domain")

    industries = lines(rule.industries)
    if industries:
        industry = company.industry if company else ""
        if not industry:
            check.unknown.append("industry")
        elif industry.casefold() not in {i.casefold() for i in industries}:
            check.failed.append(f"industry {industry} not in {_join(industries)}")

    ranges = lines(rule.employee_ranges)
    if ranges:
        size_text = company.employee_range if company else ""
        size = parse_employee_range(size_text) if size_text else None
        if size is None:
            check.unknown.append("employees")
        elif not any(
            (wanted := parse_employee_range(r)) is not None and _overlaps(size, wanted)
            for r in ranges
        ):
            check.failed.append(f"employees {size_text} not in {_join(ranges)}")

    countries = lines(rule.countries)
    if countries:
        location = lead.location or (company.hq_location if company else "")
        if not location:
            check.unknown.append("country")
        elif _country(location).casefold() not in {c.casefold() for c in countries}:
            check.failed.append(f"country {_country(location)} not in {_join(countries)}")

    seniorities = lines(rule.seniorities)
    keywords = lines(rule.title_keywords)
    if seniorities or keywords:
        seniority, title = lead.seniority.strip(), lead.job_title.strip()
        by_seniority = seniority.casefold() in {s.casefold() for s in seniorities}
        by_title = any(k.casefold() in title.casefold() for k in keywords)
        if not (seniority or title):
            check.unknown.append("role")
        elif not (by_seniority or by_title):
            said = [f"seniority {seniority}"] if seniority else []
            said += [f"title {title!r}"] if title else []
            wanted = [f"seniority in {_join(seniorities)}"] if seniorities else []
            wanted += [f"title with {_join(keywords)}"] if keywords else []
            check.failed.append(f"{' and '.join(said)}: wants {' or '.join(wanted)}")
    return check


_ACTIVE_RULES = CachedTable(
    "icp_rules_active",
    models=(IcpRule,),
    load=lambda: list(IcpRule.objects.filter(active=True)),
)


def icp_rules_active() -> list[IcpRule]:
    """The active rule sets; shared by the process: read-only."""
    return _ACTIVE_RULES.get()


def icp_evaluate(*, lead: Lead, rules: Sequence[IcpRule] | None = None) -> IcpVerdict:
    """Return whether the lead fits any active rule set, why not, and its score part.

    Pass `rules` (icp_rules_active()) when evaluating many leads, to read them once.
    """
    if rules is None:
        rules = icp_rules_active()
    if not rules:
        return IcpVerdict(fits=True, reasons=["no ICP rules"], score_part=SCORE_NO_RULES)
    reasons = []
    best = None
    for rule in rules:
        check = _evaluate_rule(rule, lead)
        if check is None:
            return IcpVerdict(
                fits=True,
                reasons=[f"{rule.name}: domain on the allow list"],
                score_part=SCORE_FULL_FIT,
            )
        if check.failed:
            prefix = f"{rule.name}: " if len(rules) > 1 else ""
            reasons.extend(prefix + reason for reason in check.failed)
            continue
        if best is None or len(check.unknown) < len(best[1].unknown):
            best = (rule, check)
    if best is None:
        return IcpVerdict(fits=False, reasons=reasons, score_part=0)
    rule, check = best
    if check.unknown:
        return IcpVerdict(
            fits=True,
            reasons=[f"{rule.name}: fits; not known yet: {_join(check.unknown)}"],
            score_part=SCORE_PARTIAL_FIT,
        )
    return IcpVerdict(fits=True, reasons=[f"{rule.name}: fits"], score_part=SCORE_FULL_FIT)
