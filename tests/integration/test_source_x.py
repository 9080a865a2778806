"""X recent search end to end: recorded bodies replayed with `responses`, through scan_source, into moto."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from emberwatch.cli import main
from emberwatch.config import parse_config
from emberwatch.http import HttpClient, SourceError
from emberwatch.scan import scan_source
from emberwatch.sources import ScanContext
from emberwatch.sources.x import CONNECTOR

from tests.conftest import LambdaKilled

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "x"
SEARCH_URL = "https://api.x.com/2/tweets/search/recent"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
DAY_START = datetime(2024, 5, 13, tzinfo=UTC)
BEARER = "AAAAAAAAAAAAAAAAAAAAAsecret-bearer-7f3a9c%2Fzz"
TOKEN = "b26v89c19zqg8o3fpzbkk3yrl4gx6dbqkdn3qk1p9u4al"
NEWEST_P1 = "1790019712185270273"  # meta.newest_id of search_page1.json
NEWEST_LATER = "1790027148686262280"  # search_newer.json
QUERY = '"acme widgets" OR acmewidgets'

CONFIG = """
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
sources:
  x:
    enabled: true
    max_pages: {max_pages}
"""


def config(max_pages: int = 50):
    return parse_config(CONFIG.format(max_pages=max_pages))


class FakeCredentials:
    def __init__(self, values: dict[str, dict[str, str]]) -> None:
        self.values = values

    def for_source(self, source: str) -> dict[str, str]:
        return dict(self.values.get(source, {}))


CREDENTIALS = FakeCredentials({"x": {"bearer_token": BEARER}})


def body(name: str) -> str:
    return (FIXTURES / name).read_text()


def scan(store, *, now=NOW, max_pages=50, http=None, credentials=CREDENTIALS):
    return scan_source(
        "x",
        now,
        config=config(max_pages),
        store=store,
        http=http or HttpClient(sleep=lambda s: None),
        credentials=credentials,
    )


def serve(route, calls: list[dict]) -> None:
    """Answer recent search with route(params) -> (status, headers, body); record params and headers."""

    def callback(request):
        params = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        calls.append({**params, "_auth": request.headers.get("Authorization")})
        return route(params)

    responses.add_callback(responses.GET, SEARCH_URL, callback=callback)


def two_pages(params):
    """page 1 (with a next_token) then page 2, whatever since_id or start_time says."""
    if params.get("next_token") == TOKEN:
        return 200, {}, body("search_page2.json")
    return 200, {}, body("search_page1.json")


def cursor(store):
    (spec,) = CONNECTOR.specs(config().brand("acme"), config().source("x"))
    return store.get_cursor("acme", "x", spec.key)


def stored(store):
    return {m.id: m for m in store.mentions_between("acme", DAY_START, NOW + timedelta(hours=1))}


# ------------------------------------------------------------------ a normal scan, page by page


@responses.activate
def test_first_run_pages_with_next_token_and_normalises_posts(store):
    # Given X answers a first page with a next_token and a second page in the openapi naming
    calls: list[dict] = []
    serve(two_pages, calls)

    # When the first scan runs
    report = scan(store)

    # Then both pages are stored, the post that does not match the query is dropped
    (result,) = report.reports
    assert result.errors == []
    assert (result.pages, result.fetched, result.stored, result.not_matching) == (2, 7, 6, 1)
    # the first request is bounded to the last 24 h, with the documented fields
    first, second = calls
    assert first["query"] == QUERY
    assert first["start_time"] == "2024-05-12T14:00:00Z" and "since_id" not in first
    assert first["max_results"] == "100" and first["sort_order"] == "recency"
    assert first["tweet.fields"] == (
        "created_at,author_id,public_metrics,lang,conversation_id,in_reply_to_user_id,referenced_tweets"
    )
    assert first["expansions"] == "author_id" and first["user.fields"] == "username,name,public_metrics"
    assert first["_auth"] == f"Bearer {BEARER}"
    # the second page: the same window plus the next_token
    assert second["next_token"] == TOKEN and second["start_time"] == first["start_time"]
    # the pass is complete: the first page's newest_id is the next since_id
    assert cursor(store).position == {"since_id": NEWEST_P1}

    mentions = stored(store)
    assert len(mentions) == 6
    original = mentions[f"x:{NEWEST_P1}"]
    assert original.url == f"https://x.com/jane_doe/status/{NEWEST_P1}"
    assert original.author.handle == "jane_doe" and original.author.display_name == "Jane Doe"
    assert original.author.followers == 1520
    assert original.created_at == datetime(2024, 5, 13, 14, 2, 11, tzinfo=UTC)
    assert original.language == "en"
    assert (original.engagement.reposts, original.engagement.likes, original.engagement.replies) == (4, 17, 1)
    assert original.conversation_id == f"x:{NEWEST_P1}" and original.parent_id is None
    assert original.raw["kind"] == "post" and original.query == QUERY

    reply = next(m for m in mentions.values() if m.author.handle == "sam_k")
    assert reply.parent_id == "x:1790001110447034368" and reply.conversation_id == "x:1790001110447034368"
    assert reply.raw["kind"] == "reply"

    repost = next(m for m in mentions.values() if m.author.handle == "outagewatch")
    assert repost.text == "RT @jane_doe: Acme Widgets is down again & no status page <sigh>"
    assert repost.raw["kind"] == "repost" and repost.raw["referenced"] == {"retweeted": "1790001110447034368"}
    assert repost.engagement.reposts == 12 and repost.author.followers == 40210

    undetermined = next(m for m in mentions.values() if m.text.startswith("acmewidgets"))
    assert undetermined.language is None  # lang "und"

    quote = next(m for m in mentions.values() if m.author.handle == "priya_ops")
    assert quote.engagement.reposts == 1 + 4  # repost_count (openapi naming) + quote_count
    assert quote.raw["referenced"] == {"quoted": NEWEST_P1}
    assert quote.language == "en"  # en-GB
    assert quote.author.followers == 310 and quote.author.display_name == "Priya — Ops"


@responses.activate
def test_next_runs_ask_from_since_id_and_an_empty_result_keeps_the_cursor(store):
    calls: list[dict] = []

    def route(params):
        if "since_id" not in params:
            return two_pages(params)
        if params["since_id"] == NEWEST_P1 and state["newer"]:
            return 200, {}, body("search_newer.json")
        return 200, {}, body("search_empty.json")

    state = {"newer": False}
    serve(route, calls)
    scan(store)
    before = cursor(store)

    # When nothing new was posted
    empty = scan(store, now=NOW + timedelta(minutes=5))
    assert calls[2]["since_id"] == NEWEST_P1 and "start_time" not in calls[2]
    assert (empty.reports[0].stored, empty.reports[0].errors) == (0, [])
    assert cursor(store).version == before.version  # nothing to move

    # When a newer post appears, only it is fetched, and since_id moves to it
    state["newer"] = True
    newer = scan(store, now=NOW + timedelta(minutes=10))
    assert newer.reports[0].stored == 1
    assert cursor(store).position == {"since_id": NEWEST_LATER}
    assert len(stored(store)) == 7


@responses.activate
def test_replaying_the_same_pages_three_times_stores_each_post_once(store):
    serve(two_pages, [])  # the server ignores since_id: every run sees the same two pages
    results = [scan(store, now=NOW + timedelta(minutes=i)).reports[0] for i in range(3)]
    assert [r.stored for r in results] == [6, 0, 0]
    assert [r.duplicates for r in results] == [0, 6, 6]
    assert len(stored(store)) == 6
    assert sum(b.mentions for b in store.counts("acme", DAY_START, NOW + timedelta(hours=1))) == 6


# ------------------------------------------------------------------ runs cut short


@responses.activate
def test_a_cut_short_first_run_resumes_with_next_token_and_the_same_window(store):
    calls: list[dict] = []
    serve(two_pages, calls)

    # Given a run that may read one page only
    first = scan(store, max_pages=1)
    assert first.reports[0].stored == 4
    # Then the cursor keeps the window and the next token, and holds the newest id as pending
    assert cursor(store).position == {
        "start_time": "2024-05-12T14:00:00Z",
        "next_token": TOKEN,
        "pending_newest": NEWEST_P1,
    }

    # When the next run (five minutes later) resumes
    second = scan(store, now=NOW + timedelta(minutes=5), max_pages=1)
    assert second.reports[0].stored == 2
    # it used the next_token with the first run's window, not a new one
    assert calls[1]["next_token"] == TOKEN and calls[1]["start_time"] == "2024-05-12T14:00:00Z"
    assert cursor(store).position == {"since_id": NEWEST_P1}

    # and the run after that asks only for what is newer than the first page
    scan(store, now=NOW + timedelta(minutes=10))
    assert calls[2]["since_id"] == NEWEST_P1 and "next_token" not in calls[2]
    assert len(stored(store)) == 6


@responses.activate
def test_a_cut_short_pass_keeps_the_old_since_id_until_its_last_page_is_stored(store):
    old = "1789990000000000000"  # stored by an earlier run
    current = cursor(store)
    store.save_cursor(current, {"since_id": old}, NOW)
    calls: list[dict] = []
    serve(two_pages, calls)

    scan(store, max_pages=1)
    assert cursor(store).position == {"since_id": old, "next_token": TOKEN, "pending_newest": NEWEST_P1}

    scan(store, now=NOW + timedelta(minutes=5), max_pages=1)
    assert calls[1]["since_id"] == old and calls[1]["next_token"] == TOKEN
    assert cursor(store).position == {"since_id": NEWEST_P1}
    assert len(stored(store)) == 6


@responses.activate
def test_a_run_killed_after_the_first_page_loses_nothing(store):
    state = {"kill": True}

    def route(params):
        if params.get("next_token") == TOKEN and state["kill"]:
            state["kill"] = False
            raise LambdaKilled("Lambda timed out")  # the run dies between two pages
        return two_pages(params)

    calls: list[dict] = []
    serve(route, calls)
    with pytest.raises(LambdaKilled, match="timed out"):
        scan(store)
    assert len(stored(store)) == 4  # page 1 was stored before the run died
    assert cursor(store).position["next_token"] == TOKEN

    again = scan(store, now=NOW + timedelta(minutes=5))
    assert again.reports[0].stored == 2 and again.reports[0].errors == []
    assert calls[-1]["next_token"] == TOKEN
    assert len(stored(store)) == 6
    assert cursor(store).position == {"since_id": NEWEST_P1}


@responses.activate
def test_a_since_id_older_than_the_seven_day_window_restarts_from_its_start(store):
    store.save_cursor(cursor(store), {"since_id": "1786000000000000000"}, NOW)  # 2024-05-02
    calls: list[dict] = []
    serve(lambda params: (200, {}, body("search_empty.json")), calls)
    report = scan(store)
    assert report.reports[0].errors == []
    assert "since_id" not in calls[0]
    assert calls[0]["start_time"] == "2024-05-06T14:35:00Z"  # 7 days back, plus a margin


# ------------------------------------------------------------------ rate limits


@responses.activate
def test_a_429_waits_for_x_rate_limit_reset_then_continues(store):
    wall = 1_715_610_600.0
    attempts = {"n": 0}

    def route(params):
        attempts["n"] += 1
        if attempts["n"] == 1:
            headers = {
                "x-rate-limit-limit": "450",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(wall) + 42),
            }
            return 429, headers, body("rate_limit_88.json")
        return two_pages(params)

    serve(route, [])
    sleeps: list[float] = []
    report = scan(store, http=HttpClient(sleep=sleeps.append, wall=lambda: wall))
    assert report.reports[0].errors == [] and report.reports[0].stored == 6
    assert 42 in sleeps and max(sleeps) == 42


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("rate_limit_88.json", "x: rate limit exceeded (error 88); retry in 42 s [api.x.com/2/tweets/search"),
        ("rate_limit_problem.json", "x: rate limit exceeded; retry in 42 s [api.x.com/2/tweets/search"),
    ],
)
@responses.activate
def test_a_rate_limit_that_outlasts_the_run_is_reported_with_its_reset(store, fixture, expected):
    wall = 1_715_610_600.0
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(wall) + 42)}
    serve(lambda params: (429, headers, body(fixture)), [])
    report = scan(store, http=HttpClient(sleep=lambda s: None, wall=lambda: wall))
    (error,) = report.reports[0].errors
    assert error.startswith(expected)
    assert report.reports[0].stored == 0
    assert cursor(store).version == 0


@responses.activate
def test_a_throttle_body_with_status_200_is_a_rate_limit(store):
    serve(lambda params: (200, {"x-rate-limit-reset": "1715610630"}, body("rate_limit_88.json")), [])
    report = scan(store, http=HttpClient(sleep=lambda s: None, wall=lambda: 1_715_610_600.0))
    assert report.reports[0].errors == ["x: rate limit exceeded (error 88); retry in 30 s"]


@responses.activate
def test_usage_capped_stops_until_the_next_utc_day(store):
    calls: list[dict] = []
    serve(
        lambda params: (429, {"Content-Type": "application/problem+json"}, body("usage_capped.json")), calls
    )
    http = HttpClient(sleep=lambda s: None, deadline=float("inf"))
    http.deadline = http.monotonic() + 60  # a real run's budget: a wait of hours is not started
    report = scan(store, http=http)
    (error,) = report.reports[0].errors
    assert error.startswith("x: usage cap reached") and "paused until 2024-05-14T00:00:00Z" in error
    assert len(calls) == 1  # no retries against a cap

    # the connector says how long to stay away: until the next UTC day
    ctx = ScanContext(http=HttpClient(sleep=lambda s: None), now=NOW, settings=config().source("x"))
    ctx.credentials = CREDENTIALS
    (spec,) = CONNECTOR.specs(config().brand("acme"), ctx.settings)
    with pytest.raises(SourceError) as caught:
        list(CONNECTOR.pages(config().brand("acme"), spec, cursor(store), ctx))
    assert caught.value.retry_after == 9.5 * 3600 and caught.value.status == 429


# ------------------------------------------------------------------ malformed bodies


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (
            200,
            "<!DOCTYPE html><html><body>Something went wrong</body></html>",
            "x: response body is an HTML page",
        ),
        (
            503,
            "<html><body>Over capacity</body></html>",
            "api.x.com/2/tweets/search/recent: HTTP 503 after 4",
        ),
        (200, body("search_page1.json")[:300], "x: response body is not JSON"),
        (200, json.dumps({"data": {"id": "1"}, "meta": {}}), "x: response 'data' is not a list"),
        (200, json.dumps([1, 2]), "x: response is not a JSON object"),
        (
            401,
            body("unauthorized.json"),
            "x: HTTP 401 for /2/tweets/search/recent (the bearer token was refused)",
        ),
    ],
)
@responses.activate
def test_an_unusable_body_is_an_error_and_the_cursor_stays(store, status, content, expected):
    serve(lambda params: (status, {}, content), [])
    report = scan(store)
    (error,) = report.reports[0].errors
    assert error.startswith(expected)
    assert report.reports[0].stored == 0 and cursor(store).version == 0


@responses.activate
def test_malformed_posts_are_skipped_with_a_reason(store, caplog):
    page = json.loads(body("search_page2.json"))
    good = page["data"][0]
    page["data"] += [
        "not an object",
        {**good, "id": 1790014209258422279},
        {**good, "id": "1790014209258422280", "created_at": "yesterday"},
        {**good, "id": "1790014209258422281", "text": None},
    ]
    serve(lambda params: (200, {}, json.dumps(page)), [])
    with caplog.at_level(logging.WARNING):
        report = scan(store)
    assert (report.reports[0].stored, report.reports[0].skipped, report.reports[0].errors) == (2, 4, [])
    reasons = [r.reason for r in caplog.records if hasattr(r, "reason")]
    assert "created_at missing or invalid in post 1790014209258422280" in reasons


# ------------------------------------------------------------------ credentials


@responses.activate
def test_the_bearer_token_never_appears_in_logs_or_errors(store, caplog):
    outcomes = iter(
        [
            (200, {}, body("search_page1.json")),
            (401, {}, body("unauthorized.json")),
            (200, {}, "<html>error</html>"),
        ]
        + [(429, {"x-rate-limit-reset": "1"}, body("rate_limit_88.json"))] * 4
    )
    calls: list[dict] = []
    serve(lambda params: next(outcomes), calls)
    errors = []
    with caplog.at_level(logging.DEBUG):
        for minutes in range(4):
            errors += scan(store, now=NOW + timedelta(minutes=minutes), max_pages=1).reports[0].errors
    assert len(errors) == 3
    assert all(call["_auth"] == f"Bearer {BEARER}" for call in calls)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)  # extras included
    for text in (logged, *errors, repr(errors)):
        assert BEARER not in text and "secret-bearer" not in text


def test_a_missing_bearer_token_names_the_key_only(store):
    report = scan(store, credentials=FakeCredentials({"x": {}}))
    (brand,) = report.reports
    assert len(brand.errors) == 1 and "no bearer_token under key 'x'" in brand.errors[0]
    assert brand.stored == 0 and len(responses.calls) == 0


# ------------------------------------------------------------------ the CLI uses the same parser


def test_emberwatch_parse_prints_the_posts_of_a_recorded_page(capsys):
    code = main(["parse", "--source", "x", "--query", QUERY, str(FIXTURES / "search_page1.json")])
    out, err = capsys.readouterr()
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 5
    assert lines[0]["id"] == f"x:{NEWEST_P1}"
    assert lines[0]["url"] == f"https://x.com/jane_doe/status/{NEWEST_P1}"
    assert lines[0]["followers"] == 1520 and lines[0]["engagement"]["reposts"] == 4
    assert [line["matches"] for line in lines] == [True, True, True, True, False]
    assert "5 mention(s), 0 skipped" in err


def test_emberwatch_parse_reports_a_throttle_body(capsys):
    code = main(["parse", "--source", "x", str(FIXTURES / "usage_capped.json")])
    assert code == 1
    assert "x: usage cap reached" in capsys.readouterr().err


# ------------------------------------------------------------------ re-reading the watched posts


LOOKUP_URL = "https://api.x.com/2/tweets"
# three posts about unrelated things: top posts are chosen one per story
WATCHED = {
    "1790019712185270273": "Acme Widgets invoice export keeps timing out",
    "1790018827187126274": "Is the Acme Widgets team plan worth it for a bakery?",
    "1790017917023158275": "acmewidgets deleted our whole catalogue overnight",
}


def watched_post(post_id: str, likes: int = 1, reposts: int = 0, replies: int = 0) -> dict:
    """A post as search and lookup both return it (the recorded first post, with this id and text)."""
    post = dict(json.loads(body("search_page1.json"))["data"][0])
    post.update(id=post_id, text=WATCHED[post_id], conversation_id=post_id, edit_history_tweet_ids=[post_id])
    post["public_metrics"] = {
        **post["public_metrics"],
        "like_count": likes,
        "retweet_count": reposts,
        "reply_count": replies,
        "quote_count": 0,
    }
    return post


def watched_search(params):
    page = json.loads(body("search_page1.json"))
    ids = sorted(WATCHED, reverse=True)
    page["data"] = [watched_post(i) for i in ids]
    page["meta"] = {"newest_id": ids[0], "oldest_id": ids[-1], "result_count": 3}
    return 200, {}, json.dumps(page)


def not_found(post_id: str) -> dict:
    """X's partial error for a post it no longer serves (the lookup still answers 200)."""
    return {
        "value": post_id,
        "detail": f"Could not find tweet with ids: [{post_id}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "ids",
        "resource_id": post_id,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }


