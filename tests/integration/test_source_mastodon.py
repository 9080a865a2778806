"""Mastodon connector: recorded statuses replayed with `responses`, through scan_source into moto."""

from __future__ import annotations

import copy
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from emberwatch.cli import main as cli_main
from emberwatch.config import SourceSettings, parse_config
from emberwatch.http import HttpClient
from emberwatch.scan import ScanReport, scan_source
from emberwatch.sources.mastodon import CONNECTOR

from tests.conftest import LambdaKilled, assert_refresh_failure_recorded

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mastodon"
INSTANCE = "https://mastodon.example"
TAG_URL = f"{INSTANCE}/api/v1/timelines/tag/acme"
SEARCH_URL = f"{INSTANCE}/api/v2/search"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
DAY = datetime(2024, 5, 13, tzinfo=UTC)
TOKEN = "mstdn-SECRET-token-4f9a1c"  # a fake credential the tests look for in logs

CONFIG = f"""
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
    hashtags: [acme]
sources:
  mastodon:
    base_url: {INSTANCE}
"""

ALICE = "mastodon:https://fosstodon.org/users/alice/statuses/112432087651234567"
DAVE = "mastodon:https://mstdn.example/users/dave/statuses/112431499990000000"
BOB = "mastodon:https://chaos.social/users/bob/statuses/112432011112223334"
ERIN = "mastodon:https://smith.example/users/erin/statuses/112432069999999999"


class Secrets:
    def __init__(self, values: dict[str, dict[str, Any]] | None = None) -> None:
        self.values = values or {}

    def for_source(self, source: str) -> dict[str, Any]:
        return dict(self.values.get(source, {}))


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def key(status_id: str) -> tuple[int, str]:
    return len(status_id), status_id


class Instance:
    """Plays a Mastodon tag timeline: since_id/max_id/min_id, newest first, Link headers like Mastodon."""

    def __init__(self, statuses: list[dict], page_size: int = 2) -> None:
        self.statuses = statuses
        self.page_size = page_size
        self.calls: list[dict[str, str]] = []
        self.fail: Any = None  # callable(params) -> response tuple or raises, to inject faults

    def add_newer(self, statuses: list[dict]) -> None:
        self.statuses = statuses + self.statuses

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.calls.append(params)
        if self.fail is not None:
            answer = self.fail(params)
            if answer is not None:
                return answer
        rows = sorted(self.statuses, key=lambda s: key(s["id"]), reverse=True)
        if "since_id" in params:
            rows = [s for s in rows if key(s["id"]) > key(params["since_id"])]
        if "max_id" in params:
            rows = [s for s in rows if key(s["id"]) < key(params["max_id"])]
        size = min(self.page_size, int(params.get("limit", 20)))
        if "min_id" in params:
            rows = [s for s in rows if key(s["id"]) > key(params["min_id"])][-size:]
        page = rows[:size]
        headers = {"Content-Type": "application/json; charset=utf-8", "X-RateLimit-Remaining": "290"}
        if page:
            headers["Link"] = (
                f'<{TAG_URL}?limit={params.get("limit", 20)}&max_id={page[-1]["id"]}>; rel="next", '
                f'<{TAG_URL}?limit={params.get("limit", 20)}&min_id={page[0]["id"]}>; rel="prev"'
            )
        return 200, headers, json.dumps(page)


def recorded() -> list[dict]:
    return load("tag_page1.json") + load("tag_page2.json")


def serve(instance: Instance) -> Instance:
    responses.add_callback(responses.GET, TAG_URL, callback=instance)
    return instance


def scan(
    store: Any, credentials: Secrets | None = None, config: str = CONFIG, now: datetime = NOW, **http: Any
) -> ScanReport:
    return scan_source(
        "mastodon",
        now,
        config=parse_config(config),
        store=store,
        http=HttpClient(sleep=http.pop("sleep", lambda s: None), **http),
        credentials=credentials or Secrets(),
    )


def stored(store: Any) -> dict[str, Any]:
    return {m.id: m for m in store.mentions_between("acme", DAY, NOW)}


def counted(store: Any) -> int:
    return sum(b.mentions for b in store.counts("acme", DAY, NOW))


def tag_cursor(store: Any) -> Any:
    (spec,) = [
        s
        for s in CONNECTOR.specs(parse_config(CONFIG).brand("acme"), SourceSettings("mastodon"))
        if s.params["kind"] == "tag"
    ]
    return store.get_cursor("acme", "mastodon", spec.key)


