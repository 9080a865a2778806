"""YouTube through the scanner: recorded Data API v3 bodies replayed with `responses`, stored in moto."""

from __future__ import annotations

import copy
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
from emberwatch.sources.youtube import CONNECTOR, next_pacific_midnight

from tests.conftest import LambdaKilled

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "youtube"
BASE = "https://yt.example/youtube/v3"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
API_KEY = "AIzaSyD-TEST-ONLY-k3y-never-logged-0123"
CHANNEL = "UCq9x8y7z6w5v4u3t2s1r0AB"
CONFIG = f"""
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
    youtube_channels: [{CHANNEL}]
sources:
  youtube:
    enabled: true
    base_url: {BASE}
"""

Handler = Callable[[str, dict[str, str]], tuple[int, Any]]


class FakeCredentials:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def for_source(self, source: str) -> dict[str, Any]:
        return dict(self.values.get(source, {}))


def body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def recorded(path: str, params: dict[str, str]) -> tuple[int, Any]:
    """The recorded API: one query with two search pages, statistics, one page of channel comments."""
    if path.endswith("/search"):
        if params["q"] != '"acme widgets"':
            return 200, body("search_empty.json")
        resumed = "publishedBefore" in params  # a later run continuing below the stored `upper`
        return 200, body(
            "search_page2.json" if params.get("pageToken") == "CAIQAA" or resumed else "search_page1.json"
        )
    if path.endswith("/videos"):
        stats = body("videos.json")
        wanted = params["id"].split(",")
        stats["items"] = [i for i in stats["items"] if i["id"] in wanted]
        return 200, stats
    if path.endswith("/commentThreads"):
        threads = body("comment_threads.json")
        if "id" in params:  # threads asked for by id: the re-read of watched comments
            wanted = params["id"].split(",")
            threads["items"] = [i for i in threads["items"] if i["id"] in wanted]
        return 200, threads
    return 404, {"error": {"code": 404, "errors": [{"reason": "notFound"}]}}


def serve(handler: Handler, calls: list[tuple[str, dict[str, str]]]) -> None:
    def callback(request):
        url = urlparse(request.url)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        calls.append((url.path, params))
        status, payload = handler(url.path, params)
        text = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        kind = "text/html" if isinstance(payload, str) and payload.startswith("<") else "application/json"
        return status, {"Content-Type": kind}, text

    responses.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/.*"), callback=callback)


def scan(store, sleeps: list[float] | None = None, config: str = CONFIG, credentials=None, now=NOW):
    return scan_source(
        "youtube",
        now,
        config=parse_config(config),
        store=store,
        http=HttpClient(sleep=(sleeps if sleeps is not None else []).append),
        credentials=credentials or FakeCredentials({"youtube": {"api_key": API_KEY}}),
    )


