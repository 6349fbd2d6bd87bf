"""The email-pattern finder: a free local source that guesses a lead's address from the
convention its company's verified addresses already follow (DESIGN.md, pipeline step 3).

The pure part (no database) renders, recognizes and learns the patterns in `PATTERNS`;
`company_email_patterns` and `pattern_candidate` read the examples from the database.

Names are folded to ASCII before use: casefolded (ß → ss), NFKD-decomposed with the
combining accents dropped (é → e, ü → u), a few letters NFKD leaves alone transliterated
(ø → o, ł → l, æ → ae, …), and then every character outside [a-z0-9] dropped. So a
hyphenated or multi-part name is one joined word in every pattern ("Mary-Jane" → maryjane,
"O'Brien" → obrien, "van der Berg" → vanderberg), and its initial is the first letter of
that word ("Mary-Jane" → m). A name that folds to nothing ("李") cannot render a pattern.
Conventions that keep a name's hyphen or spell ü as ue are not recognized.

Learning counts, over the examples that can say something:
- an example lacking a first or a last name is skipped: it cannot tell which pattern the
  company uses for people who have both;
- an ambiguous example, whose address more than one pattern reproduces (first name equal
  to last name, single-letter names: "john.john", "jsmith" for "J Smith"), is skipped: it
  cannot tell those patterns apart, and splitting it between them would make an example
  that agrees with the leading pattern lower that pattern's confidence;
- an example no pattern reproduces (a nickname, a legacy alias) counts against every
  pattern: it is evidence the convention is not applied to everyone.

The confidence of a pattern with `support` agreeing examples out of `total` counted is

    min(0.95, support / (total + 1))

the posterior mean share under a Beta(0, 1) prior, i.e. as if one more example had
disagreed: one example alone gives 0.5, five of five 0.83, ten of ten 0.91, and a split
of three against three 0.43 each. It grows with every agreeing example and falls with
every disagreeing one. The ceiling holds because no convention says for sure how one more
person's mailbox is named (namesakes get john.smith2, people go by nicknames).

For the integrator: a pattern guess is unverified. It may only be applied after a verifier
confirms the address (e.g. a provider's `email_verify`, such as Hunter's); unverified it can
go no further than review. Two consequences for wiring it into the merge:
- a guessed address is on the company domain by construction, so the merge's
  domain-match boost (`merge.DOMAIN_MATCH_EVIDENCE`) is not independent evidence for it,
  and with that boost a 0.85 guess would already cross the email accept threshold;
- the guess's confidence is how far the company's convention can be trusted, not a
  verification, so it must not stand in for one.
"""

import string
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F, Value, Window
from django.db.models.functions import Concat, RowNumber

from leads.models import Company, Lead
from leads.normalize import is_disposable_domain, is_webmail_domain
from providers.base import Candidate

SOURCE = "pattern"

# Roughly the most common corporate conventions first: a tie between patterns goes to the
# more usual one. {first}/{last} are folded names, {f}/{l} their initials.
PATTERNS: dict[str, str] = {
    "first.last": "{first}.{last}",
    "flast": "{f}{last}",
    "first": "{first}",
    "firstlast": "{first}{last}",
    "f.last": "{f}.{last}",
    "firstl": "{first}{l}",
    "last": "{last}",
    "first_last": "{first}_{last}",
    "first-last": "{first}-{last}",
    "last.first": "{last}.{first}",
    "lastf": "{last}{f}",
}
_RANK = {pattern: rank for rank, pattern in enumerate(PATTERNS)}
_PARTS_USED = {
    pattern: frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)
    for pattern, template in PATTERNS.items()
}

# Letters NFKD does not decompose into an ASCII base letter plus an accent (\u0131 is the
# Turkish dotless i).
_TRANSLITERATION = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "\u0131": "i"}
)

_KEPT_CHARACTERS = frozenset(string.ascii_lowercase + string.digits)

# RFC 5321: a longer local part is not a deliverable address.
MAX_LOCAL_PART_LENGTH = 64

CONFIDENCE_CEILING = 0.95

# The newest verified addresses read per company. A few hundred already put a consistent
# convention at the ceiling, so more would only cost time and memory for large companies;
# and the newest reflect the convention in use now, after a rename or a merger.
MAX_EXAMPLES = 200


@dataclass(frozen=True)
class PatternGuess:
    """A pattern with how many counted examples agree with it and how far to trust it."""

    pattern: str
    support: int
    total: int
    confidence: float


def fold_name(name: str) -> str:
    """Return the name as the lowercase ASCII word the patterns use (module docstring)."""
    decomposed = unicodedata.normalize("NFKD", name.casefold()).translate(_TRANSLITERATION)
    return "".join(c for c in decomposed if c in _KEPT_CHARACTERS)


def _local_part(pattern: str, first: str, last: str) -> str | None:
    """Render the pattern from already folded names; None if a part it uses is empty."""
    parts = {"first": first, "last": last, "f": first[:1], "l": last[:1]}
    if not all(parts[name] for name in _PARTS_USED[pattern]):
        return None
    local = PATTERNS[pattern].format(**parts)
    return local if len(local) <= MAX_LOCAL_PART_LENGTH else None


def render(pattern: str, first: str, last: str, domain: str) -> str | None:
    """Return the address the pattern gives for the person at the domain.

    None when the domain or a name part the pattern uses is empty after folding. Raises
    KeyError for a pattern not in PATTERNS.
    """
    domain = domain.strip().casefold()
    local = _local_part(pattern, fold_name(first), fold_name(last))
    if local is None or not domain:
        return None
    return f"{local}@{domain}"