def serve_lookup(counts: dict[str, tuple[int, int, int]], calls: list[dict], answers: list | None = None):
    """The post lookup: the posts in `counts` (likes, reposts, replies), a partial error for the others.

    `answers`, while not empty, are returned first instead (status, headers, body)."""

    def callback(request):
        params = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        calls.append(
            {**params, "_path": urlparse(request.url).path, "_auth": request.headers.get("Authorization")}
        )
        if answers:
            return answers.pop(0)
        ids = params["ids"].split(",")
        found = [watched_post(i, *counts[i]) for i in ids if i in counts]
        reply: dict = {"errors": [not_found(i) for i in ids if i not in counts]}
        if found:
            reply["data"] = found
            reply["includes"] = json.loads(body("search_page1.json"))["includes"]
        return 200, {}, json.dumps(reply)

    responses.add_callback(responses.GET, LOOKUP_URL, callback=callback)


@responses.activate
def test_watched_posts_are_re_read_with_the_post_lookup_once_an_hour(store, caplog):
    """A search only returns new posts: the viral-post rule sees a post grow through the lookup
    `GET /2/tweets?ids=` of the brand's recent top posts, hourly by default since X bills each read."""
    searches: list[dict] = []
    serve(watched_search, searches)
    p1, p2, p3 = sorted(WATCHED, reverse=True)
    counts = {p1: (40, 25, 9), p2: (3, 0, 1)}  # p3 was deleted: the lookup answers a partial error
    lookups: list[dict] = []
    serve_lookup(counts, lookups)

    with caplog.at_level(logging.INFO, logger="emberwatch"):
        first = scan(store)
    # the posts were stored and re-read in the same run (the first hour of watching them)
    (report,) = first.reports
    assert report.errors == [] and report.stored == 3
    assert (report.refreshed, report.refresh_errors) == (2, 0)
    (lookup,) = lookups
    assert lookup["_path"] == "/2/tweets" and lookup["_auth"] == f"Bearer {BEARER}"
    assert sorted(lookup["ids"].split(",")) == sorted(WATCHED)
    # the same fields as the search, so the counts are computed as in a search
    for name in ("tweet.fields", "expansions", "user.fields"):
        assert lookup[name] == searches[0][name]
    assert set(lookup) == {"ids", "tweet.fields", "expansions", "user.fields", "_path", "_auth"}
    posts = stored(store)
    grown = posts[f"x:{p1}"].engagement
    assert (grown.likes, grown.reposts, grown.replies) == (40, 25, 9)
    assert posts[f"x:{p3}"].engagement.likes == 1  # not served any more: kept as it was
    reasons = {getattr(r, "reason", "") for r in caplog.records}
    assert f"post {p3}: Not Found Error" in reasons and not any(p1 in r or p2 in r for r in reasons)

    # the same hour: no second read (each post read is billed)
    scan(store, now=NOW + timedelta(minutes=20))
    assert len(lookups) == 1
    # the next hour: read again, and the growth is kept
    counts[p1] = (90, 60, 20)
    later = scan(store, now=NOW + timedelta(minutes=60)).reports[0]
    assert len(lookups) == 2 and (later.refreshed, later.refresh_errors, later.errors) == (1, 0, [])
    assert stored(store)[f"x:{p1}"].engagement.reposts == 60