@responses.activate
def test_hashtag_timeline_is_paged_by_the_link_header_and_rechecked_against_the_queries(store):
    instance = serve(Instance(recorded()))

    report = scan(store)

    (brand,) = report.reports
    assert brand.errors == []
    assert brand.stored == 3 and brand.not_matching == 1  # erin's "#acme anvil" is not "acme widgets"
    # newest first, then down by the Link header's rel="next" max_id, until an empty page
    assert [c.get("max_id") for c in instance.calls] == [None, "112432080000000002", "112432011112223334"]
    assert all(c["limit"] == "40" and "since_id" not in c for c in instance.calls)
    mentions = stored(store)
    assert set(mentions) == {ALICE, DAVE, BOB}
    assert ERIN not in mentions
    alice = mentions[ALICE]
    assert alice.text == "Trying #AcmeWidgets today & the #acme API is fine"
    assert alice.author.handle == "alice@fosstodon.org"
    assert alice.author.display_name == "Alice" and alice.author.followers == 230
    assert alice.url == "https://fosstodon.org/@alice/112432087651234567"
    assert alice.language == "en"
    assert alice.created_at == datetime(2024, 5, 13, 14, 3, 10, tzinfo=UTC)  # stored to the second
    assert (alice.engagement.reposts, alice.engagement.likes, alice.engagement.replies) == (4, 12, 1)
    assert alice.query == '"acme widgets" OR acmewidgets'
    # a reblog counts as the original's spread, the reblogger kept in raw
    dave = mentions[DAVE]
    assert dave.author.handle == "dave@mstdn.example" and dave.author.followers == 5120
    assert dave.text == "Acme Widgets support fixed my order in five minutes. #acme"
    assert dave.created_at == datetime(2024, 5, 13, 11, 35, tzinfo=UTC)
    assert dave.engagement.reposts == 7
    assert dave.raw["reblogged_by"]["acct"] == "carol"
    assert dave.raw["reblogged_by"]["status_id"] == "112432080000000002"
    bob = mentions[BOB]
    assert bob.parent_id == "mastodon:112431990000000001"
    assert bob.language == "de" and bob.author.display_name == "bob"
    assert bob.raw["status_id"] == "112432011112223334"
    # the pass is complete: the cursor keeps the newest id read
    assert tag_cursor(store).position == {"min_id": "112432087651234567"}
    assert counted(store) == 3


@responses.activate
def test_next_run_reads_from_min_id_and_walks_down_every_page_that_arrived(store):
    instance = serve(Instance(recorded()))
    scan(store)
    instance.calls.clear()
    # three new statuses (two pages) arrive before the next run
    instance.add_newer(load("tag_newer.json"))

    report = scan(store)

    assert report.reports[0].stored == 3 and report.reports[0].errors == []
    assert [(c.get("since_id"), c.get("max_id")) for c in instance.calls] == [
        ("112432087651234567", None),
        ("112432087651234567", "112432150000000002"),
        ("112432087651234567", "112432120000000001"),
    ]
    mentions = stored(store)
    assert len(mentions) == 6
    ivy = mentions["mastodon:https://mastodon.example/users/ivy/statuses/112432120000000001"]
    assert ivy.title == "outage" and ivy.language == "en" and ivy.author.display_name == "ivy"
    assert tag_cursor(store).position == {"min_id": "112432190000000003"}
    assert counted(store) == 6


@responses.activate
def test_an_empty_timeline_stores_nothing_and_writes_no_cursor(store):
    responses.add(responses.GET, TAG_URL, json=[], headers={"X-RateLimit-Remaining": "299"})

    report = scan(store)

    assert report.reports[0].errors == [] and report.reports[0].stored == 0
    assert tag_cursor(store).version == 0


@responses.activate
def test_rate_limit_waits_until_the_iso_reset_then_reads(store):
    wall = datetime(2024, 5, 13, 14, 30, 5, tzinfo=UTC).timestamp()
    instance = serve(Instance(recorded()))
    state = {"throttled": True}

    def throttle(params):
        if state.pop("throttled", False):
            return (
                429,
                {
                    "X-RateLimit-Limit": "300",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": "2024-05-13T14:30:35.000000Z",
                    "Content-Type": "application/json",
                },
                json.dumps({"error": "Too many requests"}),
            )
        return None

    instance.fail = throttle
    sleeps: list[float] = []

    report = scan(store, sleep=sleeps.append, wall=lambda: wall)

    assert report.reports[0].errors == [] and report.reports[0].stored == 3
    assert sleeps and sleeps[0] == pytest.approx(30, abs=1)