def _matching(first: str, last: str, local: str) -> set[str]:
    return {pattern for pattern in PATTERNS if _local_part(pattern, first, last) == local}


def patterns_matching(first: str, last: str, email: str) -> set[str]:
    """Return the patterns that reproduce the address's local part for the person.

    The domain is not compared: whether the address is on the company's domain is the
    caller's to check.
    """
    local, _, _ = email.strip().casefold().rpartition("@")
    if not local:
        return set()
    return _matching(fold_name(first), fold_name(last), local)


def _confidence(support: int, total: int) -> float:
    return min(CONFIDENCE_CEILING, support / (total + 1))


def learn(examples: Iterable[tuple[str, str, str]]) -> list[PatternGuess]:
    """Return the patterns the examples support, best first.

    Examples are (first name, last name, email) of verified addresses at one domain. Only
    patterns with some support are returned; the counting rules and the confidence formula
    are in the module docstring.
    """
    support: Counter[str] = Counter()
    total = 0
    for first, last, email in examples:
        folded_first, folded_last = fold_name(first), fold_name(last)
        if not (folded_first and folded_last):
            continue
        local, _, _ = email.strip().casefold().rpartition("@")
        matching = _matching(folded_first, folded_last, local)
        if len(matching) > 1:
            continue
        total += 1
        support.update(matching)
    guesses = [
        PatternGuess(pattern, count, total, _confidence(count, total))
        for pattern, count in support.items()
    ]
    # Confidence grows with support over a shared total, so support orders them.
    return sorted(guesses, key=lambda guess: (-guess.support, _RANK[guess.pattern]))


def propose(
    first: str, last: str, domain: str, guesses: Iterable[PatternGuess]
) -> Candidate | None:
    """Return an email candidate from the first of the ranked guesses that renders.

    A person with only one name can still get an address from a pattern that uses only
    that name. None when no guess renders (no guesses, no name, no domain).
    """
    for guess in guesses:
        address = render(guess.pattern, first, last, domain)
        if address is not None:
            return Candidate(
                field="email",
                value=address,
                confidence=guess.confidence,
                source=SOURCE,
                verification=Lead.EmailVerification.UNKNOWN,
            )
    return None


def company_email_patterns(company: Company) -> list[PatternGuess]:
    """Return the patterns learned from the company's verified addresses on its domain."""
    return companies_email_patterns([company])[company.id]


def companies_email_patterns(companies: Iterable[Company]) -> dict[int, list[PatternGuess]]:
    """Return, per company, the patterns learned from its verified addresses on its domain.

    One query for them all. Only addresses a verifier called valid teach a pattern: an
    unverified one may be a provider's own pattern guess, and learning from it would confirm
    a guess with itself. Addresses on other domains (webmail, subsidiaries, subdomains)
    follow other conventions and are left out.
    """
    companies = list(companies)
    patterns: dict[int, list[PatternGuess]] = {company.id: [] for company in companies}
    # Everyone at a webmail or disposable domain chose their own address: no convention.
    learning = {
        c.id: c.domain
        for c in companies
        if not (is_webmail_domain(c.domain) or is_disposable_domain(c.domain))
    }
    if not learning:
        return patterns
    # Nameless leads teach nothing; leaving them out keeps them from using up the cap.
    verified = (
        Lead.objects.filter(email_verification=Lead.EmailVerification.VALID)
        .exclude(first_name="")
        .exclude(last_name="")
    )
    columns = ("company_id", "first_name", "last_name", "email")
    if len(learning) == 1:
        # One company (a Find Email): its domain is known here, so the query needs neither
        # the join nor the window, which cost more to build than the read itself.
        [(company_id, domain)] = learning.items()
        examples = verified.filter(company_id=company_id, email__iendswith=f"@{domain}")
        examples = examples.order_by("-created_at", "-id").values_list(*columns)[:MAX_EXAMPLES]
    else:
        examples = (
            verified.filter(
                company_id__in=list(learning),
                email__iendswith=Concat(Value("@"), F("company__domain")),
            )
            .annotate(
                rank=Window(
                    RowNumber(),
                    partition_by=F("company_id"),
                    order_by=[F("created_at").desc(), F("id").desc()],
                )
            )
            .filter(rank__lte=MAX_EXAMPLES)
            .values_list(*columns)
        )
    by_company: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for company_id, first, last, email in examples:
        by_company[company_id].append((first, last, email))
    for company_id, rows in by_company.items():
        patterns[company_id] = learn(rows)
    return patterns


def pattern_candidate(lead: Lead, patterns: list[PatternGuess] | None = None) -> Candidate | None:
    """Return a guessed (unverified) address for a lead with a name, a company, no email.

    None when the lead already has an email, has no company or no name, when the company
    has no usable pattern, or when the guessed address already belongs to another lead:
    then it is a namesake's mailbox or this lead is a duplicate, and the address could
    not be stored on this lead either way (emails are unique).
    """
    if lead.email or lead.company_id is None or not (lead.first_name or lead.last_name):
        return None
    company = lead.company
    if patterns is None:
        patterns = company_email_patterns(company)
    candidate = propose(lead.first_name, lead.last_name, company.domain, patterns)
    # Stored emails are normalized to lowercase, as rendered ones are: exact uses the index.
    if candidate is None or Lead.objects.filter(email=candidate.value).exists():
        return None
    return candidate
