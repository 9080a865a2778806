"""Facebook through the scanner: recorded Graph API v26.0 bodies replayed with `responses`, stored in moto."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from emberwatch.config import SourceSettings, parse_config
from emberwatch.http import HttpClient, SourceError
from emberwatch.scan import PAUSE_THRESHOLD, scan_source
from emberwatch.sources import ScanContext
from emberwatch.sources.facebook import COMMENT_FIELDS, CONNECTOR, TAGGED_FIELDS

from tests.conftest import LambdaKilled

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "facebook"
BASE = "https://graph.example/v26.0"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
PAGE = "1234567890"
TOKEN = "EAAGm0PX4ZCpsBO-page-token-for-tests-ZDZD"
OTHER_PAGE = "2233445566"
CONFIG = f"""
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
    facebook_pages: ['{PAGE}']
sources:
  facebook:
    enabled: true
    base_url: {BASE}
"""
ONE_PAGE = CONFIG.replace("    enabled: true\n", "    enabled: true\n    max_pages: 1\n")
USAGE = {"X-App-Usage": json.dumps({"call_count": 28, "total_time": 25, "total_cputime": 17})}

Handler = Callable[[str, dict[str, str]], tuple[int, Any] | tuple[int, Any, dict[str, str]]]


class FakeCredentials:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def for_source(self, source: str) -> dict[str, Any]:
        return dict(self.values.get(source, {}))


TOKENS = FakeCredentials({"facebook": {"page_tokens": {PAGE: TOKEN}}})


def body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def recorded(path: str, params: dict[str, str]) -> tuple[int, Any]:
    """The recorded Page: two pages of tagged posts, two recent posts, two pages of comments on one."""
    later = "after" in params or "until" in params  # the next page, in this run or a later one
    if path == "/v26.0/":
        return read_ids(params, objects())
    if path.endswith(f"/{PAGE}/tagged"):
        return 200, body("tagged_page2.json" if later else "tagged.json")
    if path.endswith(f"/{PAGE}/posts"):
        return 200, body("posts.json")
    if path.endswith("/1234567890_9001/comments"):
        return 200, body("comments_9001_page2.json" if later else "comments_9001.json")
    if path.endswith("/comments"):
        return 200, body("empty.json")
    return 400, {"error": {"message": "Unknown path components", "type": "OAuthException", "code": 2500}}


def objects() -> dict[str, dict[str, Any]]:
    """Every recorded tagged post and comment by id: what Graph's multi-id read answers from."""
    names = ("tagged.json", "tagged_page2.json", "comments_9001.json", "comments_9001_page2.json")
    return {item["id"]: item for name in names for item in body(name)["data"]}


def read_ids(params: dict[str, str], known: dict[str, dict[str, Any]]) -> tuple[int, Any]:
    """Graph's multi-id read `GET /v26.0/?ids=a,b&fields=`: an object keyed by id, each with the fields
    asked for only; one object it does not serve fails the whole read with error 803 naming it."""
    ids = params["ids"].split(",")
    missing = [i for i in ids if i not in known]
    if missing:
        message = f"(#803) Some of the aliases you requested do not exist: {','.join(missing)}"
        return 404, {
            "error": {"message": message, "type": "OAuthException", "code": 803, "fbtrace_id": "Ab1"}
        }
    wanted = {re.match(r"\w+", f).group(0) for f in params["fields"].split(",")}
    return 200, {i: {k: v for k, v in known[i].items() if k in wanted} for i in ids}


def serve(handler: Handler, calls: list[tuple[str, dict[str, str]]]) -> None:
    def callback(request):
        url = urlparse(request.url)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        calls.append((url.path, params))
        status, payload, *extra = handler(url.path, params)
        headers = {"Content-Type": "application/json; charset=UTF-8", **USAGE, **(extra[0] if extra else {})}
        if isinstance(payload, str):
            headers["Content-Type"] = "text/html" if payload.startswith("<") else headers["Content-Type"]
            return status, headers, payload
        return status, headers, json.dumps(payload)

    responses.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/.*"), callback=callback)