@responses.activate
def test_a_lookup_that_finds_none_of_the_posts_is_not_an_error(store):
    serve(watched_search, [])
    lookups: list[dict] = []
    serve_lookup({}, lookups)  # every watched post deleted: `errors` alone, no `data`
    report = scan(store).reports[0]
    assert len(lookups) == 1
    assert (report.stored, report.refreshed, report.refresh_errors, report.errors) == (3, 0, 0, [])


@responses.activate
def test_the_lookup_asks_for_at_most_100_posts_a_call():
    lookups: list[dict] = []
    serve_lookup({}, lookups)
    brand = config().brand("acme")
    template = CONNECTOR.parse(watched_search({})[2].encode(), brand, QUERY).mentions[0]
    posts = [replace(template, native_id=str(1790019712185270273 + i)) for i in range(150)]
    ctx = ScanContext(
        http=HttpClient(sleep=lambda s: None), now=NOW, settings=config().source("x"), credentials=CREDENTIALS
    )
    assert CONNECTOR.engagement(brand, posts, ctx) == {}
    assert [len(call["ids"].split(",")) for call in lookups] == [100, 50]
    assert {i for call in lookups for i in call["ids"].split(",")} == {p.native_id for p in posts}


@responses.activate
def test_a_failed_lookup_is_counted_not_a_failed_scan_and_is_tried_next_run(store):
    serve(watched_search, [])
    lookups: list[dict] = []
    p1 = max(WATCHED)
    serve_lookup({p1: (50, 5, 5)}, lookups, answers=[(503, {}, "<html>Over capacity</html>")] * 4)
    report = scan(store).reports[0]
    assert len(lookups) == 4  # HttpClient's retries, then SourceError
    assert (report.refresh_errors, report.refreshed, report.errors, report.stored) == (1, 0, [], 3)
    run = store.source_runs("acme")["x"]
    assert run["failures"] == 0 and "last_error" not in run
    # released: the next run of the same hour tries again
    retried = scan(store, now=NOW + timedelta(minutes=5)).reports[0]
    assert (retried.refresh_errors, retried.refreshed) == (0, 1)
    assert stored(store)[f"x:{p1}"].engagement.likes == 50


