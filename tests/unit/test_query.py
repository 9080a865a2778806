"""The watch-term language: parsing, local matching and the native keyword searches it expands to."""

from __future__ import annotations

import pytest
from emberwatch.query import MAX_BRANCHES, QueryError, parse_query, tokenize_text


def matches(query: str, text: str, language: str | None = None) -> bool:
    return parse_query(query).matches(text, language)


# ---------------------------------------------------------------- words, phrases, AND


def test_words_are_anded_by_default():
    assert matches("acme outage", "Acme is having an outage right now")
    assert not matches("acme outage", "Acme shipped a new widget")
    assert not matches("acme outage", "Another outage at the data centre")


def test_explicit_and_is_the_same_as_juxtaposition():
    assert matches("acme AND outage", "outage at acme")
    assert not matches("acme AND outage", "acme is fine")


def test_phrase_needs_the_words_adjacent_and_in_order():
    assert matches('"acme widgets"', "I love Acme Widgets, truly")
    assert not matches('"acme widgets"', "widgets by acme")
    assert not matches('"acme widgets"', "acme makes great widgets")


def test_phrase_spans_punctuation_between_words():
    # Given a phrase, When the post separates its words with a line break and punctuation around them
    # Then the tokens are still adjacent and it matches
    assert matches('"acme widgets"', "Loving the new (Acme\nWidgets)!")


def test_matching_is_case_insensitive():
    assert matches("ACME", "acme rocks")
    assert matches("acme", "ACME ROCKS")


@pytest.mark.parametrize(
    "text",
    ["Visiting Acmeville today", "the acmewidgets account", "preacme launch", "acme2 is out"],
)
def test_whole_word_matching_rejects_longer_words(text):
    assert not matches("acme", text)


@pytest.mark.parametrize("text", ["Acme!", "(acme)", "acme.", "'acme'", "so... acme, right?"])
def test_whole_word_matching_trims_surrounding_punctuation(text):
    assert matches("acme", text)


# ---------------------------------------------------------------- OR, NOT, -term, parentheses


def test_or_matches_either_side():
    q = parse_query("acme OR globex")
    assert q.matches("acme is great")
    assert q.matches("globex is great")
    assert not q.matches("initech is great")


def test_and_binds_tighter_than_or():
    # "a b OR c" is (a AND b) OR c
    q = parse_query("acme outage OR globex")
    assert q.matches("globex")
    assert q.matches("acme outage")
    assert not q.matches("acme only")


def test_lowercase_or_is_an_ordinary_word():
    # Given "or" in lower case, Then it is a search word, ANDed like any other
    assert not matches("acme or globex", "globex")
    assert matches("acme or globex", "acme or globex")


@pytest.mark.parametrize("query", ["acme -stock", "acme NOT stock"])
def test_minus_and_not_exclude_a_word(query):
    assert matches(query, "acme launches widgets")
    assert not matches(query, "acme stock falls")


def test_negated_phrase_excludes_only_the_phrase():
    q = parse_query('acme -"stock price"')
    assert q.matches("acme stock is low, price is high")
    assert not q.matches("acme stock price tumbles")


def test_hyphen_inside_a_word_is_not_a_negation():
    # "e-mail" is one term, not "e" and NOT "mail"
    assert matches("acme e-mail", "acme e-mail is down")
    assert not matches("acme e-mail", "acme mail is down")


def test_parentheses_group_alternatives():
    q = parse_query("acme (outage OR down) -stock")
    assert q.matches("Acme is down again")
    assert q.matches("acme outage reported")
    assert not q.matches("acme is up")
    assert not q.matches("acme down, stock too")
    assert not q.matches("outage everywhere")


def test_not_applies_to_a_whole_group():
    q = parse_query("acme NOT (stock OR shares)")
    assert q.matches("acme widgets")
    assert not q.matches("acme shares")
    assert not q.matches("acme stock")


def test_nested_parentheses():
    q = parse_query("acme ((outage OR down) (eu OR europe))")
    assert q.matches("acme down in europe")
    assert not q.matches("acme down in the us")


# ---------------------------------------------------------------- lang:


def test_lang_filter_keeps_posts_in_that_language():
    q = parse_query('"acme widgets" lang:en')
    assert q.matches("acme widgets rock", "en")
    assert q.matches("acme widgets rock", "en-GB")  # region subtag ignored
    assert q.matches("acme widgets rock", "EN")
    assert not q.matches("acme widgets rock", "de")


def test_lang_filter_lets_posts_of_unknown_language_through():
    # Feeds and Hacker News have no language: the filter must not drop everything from them
    assert matches("acme lang:en", "acme rocks", None)


def test_lang_filter_is_case_insensitive_in_the_query():
    assert matches("acme LANG:DE", "acme toll", "de")
    assert not matches("acme LANG:DE", "acme toll", "en")


def test_lang_inside_a_phrase_is_text_not_a_filter():
    q = parse_query('"lang:en"')
    assert q.matches("set lang en please", "de")


# ---------------------------------------------------------------- @handle, #tag


def test_handle_query_matches_the_handle_and_the_bare_word():
    q = parse_query("@acmewidgets")
    assert q.matches("thanks @AcmeWidgets!")
    assert q.matches("acmewidgets support is slow")
    assert not q.matches("@acmewidgetsfan says hi")