def scan(store, sleeps: list[float] | None = None, config: str = CONFIG, credentials=TOKENS, now=NOW):
    return scan_source(
        "facebook",
        now,
        config=parse_config(config),
        store=store,
        http=HttpClient(sleep=(sleeps if sleeps is not None else []).append),
        credentials=credentials,
    )


def stored(store) -> dict[str, Any]:
    return {m.id: m for m in store.mentions_between("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)}


def cursor(store, kind: str):
    brand = parse_config(CONFIG).brand("acme")
    spec = next(s for s in CONNECTOR.specs(brand, SourceSettings("facebook")) if s.params["kind"] == kind)
    return store.get_cursor("acme", "facebook", spec.key)


def epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


@pytest.fixture
def captured(caplog):
    """Every emberwatch record at DEBUG, also after Powertools' Logger stopped them propagating to root."""
    package = logging.getLogger("emberwatch")
    caplog.set_level(logging.DEBUG, logger="emberwatch")
    package.addHandler(caplog.handler)
    yield caplog
    package.removeHandler(caplog.handler)


def logged(caplog) -> str:
    """Every captured log line with all its attributes (`extra` fields are not in caplog.text)."""
    return caplog.text + "\n".join(repr(vars(record)) for record in caplog.records)


def record_errors(monkeypatch) -> list[SourceError]:
    errors: list[SourceError] = []
    original = CONNECTOR.pages

    def pages(*args, **kwargs):
        try:
            yield from original(*args, **kwargs)
        except SourceError as exc:
            errors.append(exc)
            raise

    monkeypatch.setattr(CONNECTOR, "pages", pages)
    return errors


TAGGED = {"facebook:5566778899_1110001", "facebook:7788990011_3330003", "facebook:9900112233_5550005"}
COMMENTS = {"facebook:9001_998877", "facebook:9001_998878", "facebook:9001_998001"}


@responses.activate
def test_tagged_posts_and_page_comments_are_stored_normalised(store):
    # Given posts tagging the Page and comments on the Page's own posts
    calls: list[tuple[str, dict[str, str]]] = []
    serve(recorded, calls)

    # When the source is scanned
    report = scan(store)

    # Then tagged posts are re-checked against the queries, comments on the Page are all kept
    (brand,) = report.reports
    assert brand.errors == []
    assert set(stored(store)) == TAGGED | COMMENTS
    assert brand.not_matching == 1  # the tagged post about anvils
    assert brand.skipped == 2  # a tagged post with no date, a sticker-only comment
    mentions = stored(store)
    post = mentions["facebook:5566778899_1110001"]
    assert post.text == "Loving my new Acme Widgets hub! Setup took two minutes."
    assert post.author.handle == "Lee Park"
    assert post.created_at == datetime(2024, 5, 13, 14, 0, tzinfo=UTC)
    assert post.url == "https://www.facebook.com/5566778899/posts/1110001"
    assert (post.engagement.likes, post.engagement.replies) == (12, 3)
    assert post.query == '"acme widgets" OR acmewidgets'
    anonymous = mentions["facebook:7788990011_3330003"]
    assert anonymous.author.handle == "Facebook user"
    assert anonymous.text == "acmewidgets delivery was late\n\nagain"
    assert anonymous.url == "https://www.facebook.com/7788990011_3330003"
    comment = mentions["facebook:9001_998877"]
    assert comment.query == f"page:{PAGE}"  # "Does Acme ship to Canada?" matches no query, and is kept
    assert comment.url == "https://www.facebook.com/1234567890/posts/9001?comment_id=998877"
    assert comment.parent_id == comment.conversation_id == "facebook:1234567890_9001"
    assert (comment.engagement.likes, comment.engagement.replies) == (1, 0)
    reply = mentions["facebook:9001_998878"]
    assert reply.parent_id == "facebook:9001_998800"
    assert reply.conversation_id == "facebook:1234567890_9001"
    assert reply.author.handle == "Facebook user"
    assert reply.created_at == datetime(2024, 5, 13, 13, 51, 12, tzinfo=UTC)
    assert mentions["facebook:9001_998001"].text == "Great service,\n\nthanks Acme"

    # the requests: the Page token as a parameter (never the one in Graph's `next` links)
    assert {p["access_token"] for _, p in calls} == {TOKEN}
    tagged = [p for path, p in calls if path.endswith("/tagged")]
    assert tagged[0]["since"] == str(epoch(2024, 5, 12, 13, 58))  # 24 h before 14:00, less the overlap
    assert tagged[1]["after"] == "QVFIUk5pcWxB"
    (posts,) = [p for path, p in calls if path.endswith("/posts")]
    assert posts["since"] == str(epoch(2024, 5, 5, 14, 0)) and posts["fields"] == "id,created_time"
    comments = [(path, p) for path, p in calls if path.endswith("/comments")]
    assert [path.rsplit("/", 2)[1] for path, _ in comments] == ["1234567890_9001"] * 2 + ["1234567890_9000"]
    first = comments[0][1]
    assert (first["order"], first["filter"], first["since"]) == (
        "reverse_chronological",
        "stream",
        str(epoch(2024, 5, 12, 13, 58)),
    )
    assert first["fields"] == "id,message,from,created_time,like_count,comment_count,parent,permalink_url"

    # the watermarks moved to the newest post and comment stored
    assert cursor(store, "tagged").position["since"] == epoch(2024, 5, 13, 14, 0)
    done = cursor(store, "comments").position
    assert (done["since"], done["done"], done["post"]) == (epoch(2024, 5, 13, 14, 0), [], None)


@responses.activate
def test_second_pages_are_read_from_the_stored_cursors(store):
    # Given one page per stream and run
    calls: list[tuple[str, dict[str, str]]] = []
    serve(recorded, calls)

    # When the first run reads the first page of tagged posts and of the first post's comments
    scan(store, config=ONE_PAGE)
    assert set(stored(store)) == {"facebook:5566778899_1110001", "facebook:7788990011_3330003"} | {
        "facebook:9001_998877",
        "facebook:9001_998878",
    }
    tagged = cursor(store, "tagged").position
    assert tagged["upper"] == epoch(2024, 5, 13, 12, 45, 10)
    comments = cursor(store, "comments").position
    assert (comments["post"], comments["upper"], comments["done"]) == (
        "1234567890_9001",
        epoch(2024, 5, 13, 13, 51, 12),
        [],
    )

    # Then the next run continues below those points
    calls.clear()
    scan(store, config=ONE_PAGE)
    assert set(stored(store)) == TAGGED | COMMENTS
    until = {path.rsplit("/", 2)[1]: p.get("until") for path, p in calls if "until" in p}
    assert until == {
        PAGE: str(epoch(2024, 5, 13, 12, 45, 11)),
        "1234567890_9001": str(epoch(2024, 5, 13, 13, 51, 13)),
    }
    assert cursor(store, "comments").position["done"] == ["1234567890_9001"]

    # And the run after that sweeps the remaining post and moves the watermark
    calls.clear()
    scan(store, config=ONE_PAGE)
    assert [path for path, _ in calls if path.endswith("/comments")] == ["/v26.0/1234567890_9000/comments"]
    final = cursor(store, "comments").position
    assert (final["since"], final["done"]) == (epoch(2024, 5, 13, 14, 0), [])


@responses.activate
def test_empty_results_store_nothing(store):
    serve(lambda path, params: (200, body("empty.json")), [])
    report = scan(store)
    assert report.reports[0].errors == []
    assert report.reports[0].stored == 0
    # with no posts to read, the comments watermark moves to the run's time
    assert cursor(store, "comments").position["since"] == epoch(2024, 5, 13, 14, 30)


@pytest.mark.parametrize(
    ("code", "status", "headers", "wait"),
    [
        (
            80001,
            400,
            {
                "X-Business-Use-Case-Usage": json.dumps(
                    {
                        PAGE: [
                            {
                                "type": "pages",
                                "call_count": 100,
                                "total_cputime": 12,
                                "total_time": 20,
                                "estimated_time_to_regain_access": 30,
                            }
                        ]
                    }
                )
            },
            1800,
        ),
        (4, 403, {}, 900),
        (17, 400, {}, 900),
        (32, 400, {"X-Business-Use-Case-Usage": "not json"}, 900),
        (613, 400, {}, 900),
    ],
)
@responses.activate
def test_a_throttle_error_code_stops_the_source_for_the_announced_time(
    store, monkeypatch, code, status, headers, wait
):
    # Given Graph answers with a throttling error body (not a 429)
    throttled = body("throttled.json")
    throttled["error"]["code"] = code
    serve(lambda path, params: (status, throttled, headers), [])
    errors = record_errors(monkeypatch)

    report = scan(store)

    # Then the stream stops with a wait long enough to pause the source
    assert errors[0].retry_after == wait
    assert errors[0].retry_after > PAUSE_THRESHOLD.total_seconds()
    assert f"error code {code}" in report.reports[0].errors[0]
    assert cursor(store, "tagged").version == 0


@responses.activate
def test_a_throttle_error_code_pauses_later_runs(store):
    calls: list[tuple[str, dict[str, str]]] = []
    serve(lambda path, params: (400, body("throttled.json")), calls)
    scan(store)
    assert store.paused_until("facebook") == datetime(2024, 5, 13, 14, 45, tzinfo=UTC)
    made = len(calls)
    scan(store)
    assert len(calls) == made


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("<!DOCTYPE html><html><body>Sorry, something went wrong.</body></html>", "HTML page"),
        ('{"data": [{"id": "9001_998877", "message": "Acme', "not JSON"),
        ({"data": {"id": "9001_998877"}}, "no 'data' list"),
    ],
)
@responses.activate
def test_malformed_bodies_fail_the_stream_with_a_reason(store, payload, message):
    serve(lambda path, params: (200, payload), [])
    report = scan(store)
    errors = report.reports[0].errors
    assert len(errors) == 2 and all(message in e for e in errors)
    assert cursor(store, "tagged").version == 0 and cursor(store, "comments").version == 0