@responses.activate
def test_a_rate_limit_that_outlasts_the_retries_is_reported_and_the_cursor_kept(store):
    responses.add(
        responses.GET,
        TAG_URL,
        status=429,
        json={"error": "Too many requests"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2024-05-13T14:35:00.000000Z"},
    )
    report = scan(store, wall=lambda: NOW.timestamp())
    (error,) = report.reports[0].errors
    assert "429" in error
    assert stored(store) == {} and tag_cursor(store).version == 0


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ((FIXTURES / "error.html").read_bytes(), "text/html", "response body is an HTML page"),
        ((FIXTURES / "tag_page1.json").read_bytes()[:700], "application/json", "response body is not JSON"),
        (b'{"statuses": "none"}', "application/json", "neither a list of statuses"),
    ],
)
@responses.activate
def test_a_malformed_body_is_a_source_error_and_moves_nothing(store, body, content_type, expected):
    responses.add(responses.GET, TAG_URL, body=body, status=200, content_type=content_type)
    report = scan(store)
    (error,) = report.reports[0].errors
    assert expected in error
    assert stored(store) == {} and tag_cursor(store).version == 0


@responses.activate
def test_malformed_statuses_are_skipped_with_a_reason(store, caplog):
    link = f'<{TAG_URL}?limit=40&max_id=112432060000000001>; rel="next"'
    responses.add(responses.GET, TAG_URL, json=load("malformed_statuses.json"), headers={"Link": link})
    responses.add(responses.GET, TAG_URL, json=[])
    with caplog.at_level(logging.WARNING):
        report = scan(store)
    (brand,) = report.reports
    assert brand.errors == []
    assert brand.skipped == 4 and brand.stored == 1
    (nia,) = stored(store).values()
    assert nia.engagement.reposts == 0 and nia.author.followers is None
    reasons = [r.reason for r in caplog.records if getattr(r, "reason", None)]
    assert any("no uri" in r for r in reasons) and any("created_at" in r for r in reasons)


@responses.activate
def test_replaying_the_same_pages_three_times_stores_each_status_once(store):
    # the cursor lost between runs, so every run reads the same pages again: the store dedupes
    instance = serve(Instance(recorded()))
    reports = []
    for _ in range(3):
        reports.append(scan(store))
        store.client.delete_item(
            TableName=store.table,
            Key={"pk": {"S": "CUR#acme#mastodon"}, "sk": {"S": tag_cursor(store).query_key}},
        )
    assert [r.reports[0].stored for r in reports] == [3, 0, 0]
    assert [r.reports[0].duplicates for r in reports] == [0, 3, 3]
    assert len(stored(store)) == 3 and counted(store) == 3
    assert len(instance.calls) == 9


@responses.activate
def test_a_run_killed_after_its_first_page_loses_nothing(store):
    instance = serve(Instance(recorded()))

    def die(params):
        if params.get("max_id"):
            raise LambdaKilled("Lambda timed out")  # the container dies mid-run
        return None

    instance.fail = die
    with pytest.raises(LambdaKilled):
        scan(store)
    assert set(stored(store)) == {ALICE, DAVE}
    position = tag_cursor(store).position
    assert position["max_id"] == "112432080000000002" and position["top"] == "112432087651234567"

    instance.fail = None
    instance.calls.clear()
    report = scan(store)

    assert report.reports[0].stored == 1 and report.reports[0].errors == []
    assert set(stored(store)) == {ALICE, DAVE, BOB} and counted(store) == 3
    # the interrupted pass resumed below the last stored page, then a fresh pass found nothing new
    assert [(c.get("since_id"), c.get("max_id")) for c in instance.calls] == [
        (None, "112432080000000002"),
        (None, "112432011112223334"),
        ("112432087651234567", None),
    ]
    assert tag_cursor(store).position == {"min_id": "112432087651234567"}


@responses.activate
def test_a_cut_short_run_resumes_the_pass_on_the_next_run(store):
    instance = serve(Instance(recorded() + load("tag_newer.json"), page_size=2))
    config = CONFIG + "    max_pages: 2\n"
    first = scan(store, config=config)
    assert first.reports[0].stored == 4  # gina, hal, ivy, alice: pages 1-2 of 5
    assert tag_cursor(store).position["max_id"] == "112432087651234567"
    instance.calls.clear()

    second = scan(store, config=config)
    third = scan(store, config=config)

    assert second.reports[0].stored == 2 and third.reports[0].stored == 0  # dave and bob; then caught up
    assert len(stored(store)) == 6 and counted(store) == 6
    assert tag_cursor(store).position == {"min_id": "112432190000000003"}


