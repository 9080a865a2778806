"""Reddit end to end: OAuth token, search and subreddit comments replayed with `responses` into moto."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from emberwatch.cli import main
from emberwatch.config import parse_config
from emberwatch.http import HttpClient
from emberwatch.scan import scan_source
from emberwatch.sources.reddit import CONNECTOR

from tests.conftest import LambdaKilled, assert_refresh_failure_recorded

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reddit"
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
SEARCH_URL = "https://oauth.reddit.com/search"
COMMENTS_URL = "https://oauth.reddit.com/r/smallbusiness/comments"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
DAY_START = datetime(2024, 5, 12, tzinfo=UTC)
QUERY = '"acme widgets" OR acmewidgets'
SECRET = {
    "client_id": "cid-Xy12abcDEF",
    "client_secret": "s3cr3t-reddit-9f8e7d6c5b",
    "user_agent": "python:emberwatch-test:0.1 (by /u/acme_care)",
}
PASSWORD = "hunter2-acme-password"

CONFIG = """
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
    subreddits: [{subreddits}]
sources:
  reddit:
    enabled: true
    max_pages: {max_pages}
"""


def config(max_pages: int = 50, subreddits: str = "smallbusiness"):
    return parse_config(CONFIG.format(max_pages=max_pages, subreddits=subreddits))


class FakeCredentials:
    def __init__(self, values: dict[str, dict[str, str]]) -> None:
        self.values = values

    def for_source(self, source: str) -> dict[str, str]:
        return dict(self.values.get(source, {}))


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def listing(children: list[dict], after: str | None) -> str:
    return json.dumps({"kind": "Listing", "data": {"after": after, "children": children, "before": None}})


class Reddit:
    """A fake Reddit: the token endpoint, and listings served by route(path, params)."""

    def __init__(self, route, *, token_prefix: str = "token") -> None:
        self.route = route
        self.token_prefix = token_prefix
        self.token_requests: list[dict] = []
        self.calls: list[dict] = []
        responses.add_callback(responses.POST, TOKEN_URL, callback=self._token)
        for url in (SEARCH_URL, COMMENTS_URL):
            responses.add_callback(responses.GET, url, callback=self._listing)

    def _token(self, request):
        basic = request.headers.get("Authorization", "").removeprefix("Basic ")
        self.token_requests.append(
            {
                "auth": base64.b64decode(basic).decode() if basic else None,
                "form": {k: v[0] for k, v in parse_qs(request.body).items()},
                "ua": request.headers.get("User-Agent"),
            }
        )
        token = f"{self.token_prefix}-{len(self.token_requests)}"
        return (
            200,
            {},
            json.dumps({"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}),
        )

    def _listing(self, request):
        url = urlparse(request.url)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.calls.append(
            {
                "path": url.path,
                **params,
                "_auth": request.headers.get("Authorization"),
                "_ua": request.headers.get("User-Agent"),
            }
        )
        return self.route(url.path, params, request.headers.get("Authorization"))

    def searches(self) -> list[dict]:
        return [c for c in self.calls if c["path"] == "/search"]


def recorded(path, params, auth=None):
    """The recorded fixtures: two pages of search, one page of comments then the listing's end."""
    if path == "/search":
        page = (
            fixture("search_page2.json")
            if params.get("after") == "t3_1cqzz9k"
            else fixture("search_page1.json")
        )
        return 200, {}, page
    if params.get("after"):
        return 200, {}, fixture("search_empty.json")
    return 200, {}, fixture("comments_smallbusiness.json")


def scan(store, *, now=NOW, max_pages=50, http=None, secret=SECRET, subreddits="smallbusiness"):
    return scan_source(
        "reddit",
        now,
        config=config(max_pages, subreddits),
        store=store,
        http=http or HttpClient(sleep=lambda s: None),
        credentials=FakeCredentials({"reddit": secret}),
    )


def search_cursor(store):
    spec = CONNECTOR.specs(config().brand("acme"), config().source("reddit"))[0]
    return store.get_cursor("acme", "reddit", spec.key)


def stored(store):
    return {m.id: m for m in store.mentions_between("acme", DAY_START, NOW + timedelta(hours=1))}


# ------------------------------------------------------------------ a normal scan


