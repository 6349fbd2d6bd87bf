"""The email-pattern finder (enrichment/email_patterns.py): rendering, learning, proposing."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from enrichment import email_patterns
from enrichment.email_patterns import (
    PATTERNS,
    PatternGuess,
    companies_email_patterns,
    company_email_patterns,
    fold_name,
    learn,
    pattern_candidate,
    patterns_matching,
    propose,
    render,
)
from leads.models import Lead
from providers.base import Candidate
from tests.factories import CompanyFactory, LeadFactory

DOMAIN = "acme.com"

# ---------------------------------------------------------------------------------------
# render / fold_name


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("first.last", "maryjane.mullerstrauss@acme.com"),
        ("firstlast", "maryjanemullerstrauss@acme.com"),
        ("flast", "mmullerstrauss@acme.com"),
        ("f.last", "m.mullerstrauss@acme.com"),
        ("firstl", "maryjanem@acme.com"),
        ("first", "maryjane@acme.com"),
        ("last", "mullerstrauss@acme.com"),
        ("first_last", "maryjane_mullerstrauss@acme.com"),
        ("first-last", "maryjane-mullerstrauss@acme.com"),
        ("last.first", "mullerstrauss.maryjane@acme.com"),
        ("lastf", "mullerstraussm@acme.com"),
    ],
)
def test_render_folds_accents_and_joins_hyphenated_names_in_every_pattern(pattern, expected):
    assert render(pattern, "Mary-Jane", "Müller-Strauß", " Acme.COM ") == expected


def test_the_rendered_patterns_are_exactly_the_named_set():
    assert set(PATTERNS) == {
        "first.last",
        "firstlast",
        "flast",
        "f.last",
        "firstl",
        "first",
        "last",
        "first_last",
        "first-last",
        "last.first",
        "lastf",
    }


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("José", "jose"),
        ("Ødegård", "odegard"),
        ("Łukasz", "lukasz"),
        ("Straße", "strasse"),
        ("O'Brien", "obrien"),
        ("van der Berg", "vanderberg"),
        ("Anne-Sophie", "annesophie"),
        ("Ægir", "aegir"),
        ("Ay\u015fe Y\u0131lmaz", "ayseyilmaz"),
        ("Louis 14", "louis14"),
        ("李", ""),
    ],
)
def test_fold_name_gives_a_lowercase_ascii_word(name, folded):
    assert fold_name(name) == folded


def test_render_gives_none_when_a_part_the_pattern_uses_is_empty():
    assert render("first.last", "Ann", "", DOMAIN) is None
    assert render("flast", "", "Lee", DOMAIN) is None
    assert render("first.last", "李", "Wang", DOMAIN) is None
    assert render("first.last", "Ann", "Lee", "  ") is None


def test_render_needs_only_the_parts_the_pattern_uses():
    assert render("first", "Ann", "", DOMAIN) == "ann@acme.com"
    assert render("last", "", "Lee", DOMAIN) == "lee@acme.com"


def test_render_refuses_a_local_part_longer_than_the_rfc_allows():
    assert render("first.last", "a" * 40, "b" * 40, DOMAIN) is None


def test_render_rejects_an_unknown_pattern():
    with pytest.raises(KeyError):
        render("last_first", "Ann", "Lee", DOMAIN)


# ---------------------------------------------------------------------------------------
# patterns_matching


@pytest.mark.parametrize(
    ("first", "last", "email", "expected"),
    [
        ("John", "Smith", "john.smith@acme.com", {"first.last"}),
        ("John", "Smith", "JSmith@Acme.com", {"flast"}),
        ("John", "Smith", "smith.john@acme.com", {"last.first"}),
        ("José", "Núñez", "jose.nunez@acme.com", {"first.last"}),
        ("Mary-Jane", "Lee", "maryjane_lee@acme.com", {"first_last"}),
        # Ambiguous: several patterns give the same address.
        ("John", "John", "john.john@acme.com", {"first.last", "last.first"}),
        ("J", "Smith", "jsmith@acme.com", {"firstlast", "flast"}),
        # No pattern: a nickname, a missing name, not an address.
        ("Robert", "Smith", "bob@acme.com", set()),
        ("", "Smith", "smith@acme.com", {"last"}),
        ("John", "Smith", "not-an-address", set()),
    ],
)
def test_patterns_matching(first, last, email, expected):
    assert patterns_matching(first, last, email) == expected


def test_patterns_matching_ignores_the_domain():
    assert patterns_matching("John", "Smith", "john.smith@elsewhere.org") == {"first.last"}


# ---------------------------------------------------------------------------------------
# learn


def _examples(pattern, names, domain=DOMAIN):
    return [(first, last, render(pattern, first, last, domain)) for first, last in names]


PEOPLE = [
    ("Ann", "Lee"),
    ("Bruno", "Diaz"),
    ("Chloé", "Martin"),
    ("Dmitri", "Ivanov"),
    ("Eva", "Novak"),
    ("Farid", "Haddad"),
    ("Grace", "Hopper"),
    ("Hiro", "Tanaka"),
]


def test_one_example_alone_gives_at_most_a_coin_flip():
    [guess] = learn(_examples("first.last", PEOPLE[:1]))

    assert guess == PatternGuess("first.last", support=1, total=1, confidence=0.5)


def test_five_agreeing_examples_give_about_085():
    [guess] = learn(_examples("flast", PEOPLE[:5]))

    assert (guess.pattern, guess.support, guess.total) == ("flast", 5, 5)
    assert 0.8 <= guess.confidence <= 0.9


def test_a_three_three_split_stays_below_one_half_and_the_tie_goes_to_the_usual_pattern():
    examples = _examples("flast", PEOPLE[:3]) + _examples("first.last", PEOPLE[3:6])

    guesses = learn(examples)

    assert [(g.pattern, g.support, g.total) for g in guesses] == [
        ("first.last", 3, 6),
        ("flast", 3, 6),
    ]
    assert all(g.confidence < 0.5 for g in guesses)


def test_disagreement_lowers_confidence_and_ranks_the_majority_first():
    agreeing = learn(_examples("first.last", PEOPLE[:4]))
    with_dissent = learn(_examples("first.last", PEOPLE[:4]) + _examples("lastf", PEOPLE[4:5]))

    assert [g.pattern for g in with_dissent] == ["first.last", "lastf"]
    assert with_dissent[0].confidence < agreeing[0].confidence


def test_an_address_no_pattern_reproduces_counts_against_every_pattern():
    [guess] = learn([*_examples("first.last", PEOPLE[:4]), ("Robert", "Smith", "bob@acme.com")])

    assert (guess.support, guess.total) == (4, 5)


def test_ambiguous_examples_are_skipped():
    assert learn([("John", "John", "john.john@acme.com"), ("J", "Smith", "jsmith@acme.com")]) == []

    [guess] = learn([*_examples("flast", PEOPLE[:3]), ("J", "Smith", "jsmith@acme.com")])
    assert (guess.pattern, guess.support, guess.total) == ("flast", 3, 3)


def test_examples_without_both_names_are_skipped():
    examples = [*_examples("first.last", PEOPLE[:2]), ("", "Smith", "smith@acme.com")]
    examples.append(("李", "Wang", "li.wang@acme.com"))

    [guess] = learn(examples)

    assert (guess.pattern, guess.support, guess.total) == ("first.last", 2, 2)


def test_confidence_never_reaches_certainty():
    names = [(f"Person{i}", f"Surname{i}") for i in range(200)]

    [guess] = learn(_examples("first.last", names))

    assert guess.confidence == email_patterns.CONFIDENCE_CEILING < 1


NAMES = st.sampled_from(
    ["Ann", "Lee", "José", "Mary-Jane", "O'Brien", "Straße", "J", "van der Berg", "", "李"]
) | st.text(alphabet="abzéøß- '", max_size=5)


@st.composite
def examples(draw):
    first, last = draw(NAMES), draw(NAMES)
    address = render(draw(st.sampled_from(list(PATTERNS))), first, last, DOMAIN)
    # Now and then an address no pattern explains: a nickname, a role mailbox.
    if address is None or draw(st.integers(0, 9)) == 0:
        address = f"{draw(st.sampled_from(['bob', 'info', 'x1']))}@{DOMAIN}"
    return first, last, address


@given(st.lists(examples(), max_size=30))
def test_confidence_is_a_probability_and_support_a_share_of_the_total(sample):
    guesses = learn(sample)

    for guess in guesses:
        assert 0.0 <= guess.confidence <= 1.0
        assert 0 < guess.support <= guess.total
    assert sum(g.support for g in guesses) <= (guesses[0].total if guesses else 0)


@given(st.lists(examples(), min_size=1, max_size=30), NAMES, NAMES)
def test_an_agreeing_example_never_lowers_the_top_confidence(sample, first, last):
    before = learn(sample)
    assume(before)
    top = before[0]
    address = render(top.pattern, first, last, DOMAIN)
    # Agreeing: the top pattern reproduces the address, and no other pattern does.
    assume(address is not None and patterns_matching(first, last, address) == {top.pattern})

    after = learn([*sample, (first, last, address)])

    assert after[0].confidence >= top.confidence
    assert next(g for g in after if g.pattern == top.pattern).confidence >= top.confidence


@given(
    st.lists(examples(), max_size=30).flatmap(lambda s: st.tuples(st.just(s), st.permutations(s)))
)
def test_the_order_of_examples_does_not_matter(sample_and_permutation):
    sample, permutation = sample_and_permutation

    assert learn(permutation) == learn(sample)


# ---------------------------------------------------------------------------------------
# propose


def test_propose_renders_the_best_guess_as_an_unverified_candidate():
    guesses = learn(_examples("first.last", PEOPLE[:5]))

    assert propose("Zoë", "Adams", DOMAIN, guesses) == Candidate(
        field="email",
        value="zoe.adams@acme.com",
        confidence=guesses[0].confidence,
        source="pattern",
        verification="unknown",
    )


def test_propose_falls_back_to_the_best_pattern_the_name_can_render():
    guesses = learn(_examples("first.last", PEOPLE[:3]) + _examples("first", PEOPLE[3:4]))

    candidate = propose("Zoë", "", DOMAIN, guesses)

    assert candidate.value == "zoe@acme.com"
    assert candidate.confidence == guesses[1].confidence


def test_propose_gives_none_without_guesses_or_without_a_name():
    guesses = learn(_examples("first.last", PEOPLE[:5]))

    assert propose("Zoë", "Adams", DOMAIN, []) is None
    assert propose("", "", DOMAIN, guesses) is None
    assert propose("Zoë", "", DOMAIN, guesses) is None


# ---------------------------------------------------------------------------------------
# database part


def _leads(company, pattern, names, *, domain=None, verification="valid"):
    return [
        LeadFactory(
            company=company,
            first_name=first,
            last_name=last,
            email=render(pattern, first, last, domain or company.domain),
            email_verification=verification,
        )
        for first, last in names
    ]


@pytest.mark.django_db
def test_company_patterns_learn_only_from_verified_addresses_on_the_company_domain(
    django_assert_num_queries,
):
    acme = CompanyFactory(domain=DOMAIN)
    _leads(acme, "first.last", PEOPLE[:3])
    for i, verification in enumerate(["", "unknown", "accept_all", "invalid", "role"]):
        _leads(acme, "flast", [(f"Uma{i}", f"Verne{i}")], verification=verification)
    _leads(acme, "flast", PEOPLE[5:8], domain="gmail.com")
    _leads(acme, "flast", PEOPLE[:3], domain="mail.acme.com")
    _leads(acme, "flast", PEOPLE[3:6], domain="notacme.com")
    _leads(CompanyFactory(domain="other.com"), "lastf", PEOPLE)
    LeadFactory(
        company=acme, first_name="", last_name="", email="ops@acme.com", email_verification="valid"
    )

    with django_assert_num_queries(1):
        guesses = company_email_patterns(acme)

    assert [(g.pattern, g.support, g.total) for g in guesses] == [("first.last", 3, 3)]


@pytest.mark.django_db
def test_company_patterns_read_only_the_newest_examples(monkeypatch):
    acme = CompanyFactory(domain=DOMAIN)
    _leads(acme, "first.last", PEOPLE[:3])
    _leads(acme, "flast", PEOPLE[3:5])
    monkeypatch.setattr(email_patterns, "MAX_EXAMPLES", 2)

    assert [g.pattern for g in company_email_patterns(acme)] == ["flast"]


@pytest.mark.django_db
def test_several_companies_learn_each_from_its_own_newest_examples_in_one_query(
    monkeypatch, django_assert_num_queries
):
    acme = CompanyFactory(domain=DOMAIN)
    _leads(acme, "first.last", PEOPLE[:3])
    _leads(acme, "flast", PEOPLE[3:5])
    other = CompanyFactory(domain="other.com")
    _leads(other, "flast", PEOPLE[:3])
    _leads(other, "first.last", PEOPLE[5:7])
    _leads(other, "lastf", PEOPLE[:2], domain=DOMAIN)
    gmail = CompanyFactory(domain="gmail.com")
    _leads(gmail, "first.last", PEOPLE[:5])
    monkeypatch.setattr(email_patterns, "MAX_EXAMPLES", 2)

    with django_assert_num_queries(1):
        patterns = companies_email_patterns([acme, other, gmail])

    assert [g.pattern for g in patterns[acme.id]] == ["flast"]
    assert [g.pattern for g in patterns[other.id]] == ["first.last"]
    assert patterns[gmail.id] == []


@pytest.mark.django_db
def test_a_webmail_company_has_no_pattern():
    gmail = CompanyFactory(domain="gmail.com")
    _leads(gmail, "first.last", PEOPLE[:5])

    assert company_email_patterns(gmail) == []


@pytest.mark.django_db
def test_pattern_candidate_for_a_lead_with_a_name():
    acme = CompanyFactory(domain=DOMAIN)
    _leads(acme, "first.last", PEOPLE[:3])
    lead = LeadFactory(company=acme, first_name="Zoë", last_name="Adams", email=None)

    assert pattern_candidate(lead) == Candidate(
        field="email",
        value="zoe.adams@acme.com",
        confidence=0.75,
        source="pattern",
        verification=Lead.EmailVerification.UNKNOWN,
    )


@pytest.mark.django_db
def test_pattern_candidate_needs_a_name_and_asks_nothing_without_one(django_assert_num_queries):
    acme = CompanyFactory(domain=DOMAIN)
    _leads(acme, "first.last", PEOPLE[:3])
    lead = LeadFactory(company=acme, first_name="", last_name="", email=None)
    lead = Lead.objects.get(id=lead.id)

    with django_assert_num_queries(0):
        assert pattern_candidate(lead) is None
    half_named = LeadFactory(company=acme, first_name="Zoë", last_name="", email=None)
    assert pattern_candidate(half_named) is None


@pytest.mark.django_db
def test_pattern_candidate_gives_none_without_a_company_a_pattern_or_with_an_email():
    acme = CompanyFactory(domain=DOMAIN)

    assert pattern_candidate(LeadFactory(company=acme, first_name="Zoë", last_name="Adams")) is None
    _leads(acme, "first.last", PEOPLE[:3])
    assert pattern_candidate(LeadFactory(company=None, first_name="Zoë", last_name="Adams")) is None
    has_email = LeadFactory(
        company=acme, first_name="Zoë", last_name="Adams", email="zoe@elsewhere.org"
    )
    assert pattern_candidate(has_email) is None


@pytest.mark.django_db
def test_pattern_candidate_never_proposes_an_address_another_lead_holds():
    acme = CompanyFactory(domain=DOMAIN)
    _leads(acme, "first.last", PEOPLE[:3])
    LeadFactory(company=acme, first_name="Zoe", last_name="Adams", email="zoe.adams@acme.com")
    namesake = LeadFactory(company=acme, first_name="Zoë", last_name="Adams", email=None)

    assert pattern_candidate(namesake) is None
