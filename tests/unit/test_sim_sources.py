"""The local source simulator: generated traffic, the Algolia HN endpoint and the Google Alerts feed."""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import feedparser
import pytest
import requests

from sim.sourceserver import SourceServer
from sim.traffic import FIRE_SPAN, SimPost, Traffic, generate

START = datetime(2024, 5, 13, tzinfo=UTC)  # a Monday
HN = "/hn/api/v1/search_by_date"
FEED = "/alerts/feeds/00651117406639347610/11001411275176557724"
PHRASE = re.compile(r"\bacme[^a-z0-9]+widgets\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate(start=START)


@pytest.fixture
def server(traffic: Traffic):
    with SourceServer(traffic) as running:
        yield running


def search(server: SourceServer, **params: object) -> dict:
    response = requests.get(server.base_url + HN, params=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def all_hits(server: SourceServer, **params: object) -> list[dict]:
    first = search(server, hitsPerPage=1000, **params)
    assert first["nbHits"] <= 1000
    return first["hits"]


def hn_posts(traffic: Traffic) -> list[SimPost]:
    return [p for p in traffic.posts if p.kind != "alert_entry"]


def plain(post: SimPost) -> str:
    return html.unescape(re.sub(r"<[^>]*>", " ", f"{post.title} {post.text}"))


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


# -- traffic ---------------------------------------------------------------------------------------------


def test_generate_is_deterministic_and_seeded(traffic: Traffic) -> None:
    assert generate(start=START) == traffic
    assert generate(start=START, seed=8).posts != traffic.posts
    assert len({(p.kind == "alert_entry", p.native_id) for p in traffic.posts}) == len(traffic.posts)
    assert [p.created for p in traffic.posts] == sorted(p.created for p in traffic.posts)
    assert all(traffic.start <= p.created < traffic.end for p in traffic.posts)


def test_generate_rejects_naive_start_and_fire_outside_window() -> None:
    with pytest.raises(ValueError):
        generate(start=datetime(2024, 5, 13))
    with pytest.raises(ValueError):
        generate(start=START, days=2)  # the default fire (2 d 14 h in) does not fit


def test_baseline_volume_follows_a_daily_and_weekly_rhythm(traffic: Traffic) -> None:
    baseline = [p for p in traffic.posts if not p.fire]
    per_day = Counter((p.created.date(), p.kind == "alert_entry") for p in baseline if p.about_brand)
    weekday_hn = [per_day[START.date() + timedelta(days=d), False] for d in range(5)]
    weekend_hn = [per_day[START.date() + timedelta(days=d), False] for d in (5, 6)]
    alerts = [per_day[START.date() + timedelta(days=d), True] for d in range(7)]
    assert all(40 <= n <= 90 for n in weekday_hn), weekday_hn
    assert all(30 <= n <= 60 for n in weekend_hn), weekend_hn
    assert max(weekend_hn) < min(weekday_hn)
    assert all(9 <= n <= 20 for n in alerts), alerts
    by_hour = Counter(p.created.hour for p in baseline)
    daytime = sum(by_hour[h] for h in range(13, 21)) / 8
    night = sum(by_hour[h] for h in range(3, 7)) / 4
    assert daytime > 2.5 * night


def test_texts_look_like_the_real_sources(traffic: Traffic) -> None:
    comments = [p.text for p in traffic.posts if p.kind == "hn_comment"]
    assert any("&#x27;" in t for t in comments) and any("&quot;" in t for t in comments)
    assert any('rel="nofollow">https:&#x2F;&#x2F;' in t for t in comments)
    assert any("<p>" in t for t in comments) and any("<i>" in t for t in comments)
    texts = [plain(p) for p in traffic.posts]
    assert any(re.search("[\U0001f300-\U0001faff]", t) for t in texts)  # emoji
    assert any(re.search(r"gelöscht|seit zwei Jahren|Büro", t) for t in texts)  # German
    assert any(re.search(r"¿|borró|funciona", t) for t in texts)  # Spanish
    assert any("@AcmeWidgets" in t and not PHRASE.search(t) for t in texts)  # handle-only mentions
    spellings = Counter(m.group() for t in texts for m in PHRASE.finditer(t))
    assert {"Acme Widgets", "acme widgets", "ACME Widgets", "acme-widgets"} <= set(spellings)
    alerts = [p for p in traffic.posts if p.kind == "alert_entry"]
    assert all("<b>" in p.title and p.url.startswith("https://www.") for p in alerts)


def test_near_misses_share_a_word_but_not_the_brand(traffic: Traffic) -> None:
    near = [p for p in traffic.posts if not p.about_brand]
    assert 7 <= len(near) <= 35
    for post in near:
        text = plain(post)
        assert re.search(r"\bacme\b|\bwidgets\b", text, re.IGNORECASE)
        assert not PHRASE.search(text)
    assert any(
        re.search(r"\bacme\b", plain(p), re.I) and re.search(r"\bwidgets\b", plain(p), re.I) for p in near
    )


def test_fire_is_a_burst_of_negative_posts_quoting_one_upset_post(traffic: Traffic) -> None:
    fire = [p for p in hn_posts(traffic) if p.fire]
    assert 150 <= len(fire) <= 300
    assert all(p.sentiment == "negative" and p.about_brand for p in fire)
    assert all(traffic.fire_at <= p.created <= traffic.fire_at + FIRE_SPAN for p in fire)
    original = fire[0]
    assert (original.kind, original.created) == ("hn_story", START + timedelta(days=2, hours=14))
    assert "deleted" in original.title or "wiped" in original.title
    on_original = [p for p in fire if p.story_id == int(original.native_id) and p.kind == "hn_comment"]
    assert len(on_original) > 80 and original.num_comments >= len(on_original)
    assert any(p.text.startswith("&gt; ") for p in fire)  # HN-style quotes of the original
    news = [p for p in traffic.posts if p.fire and p.kind == "alert_entry"]
    assert 4 <= len(news) <= 6 and all(p.created > traffic.fire_at for p in news)

    def hn_between(start: datetime, end: datetime) -> int:
        return sum(start <= p.created < end for p in hn_posts(traffic))

    peak = (traffic.fire_at + timedelta(minutes=30), traffic.fire_at + timedelta(minutes=90))
    day_before = hn_between(peak[0] - timedelta(days=1), peak[1] - timedelta(days=1))
    assert hn_between(*peak) > 5 * max(day_before, 1)
    first_half = sum(p.created < traffic.fire_at + timedelta(minutes=20) for p in fire)
    assert first_half < hn_between(*peak) / 2  # engagement grows before it fades


def test_custom_fire_time_and_brand() -> None:
    fire_at = START + timedelta(hours=30)
    custom = generate("Globex Gadgets", start=START, days=3, seed=1, fire_at=fire_at)
    assert custom.fire_at == fire_at
    assert min(p.created for p in custom.posts if p.fire) == fire_at
    assert any("Globex Gadgets" in p.title for p in custom.posts if p.fire)


def test_hn_ids_and_threads_are_consistent(traffic: Traffic) -> None:
    posts = hn_posts(traffic)
    ids = [int(p.native_id) for p in posts]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    comments_per_story = Counter(p.story_id for p in posts if p.kind == "hn_comment")
    for post in posts:
        if post.kind == "hn_comment":
            assert post.story_id <= post.parent_id < int(post.native_id)
            assert post.story_title and post.points is None
        else:
            assert post.story_id == int(post.native_id)
            assert post.num_comments >= comments_per_story[post.story_id]


# -- Hacker News (Algolia) -------------------------------------------------------------------------------


def test_search_by_date_response_has_the_algolia_shape(server: SourceServer) -> None:
    body = search(server, query='"acme widgets"', tags="(story,comment)", hitsPerPage=100)
    assert {"hits", "hitsPerPage", "nbHits", "nbPages", "page", "params", "processingTimeMS", "query"} <= set(
        body
    )
    assert body["exhaustive"] == {"nbHits": True, "typo": True} and body["exhaustiveNbHits"] is True
    assert (body["hitsPerPage"], body["page"], body["query"]) == (100, 0, '"acme widgets"')
    assert "query=%22acme+widgets%22" in body["params"] and "tags=%28story%2Ccomment%29" in body["params"]
    hits = body["hits"]
    assert [h["created_at_i"] for h in hits] == sorted((h["created_at_i"] for h in hits), reverse=True)
    for hit in hits:
        created = datetime.fromisoformat(hit["created_at"].replace("Z", "+00:00"))
        assert hit["created_at"].endswith("Z") and ts(created) == hit["created_at_i"]
        assert isinstance(hit["objectID"], str) and isinstance(hit["story_id"], int)
        assert hit["_tags"][1:3] == [f"author_{hit['author']}", f"story_{hit['story_id']}"]
    comment = next(h for h in hits if h["_tags"][0] == "comment")
    assert {"comment_text", "parent_id", "story_title", "story_url"} <= set(
        comment
    ) and "points" not in comment
    assert isinstance(comment["parent_id"], int)
    story = next(
        h
        for h in search(server, query='"acme widgets"', tags="story", hitsPerPage=50)["hits"]
        if h["children"]
    )
    assert story["story_id"] == int(story["objectID"])
    assert isinstance(story["points"], int) and isinstance(story["num_comments"], int)
    assert all(isinstance(child, int) for child in story["children"]) and story["title"]


def test_clock_hides_posts_from_the_future(server: SourceServer, traffic: Traffic) -> None:
    original = next(p for p in traffic.posts if p.fire)
    server.now = traffic.fire_at - timedelta(seconds=1)
    before = all_hits(server, query='"acme widgets"')
    assert before and max(h["created_at_i"] for h in before) <= ts(server.now)
    assert original.native_id not in {h["objectID"] for h in before}
    server.now = traffic.fire_at + timedelta(hours=1)
    during = all_hits(server, query='"acme widgets"')
    assert original.native_id in {h["objectID"] for h in during}
    assert len(during) - len(before) >= 60

    def children() -> list[int]:
        hits = search(server, tags=f"story,story_{original.native_id}")["hits"]
        return hits[0]["children"]

    server.now = traffic.fire_at + timedelta(minutes=10)
    early = children()
    server.now = traffic.fire_at + timedelta(hours=3)
    assert set(early) < set(children())


def test_numeric_filters_and_tags(server: SourceServer, traffic: Traffic) -> None:
    posts = hn_posts(traffic)
    low, high = ts(START + timedelta(days=1)), ts(START + timedelta(days=1, hours=6))
    window = all_hits(server, numericFilters=f"created_at_i>={low},created_at_i<{high}")
    assert {h["objectID"] for h in window} == {p.native_id for p in posts if low <= ts(p.created) < high}
    exact = window[0]["created_at_i"]
    assert {h["created_at_i"] for h in all_hits(server, numericFilters=f"created_at_i={exact}")} == {exact}
    after = search(server, numericFilters=f"created_at_i>{exact}", hitsPerPage=1000)
    assert all(h["created_at_i"] > exact for h in after["hits"])

    stories = all_hits(server, tags="story")
    assert {h["objectID"] for h in stories} == {p.native_id for p in posts if p.kind == "hn_story"}
    assert search(server, tags="comment")["nbHits"] == sum(p.kind == "hn_comment" for p in posts)
    assert search(server, tags="(story,comment)")["nbHits"] == len(posts)
    popular = all_hits(server, numericFilters="points>100")
    assert popular and all(h["_tags"][0] == "story" and h["points"] > 100 for h in popular)
    original = next(p for p in traffic.posts if p.fire)
    by_author = all_hits(server, tags=f"story,author_{original.author}")
    assert [h["objectID"] for h in by_author] == [original.native_id]


def test_pagination_walks_every_hit_once(server: SourceServer) -> None:
    first = search(server, query='"acme widgets"', hitsPerPage=50)
    assert first["nbPages"] == -(-first["nbHits"] // 50) > 2
    pages = [first] + [
        search(server, query='"acme widgets"', hitsPerPage=50, page=n) for n in range(1, first["nbPages"])
    ]
    hits = [h for page in pages for h in page["hits"]]
    assert len(hits) == len({h["objectID"] for h in hits}) == first["nbHits"]
    assert [h["created_at_i"] for h in hits] == sorted((h["created_at_i"] for h in hits), reverse=True)
    assert search(server, query='"acme widgets"', hitsPerPage=50, page=first["nbPages"])["hits"] == []
    assert search(server, query='"acme widgets"')["hitsPerPage"] == 20


def test_pagination_is_capped_at_1000_hits() -> None:
    with SourceServer(generate(start=START, days=21)) as big:
        everything = search(big)
        assert everything["nbHits"] > 1000
        capped = search(big, hitsPerPage=300)
        assert capped["nbPages"] == 4
        assert len(search(big, hitsPerPage=300, page=3)["hits"]) == 100
        assert search(big, hitsPerPage=300, page=4)["hits"] == []
        clamped = search(big, hitsPerPage=5000)
        assert (clamped["hitsPerPage"], clamped["nbPages"], len(clamped["hits"])) == (1000, 1, 1000)


def test_phrase_query_finds_the_brand_and_rejects_near_misses(server: SourceServer, traffic: Traffic) -> None:
    posts = hn_posts(traffic)
    by_id = {p.native_id: p for p in posts}
    phrase = {h["objectID"] for h in all_hits(server, query='"acme widgets"')}
    assert phrase == {p.native_id for p in posts if PHRASE.search(plain(p))}
    assert all(by_id[i].about_brand for i in phrase)
    near = {p.native_id for p in posts if not p.about_brand}
    assert near and not near & phrase
    assert {h["objectID"] for h in all_hits(server, query='"ACME WIDGETS"')} == phrase
    assert near & {h["objectID"] for h in all_hits(server, query="acme")}
    words = {h["objectID"] for h in all_hits(server, query="Acme widgets")}
    assert phrase < words and words & near  # both words, not adjacent
    handle = {h["objectID"] for h in all_hits(server, query="AcmeWidgets")}
    assert handle - phrase and all(by_id[i].about_brand for i in handle)
    excluded = all_hits(server, query='"acme widgets" -support')
    assert 0 < len(excluded) < len(phrase)
    assert not any("support" in plain(by_id[h["objectID"]]).lower() for h in excluded)
    german = all_hits(server, query='"acme widgets" geloscht')  # accents fold like Algolia's
    assert german and all("gelöscht" in by_id[h["objectID"]].text for h in german)


# -- Google Alerts ---------------------------------------------------------------------------------------


def test_alerts_feed_is_google_alerts_atom(server: SourceServer, traffic: Traffic) -> None:
    server.now = START + timedelta(days=3, hours=12)
    response = requests.get(server.base_url + FEED, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert '<feed xmlns="http://www.w3.org/2005/Atom"' in response.text
    feed = feedparser.parse(response.content)
    assert not feed.bozo and feed.feed.title == 'Google Alert - "acme widgets"'
    visible = [p for p in traffic.posts if p.kind == "alert_entry" and p.created <= server.now]
    expected = visible[::-1][:20]
    assert len(feed.entries) == 20
    for entry, post in zip(feed.entries, expected, strict=True):
        assert entry.id == f"tag:google.com,2013:googlealerts/feed:{post.native_id}"
        link = urlsplit(entry.link)
        assert (link.netloc, link.path) == ("www.google.com", "/url")
        assert parse_qs(link.query)["url"] == [post.url]
        assert datetime(*entry.published_parsed[:6], tzinfo=UTC) == post.created
        assert "<b>" in entry.title and "<b>" in entry.summary
    assert parsedate_to_datetime(response.headers["Last-Modified"]) == expected[0].created


def test_alerts_feed_conditional_get(server: SourceServer, traffic: Traffic) -> None:
    alerts = [p for p in traffic.posts if p.kind == "alert_entry"]
    server.now = alerts[30].created
    url = server.base_url + FEED
    first = requests.get(url, timeout=5)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    unchanged = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
    assert (unchanged.status_code, unchanged.content, unchanged.headers["ETag"]) == (304, b"", etag)
    assert requests.get(url, headers={"If-Modified-Since": modified}, timeout=5).status_code == 304
    assert (
        requests.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}).status_code
        == 200
    )
    server.now = alerts[31].created
    changed = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert requests.get(url, headers={"If-Modified-Since": modified}, timeout=5).status_code == 200
    assert feedparser.parse(changed.content).entries[0].id.endswith(alerts[31].native_id)


# -- plumbing --------------------------------------------------------------------------------------------


def test_fault_injection_and_request_log(server: SourceServer) -> None:
    server.fail_next(2, status=503, headers={"Retry-After": "7"})
    first = requests.get(server.base_url + HN, params={"query": "acme"}, timeout=5)
    second = requests.get(server.base_url + FEED, timeout=5)
    assert [first.status_code, second.status_code] == [503, 503]
    assert first.headers["Retry-After"] == "7" and first.json()["status"] == 503
    assert requests.get(server.base_url + HN, params={"query": "acme"}, timeout=5).status_code == 200
    server.fail_next(1, status=429, body="slow down", headers={"Content-Type": "text/plain"})
    limited = requests.get(server.base_url + HN, timeout=5)
    assert (limited.status_code, limited.text, limited.headers["Content-Type"]) == (
        429,
        "slow down",
        "text/plain",
    )
    assert server.requests == [
        (HN, {"query": "acme"}, 503),
        (FEED, {}, 503),
        (HN, {"query": "acme"}, 200),
        (HN, {}, 429),
    ]


def test_unknown_paths_and_bad_parameters(server: SourceServer) -> None:
    missing = requests.get(server.base_url + "/hn/api/v1/items/1", timeout=5)
    assert missing.status_code == 404 and missing.json()["status"] == 404
    for params in (
        {"hitsPerPage": "many"},
        {"numericFilters": "karma>1"},
        {"tags": "(story"},
        {"page": "-1"},
    ):
        response = requests.get(server.base_url + HN, params=params, timeout=5)
        assert response.status_code == 400, params
        assert response.json()["message"]
    assert [status for _, _, status in server.requests] == [404, 400, 400, 400, 400]


def test_server_requires_aware_clock_and_a_start(traffic: Traffic) -> None:
    server = SourceServer(traffic)
    assert server.now == traffic.end
    with pytest.raises(ValueError):
        server.now = datetime(2024, 5, 14)
    with pytest.raises(RuntimeError):
        _ = server.base_url
    server.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.base_url)
    finally:
        server.stop()