@responses.activate
def test_search_runs_only_with_an_access_token_and_dedupes_across_streams(store):
    serve(Instance(recorded()))
    searches: list[requests.PreparedRequest] = []

    def search(request):
        searches.append(request)
        params = parse_qs(urlsplit(request.url).query)
        body = load("search_statuses.json") if "offset" not in params else {"accounts": [], "statuses": []}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    responses.add_callback(responses.GET, SEARCH_URL, callback=search)

    without = scan(store)
    assert searches == [] and without.reports[0].stored == 3

    report = scan(store, Secrets({"mastodon": {"access_token": TOKEN}}))

    assert report.reports[0].errors == []
    assert report.reports[0].stored == 1  # frank; alice came through the hashtag already
    assert report.reports[0].duplicates == 3  # alice once, frank and alice again from the second search
    queries = [parse_qs(urlsplit(r.url).query) for r in searches]
    assert {q["q"][0] for q in queries} == {'"acme widgets"', "acmewidgets"}
    for query in queries:
        assert query["type"] == ["statuses"] and query["resolve"] == ["false"] and query["limit"] == ["40"]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in searches)
    assert all(TOKEN not in r.url for r in searches)
    # the second page of each search is asked by offset; the pass ends at the empty page
    assert sorted(q.get("offset", ["0"])[0] for q in queries) == ["0", "0", "40", "40"]
    frank = stored(store)["mastodon:https://social.example/users/frank/statuses/112432139000000000"]
    assert frank.query == '"acme widgets" OR acmewidgets'


@responses.activate
def test_an_instance_that_requires_sign_in_for_timelines_is_reported_clearly(store):
    responses.add(
        responses.GET,
        TAG_URL,
        status=401,
        json={"error": "This method requires an authenticated user"},
    )
    report = scan(store)
    (error,) = report.reports[0].errors
    assert "mastodon.example requires sign-in for hashtag timelines" in error
    assert "HTTP 401: This method requires an authenticated user" in error


@responses.activate
def test_the_access_token_never_appears_in_logs_or_errors(store, caplog):
    serve(Instance(recorded()))
    responses.add(responses.GET, SEARCH_URL, status=401, json={"error": "The access token is invalid"})
    with caplog.at_level(logging.DEBUG):
        report = scan(store, Secrets({"mastodon": {"access_token": TOKEN}}))
    errors = report.reports[0].errors
    assert len(errors) == 2 and all("refused the access token" in e for e in errors)
    assert TOKEN not in caplog.text
    assert all(TOKEN not in e for e in errors)
    assert all(TOKEN not in json.dumps(r.__dict__, default=str) for r in caplog.records)
    runs = store.source_runs("acme")
    assert TOKEN not in json.dumps(runs, default=str)


def test_parse_command_prints_the_statuses_of_a_recorded_body(capsys):
    assert (
        cli_main(
            ["parse", "--source", "mastodon", "--query", "acme widgets", str(FIXTURES / "tag_page1.json")]
        )
        == 0
    )
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == [ALICE, DAVE]
    assert [line["matches"] for line in lines] == [False, True]
    assert "2 mention(s), 0 skipped" in err


# ------------------------------------------------------------------ re-reading the watched statuses


STATUS_URL = re.compile(r"https://mastodon\.example/api/v1/statuses/(\d+)")
ALICE_ID, DAVE_ID, BOB_ID = "112432087651234567", "112431500000000042", "112432011112223334"


class Statuses:
    """`GET /api/v1/statuses/:id` on the instance: the Status by its local id, or 404 once deleted."""

    def __init__(self) -> None:
        by_id = {}
        for item in recorded():
            status = item["reblog"] or item  # a reblog's original is served under its own local id
            by_id[status["id"]] = copy.deepcopy(status)
        self.by_id = by_id
        self.calls: list[dict[str, Any]] = []
        self.fail: Any = None  # a response tuple answered to every call

    def grow(self, status_id: str, reblogs: int, favourites: int, replies: int) -> None:
        status = self.by_id[status_id]
        status["reblogs_count"], status["favourites_count"], status["replies_count"] = (
            reblogs,
            favourites,
            replies,
        )

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        status_id = STATUS_URL.match(request.url).group(1)
        self.calls.append(
            {
                "id": status_id,
                "query": urlsplit(request.url).query,
                "auth": request.headers.get("Authorization"),
            }
        )
        if self.fail is not None:
            return self.fail
        headers = {"Content-Type": "application/json; charset=utf-8", "X-RateLimit-Remaining": "280"}
        if status_id not in self.by_id:
            return 404, headers, json.dumps({"error": "Record not found"})
        return 200, headers, json.dumps(self.by_id[status_id])


def serve_statuses(statuses: Statuses) -> Statuses:
    responses.add_callback(responses.GET, STATUS_URL, callback=statuses)
    return statuses


