"""The viral-post rule end to end: a search returns a story once; later scans re-read the watched top
stories (Algolia `tags=story,(story_<id>,...)`), and the detector sees the growth and opens one incident."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import responses
from emberwatch.config import parse_config
from emberwatch.detect import RULE_VIRAL, run_detection
from emberwatch.http import HttpClient
from emberwatch.scan import scan_source

from tests.integration.test_detectors import Inbox

BASE = "https://hn.example/api/v1"
POSTED = datetime(2024, 5, 13, 13, 40, tzinfo=UTC)
CONFIG = parse_config(
    """
brands:
  - {id: acme, name: Acme Widgets, queries: ['"acme widgets"']}
sources:
  hackernews: {base_url: 'https://hn.example/api/v1'}
"""
)


def story(object_id: int, title: str, points: int, comments: int) -> dict:
    """An Algolia story hit in the real shape (see tests/fixtures/hn_page.json)."""
    created = POSTED + timedelta(minutes=object_id % 7)
    return {
        "_tags": ["story", f"author_user{object_id}", f"story_{object_id}"],
        "author": f"user{object_id}",
        "children": [],
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_at_i": int(created.timestamp()),
        "num_comments": comments,
        "objectID": str(object_id),
        "points": points,
        "story_id": object_id,
        "title": title,
        "updated_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url": f"https://news.example/{object_id}",
    }


def page(hits: list[dict], params: dict) -> str:
    return json.dumps(
        {
            "exhaustive": {"nbHits": True, "typo": True},
            "exhaustiveNbHits": True,
            "exhaustiveTypo": True,
            "hits": hits,
            "hitsPerPage": int(params.get("hitsPerPage", 20)),
            "nbHits": len(hits),
            "nbPages": 1 if hits else 0,
            "page": 0,
            "params": "",
            "processingTimeMS": 1,
            "query": params.get("query", ""),
        }
    )


class Algolia:
    """search_by_date: the brand search returns the two stories once; a `story_<id>` tag search returns
    them with their counts of the moment (`counts`, changed by the test as the stories spread)."""

    def __init__(self) -> None:
        self.counts = {501: (12, 3), 502: (4, 1)}
        self.titles = {
            501: "Acme Widgets wiped our production database",
            502: "Ask HN: is the Acme Widgets team plan worth it?",
        }
        self.rereads: list[dict] = []
        self.searched = False
        responses.add_callback(responses.GET, f"{BASE}/search_by_date", callback=self.handle)

    def hits(self, ids) -> list[dict]:
        return [story(i, self.titles[i], *self.counts[i]) for i in ids]

    def handle(self, request):
        params = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        tags = params.get("tags", "")
        if tags.startswith("story,("):
            self.rereads.append(params)
            ids = [int(t.removeprefix("story_")) for t in tags[len("story,(") : -1].split(",")]
            return 200, {}, page(self.hits(i for i in ids if i in self.counts), params)
        if self.searched:
            return 200, {}, page([], params)
        self.searched = True
        return 200, {}, page(self.hits(self.counts), params)


@responses.activate
def test_a_story_spreading_after_it_was_found_is_re_read_and_alerted_once(store):
    algolia, inbox = Algolia(), Inbox()
    http = HttpClient(sleep=lambda s: None)

    def tick(now: datetime):
        report = scan_source("hackernews", now, config=CONFIG, store=store, http=http)
        detected = run_detection(now, config=CONFIG, store=store, notify=inbox)
        return report.reports[0], detected

    start = datetime(2024, 5, 13, 14, 0, tzinfo=UTC)
    first, _ = tick(start)
    assert first.stored == 2 and first.errors == []
    # the search never returns the stories again; only the re-reads see them grow
    assert len(algolia.rereads) == 1
    assert algolia.rereads[0]["tags"] in ("story,(story_501,story_502)", "story,(story_502,story_501)")
    for minutes, comments in ((15, 40), (30, 140), (45, 260)):
        algolia.counts[501] = (12 + comments, comments)
        report, _ = tick(start + timedelta(minutes=minutes))
        assert report.refreshed == 1 and report.refresh_errors == 0  # 502 did not change
    assert len(algolia.rereads) == 4  # once per 15-minute interval
    tick(start + timedelta(minutes=50))  # same interval: no re-read
    assert len(algolia.rereads) == 4
    (stored,) = [m for m in store.get_mentions("acme", ["hackernews:501"])]
    assert stored.engagement.replies == 260 and stored.engagement.score == 272
    opened = [s for s in inbox.sent if s[0] == "opened" and s[2] == RULE_VIRAL]
    assert opened == [("opened", "post:hackernews:501", RULE_VIRAL)]
    # it kept growing (140 -> 260 replies in the window): one escalation; once it stops, one all-clear
    for step in range(1, 16):
        tick(start + timedelta(minutes=50 + 5 * step))
    assert [s for s in inbox.sent if s[1] == "post:hackernews:501"] == [
        ("opened", "post:hackernews:501", RULE_VIRAL),
        ("escalated", "post:hackernews:501", RULE_VIRAL),
        ("resolved", "post:hackernews:501", RULE_VIRAL),
    ]
    assert not [s for s in inbox.sent if s[1] == "post:hackernews:502"]


@responses.activate
def test_no_re_read_when_refresh_minutes_is_zero(store):
    algolia = Algolia()
    config = parse_config(
        "brands:\n  - {id: acme, name: Acme Widgets, queries: ['\"acme widgets\"']}\n"
        "sources:\n  hackernews: {base_url: 'https://hn.example/api/v1', refresh_minutes: 0}\n"
    )
    now = datetime(2024, 5, 13, 14, 0, tzinfo=UTC)
    for step in range(4):
        scan_source(
            "hackernews", now + timedelta(minutes=15 * step), config=config, store=store, http=HttpClient()
        )
    assert algolia.rereads == []


@responses.activate
def test_a_re_read_that_breaks_never_fails_the_scan_and_a_long_throttle_pauses_the_source(store, monkeypatch):
    from emberwatch.http import SourceError
    from emberwatch.sources.hackernews import CONNECTOR

    Algolia()
    now = datetime(2024, 5, 13, 14, 0, tzinfo=UTC)

    def broken(brand, posts, ctx):
        raise KeyError("objectID")  # a connector bug

    monkeypatch.setattr(CONNECTOR, "engagement", broken, raising=False)
    report = scan_source("hackernews", now, config=CONFIG, store=store, http=HttpClient()).reports[0]
    assert report.stored == 2 and report.errors == [] and report.refresh_errors == 1

    def throttled(brand, posts, ctx):
        raise SourceError("hackernews: rate limited", status=429, retry_after=900)

    monkeypatch.setattr(CONNECTOR, "engagement", throttled, raising=False)
    later = scan_source(
        "hackernews", now + timedelta(minutes=5), config=CONFIG, store=store, http=HttpClient()
    )
    assert later.reports[0].refresh_errors == 1 and later.reports[0].errors == []
    paused = scan_source(
        "hackernews", now + timedelta(minutes=10), config=CONFIG, store=store, http=HttpClient()
    )
    assert paused.paused_until == now + timedelta(minutes=5, seconds=900) and paused.reports == []


@responses.activate
def test_a_dynamodb_error_in_the_re_read_is_counted_and_the_scan_kept(store, monkeypatch):
    from botocore.exceptions import ClientError

    Algolia()

    def failing_claim(*args, **kwargs):
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "PutItem")

    monkeypatch.setattr(store, "claim", failing_claim)
    now = datetime(2024, 5, 13, 14, 0, tzinfo=UTC)
    report = scan_source("hackernews", now, config=CONFIG, store=store, http=HttpClient()).reports[0]
    assert report.stored == 2 and report.errors == [] and report.refresh_errors == 1
    assert store.source_runs("acme")["hackernews"]["failures"] == 0