def stored(store) -> dict[str, Any]:
    return {m.id: m for m in store.mentions_between("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)}


def spec_key(kind: str, label: str | None = None) -> str:
    brand = parse_config(CONFIG).brand("acme")
    return next(
        s.key
        for s in CONNECTOR.specs(brand, SourceSettings("youtube"))
        if s.params["kind"] == kind and (label is None or s.label == label)
    )


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
    """The SourceErrors the connector raised, with their retry_after (the report keeps the text only)."""
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


@responses.activate
def test_search_and_channel_comments_are_stored_normalised(store):
    # Given a search with two pages of videos and a channel with new comments
    calls: list[tuple[str, dict[str, str]]] = []
    serve(recorded, calls)

    # When the source is scanned
    report = scan(store)

    # Then matching videos and comments are stored, the rest counted as skipped or not matching
    (brand,) = report.reports
    assert brand.errors == []
    assert brand.stored == 5
    assert brand.skipped == 3  # a date "yesterday", a channel result, a comment with an epoch date
    assert brand.not_matching == 2  # "Acme anvils", "First!"
    mentions = stored(store)
    assert set(mentions) == {
        "youtube:Xk3fQ9pLm2A",
        "youtube:Pz8rT1vNw0Q",
        "youtube:Lm4nB7cVx1Z",
        "youtube:comment:UgzA1b2C3d4E5f6G7h84AaABAg",
        "youtube:comment:UgzD4e5F6g7H8i9J0k1LAaABAg",
    }
    video = mentions["youtube:Xk3fQ9pLm2A"]
    assert video.title == 'Acme Widgets review after 30 days: "worth it?" & what I\'d change'
    assert video.text == f"{video.title}\n\nHonest take on the Acme Widgets starter kit & the app ..."
    assert video.author.handle == "Gadget Garage"
    assert video.url == "https://www.youtube.com/watch?v=Xk3fQ9pLm2A"
    assert video.created_at == datetime(2024, 5, 13, 13, 0, 7, tzinfo=UTC)
    assert (video.engagement.likes, video.engagement.replies, video.engagement.score) == (412, 57, 0)
    assert video.raw["views"] == 15234
    assert video.query == '"acme widgets" OR acmewidgets'
    assert mentions["youtube:Pz8rT1vNw0Q"].engagement.likes == 0  # likes hidden by the owner
    comment = mentions["youtube:comment:UgzA1b2C3d4E5f6G7h84AaABAg"]
    assert comment.text == "Acme Widgets support was great for me\nFixed my hub in <10 min"
    assert comment.url == "https://www.youtube.com/watch?v=Xk3fQ9pLm2A&lc=UgzA1b2C3d4E5f6G7h84AaABAg"
    assert comment.parent_id == comment.conversation_id == "youtube:Xk3fQ9pLm2A"
    assert comment.author.handle == "@widgetfan"
    assert (comment.engagement.likes, comment.engagement.replies) == (3, 2)
    assert mentions["youtube:comment:UgzD4e5F6g7H8i9J0k1LAaABAg"].text == (
        'Does the acmewidgets hub work with "Matter"?'
    )

    # the requests: the key as a parameter, date order from the watermark, one statistics call per page
    searches = [p for path, p in calls if path.endswith("/search")]
    first = searches[0]
    assert first["key"] == API_KEY
    assert (first["type"], first["order"], first["part"], first["maxResults"]) == (
        "video",
        "date",
        "snippet",
        "50",
    )
    assert first["publishedAfter"] == "2024-05-12T13:00:00Z"  # 24 h before 14:00, less 1 h overlap
    assert [p.get("pageToken") for p in searches if p["q"] == '"acme widgets"'] == [None, "CAIQAA"]
    stats = [p for path, p in calls if path.endswith("/videos")]
    # one per search page, then the re-read of the watched posts (the run's first refresh interval)
    assert [p["id"] for p in stats] == [
        "Xk3fQ9pLm2A,Pz8rT1vNw0Q",
        "Lm4nB7cVx1Z",
        "Xk3fQ9pLm2A,Lm4nB7cVx1Z,Pz8rT1vNw0Q",
    ]
    assert all(p["part"] == "statistics" for p in stats)
    (threads,) = [p for path, p in calls if path.endswith("/commentThreads") and "id" not in p]
    assert threads["allThreadsRelatedToChannelId"] == CHANNEL
    assert threads["order"] == "time"
    # the search cursor moved to the newest video, the channel cursor to the newest comment
    cursor = store.get_cursor("acme", "youtube", spec_key("search", '"acme widgets"'))
    assert cursor.position["since"] == int(datetime(2024, 5, 13, 13, 0, 7, tzinfo=UTC).timestamp())
    assert cursor.position["upper"] is None
    channel = store.get_cursor("acme", "youtube", spec_key("channel"))
    assert channel.position["since"] == int(datetime(2024, 5, 13, 14, 10, tzinfo=UTC).timestamp())
    assert channel.position["page_token"] is None


@responses.activate
def test_second_page_is_read_from_the_stored_cursor(store):
    # Given one search page per run (max_pages 1)
    calls: list[tuple[str, dict[str, str]]] = []
    serve(recorded, calls)
    config = CONFIG.replace("    enabled: true\n", "    enabled: true\n    max_pages: 1\n")

    # When the first run stops after page one
    first = scan(store, config=config)
    cursor = store.get_cursor("acme", "youtube", spec_key("search", '"acme widgets"'))

    # Then its cursor keeps the window's top at the oldest video stored, `since` unchanged
    assert first.reports[0].stored == 4  # two videos, two comments
    oldest = int(datetime(2024, 5, 13, 11, 22, 40, tzinfo=UTC).timestamp())
    assert cursor.position["upper"] == oldest
    assert cursor.position["since"] == int(datetime(2024, 5, 12, 14, 0, tzinfo=UTC).timestamp())

    # When the next run resumes below that top
    calls.clear()
    second = scan(store, config=config)

    # Then it asks for videos published before it and stores the older one
    resumed = next(p for path, p in calls if path.endswith("/search") and p["q"] == '"acme widgets"')
    assert resumed["publishedBefore"] == "2024-05-13T11:22:40Z"
    assert "pageToken" not in resumed
    assert second.reports[0].stored == 1
    assert "youtube:Lm4nB7cVx1Z" in stored(store)
    cursor = store.get_cursor("acme", "youtube", spec_key("search", '"acme widgets"'))
    assert cursor.position["upper"] is None
    assert cursor.position["since"] == int(datetime(2024, 5, 13, 13, 0, 7, tzinfo=UTC).timestamp())


@responses.activate
def test_channel_comments_page_by_token_and_restart_when_the_token_is_refused(store):
    # Given a channel whose comments come in two pages
    threads = body("comment_threads.json")
    page1 = dict(threads, items=threads["items"][:2], nextPageToken="QURTSl9p")
    page2 = dict(threads, items=threads["items"][2:])
    state = {"refuse": False}

    def handler(path: str, params: dict[str, str]) -> tuple[int, Any]:
        if not path.endswith("/commentThreads"):
            return (
                recorded(path, params) if not path.endswith("/search") else (200, body("search_empty.json"))
            )
        if params.get("pageToken") == "QURTSl9p":
            if state["refuse"]:
                return 400, {"error": {"code": 400, "errors": [{"reason": "invalidPageToken"}]}}
            return 200, page2
        return 200, page1

    calls: list[tuple[str, dict[str, str]]] = []
    serve(handler, calls)
    config = CONFIG.replace("    enabled: true\n", "    enabled: true\n    max_pages: 1\n")

    # When a run reads one page, the cursor keeps the page token
    scan(store, config=config)
    channel = store.get_cursor("acme", "youtube", spec_key("channel"))
    assert channel.position["page_token"] == "QURTSl9p"
    assert "youtube:comment:UgzA1b2C3d4E5f6G7h84AaABAg" in stored(store)

    # And when the next run's token is refused, the walk restarts from the newest comment
    state["refuse"] = True
    report = scan(store, config=config)
    assert report.reports[0].errors == []
    tokens = [p.get("pageToken") for path, p in calls if path.endswith("/commentThreads") and "id" not in p]
    assert tokens == [None, "QURTSl9p", None]

    # And a run that can read on finishes the walk
    state["refuse"] = False
    scan(store)
    assert "youtube:comment:UgzD4e5F6g7H8i9J0k1LAaABAg" in stored(store)
    channel = store.get_cursor("acme", "youtube", spec_key("channel"))
    assert channel.position["page_token"] is None


@responses.activate
def test_empty_results_store_nothing_and_spend_no_statistics_call(store):
    calls: list[tuple[str, dict[str, str]]] = []
    empty_threads = {
        "kind": "youtube#commentThreadListResponse",
        "items": [],
        "pageInfo": {"totalResults": 0},
    }
    serve(
        lambda path, params: (
            200,
            empty_threads if path.endswith("/commentThreads") else body("search_empty.json"),
        ),
        calls,
    )
    report = scan(store)
    assert report.reports[0].errors == []
    assert report.reports[0].stored == 0
    assert not [c for c in calls if c[0].endswith("/videos")]
    cursor = store.get_cursor("acme", "youtube", spec_key("search", '"acme widgets"'))
    assert cursor.position["since"] == int(datetime(2024, 5, 12, 14, 0, tzinfo=UTC).timestamp())


@responses.activate
def test_quota_exceeded_stops_the_source_until_midnight_pacific(store, monkeypatch):
    # Given the daily quota is spent (403 quotaExceeded, no rate-limit headers)
    calls: list[tuple[str, dict[str, str]]] = []
    serve(lambda path, params: (403, body("quota_exceeded.json")), calls)
    errors = record_errors(monkeypatch)

    report = scan(store)

    # Then the source reports it with a wait until the reset: midnight in Los Angeles (PDT, UTC-7)
    assert errors, "the connector raised"
    assert errors[0].status == 403
    assert errors[0].retry_after == (datetime(2024, 5, 14, 7, 0, tzinfo=UTC) - NOW).total_seconds()
    assert errors[0].retry_after > PAUSE_THRESHOLD.total_seconds()  # long enough to pause the source
    assert "quotaExceeded" in report.reports[0].errors[0]
    assert API_KEY not in " ".join(report.reports[0].errors)
    assert store.get_cursor("acme", "youtube", spec_key("search", '"acme widgets"')).version == 0


@responses.activate
def test_quota_exceeded_pauses_later_runs(store):
    calls: list[tuple[str, dict[str, str]]] = []
    serve(lambda path, params: (403, body("quota_exceeded.json")), calls)
    scan(store)
    assert store.paused_until("youtube") == datetime(2024, 5, 14, 7, 0, tzinfo=UTC)
    made = len(calls)
    report = scan(store)
    assert report.paused_until == datetime(2024, 5, 14, 7, 0, tzinfo=UTC)
    assert len(calls) == made


def test_quota_reset_follows_pacific_time_in_winter_and_summer():
    assert next_pacific_midnight(datetime(2024, 1, 10, 12, tzinfo=UTC)) == datetime(
        2024, 1, 11, 8, tzinfo=UTC
    )
    assert next_pacific_midnight(datetime(2024, 7, 10, 6, 59, tzinfo=UTC)) == datetime(
        2024, 7, 10, 7, tzinfo=UTC
    )
    assert next_pacific_midnight(datetime(2024, 7, 10, 7, 0, tzinfo=UTC)) == datetime(
        2024, 7, 11, 7, tzinfo=UTC
    )


@responses.activate
def test_rate_limit_burst_is_retried_then_reported(store):
    # 429 rateLimitExceeded: the shared client retries (Retry-After), then the stream reports it
    sleeps: list[float] = []
    calls: list[tuple[str, dict[str, str]]] = []

    def handler(path, params):
        if path.endswith("/search") and len(calls) <= 2:
            return 429, {"error": {"code": 429, "errors": [{"reason": "rateLimitExceeded"}]}}
        return recorded(path, params)

    serve(handler, calls)
    report = scan(store, sleeps)
    assert report.reports[0].errors == []
    assert report.reports[0].stored == 5
    assert len(sleeps) == 2


@responses.activate
def test_videos_are_stored_without_statistics_when_only_the_statistics_call_fails(store, monkeypatch):
    # a failed enrichment must not cost the 100-unit search again; a spent quota still stops the run
    def handler(path, params):
        if path.endswith("/videos"):
            return 404, {"error": {"code": 404, "errors": [{"reason": "notFound"}]}}
        return recorded(path, params)

    serve(handler, [])
    report = scan(store)
    assert report.reports[0].errors == []
    video = stored(store)["youtube:Xk3fQ9pLm2A"]
    assert video.engagement.likes == 0 and "views" not in video.raw


@responses.activate
def test_a_quota_error_on_the_statistics_call_stops_without_storing_the_page(store, monkeypatch):
    def handler(path, params):
        if path.endswith("/videos"):
            return 403, body("quota_exceeded.json")
        return recorded(path, params)

    calls: list[tuple[str, dict[str, str]]] = []
    serve(handler, calls)
    errors = record_errors(monkeypatch)
    report = scan(store)
    assert errors[0].retry_after and "quotaExceeded" in report.reports[0].errors[0]
    assert len([c for c in calls if c[0].endswith("/videos")]) == 1  # then the source stopped
    assert stored(store) == {}  # the page is read again after the reset, with its statistics
    assert store.get_cursor("acme", "youtube", spec_key("search", '"acme widgets"')).version == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML page"),
        ('{"kind": "youtube#searchListResponse", "items": [{"id": ', "not JSON"),
        ({"kind": "youtube#searchListResponse", "items": {"id": "Xk3fQ9pLm2A"}}, "no 'items' list"),
        ({"kind": "youtube#searchListResponse", "items": [], "nextPageToken": 7}, "nextPageToken"),
    ],
)
@responses.activate
def test_malformed_bodies_fail_the_stream_with_a_reason(store, payload, message):
    serve(lambda path, params: (200, payload), [])
    report = scan(store)
    errors = report.reports[0].errors
    assert errors and all(message in e for e in errors)
    assert report.reports[0].stored == 0
    assert store.get_cursor("acme", "youtube", spec_key("channel")).version == 0