def test_hashtag_query_matches_the_tag_and_the_bare_word():
    q = parse_query("#acme")
    assert q.matches("loving it #Acme")
    assert q.matches("loving acme")
    assert not q.matches("loving #acmeville")


def test_plain_word_matches_a_hashtag_or_mention_of_it():
    assert matches("acme", "great day #acme")
    assert matches("acme", "cc @acme")
    assert matches("acme", "$ACME up 3%")


def test_tokenize_text_keeps_tag_and_bare_word():
    assert tokenize_text("Hi @Acme #Widgets.") == ("hi", "@acme", "acme", "#widgets", "widgets")


# ---------------------------------------------------------------- native keyword expansion (DNF)


def test_native_keywords_of_a_simple_query_is_one_search():
    assert parse_query("acme widgets").native_keywords() == ["acme widgets"]


def test_native_keywords_expand_or_into_one_search_per_branch():
    q = parse_query("acme (outage OR down) -stock")
    assert q.native_keywords() == ["acme outage -stock", "acme down -stock"]


def test_native_keywords_quote_phrases_and_drop_tag_marks_and_lang():
    q = parse_query('"acme widgets" OR @acmewidgets lang:en')
    assert q.native_keywords() == ['"acme widgets"', "acmewidgets"]


def test_native_keywords_of_negated_phrase():
    assert parse_query('acme -"stock price"').native_keywords() == ['acme -"stock price"']


def test_dnf_distributes_over_two_groups():
    q = parse_query("(acme OR globex) (outage OR down)")
    assert sorted(q.native_keywords()) == sorted(["acme outage", "acme down", "globex outage", "globex down"])


def test_expansion_up_to_the_limit_is_allowed():
    # (2 x 2 x 2) = 8 branches, exactly MAX_BRANCHES
    q = parse_query("(a1 OR a2) (b1 OR b2) (c1 OR c2)")
    assert len(q.native_keywords()) == MAX_BRANCHES == 8


def test_expansion_beyond_the_limit_is_an_error_that_says_how_many():
    q = parse_query("(a1 OR a2 OR a3) (b1 OR b2 OR b3)")  # 9 branches
    assert q.matches("a2 b3")  # still fine for local matching
    with pytest.raises(QueryError, match=r"expands to 9 searches; at most 8"):
        q.native_keywords()


def test_branch_with_only_negative_terms_cannot_be_searched_natively():
    q = parse_query("acme OR -stock")
    with pytest.raises(QueryError, match="no positive term"):
        q.native_keywords()


def test_lang_only_branch_cannot_be_searched_natively():
    with pytest.raises(QueryError, match="no positive term"):
        parse_query("lang:en").native_keywords()


# ---------------------------------------------------------------- errors name the problem


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", r"empty query"),
        ("   ", r"empty query"),
        ("(acme OR globex", r"missing '\)'"),
        ("acme)", r"unexpected '\)'"),
        (")acme", r"unexpected '\)'"),
        ("acme OR", r"unexpected 'end of query'"),
        ("acme NOT", r"unexpected 'end of query'"),
        ("OR acme", r"unexpected 'OR'"),
        ("AND acme", r"unexpected 'AND'"),
        ("()", r"unexpected '\)'"),
        ('"acme widgets', r"cannot read query .* at position 0"),
        ('acme "widgets', r"cannot read query .* at position 4"),
        ('""', r"term '' has no words"),
        ("acme !!!", r"term '!!!' has no words"),
        ("acme lang:english", r"bad language filter 'lang:english'"),
        ("acme lang:", r"bad language filter 'lang:'"),
        ("acme lang:e1", r"bad language filter 'lang:e1'"),
    ],
)
def test_query_errors_name_the_problem(query, message):
    with pytest.raises(QueryError, match=message):
        parse_query(query)


def test_query_error_quotes_the_query_text():
    with pytest.raises(QueryError) as info:
        parse_query("acme (outage")
    assert "'acme (outage'" in str(info.value)


def test_query_error_is_a_value_error():
    assert issubclass(QueryError, ValueError)


def test_parse_query_keeps_the_source_text():
    assert parse_query("acme  -stock").text == "acme  -stock"


def test_possessives_compounds_and_addresses_contain_the_word():
    # Given a one-word watch term
    query = parse_query("acme")
    # Then it is found inside possessives, hyphenated compounds and email addresses
    for text in ("Acme's outage", "Acme’s outage", "an acme-based shop", "write to hi@acme.com"):
        assert query.matches(text), text
    # but not inside a longer word
    assert not query.matches("acmeville is nice")


def test_a_phrase_survives_a_possessive():
    assert parse_query('"acme widgets"').matches("Acme's widgets broke again")


def test_a_phrase_ending_in_a_possessive_still_matches():
    # found by the reliability suite: "Acme Widgets's SLA" was not a mention of "acme widgets"
    query = parse_query('"acme widgets" OR acmewidgets')
    assert query.matches("Reminder that Acme Widgets's SLA says 99.99%")
    assert query.matches("Acme Widgets’ support")
    assert not query.matches("Acme's other widgets")