@responses.activate
def test_a_rate_limited_lookup_waits_for_x_rate_limit_reset(store):
    wall = 1_715_610_600.0
    serve(watched_search, [])
    lookups: list[dict] = []
    p1 = max(WATCHED)
    limited = {
        "x-rate-limit-limit": "15",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(int(wall) + 42),
    }
    serve_lookup({p1: (50, 5, 5)}, lookups, answers=[(429, limited, body("rate_limit_problem.json"))])
    sleeps: list[float] = []
    report = scan(store, http=HttpClient(sleep=sleeps.append, wall=lambda: wall)).reports[0]
    assert 42 in sleeps and len(lookups) == 2
    assert (report.refreshed, report.refresh_errors) == (1, 0)


@responses.activate
def test_a_lookup_usage_cap_is_a_refresh_error_and_blocks_x_until_the_next_utc_day(store):
    serve(watched_search, [])
    lookups: list[dict] = []
    capped = (429, {"Content-Type": "application/problem+json"}, body("usage_capped.json"))
    serve_lookup({}, lookups, answers=[capped] * 4)
    http = HttpClient(sleep=lambda s: None, deadline=float("inf"))
    http.deadline = http.monotonic() + 60
    report = scan(store, http=http).reports[0]
    assert (report.refresh_errors, report.errors, report.stored) == (1, [], 3)
    assert len(lookups) == 1  # no retries against a cap
    assert http.blocked_until["api.x.com"] >= DAY_START.timestamp() + 86400