@responses.activate
def test_replaying_the_same_pages_three_times_stores_each_mention_once(store):
    serve(recorded, [])
    results = [scan(store).reports[0] for _ in range(3)]
    assert [r.stored for r in results] == [5, 0, 0]
    assert all(not r.errors for r in results)
    assert len(stored(store)) == 5
    counts = store.counts("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)
    assert sum(b.mentions for b in counts) == 5


@responses.activate
def test_a_run_killed_after_the_first_page_loses_nothing(store):
    # Given a run that dies (not a source error: the process stops) while fetching page two
    state = {"kill": True}

    def handler(path, params):
        if params.get("pageToken") == "CAIQAA" and state["kill"]:
            raise LambdaKilled("killed")
        return recorded(path, params)

    serve(handler, [])
    with pytest.raises(LambdaKilled, match="killed"):
        scan(store)
    assert set(stored(store)) == {"youtube:Xk3fQ9pLm2A", "youtube:Pz8rT1vNw0Q"}

    # When the next run is healthy, it resumes below the stored page and loses nothing
    state["kill"] = False
    report = scan(store)
    assert report.reports[0].errors == []
    assert set(stored(store)) >= {"youtube:Xk3fQ9pLm2A", "youtube:Pz8rT1vNw0Q", "youtube:Lm4nB7cVx1Z"}
    assert len(stored(store)) == 5


@responses.activate
def test_the_api_key_never_appears_in_logs_errors_or_cursors(store, captured):
    sleeps: list[float] = []

    def handler(path, params):
        if path.endswith("/search"):
            return 400, {
                "error": {"code": 400, "message": "API key not valid.", "errors": [{"reason": "badRequest"}]}
            }
        return 503, "<html><body>Service Unavailable</body></html>"

    serve(handler, [])
    report = scan(store, sleeps)
    errors = report.reports[0].errors
    assert (
        len(errors) == 3 and any("badRequest" in e for e in errors) and any("HTTP 503" in e for e in errors)
    )
    assert any(r.getMessage() == "source query failed" for r in captured.records)  # the logs were seen
    text = logged(captured) + " ".join(errors)
    assert API_KEY not in text
    for kind in ("search", "channel"):
        assert API_KEY not in json.dumps(store.get_cursor("acme", "youtube", spec_key(kind)).position)


@responses.activate
def test_a_missing_api_key_is_named_without_any_value(store):
    calls: list[tuple[str, dict[str, str]]] = []
    serve(recorded, calls)
    report = scan(store, credentials=FakeCredentials({"youtube": {"api_kee": "value-xyz"}}))
    errors = report.reports[0].errors
    assert errors  # one per stream (searches and channel comments), each naming the key
    for message in errors:
        assert "api_key" in message
        assert "value-xyz" not in message
    assert calls == []


def test_parse_reads_a_raw_body_with_the_scanners_code():
    brand = parse_config(CONFIG).brand("acme")
    parsed = CONNECTOR.parse((FIXTURES / "search_page1.json").read_bytes(), brand, "q")
    assert [m.id for m in parsed.mentions] == [
        "youtube:Xk3fQ9pLm2A",
        "youtube:Qa1Ws2Ed3Rf",
        "youtube:Pz8rT1vNw0Q",
    ]
    assert len(parsed.skipped) == 2
    threads = copy.deepcopy(body("comment_threads.json"))
    parsed = CONNECTOR.parse(json.dumps(threads).encode(), brand, "q")
    assert len(parsed.mentions) == 4 and len(parsed.skipped) == 1


# ------------------------------------------------------------------ re-reading the watched posts


class Watched:
    """The recorded API, with the current counts of the watched videos and comments (and deleted ones)."""

    def __init__(self) -> None:
        self.videos: dict[str, dict[str, str]] = {}  # video id -> statistics now
        self.threads: dict[str, tuple[int, int]] = {}  # thread id -> (likeCount, totalReplyCount) now
        self.gone: set[str] = set()
        self.fail: tuple[int, Any] | None = None  # what the re-read calls answer instead
        self.quiet = False  # no new videos: every /videos call is then a re-read

    def __call__(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        rereading = path.endswith("/commentThreads") and "id" in params
        if self.fail and (rereading or path.endswith("/videos")):
            return self.fail
        if self.quiet and path.endswith("/search"):
            return 200, body("search_empty.json")
        status, payload = recorded(path, params)
        items = payload.get("items", []) if isinstance(payload, dict) else []
        payload["items"] = [i for i in items if not (isinstance(i.get("id"), str) and i["id"] in self.gone)]
        for item in payload["items"]:
            if path.endswith("/videos") and item["id"] in self.videos:
                item["statistics"] = {**item["statistics"], **self.videos[item["id"]]}
            if rereading and item["id"] in self.threads:
                likes, replies = self.threads[item["id"]]
                item["snippet"]["topLevelComment"]["snippet"]["likeCount"] = likes
                item["snippet"]["totalReplyCount"] = replies
        return status, payload


def by_id(calls: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
    """The calls that asked for items by id (statistics and comment threads), as (endpoint, params)."""
    return [(path.rsplit("/", 1)[-1], p) for path, p in calls if "id" in p]


@responses.activate
def test_watched_videos_and_comments_are_re_read_by_id_once_per_interval(store):
    """The viral-post rule needs a post's growth: the scan re-reads the brand's top videos with
    videos.list?part=statistics and its top comments with commentThreads.list?id=, every 15 minutes."""
    api = Watched()
    calls: list[tuple[str, dict[str, str]]] = []
    serve(api, calls)

    # the first run stores the posts and re-reads them in its interval: one call each, all ids in it
    first = scan(store)
    assert first.reports[0].refresh_errors == 0 and first.reports[0].errors == []
    videos, threads = by_id(calls)[-2:]
    assert videos[0] == "videos" and videos[1]["part"] == "statistics" and videos[1]["key"] == API_KEY
    assert set(videos[1]["id"].split(",")) == {"Xk3fQ9pLm2A", "Pz8rT1vNw0Q", "Lm4nB7cVx1Z"}
    assert threads[0] == "commentThreads" and threads[1]["part"] == "snippet"
    assert set(threads[1]["id"].split(",")) == {"UgzA1b2C3d4E5f6G7h84AaABAg", "UgzD4e5F6g7H8i9J0k1LAaABAg"}
    assert "allThreadsRelatedToChannelId" not in threads[1] and "pageToken" not in threads[1]

    api.quiet = True
    calls.clear()
    scan(store, now=NOW + timedelta(minutes=5))  # the same 15-minute interval: nothing read again
    assert by_id(calls) == []

    # a video and a comment grew; another video and another comment were deleted
    api.videos["Xk3fQ9pLm2A"] = {"likeCount": "900", "commentCount": "120", "viewCount": "40000"}
    api.threads["UgzA1b2C3d4E5f6G7h84AaABAg"] = (40, 9)
    api.gone |= {"Pz8rT1vNw0Q", "UgzD4e5F6g7H8i9J0k1LAaABAg"}
    later = scan(store, now=NOW + timedelta(minutes=16))
    assert [endpoint for endpoint, _ in by_id(calls)] == ["videos", "commentThreads"]
    assert later.reports[0].refreshed == 2
    assert later.reports[0].refresh_errors == 0 and later.reports[0].errors == []
    mentions = stored(store)
    video = mentions["youtube:Xk3fQ9pLm2A"].engagement
    assert (video.likes, video.replies, video.score) == (900, 120, 0)  # views stay out of the engagement
    comment = mentions["youtube:comment:UgzA1b2C3d4E5f6G7h84AaABAg"].engagement
    assert (comment.likes, comment.replies) == (40, 9)
    # the deleted ones are left out, their stored counts kept as they were
    assert mentions["youtube:Pz8rT1vNw0Q"].engagement.replies == 3
    assert mentions["youtube:comment:UgzD4e5F6g7H8i9J0k1LAaABAg"].engagement.replies == 1


@responses.activate
def test_a_re_read_asks_for_50_ids_a_call_and_leaves_out_the_brands_replies(store):
    serve(recorded, [])
    scan(store)
    stored_posts = stored(store)
    video, comment = (
        stored_posts["youtube:Xk3fQ9pLm2A"],
        stored_posts["youtube:comment:UgzA1b2C3d4E5f6G7h84AaABAg"],
    )
    posts = [video] + [replace(video, native_id=f"Vid{n:08d}") for n in range(59)]
    reply = replace(
        comment, native_id="comment:UgzA1b2C3d4E5f6G7h84AaABAg.9xYz", raw={**comment.raw, "kind": "reply"}
    )
    calls: list[tuple[str, dict[str, str]]] = []
    responses.reset()
    serve(recorded, calls)
    ctx = ScanContext(
        http=HttpClient(sleep=[].append),
        now=NOW,
        settings=parse_config(CONFIG).source("youtube"),
        credentials=FakeCredentials({"youtube": {"api_key": API_KEY}}),
    )

    fresh = CONNECTOR.engagement(parse_config(CONFIG).brand("acme"), [*posts, comment, reply], ctx)

    assert [(endpoint, len(p["id"].split(","))) for endpoint, p in by_id(calls)] == [
        ("videos", 50),
        ("videos", 10),
        ("commentThreads", 1),
    ]
    # the made-up ids are not served: only the recorded video and comment come back
    assert set(fresh) == {"youtube:Xk3fQ9pLm2A", "youtube:comment:UgzA1b2C3d4E5f6G7h84AaABAg"}
    assert fresh["youtube:Xk3fQ9pLm2A"] == video.engagement


@pytest.mark.parametrize(
    ("failure", "paused"),
    [
        ((503, "<html><body>Service Unavailable</body></html>"), None),
        ((403, body("quota_exceeded.json")), datetime(2024, 5, 14, 7, 0, tzinfo=UTC)),  # midnight Pacific
    ],
    ids=["http-503", "quota-exceeded"],
)
@responses.activate
def test_a_failed_re_read_is_counted_not_a_failed_scan_and_is_tried_again(store, failure, paused):
    api = Watched()
    calls: list[tuple[str, dict[str, str]]] = []
    serve(api, calls)
    scan(store)

    api.quiet, api.fail = True, failure
    api.videos["Xk3fQ9pLm2A"] = {"likeCount": "900"}
    calls.clear()
    failed = scan(store, now=NOW + timedelta(minutes=16)).reports[0]
    assert failed.refresh_errors == 1 and failed.refreshed == 0
    assert failed.errors == [] and failed.stored == 0
    assert [endpoint for endpoint, _ in by_id(calls)][:1] == ["videos"]
    assert "commentThreads" not in [endpoint for endpoint, _ in by_id(calls)]  # it stopped at the failure
    run = store.source_runs("acme")["youtube"]
    assert run["failures"] == 0 and "last_error" not in run
    assert stored(store)["youtube:Xk3fQ9pLm2A"].engagement.likes == 412
    assert store.paused_until("youtube") == paused  # a spent quota pauses the source, as in a search

    api.fail = None  # the interval's claim was let go: the next run reads again (unless paused)
    calls.clear()
    report = scan(store, now=NOW + timedelta(minutes=20))
    if paused:
        assert report.paused_until == paused and calls == []
        return
    retried = report.reports[0]
    assert retried.refresh_errors == 0 and retried.refreshed >= 1
    assert stored(store)["youtube:Xk3fQ9pLm2A"].engagement.likes == 900