@responses.activate
def test_search_and_subreddit_comments_are_stored_normalised(store):
    reddit = Reddit(recorded)
    report = scan(store)

    (result,) = report.reports
    assert result.errors == []
    # search: 3 posts match, "Acme anvils" does not; comments: 1 matches, 1 does not, 1 was removed
    assert (result.stored, result.not_matching, result.skipped) == (4, 2, 1)
    # one token, by client credentials with HTTP Basic and our User-Agent
    (token_request,) = reddit.token_requests
    assert token_request["auth"] == f"{SECRET['client_id']}:{SECRET['client_secret']}"
    assert token_request["form"] == {"grant_type": "client_credentials"}
    assert token_request["ua"] == SECRET["user_agent"]
    first, second = reddit.searches()
    assert {k: first[k] for k in ("q", "sort", "t", "limit", "raw_json", "type")} == {
        "q": QUERY,
        "sort": "new",
        "t": "day",
        "limit": "100",
        "raw_json": "1",
        "type": "link",
    }
    assert "after" not in first and second["after"] == "t3_1cqzz9k"
    assert all(c["_auth"] == "bearer token-1" and c["_ua"] == SECRET["user_agent"] for c in reddit.calls)
    # the pass reached the listing's end: the mark is the newest items of its first page
    assert search_cursor(store).position == {
        "mark": {"names": ["t3_1cr0a1b", "t3_1cqzz9k"], "utc": 1715608931.0},
        "after": None,
        "top": None,
    }

    mentions = stored(store)
    assert set(mentions) == {
        "reddit:t3_1cr0a1b",
        "reddit:t3_1cqzz9k",
        "reddit:t3_1cqy7aa",
        "reddit:t1_l3k9x2a",
    }
    post = mentions["reddit:t3_1cr0a1b"]
    assert post.title == "Anyone tried Acme Widgets for inventory?"
    assert post.text.startswith("Anyone tried Acme Widgets for inventory?\n\nThinking about switching")
    assert (
        post.url
        == "https://www.reddit.com/r/smallbusiness/comments/1cr0a1b/anyone_tried_acme_widgets_for_inventory/"
    )
    assert post.author.handle == "shopkeeper_42"
    assert post.created_at == datetime(2024, 5, 13, 14, 2, 11, tzinfo=UTC)
    assert (post.engagement.score, post.engagement.replies) == (4, 6)
    assert post.conversation_id == "reddit:t3_1cr0a1b" and post.parent_id is None
    assert post.query == QUERY and post.raw["subreddit"] == "smallbusiness"
    link = mentions["reddit:t3_1cqzz9k"]
    assert link.raw["link"] == "https://techpress.example/acme-series-b" and link.text == link.title
    comment = mentions["reddit:t1_l3k9x2a"]
    assert comment.title is None
    assert comment.text == "We use Acme Widgets for 3 stores, the barcode app is great"
    assert comment.parent_id == "reddit:t3_1cr0a1b" and comment.conversation_id == "reddit:t3_1cr0a1b"
    assert comment.url.startswith("https://www.reddit.com/r/smallbusiness/comments/1cr0a1b/")
    assert comment.raw["kind"] == "comment" and comment.query == QUERY


@responses.activate
def test_the_next_run_stops_at_the_first_stored_name_and_reuses_the_token(store):
    state = {"second": False}
    newer = {
        "kind": "t3",
        "data": {
            "id": "1cr1new",
            "name": "t3_1cr1new",
            "title": "Acme Widgets pricing change",
            "selftext": "",
            "author": "pricewatch",
            "subreddit": "smallbusiness",
            "created_utc": 1715610000.0,
            "permalink": "/r/smallbusiness/comments/1cr1new/acme_widgets_pricing_change/",
            "score": 2,
            "num_comments": 0,
        },
    }

    def route(path, params, auth):
        if path == "/search" and state["second"] and "after" not in params:
            page1 = json.loads(fixture("search_page1.json"))
            return 200, {}, listing([newer, *page1["data"]["children"]], "t3_1cqzz9k")
        return recorded(path, params)

    reddit = Reddit(route)
    scan(store)
    state["second"] = True
    calls_before = len(reddit.searches())
    report = scan(store, now=NOW + timedelta(minutes=5))

    assert report.reports[0].stored == 1 and "reddit:t3_1cr1new" in stored(store)
    # the page held names already stored: no request for older pages
    (only,) = reddit.searches()[calls_before:]
    assert "after" not in only
    assert len(reddit.token_requests) == 1  # the stored token was reused
    assert search_cursor(store).position["mark"]["names"][0] == "t3_1cr1new"


@responses.activate
def test_an_empty_listing_stores_nothing(store):
    Reddit(lambda path, params, auth: (200, {}, fixture("search_empty.json")))
    report = scan(store)
    assert (report.reports[0].stored, report.reports[0].errors) == (0, [])
    assert search_cursor(store).position == {"mark": None, "after": None, "top": None}


