"""The scan handler end to end: recorded API responses in, mentions, counts and cursors in DynamoDB."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from emberwatch.config import SourceSettings, parse_config
from emberwatch.events import scheduled_event
from emberwatch.sources.hackernews import CONNECTOR

from tests.conftest import CONFIG_YAML

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HN_URL = "https://hn.example/api/v1/search_by_date"
FEED_URL = "https://alerts.example/alerts/feeds/1/2"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)


def hn_page() -> dict:
    return json.loads((FIXTURES / "hn_page.json").read_text())


def empty_page() -> dict:
    page = hn_page()
    page.update(hits=[], nbHits=0, nbPages=0)
    return page


def serve_hn(pages_by_query: dict[str, list[dict]], calls: list[dict]) -> None:
    """Answer search_by_date like Algolia: per `query` and `page`."""

    def callback(request):
        params = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        calls.append(params)
        pages = pages_by_query.get(params["query"], [empty_page()])
        page = int(params.get("page", 0))
        body = pages[page] if page < len(pages) else empty_page()
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    responses.add_callback(responses.GET, HN_URL, callback=callback)


@responses.activate
def test_scan_stores_hackernews_mentions_once_with_exact_counts(handler, store, lambda_context):
    # Given Algolia returns a story and a comment about the brand
    calls: list[dict] = []
    serve_hn({'"acme widgets"': [hn_page()]}, calls)
    app = handler("scan")

    # When the scheduled scan runs twice over the same data (a retry or the next run)
    first = app.lambda_handler(scheduled_event("hackernews", NOW), lambda_context)
    second = app.lambda_handler(scheduled_event("hackernews", NOW), lambda_context)

    # Then both mentions are stored once, normalised, and counted once
    assert first["brands"]["acme"]["stored"] == 2
    assert second["brands"]["acme"]["stored"] == 0
    mentions = {m.id: m for m in store.mentions_between("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)}
    assert set(mentions) == {"hackernews:40346001", "hackernews:40345500"}
    comment = mentions["hackernews:40346001"]
    assert comment.text == "We moved to Acme Widgets last year & the API is fine."
    assert comment.url == "https://news.ycombinator.com/item?id=40346001"
    assert comment.parent_id == "hackernews:40345990"
    assert comment.conversation_id == "hackernews:40345678"
    story = mentions["hackernews:40345500"]
    assert story.engagement.score == 31 and story.engagement.replies == 2
    counts = store.counts("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)
    assert sum(b.mentions for b in counts) == 2
    assert {b.start.strftime("%H:%M") for b in counts} == {"14:05", "13:40"}
    # the native query went to Algolia with the incremental filter and both kinds of item
    first_call = calls[0]
    assert first_call["tags"] == "(story,comment)"
    assert first_call["numericFilters"].startswith("created_at_i>=")
    # the second run asked only from the newest stored item on (minus the overlap)
    later = [c for c in calls[2:] if c.get("query") == '"acme widgets"']  # not the watched posts' re-read
    assert later and later[0]["numericFilters"] == f"created_at_i>={1715609112 - 120}"


@responses.activate
def test_malformed_hits_are_skipped_and_counted(handler, store, lambda_context):
    page = hn_page()
    broken = copy.deepcopy(page["hits"][0])
    broken["objectID"] = "40346002"
    broken["created_at_i"] = "yesterday"
    page["hits"].extend([broken, "not an object", {"objectID": "9", "created_at_i": 1715609000}])
    serve_hn({'"acme widgets"': [page]}, [])
    result = handler("scan").lambda_handler(scheduled_event("hackernews", NOW), lambda_context)
    assert result["brands"]["acme"]["stored"] == 2
    assert result["brands"]["acme"]["skipped"] == 3
    assert result["brands"]["acme"]["errors"] == []


@responses.activate
def test_cursor_does_not_move_past_a_page_that_failed(handler, store, lambda_context):
    # Given two pages where the second fails with a 503 on every attempt
    page0 = hn_page()
    page0.update(nbPages=2, nbHits=3)
    page1 = hn_page()
    page1["hits"] = [
        dict(page1["hits"][1], objectID="40340000", created_at_i=1715600000, title="Acme Widgets older story")
    ]
    page1.update(nbPages=2, nbHits=3, page=1)
    state = {"fail": True}

    def callback(request):
        params = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        if params["query"] != '"acme widgets"':
            return 200, {}, json.dumps(empty_page())
        if params.get("page") == "1" and state["fail"]:
            return 503, {"Retry-After": "0"}, "<html><body>Service Unavailable</body></html>"
        return 200, {}, json.dumps(page1 if params.get("page") == "1" else page0)

    responses.add_callback(responses.GET, HN_URL, callback=callback)
    app = handler("scan")
    first = app.lambda_handler(scheduled_event("hackernews", NOW), lambda_context)
    assert first["brands"]["acme"]["stored"] == 2
    assert first["brands"]["acme"]["errors"], "the failing page is reported"
    (spec, _) = CONNECTOR.specs(parse_config(CONFIG_YAML).brand("acme"), SourceSettings("hackernews"))
    cursor = store.get_cursor("acme", "hackernews", spec.key)
    # the window's top was lowered to the oldest stored hit, `since` did not move
    assert cursor.position["upper"] == 1715607600
    assert cursor.position["since"] < 1715600000

    # When the source recovers, the next run fetches the missing older story
    state["fail"] = False
    second = app.lambda_handler(scheduled_event("hackernews", NOW), lambda_context)
    assert second["brands"]["acme"]["stored"] == 1
    ids = {m.id for m in store.mentions_between("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)}
    assert "hackernews:40340000" in ids and len(ids) == 3


@responses.activate
def test_feed_scan_uses_conditional_get_and_filters_by_query(handler, store, lambda_context):
    body = (FIXTURES / "google_alerts.atom").read_bytes()
    seen_headers: list[dict] = []

    def callback(request):
        seen_headers.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return (
            200,
            {
                "Content-Type": "application/atom+xml",
                "ETag": '"v1"',
                "Last-Modified": "Mon, 13 May 2024 14:20:01 GMT",
            },
            body,
        )

    responses.add_callback(responses.GET, FEED_URL, callback=callback)
    app = handler("scan")
    first = app.lambda_handler(scheduled_event("feed", NOW), lambda_context)
    second = app.lambda_handler(scheduled_event("feed", NOW), lambda_context)

    assert first["brands"]["acme"]["stored"] == 1
    assert first["brands"]["acme"]["not_matching"] == 1  # "Acme anvils" is not "acme widgets"
    assert first["brands"]["acme"]["skipped"] == 1  # the entry with no date
    assert second["brands"]["acme"]["stored"] == 0
    assert seen_headers[1]["If-None-Match"] == '"v1"'
    assert seen_headers[1]["If-Modified-Since"] == "Mon, 13 May 2024 14:20:01 GMT"
    (mention,) = store.mentions_between("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)
    assert mention.id == "feed:ga-17440847249129969091"
    assert mention.url == "https://techpress.example/acme-berlin"  # Google redirect unwrapped
    assert mention.title == "Acme Widgets opens Berlin office - TechPress"  # <b> stripped


def test_invalid_event_is_rejected_with_the_field_named(handler, lambda_context):
    app = handler("scan")
    with pytest.raises(ValueError, match=r"detail\.source"):
        app.lambda_handler(scheduled_event("myspace", NOW), lambda_context)
    with pytest.raises(ValueError, match="'time'"):
        app.lambda_handler({"detail": {"source": "hackernews"}}, lambda_context)