@responses.activate
def test_replaying_the_same_pages_three_times_stores_each_mention_once(store):
    serve(recorded, [])
    results = [scan(store).reports[0] for _ in range(3)]
    assert [r.stored for r in results] == [6, 0, 0]
    assert all(not r.errors for r in results)
    assert set(stored(store)) == TAGGED | COMMENTS
    assert sum(b.mentions for b in store.counts("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)) == 6


@responses.activate
def test_a_run_killed_after_the_first_page_loses_nothing(store):
    state = {"kill": True}

    def handler(path, params):
        if path.endswith("_9001/comments") and "after" in params and state["kill"]:
            raise LambdaKilled("killed")
        return recorded(path, params)

    serve(handler, [])
    with pytest.raises(LambdaKilled, match="killed"):
        scan(store)
    assert {"facebook:9001_998877", "facebook:9001_998878"} <= set(stored(store))

    state["kill"] = False
    report = scan(store)
    assert report.reports[0].errors == []
    assert set(stored(store)) == TAGGED | COMMENTS


@responses.activate
def test_page_tokens_never_appear_in_logs_or_errors(store, captured):

    def handler(path, params):
        if path.endswith("/tagged"):
            message = f"Error validating access token {params['access_token']}: the session has expired."
            return 400, {"error": {"message": message, "type": "OAuthException", "code": 190}}
        return 500, "<html><body>Sorry, something went wrong.</body></html>"

    serve(handler, [])
    report = scan(store)
    errors = report.reports[0].errors
    assert len(errors) == 2 and "code 190" in errors[0] and "HTTP 500" in errors[1]
    assert TOKEN not in logged(captured) + " ".join(errors)
    usage = [r for r in captured.records if r.getMessage() == "facebook app usage"]
    assert usage and usage[0].levelno == logging.DEBUG and usage[0].call_count == 28


@responses.activate
def test_a_missing_page_token_names_the_page(store):
    serve(recorded, [])
    config = CONFIG.replace(f"facebook_pages: ['{PAGE}']", f"facebook_pages: ['{PAGE}', '{OTHER_PAGE}']")
    report = scan(store, config=config)
    # one error per stream of the Page without a token (its tagged posts and its comments)
    errors = report.reports[0].errors
    assert len(errors) == 2
    for message in errors:
        assert f"page {OTHER_PAGE}" in message
        assert TOKEN not in message
    assert set(stored(store)) == TAGGED | COMMENTS  # the Page that has a token was read


def test_parse_reads_a_raw_body_with_the_scanners_code():
    brand = parse_config(CONFIG).brand("acme")
    parsed = CONNECTOR.parse((FIXTURES / "comments_9001.json").read_bytes(), brand, "")
    assert [m.id for m in parsed.mentions] == ["facebook:9001_998877", "facebook:9001_998878"]
    assert parsed.mentions[1].parent_id == "facebook:9001_998800"
    assert parsed.skipped == ["9001_998879 has no message (a photo or sticker only)"]


# ------------------------------------------------------------------ re-reading the watched posts


def grown(known: dict[str, dict[str, Any]], post_id: str, likes: int, replies: int) -> None:
    """Give one recorded object new counts, in its own kind's fields."""
    item = known[post_id]
    if "like_count" in item:
        item["like_count"], item["comment_count"] = likes, replies
    else:
        item["reactions"] = {"data": [], "summary": {"total_count": likes}}
        item["comments"] = {"data": [], "summary": {"total_count": replies}}


@responses.activate
def test_watched_posts_and_comments_are_re_read_with_the_multi_id_read(store, captured):
    """A search only returns new posts: the scan re-reads the brand's recent top posts every 15 minutes,
    tagged posts and comments apart (each with its own stream's fields, so the counts are computed as
    when they were stored) through `GET /v26.0/?ids=` with the Page token."""
    known = objects()
    grown(known, "5566778899_1110001", 40, 9)
    grown(known, "9001_998878", 30, 6)
    del known["7788990011_3330003"]  # deleted since: Graph fails any read that names it
    calls: list[tuple[str, dict[str, str]]] = []

    def handler(path, params):
        return read_ids(params, known) if path == "/v26.0/" else recorded(path, params)

    serve(handler, calls)
    report = scan(store).reports[0]
    assert report.errors == [] and report.stored == 6 and report.refresh_errors == 0
    reads = [p for path, p in calls if path == "/v26.0/"]
    posts = {"5566778899_1110001", "9900112233_5550005", "7788990011_3330003"}
    comments = {"9001_998877", "9001_998878", "9001_998001"}
    # the posts' read failed on the deleted one (error 803 names it) and was asked again without it
    assert [set(p["ids"].split(",")) for p in reads] == [posts, posts - {"7788990011_3330003"}, comments]
    assert {p["fields"] for p in reads[:2]} == {TAGGED_FIELDS}
    assert reads[2]["fields"] == COMMENT_FIELDS
    assert {p["access_token"] for p in reads} == {TOKEN}
    mentions = stored(store)
    post = mentions["facebook:5566778899_1110001"].engagement
    comment = mentions["facebook:9001_998878"].engagement
    assert (post.likes, post.replies, comment.likes, comment.replies) == (40, 9, 30, 6)
    assert mentions["facebook:7788990011_3330003"].engagement.likes == 2  # gone: kept as it was
    assert "(#803) Some of the aliases you requested do not exist: 7788990011_3330003" in logged(captured)
    assert TOKEN not in logged(captured)

    # the same 15 minutes: no second read
    scan(store, now=NOW + timedelta(minutes=10))
    assert len([path for path, _ in calls if path == "/v26.0/"]) == 3
    # the next interval: read again; only what grew is written
    grown(known, "9001_998878", 75, 6)
    later = scan(store, now=NOW + timedelta(minutes=15)).reports[0]
    assert len([path for path, _ in calls if path == "/v26.0/"]) == 6
    assert (later.refreshed, later.refresh_errors, later.errors) == (1, 0, [])
    assert stored(store)["facebook:9001_998878"].engagement.likes == 75


@responses.activate
def test_a_gone_object_the_error_does_not_name_is_isolated_and_reads_go_50_ids_at_a_time():
    brand = parse_config(CONFIG).brand("acme")
    template = CONNECTOR.parse((FIXTURES / "tagged.json").read_bytes(), brand, "").mentions[0]
    posts = [
        replace(template, native_id=f"5566778899_{i}", raw={"kind": "post", "page": PAGE}) for i in range(120)
    ]
    item = body("tagged.json")["data"][0]
    known = {p.native_id: {**item, "id": p.native_id} for p in posts if p.native_id != "5566778899_77"}
    calls: list[tuple[str, dict[str, str]]] = []

    def handler(path, params):
        status, payload = read_ids(params, known)
        if status != 200:  # an error that names no id
            payload["error"]["message"] = "(#803) Some of the aliases you requested do not exist"
        return status, payload

    serve(handler, calls)
    settings = parse_config(CONFIG).source("facebook")
    ctx = ScanContext(http=HttpClient(sleep=lambda s: None), now=NOW, settings=settings, credentials=TOKENS)
    read = CONNECTOR.engagement(brand, posts, ctx)
    assert set(read) == {p.id for p in posts} - {"facebook:5566778899_77"}
    assert all(e.likes == 12 and e.replies == 3 for e in read.values())
    sizes = [len(p["ids"].split(",")) for _, p in calls]
    assert sizes[:2] == [20, 50] and sizes.count(50) == 2 and max(sizes) <= 50
    # only the batch with the gone post is halved, down to it alone: about 2 log2(50) more reads
    assert sizes.count(1) == 3 and len(calls) <= 3 + 2 * 6


@pytest.mark.parametrize(
    ("status", "payload", "pause"),
    [
        (500, "<html><body>Sorry, something went wrong.</body></html>", None),
        # a throttle pauses the source as a search's would (THROTTLE_WAIT), then the read is retried
        (400, body("throttled.json"), timedelta(minutes=15)),
    ],
    ids=["http-500", "throttled"],
)
@responses.activate
def test_a_failed_multi_id_read_is_counted_not_a_failed_scan_and_is_tried_next_run(
    store, status, payload, pause
):
    known = objects()
    grown(known, "5566778899_1110001", 40, 9)
    failing = {"on": True}
    calls: list[tuple[str, dict[str, str]]] = []

    def handler(path, params):
        if path != "/v26.0/":
            return recorded(path, params)
        return (status, payload) if failing["on"] else read_ids(params, known)

    serve(handler, calls)
    report = scan(store).reports[0]
    assert (report.refresh_errors, report.errors, report.stored) == (1, [], 6)
    run = store.source_runs("acme")["facebook"]
    assert run["failures"] == 0 and "last_error" not in run  # not a blind spot
    assert store.paused_until("facebook") == (NOW + pause if pause else None)
    assert stored(store)["facebook:5566778899_1110001"].engagement.likes == 12

    failing["on"] = False
    # released: the next run reads again (after the pause, if any)
    retried = scan(store, now=NOW + (pause or timedelta(0)) + timedelta(minutes=5)).reports[0]
    assert (retried.refresh_errors, retried.errors) == (0, [])
    assert stored(store)["facebook:5566778899_1110001"].engagement.likes == 40