@responses.activate
def test_replaying_the_same_pages_three_times_stores_each_item_once(store):
    Reddit(recorded)
    results = [scan(store, now=NOW + timedelta(minutes=i)).reports[0] for i in range(3)]
    assert [r.stored for r in results] == [4, 0, 0]
    assert len(stored(store)) == 4
    assert sum(b.mentions for b in store.counts("acme", DAY_START, NOW + timedelta(hours=1))) == 4


# ------------------------------------------------------------------ runs cut short


def post(n: int, created: float) -> dict:
    return {
        "kind": "t3",
        "data": {
            "id": f"p{n}",
            "name": f"t3_p{n}",
            "title": f"Acme Widgets thread {n}",
            "selftext": "",
            "author": f"user{n}",
            "subreddit": "smallbusiness",
            "created_utc": created,
            "permalink": f"/r/smallbusiness/comments/p{n}/thread/",
            "score": 1,
            "num_comments": 0,
        },
    }


class Feed:
    """A search listing over a list of posts, newest first, two to a page, paged with `after`."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.explode_after: str | None = None

    def add(self, *numbers: int) -> None:  # higher numbers are newer
        self.items = [post(n, 1715600000.0 + 60 * n) for n in sorted(numbers, reverse=True)] + self.items

    def route(self, path, params, auth):
        if path != "/search":
            return 200, {}, fixture("search_empty.json")
        names = [i["data"]["name"] for i in self.items]
        after = params.get("after")
        if after and after == self.explode_after:
            self.explode_after = None
            raise LambdaKilled("Lambda timed out")
        start = names.index(after) + 1 if after in names else (len(names) if after else 0)
        chunk = self.items[start : start + 2]
        more = start + 2 < len(self.items)
        return 200, {}, listing(chunk, chunk[-1]["data"]["name"] if chunk and more else None)


@responses.activate
def test_a_cut_short_pass_is_finished_below_before_newer_items_are_read(store):
    feed = Feed()
    reddit = Reddit(feed.route)
    feed.add(1, 2)
    scan(store, subreddits="")  # a complete pass: the mark is p2
    assert search_cursor(store).position["mark"] == {"names": ["t3_p2", "t3_p1"], "utc": 1715600120.0}

    # Given five new posts, and a run that may read one page only
    feed.add(3, 4, 5, 6, 7)
    scan(store, max_pages=1, subreddits="")
    position = search_cursor(store).position
    assert position["after"] == "t3_p6" and position["mark"]["names"][0] == "t3_p2"
    assert position["top"]["names"] == ["t3_p7", "t3_p6"]

    # and newer posts arrive while the next short run reads the next page of the gap
    feed.add(8, 9)
    scan(store, max_pages=1, subreddits="")
    assert search_cursor(store).position["after"] == "t3_p4"

    # When a full run comes
    calls_before = len(reddit.searches())
    scan(store, subreddits="")

    # Then it finishes the gap down to the old mark first, then reads the newer posts down to p7
    assert [c.get("after") for c in reddit.searches()[calls_before:]] == ["t3_p4", None, "t3_p8"]
    assert set(stored(store)) == {f"reddit:t3_p{n}" for n in range(1, 10)}
    assert search_cursor(store).position == {
        "mark": {"names": ["t3_p9", "t3_p8"], "utc": 1715600540.0},
        "after": None,
        "top": None,
    }


@responses.activate
def test_a_run_killed_after_the_first_page_loses_nothing(store):
    feed = Feed()
    Reddit(feed.route)
    feed.add(1)
    scan(store, subreddits="")
    feed.add(2, 3, 4, 5)
    feed.explode_after = "t3_p4"  # the request for the second page kills the run
    with pytest.raises(LambdaKilled, match="timed out"):
        scan(store, subreddits="")
    assert set(stored(store)) == {"reddit:t3_p1", "reddit:t3_p5", "reddit:t3_p4"}
    assert search_cursor(store).position["after"] == "t3_p4"

    report = scan(store, now=NOW + timedelta(minutes=5), subreddits="")
    assert report.reports[0].errors == []
    assert set(stored(store)) == {f"reddit:t3_p{n}" for n in range(1, 6)}
    assert search_cursor(store).position["mark"]["names"][0] == "t3_p5"


@responses.activate
def test_a_resume_point_that_leads_nowhere_rereads_the_gap_from_the_newest(store):
    feed = Feed()
    reddit = Reddit(feed.route)
    feed.add(1, 2, 3)
    current = search_cursor(store)
    mark = {"names": ["t3_p1"], "utc": 1715600060.0}
    store.save_cursor(current, {"mark": mark, "after": "t3_gone", "top": {"names": ["t3_p9"], "utc": 1}}, NOW)
    scan(store, subreddits="")
    assert [c.get("after") for c in reddit.searches()] == ["t3_gone", None, "t3_p2"]
    assert set(stored(store)) == {"reddit:t3_p2", "reddit:t3_p3"}  # p1 is the mark, stored before
    assert search_cursor(store).position["mark"]["names"][0] == "t3_p3"


# ------------------------------------------------------------------ the OAuth token


@responses.activate
def test_the_token_is_kept_between_runs_and_fetched_again_after_it_expires(store):
    reddit = Reddit(recorded)
    scan(store)
    scan(store, now=NOW + timedelta(minutes=5))
    assert len(reddit.token_requests) == 1

    # a day later (the token lived 86,400 s) a new one is fetched and used
    later = time.time() + 86400 + 5
    scan(store, now=NOW + timedelta(minutes=10), http=HttpClient(sleep=lambda s: None, wall=lambda: later))
    assert len(reddit.token_requests) == 2
    assert reddit.calls[-1]["_auth"] == "bearer token-2"


@responses.activate
def test_a_401_fetches_a_new_token_once(store):
    def route(path, params, auth):
        if auth == "bearer token-1":
            return 401, {}, json.dumps({"message": "Unauthorized", "error": 401})
        return recorded(path, params)

    reddit = Reddit(route)
    report = scan(store)
    assert report.reports[0].errors == [] and report.reports[0].stored == 4
    assert len(reddit.token_requests) == 2  # token-1 refused, token-2 stored and reused

    # a token refused twice is an error, not a loop
    reddit.route = lambda path, params, auth: (401, {}, json.dumps({"message": "Unauthorized", "error": 401}))
    failed = scan(store, now=NOW + timedelta(minutes=5))
    assert failed.reports[0].errors[0] == "reddit: HTTP 401 for /search: the token was refused twice"
    assert len(failed.reports[0].errors) == 2  # search and comments
    assert len(reddit.token_requests) == 4  # one renewal per stream, no more


@responses.activate
def test_script_apps_use_the_password_grant(store):
    reddit = Reddit(recorded)
    scan(store, secret={**SECRET, "username": "acme_care", "password": PASSWORD})
    assert reddit.token_requests[0]["form"] == {
        "grant_type": "password",
        "username": "acme_care",
        "password": PASSWORD,
    }


# ------------------------------------------------------------------ rate limits and errors


@responses.activate
def test_a_429_waits_for_x_ratelimit_reset_seconds_then_continues(store):
    state = {"n": 0}

    def route(path, params, auth):
        state["n"] += 1
        if state["n"] == 1:
            headers = {"X-Ratelimit-Used": "100", "X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "37"}
            return 429, headers, json.dumps({"message": "Too Many Requests", "error": 429})
        return recorded(path, params)

    Reddit(route)
    sleeps: list[float] = []
    report = scan(store, http=HttpClient(sleep=sleeps.append, wall=time.time))
    assert report.reports[0].errors == [] and report.reports[0].stored == 4
    assert sleeps and round(max(sleeps)) == 37


@responses.activate
def test_a_rate_limit_that_outlasts_the_run_is_reported(store):
    headers = {"X-Ratelimit-Used": "100", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "420"}
    Reddit(
        lambda path, params, auth: (429, headers, json.dumps({"message": "Too Many Requests", "error": 429}))
    )
    http = HttpClient(sleep=lambda s: None)
    http.deadline = http.monotonic() + 60
    report = scan(store, http=http, subreddits="")
    (error,) = report.reports[0].errors
    assert error.startswith("reddit: rate limited (100 requests a minute per OAuth client): oauth.reddit.com")
    assert report.reports[0].stored == 0


@pytest.mark.parametrize(
    ("status", "content_type", "content", "expected"),
    [
        (
            403,
            "text/html; charset=UTF-8",
            fixture("blocked_403.html"),
            "reddit: HTTP 403 with an HTML page: Reddit is blocking this client",
        ),
        (200, "text/html", fixture("blocked_403.html"), "reddit: response body is an HTML page"),
        (200, "application/json", fixture("search_page1.json")[:200], "reddit: response body is not JSON"),
        (
            200,
            "application/json",
            json.dumps({"kind": "Listing", "data": {"children": {}}}),
            "reddit: Listing has no",
        ),
        (
            200,
            "application/json",
            json.dumps({"kind": "t3", "data": {}}),
            "reddit: response is not a Listing",
        ),
        (
            403,
            "application/json",
            json.dumps({"reason": "private", "message": "Forbidden", "error": 403}),
            "reddit: HTTP 403 for /search: private",
        ),
    ],
)
@responses.activate
def test_an_unusable_response_is_an_error_and_the_cursor_stays(
    store, status, content_type, content, expected
):
    Reddit(lambda path, params, auth: (status, {"Content-Type": content_type}, content))
    report = scan(store, subreddits="")
    (error,) = report.reports[0].errors
    assert error.startswith(expected)
    assert report.reports[0].stored == 0 and search_cursor(store).version == 0


@responses.activate
def test_malformed_items_are_skipped_with_a_reason(store):
    page = json.loads(fixture("search_page1.json"))
    good = page["data"]["children"][0]
    page["data"]["children"] += [
        "not an object",
        {"kind": "t3", "data": {**good["data"], "name": 12}},
        {"kind": "t3", "data": {**good["data"], "name": "t3_zz1", "created_utc": "yesterday"}},
        {"kind": "t5", "data": {**good["data"], "name": "t5_2qh1i"}},
        {"kind": "t3", "data": {**good["data"], "name": "t3_zz2", "selftext": "[deleted]"}},
    ]
    page["data"]["after"] = None
    Reddit(lambda path, params, auth: (200, {}, json.dumps(page)))
    report = scan(store, subreddits="")
    assert (report.reports[0].stored, report.reports[0].skipped, report.reports[0].errors) == (2, 5, [])


# ------------------------------------------------------------------ credentials


@responses.activate
def test_credentials_never_appear_in_logs_or_errors(store, caplog):
    reddit = Reddit(recorded, token_prefix="tok-SENSITIVE")
    secret = {**SECRET, "username": "acme_care", "password": PASSWORD}
    errors: list[str] = []
    # everything our code and the HTTP stack log (botocore's DEBUG dump of DynamoDB bodies aside)
    for name in ("emberwatch", "urllib3", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors += scan(store, secret=secret).reports[0].errors
    reddit.route = lambda path, params, auth: (401, {}, json.dumps({"error": 401}))
    errors += scan(store, secret=secret, now=NOW + timedelta(minutes=5)).reports[0].errors
    reddit.route = lambda path, params, auth: (
        403,
        {"Content-Type": "text/html"},
        fixture("blocked_403.html"),
    )
    errors += scan(store, secret=secret, now=NOW + timedelta(minutes=10)).reports[0].errors
    assert len(errors) == 4
    logged = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)  # extras included
    for text in (logged, *errors):
        for value in (SECRET["client_secret"], PASSWORD, "tok-SENSITIVE"):
            assert value not in text


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({k: v for k, v in SECRET.items() if k != "user_agent"}, "no user_agent under key 'reddit'"),
        ({**SECRET, "user_agent": "python-requests/2.32"}, "user_agent must read"),
        ({"user_agent": SECRET["user_agent"]}, "no client_id, client_secret under key 'reddit'"),
    ],
)
def test_missing_or_default_user_agent_is_a_credentials_error(store, secret, message):
    report = scan(store, secret=secret)
    (brand,) = report.reports
    assert brand.errors  # one per stream (search, subreddit comments), each naming the problem
    for error in brand.errors:
        assert message in error
        assert SECRET["client_secret"] not in error


# ------------------------------------------------------------------ the CLI uses the same parser


def test_emberwatch_parse_prints_the_items_of_a_recorded_listing(capsys):
    code = main(
        ["parse", "--source", "reddit", "--query", QUERY, str(FIXTURES / "comments_smallbusiness.json")]
    )
    out, err = capsys.readouterr()
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == ["reddit:t1_l3k9x2a", "reddit:t1_l3k9w10"]
    assert [line["matches"] for line in lines] == [True, False]
    assert lines[0]["parent_id"] == "reddit:t3_1cr0a1b"
    assert "2 mention(s), 1 skipped" in err and "comment t1_l3k9v55 has no text" in err


# ------------------------------------------------------------------ re-reading the watched posts


INFO_URL = "https://oauth.reddit.com/api/info"


TITLES = {
    1: "Acme Widgets invoice export keeps timing out",
    2: "Is the Acme Widgets team plan worth it for a bakery?",
    3: "Acme Widgets deleted our whole catalogue overnight",
}


def distinct(feed: Feed) -> None:
    """Give the feed's posts unrelated titles: top posts are chosen one per story."""
    for item in feed.items:
        item["data"]["title"] = TITLES[int(item["data"]["name"].removeprefix("t3_p"))]