def engagement(store: Any, mention_id: str) -> tuple[int, int, int]:
    eng = stored(store)[mention_id].engagement
    return eng.reposts, eng.likes, eng.replies


@responses.activate
def test_watched_statuses_are_re_read_by_their_local_id_once_per_interval(store):
    """The viral-post rule needs a post's growth: the scan re-reads the brand's top posts with
    `GET /api/v1/statuses/:id` on the instance they were read from, by the id local to it."""
    serve(Instance(recorded()))
    responses.add(responses.GET, SEARCH_URL, json={"accounts": [], "statuses": [], "hashtags": []})
    statuses = serve_statuses(Statuses())
    del statuses.by_id[BOB_ID]  # bob deleted his post: the instance answers 404
    statuses.grow(ALICE_ID, 40, 95, 18)
    statuses.grow(DAVE_ID, 9, 26, 3)
    token = Secrets({"mastodon": {"access_token": TOKEN}})

    first = scan(store, token)

    (report,) = first.reports
    assert report.errors == [] and report.refresh_errors == 0
    # one call a post; the reblogged original by the reading instance's id, not the one in its uri
    assert sorted(c["id"] for c in statuses.calls) == sorted([ALICE_ID, DAVE_ID, BOB_ID])
    assert all(c["auth"] == f"Bearer {TOKEN}" and c["query"] == "" for c in statuses.calls)
    assert report.refreshed == 2  # alice and dave grew; bob is gone
    assert engagement(store, ALICE) == (40, 95, 18)
    assert engagement(store, DAVE) == (9, 26, 3)
    assert engagement(store, BOB) == (0, 2, 0)  # deleted: kept as it was, no error

    scan(store, token, now=NOW + timedelta(minutes=5))  # the same 15-minute interval: no second read
    assert len(statuses.calls) == 3
    statuses.grow(DAVE_ID, 60, 210, 44)
    later = scan(store, token, now=NOW + timedelta(minutes=16))
    assert len(statuses.calls) == 6 and later.reports[0].refreshed == 1
    assert engagement(store, DAVE) == (60, 210, 44) and engagement(store, ALICE) == (40, 95, 18)
    statuses.grow(DAVE_ID, 50, 100, 40)  # an older count never takes the stored one back
    scan(store, token, now=NOW + timedelta(minutes=31))
    assert len(statuses.calls) == 9 and engagement(store, DAVE) == (60, 210, 44)


@responses.activate
def test_a_failed_re_read_is_counted_not_a_failed_scan_and_is_tried_next_run(store):
    serve(Instance(recorded()))
    statuses = serve_statuses(Statuses())
    statuses.grow(ALICE_ID, 40, 95, 18)
    statuses.fail = (503, {"Content-Type": "text/html"}, (FIXTURES / "error.html").read_text())

    report = scan(store).reports[0]

    assert report.refresh_errors == 1 and report.errors == [] and report.stored == 3
    assert report.refreshed == 0 and engagement(store, ALICE) == (4, 12, 1)
    assert all(c["auth"] is None for c in statuses.calls)  # no token: public statuses are read without
    assert_refresh_failure_recorded(store, "mastodon")

    statuses.fail = None
    failed_calls = len(statuses.calls)
    retried = scan(store, now=NOW + timedelta(minutes=5)).reports[0]  # released: the same interval again
    assert retried.refresh_errors == 0 and len(statuses.calls) == failed_calls + 3
    assert engagement(store, ALICE) == (40, 95, 18)


@responses.activate
def test_a_status_id_that_now_names_another_post_is_not_taken_for_the_stored_one(store):
    """Local ids belong to one instance: read after `base_url` moved, an id may name another post."""
    serve(Instance(recorded()))
    statuses = serve_statuses(Statuses())
    statuses.fail = (404, {}, json.dumps({"error": "Record not found"}))
    scan(store)
    other = "https://other.example"
    responses.add(responses.GET, f"{other}/api/v1/timelines/tag/acme", json=[])
    stranger = copy.deepcopy(statuses.by_id[ALICE_ID])
    stranger["uri"] = "https://other.example/users/zed/statuses/1"
    stranger["reblogs_count"] = 999
    responses.add(responses.GET, re.compile(rf"{other}/api/v1/statuses/\d+"), json=stranger)

    report = scan(store, config=CONFIG.replace(INSTANCE, other), now=NOW + timedelta(minutes=16)).reports[0]

    assert report.errors == [] and report.refresh_errors == 0 and report.refreshed == 0
    assert engagement(store, ALICE) == (4, 12, 1)
