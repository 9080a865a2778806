"""Translating watch-term queries into X's and Reddit's own search syntax (pure functions)."""

from __future__ import annotations

import pytest
from emberwatch.config import Brand, SourceSettings
from emberwatch.query import QueryError, parse_query
from emberwatch.sources import reddit, x


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"acme widgets" OR acmewidgets', '"acme widgets" OR acmewidgets'),
        ("acme (outage OR down) -stock", "acme (outage OR down) -stock"),
        ("acme AND outage", "acme outage"),
        ('"acme widgets" lang:en', '"acme widgets" lang:en'),
        ("acme -lang:de", "acme -lang:de"),
        ("acme OR (widgets outage)", "acme OR (widgets outage)"),
        ("@AcmeWidgets OR #acme", "acmewidgets OR acme"),  # matched with or without @/# locally
        ("acme.com down", '"acme.com" down'),  # punctuation: searched as a phrase
        # X refuses a negated group: -(a OR b) is written -a -b
        ("acme NOT (outage OR down)", "acme -outage -down"),
        ("acme NOT NOT widgets", "acme widgets"),
    ],
)
def test_x_translates_the_whole_query(query, expected):
    assert x.x_query(parse_query(query)) == expected


def test_x_falls_back_to_one_search_per_branch_for_a_negated_and_group():
    # Given a negated AND group, which X cannot express
    with pytest.raises(x.Untranslatable):
        x.x_query(parse_query("(acme OR widgets) NOT (stock price) lang:en"))
    # Then each OR branch is searched on its own (the negated group is left to the local re-check)
    assert x.native_searches("(acme OR widgets) NOT (stock price) lang:en") == [
        "acme lang:en",
        "widgets lang:en",
    ]


def test_x_falls_back_to_branches_when_the_query_is_too_long():
    words = " OR ".join(f"product{i}" for i in range(60))
    query = f"acme ({words})"
    with pytest.raises(x.Untranslatable, match="512"):
        x.x_query(parse_query(query))
    with pytest.raises(QueryError, match="searches; at most 8"):
        x.native_searches(query)
    # many alternatives are fine as long as the query fits: X has OR
    many = "acme (" + " OR ".join(f"p{i}" for i in range(20)) + ")"
    assert x.native_searches(many) == [many]
    assert reddit.native_searches(many) == ["acme AND (" + " OR ".join(f"p{i}" for i in range(20)) + ")"]


def test_x_specs_one_per_search_deduplicated_and_invalid_queries_skipped():
    brand = Brand(
        id="acme",
        name="Acme",
        queries=('"acme widgets" OR acmewidgets', "acme NOT (a b)", "acme NOT (a b) lang:xx", "NOT acme"),
    )
    specs = x.CONNECTOR.specs(brand, SourceSettings("x"))
    assert [s.label for s in specs] == ['"acme widgets" OR acmewidgets', "acme", "acme lang:xx"]
    assert specs[1].params == {"query": "acme NOT (a b)", "native": "acme"}
    assert len({s.key for s in specs}) == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"acme widgets" OR acmewidgets', '"acme widgets" OR acmewidgets'),
        ("acme (outage OR down) -stock", "acme AND (outage OR down) AND NOT stock"),
        ("acme NOT (stock price)", "acme AND NOT (stock AND price)"),
        ("acme NOT (outage OR down)", "acme AND NOT (outage OR down)"),
        ('"acme widgets" lang:en', '"acme widgets"'),  # Reddit has no language filter
        ("(acme OR widgets) lang:de", "acme OR widgets"),
        ("acme -lang:de", "acme"),
        ("acme OR (widgets lang:en)", "acme OR widgets"),
        ("acme (outage OR down OR (status page))", "acme AND (outage OR down OR (status AND page))"),
    ],
)
def test_reddit_translates_the_whole_query(query, expected):
    assert reddit.reddit_query(parse_query(query)) == expected


def test_reddit_splits_a_query_over_512_characters_into_its_branches():
    long_words = " ".join(f"word{i}" for i in range(40))
    query = f"({long_words}) OR ({long_words} extra) OR short"
    searches = reddit.native_searches(query)
    assert searches[-1] == "short"
    assert len(searches) == 3 and all(len(s) <= 512 for s in searches)


def test_reddit_specs_one_search_per_query_and_one_comment_stream_per_subreddit():
    brand = Brand(
        id="acme",
        name="Acme",
        queries=('"acme widgets" OR acmewidgets', "NOT acme"),
        subreddits=("smallbusiness", "SmallBusiness", "sysadmin"),
    )
    specs = reddit.CONNECTOR.specs(brand, SourceSettings("reddit"))
    assert [s.label for s in specs] == [
        '"acme widgets" OR acmewidgets',
        "r/smallbusiness comments",
        "r/sysadmin comments",
    ]
    assert specs[0].params["kind"] == "search" and specs[1].params == {
        "kind": "comments",
        "subreddit": "smallbusiness",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [("en", "en"), ("en-GB", "en"), ("und", None), ("qme", None), ("zxx", None), (None, None), (3, None)],
)
def test_x_language_is_iso_639_1_or_none(value, expected):
    assert x._language(value) == expected


def test_x_snowflake_ids_carry_their_time():
    made = x.snowflake_time("1790019712185270273")
    assert made is not None and made.isoformat().startswith("2024-05-13T14:02:11")
    assert x.snowflake_time("12345") is None and x.snowflake_time("abc") is None


def test_x_error_bodies_in_both_shapes():
    assert x.error_kind({"errors": [{"code": 88, "message": "Rate limit exceeded"}]})[0] == "rate_limit"
    assert x.error_kind({"type": "https://api.x.com/2/problems/rate-limit-exceeded"})[0] == "rate_limit"
    assert x.error_kind({"type": "https://api.twitter.com/2/problems/usage-capped"})[0] == "usage_capped"
    assert x.error_kind({"title": "Invalid Request", "detail": "One or more parameters are invalid."}) == (
        None,
        "Invalid Request: One or more parameters are invalid.",
    )


def test_x_reads_the_brands_own_accounts_in_a_stream_of_their_own():
    from emberwatch.config import Brand, SourceSettings
    from emberwatch.sources.x import CONNECTOR as X

    brand = Brand(id="acme", name="Acme", queries=('"acme widgets"',), own_accounts={"x": ("@AcmeCare",)})
    natives = [spec.params["native"] for spec in X.specs(brand, SourceSettings("x", enabled=True))]
    assert natives == ['"acme widgets"', "from:AcmeCare"]