@responses.activate
def test_watched_posts_are_re_read_with_api_info_once_per_interval(store):
    """The viral-post rule needs a post's growth: a search only returns new posts, so the scan re-reads
    the brand's recent top posts with `/api/info?id=` every `refresh_minutes` (15 by default)."""
    feed = Feed()
    feed.add(1, 2, 3)
    distinct(feed)
    Reddit(feed.route)
    growth = {"t3_p3": (480, 215), "t3_p2": (9, 4)}  # p1 was deleted: /api/info leaves it out
    info_calls: list[dict] = []

    def info(request):
        ids = parse_qs(urlparse(request.url).query)["id"][0].split(",")
        info_calls.append({"ids": ids, "auth": request.headers.get("Authorization")})
        children = []
        for name in ids:
            if name in growth:
                item = post(
                    int(name.removeprefix("t3_p")), 1715600000.0 + 60 * int(name.removeprefix("t3_p"))
                )
                item["data"]["score"], item["data"]["num_comments"] = growth[name]
                item["data"]["title"] = TITLES[int(name.removeprefix("t3_p"))]
                children.append(item)
        return 200, {}, listing(children, None)

    responses.add_callback(responses.GET, INFO_URL, callback=info)
    start = datetime(2024, 5, 13, 11, 45, tzinfo=UTC)
    first = scan(store, now=start)
    # the posts were stored at this scan, and re-read in the same run (their first interval)
    assert len(info_calls) == 1 and sorted(info_calls[0]["ids"]) == ["t3_p1", "t3_p2", "t3_p3"]
    assert info_calls[0]["auth"].startswith("bearer ")
    assert first.reports[0].refreshed == 2 and first.reports[0].refresh_errors == 0
    posts = stored(store)
    assert posts["reddit:t3_p3"].engagement.score == 480 and posts["reddit:t3_p3"].engagement.replies == 215
    assert posts["reddit:t3_p1"].engagement.score == 1  # not served again: kept as it was

    scan(store, now=start + timedelta(minutes=5))  # same 15-minute interval: no second read
    assert len(info_calls) == 1
    growth["t3_p3"] = (900, 600)
    later = scan(store, now=start + timedelta(minutes=16))
    assert len(info_calls) == 2 and later.reports[0].refreshed == 1
    assert stored(store)["reddit:t3_p3"].engagement.replies == 600
    growth["t3_p3"] = (700, 500)  # an older count never takes the stored one back
    scan(store, now=start + timedelta(minutes=31))
    assert len(info_calls) == 3 and stored(store)["reddit:t3_p3"].engagement.replies == 600


@responses.activate
def test_a_failed_re_read_is_counted_not_a_failed_scan_and_is_tried_next_run(store):
    feed = Feed()
    feed.add(1, 2)
    Reddit(feed.route)
    answers = [(503, {}, "upstream unavailable")] * 10

    def info(request):
        return answers.pop(0) if answers else (200, {}, listing([post(2, 1715600120.0)], None))

    responses.add_callback(responses.GET, INFO_URL, callback=info)
    start = datetime(2024, 5, 13, 11, 45, tzinfo=UTC)
    report = scan(store, now=start).reports[0]
    assert report.refresh_errors == 1 and report.errors == [] and report.stored == 2
    assert_refresh_failure_recorded(store, "reddit")
    answers.clear()
    retried = scan(store, now=start + timedelta(minutes=5)).reports[0]  # released: the same interval again
    assert retried.refresh_errors == 0


def test_refresh_minutes_is_validated_by_name():
    from emberwatch.config import ConfigError

    with pytest.raises(ConfigError, match=r"sources\.reddit\.refresh_minutes"):
        parse_config(CONFIG.format(max_pages=5, subreddits="smallbusiness") + "    refresh_minutes: 3\n")
    defaults = parse_config(CONFIG.format(max_pages=5, subreddits="smallbusiness"))
    assert defaults.source("reddit").refresh_minutes == 15 and defaults.source("x").refresh_minutes == 60
    off = parse_config(CONFIG.format(max_pages=5, subreddits="smallbusiness") + "    refresh_minutes: 0\n")
    assert off.source("reddit").refresh_minutes == 0
