"""Stack Exchange through the scanner: recorded /2.3/search/advanced bodies replayed with `responses`."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse, urlsplit

import pytest
import responses
from emberwatch.cli import main
from emberwatch.config import SourceSettings, parse_config
from emberwatch.http import HttpClient, SourceError
from emberwatch.scan import PAUSE_THRESHOLD, scan_source
from emberwatch.sources import ScanContext
from emberwatch.sources.stackexchange import CONNECTOR

from tests.conftest import LambdaKilled, assert_refresh_failure_recorded

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stackexchange"
BASE = "https://se.example/2.3"
URL = f"{BASE}/search/advanced"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
APP_KEY = "U4DMV*8nvpm3EOpvf69Rxw(("
CONFIG = f"""
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
sources:
  stackexchange:
    enabled: true
    base_url: {BASE}
"""
ONE_PAGE = CONFIG.replace("    enabled: true\n", "    enabled: true\n    max_pages: 1\n")

Handler = Callable[[dict[str, str]], tuple[int, Any]]


class FakeCredentials:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def for_source(self, source: str) -> dict[str, Any]:
        return dict(self.values.get(source, {}))


def body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def recorded(params: dict[str, str]) -> tuple[int, Any]:
    """Two pages for the phrase (page 2, or a later run resuming below `todate`), nothing for the word."""
    if params["q"] != '"acme widgets"':
        return 200, body("empty.json")
    if params.get("page") == "2" or "todate" in params:
        return 200, body("search_page2.json")
    return 200, body("search_page1.json")


def recorded_questions(ids: list[str], params: dict[str, str]) -> tuple[int, Any]:
    """`/questions/{ids}`: the recorded questions asked for, as the search returned them."""
    known = {
        str(item["question_id"]): item
        for name in ("search_page1.json", "search_page2.json")
        for item in body(name)["items"]
    }
    items = [known[i] for i in ids if i in known]
    return 200, {"items": items, "has_more": False, "quota_max": 300, "quota_remaining": 280}


def answer(status: int, payload: Any) -> tuple[int, dict[str, str], Any]:
    if isinstance(payload, str):
        kind = "text/html" if payload.startswith("<") else "application/json"
        return status, {"Content-Type": kind}, payload
    # the API always compresses its JSON
    compressed = gzip.compress(json.dumps(payload).encode())
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"},
        compressed,
    )


def serve(
    handler: Handler,
    calls: list[dict[str, str]],
    questions: Callable[[list[str], dict[str, str]], tuple[int, Any]] = recorded_questions,
    asked: list[tuple[list[str], dict[str, str]]] | None = None,
) -> None:
    """The search (`calls` gets each one's params) and `/questions/{ids}` (`asked`: ids and params)."""

    def callback(request):
        params = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        calls.append(params)
        return answer(*handler(params))

    def by_ids(request):
        url = urlsplit(request.url)  # not urlparse: it would cut the path at the first ";"
        ids = url.path.rsplit("/", 1)[-1].split(";")
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        if asked is not None:
            asked.append((ids, params))
        return answer(*questions(ids, params))

    responses.add_callback(responses.GET, URL, callback=callback)
    responses.add_callback(
        responses.GET, re.compile(re.escape(f"{BASE}/questions/") + r"[^/?]+"), callback=by_ids
    )


def scan(store, sleeps: list[float] | None = None, config: str = CONFIG, credentials=None, now=NOW):
    return scan_source(
        "stackexchange",
        now,
        config=parse_config(config),
        store=store,
        http=HttpClient(sleep=(sleeps if sleeps is not None else []).append),
        credentials=credentials,
    )


def stored(store) -> dict[str, Any]:
    return {m.id: m for m in store.mentions_between("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)}


def phrase_cursor(store):
    brand = parse_config(CONFIG).brand("acme")
    spec = next(
        s for s in CONNECTOR.specs(brand, SourceSettings("stackexchange")) if s.label == '"acme widgets"'
    )
    return store.get_cursor("acme", "stackexchange", spec.key)


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
def test_questions_are_stored_normalised_over_two_pages(store):
    # Given two gzip pages of questions for the phrase and none for the word
    calls: list[dict[str, str]] = []
    serve(recorded, calls)

    # When the source is scanned without an app key
    report = scan(store)

    # Then the matching questions are stored and the others counted
    (brand,) = report.reports
    assert brand.errors == []
    assert (brand.stored, brand.skipped, brand.not_matching, brand.pages) == (3, 1, 1, 3)
    mentions = stored(store)
    assert set(mentions) == {"stackexchange:78470001", "stackexchange:78469950", "stackexchange:78469500"}
    question = mentions["stackexchange:78470001"]
    assert question.title == 'Acme Widgets SDK returns 401 with "valid" token'
    assert question.text.startswith(f"{question.title}\n\nI'm calling the Acme Widgets API from Python:")
    assert "401 Unauthorized & no body." in question.text
    assert (
        question.url
        == "https://stackoverflow.com/questions/78470001/acme-widgets-sdk-returns-401-with-valid-token"
    )
    assert question.created_at == datetime(2024, 5, 13, 14, 10, tzinfo=UTC)
    assert question.author.handle == "dev_maria" and question.author.followers is None
    assert question.raw["reputation"] == 101 and question.raw["views"] == 14
    assert question.raw["tags"] == ["python", "acme-widgets"]
    assert (question.engagement.score, question.engagement.replies) == (1, 0)
    assert mentions["stackexchange:78469950"].author.display_name == "Jörg & Co"
    assert mentions["stackexchange:78469500"].engagement.score == -1  # negative votes kept as given
    assert mentions["stackexchange:78469500"].title == "Acme Widgets CLI crashes on Windows & WSL"

    # the requests: newest first from the first-run lookback, 100 a page, bodies included, no key
    first = calls[0]
    assert first == {
        "q": '"acme widgets"',
        "site": "stackoverflow",
        "sort": "creation",
        "order": "desc",
        "fromdate": str(int(datetime(2024, 5, 12, 13, 55, tzinfo=UTC).timestamp())),
        "page": "1",
        "pagesize": "100",
        "filter": "withbody",
    }
    assert [c["page"] for c in calls if c["q"] == '"acme widgets"'] == ["1", "2"]
    # the watermark moved to the newest question
    assert phrase_cursor(store).position["since"] == 1715609400
    assert phrase_cursor(store).position["upper"] is None


@responses.activate
def test_the_app_key_is_sent_when_configured(store):
    calls: list[dict[str, str]] = []
    serve(recorded, calls)
    scan(store, credentials=FakeCredentials({"stackexchange": {"key": APP_KEY}}))
    assert calls and all(c["key"] == APP_KEY for c in calls)


@responses.activate
def test_second_page_is_read_from_the_stored_cursor(store):
    # Given one page per run
    calls: list[dict[str, str]] = []
    serve(recorded, calls)

    # When the first run stops after page one
    first = scan(store, config=ONE_PAGE)
    assert first.reports[0].stored == 2
    position = phrase_cursor(store).position
    assert position["upper"] == 1715601000  # the oldest question stored
    assert position["since"] == int(datetime(2024, 5, 12, 14, 0, tzinfo=UTC).timestamp())

    # Then the next run asks for questions up to that second (again: its ids are remembered)
    calls.clear()
    second = scan(store, config=ONE_PAGE)
    resumed = next(c for c in calls if c["q"] == '"acme widgets"')
    assert (resumed["page"], resumed["todate"]) == ("1", "1715601001")
    assert second.reports[0].stored == 1
    assert "stackexchange:78469500" in stored(store)
    assert phrase_cursor(store).position["since"] == 1715609400


@responses.activate
def test_an_empty_result_stores_nothing(store):
    serve(lambda params: (200, body("empty.json")), [])
    report = scan(store)
    assert report.reports[0].errors == []
    assert report.reports[0].stored == 0
    assert phrase_cursor(store).position["since"] == int(datetime(2024, 5, 12, 14, 0, tzinfo=UTC).timestamp())


@responses.activate
def test_backoff_makes_the_next_request_wait(store):
    # Given page one asks for a 10 second backoff
    def handler(params):
        status, payload = recorded(params)
        if params.get("page") == "1" and params["q"] == '"acme widgets"':
            payload = dict(payload, backoff=10)
        return status, payload

    sleeps: list[float] = []
    serve(handler, [])

    # When the scan goes on to page two
    report = scan(store, sleeps)

    # Then it waited at least the backoff before the next request
    assert report.reports[0].errors == []
    assert sleeps and sleeps[0] >= 10
    assert report.reports[0].stored == 3


@pytest.mark.parametrize("status", [400, 502])
@responses.activate
def test_throttle_violation_stops_at_once_and_waits_as_told(store, monkeypatch, status):
    # Given the IP is throttled (an error body, not a 429)
    calls: list[dict[str, str]] = []
    serve(lambda params: (status, body("throttle_violation.json")), calls)
    errors = record_errors(monkeypatch)
    sleeps: list[float] = []

    report = scan(store, sleeps)

    # Then the stream stops without retrying (that makes the throttle worse) and waits the hour it was told
    assert errors[0].retry_after == 3600
    assert errors[0].retry_after > PAUSE_THRESHOLD.total_seconds()  # long enough to pause the source
    assert sleeps == []
    assert len([c for c in calls if c["q"] == '"acme widgets"']) == 1
    assert "throttle_violation" in report.reports[0].errors[0]
    assert phrase_cursor(store).version == 0


@responses.activate
def test_a_spent_daily_quota_stores_the_page_then_stops_until_the_utc_day_ends(store, monkeypatch):
    def handler(params):
        status, payload = recorded(params)
        return status, dict(payload, quota_remaining=0)

    serve(handler, [])
    errors = record_errors(monkeypatch)
    report = scan(store)
    assert "stackexchange:78470001" in stored(store)  # the page that spent it is kept
    assert errors[0].retry_after == (datetime(2024, 5, 14, tzinfo=UTC) - NOW).total_seconds()
    assert "quota" in report.reports[0].errors[0]
    assert phrase_cursor(store).position["upper"] == 1715601000
    assert store.paused_until("stackexchange") == datetime(2024, 5, 14, tzinfo=UTC)


@responses.activate
def test_throttle_violation_pauses_later_runs(store):
    calls: list[dict[str, str]] = []
    serve(lambda params: (502, body("throttle_violation.json")), calls)
    scan(store)
    assert store.paused_until("stackexchange") == datetime(2024, 5, 13, 15, 30, tzinfo=UTC)
    made = len(calls)
    scan(store)
    assert len(calls) == made


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("<!DOCTYPE html><html><body>Oops</body></html>", "HTML page"),
        ('{"items": [{"question_id": 78470001, "title": "Acme', "not JSON"),
        ({"items": {"question_id": 78470001}, "has_more": False}, "no 'items' list"),
    ],
)
@responses.activate
def test_malformed_bodies_fail_the_stream_with_a_reason(store, payload, message):
    serve(lambda params: (200, payload), [])
    report = scan(store)
    errors = report.reports[0].errors
    assert errors and all(message in e for e in errors)
    assert phrase_cursor(store).version == 0


@responses.activate
def test_an_error_body_is_reported_by_name(store):
    serve(lambda params: (400, {"error_id": 400, "error_name": "bad_parameter", "error_message": "site"}), [])
    report = scan(store)
    assert "bad_parameter" in report.reports[0].errors[0]


@responses.activate
def test_replaying_the_same_pages_three_times_stores_each_mention_once(store):
    serve(recorded, [])
    results = [scan(store).reports[0] for _ in range(3)]
    assert [r.stored for r in results] == [3, 0, 0]
    assert all(not r.errors for r in results)
    assert len(stored(store)) == 3
    assert sum(b.mentions for b in store.counts("acme", datetime(2024, 5, 13, tzinfo=UTC), NOW)) == 3


@responses.activate
def test_a_run_killed_after_the_first_page_loses_nothing(store):
    state = {"kill": True}

    def handler(params):
        if params.get("page") == "2" and state["kill"]:
            raise LambdaKilled("killed")
        return recorded(params)

    serve(handler, [])
    with pytest.raises(LambdaKilled, match="killed"):
        scan(store)
    assert set(stored(store)) == {"stackexchange:78470001", "stackexchange:78469950"}

    state["kill"] = False
    report = scan(store)
    assert report.reports[0].errors == []
    assert set(stored(store)) == {
        "stackexchange:78470001",
        "stackexchange:78469950",
        "stackexchange:78469500",
    }


@responses.activate
def test_the_key_never_appears_in_logs_or_errors(store, captured):

    def handler(params):
        if params["q"] == '"acme widgets"':
            return 400, {
                "error_id": 400,
                "error_name": "bad_parameter",
                "error_message": f"key {APP_KEY} is invalid",
            }
        return 503, "<html><body>Service Unavailable</body></html>"

    serve(handler, [])
    report = scan(store, credentials=FakeCredentials({"stackexchange": {"key": APP_KEY}}))
    errors = report.reports[0].errors
    assert len(errors) == 2 and "bad_parameter" in errors[0] and "HTTP 503" in errors[1]
    assert any(r.getMessage() == "source query failed" for r in captured.records)  # the logs were seen
    assert APP_KEY not in logged(captured) + " ".join(errors)


def test_emberwatch_parse_reads_a_recorded_body(capsys):
    code = main(
        [
            "parse",
            "--source",
            "stackexchange",
            "--query",
            '"acme widgets"',
            str(FIXTURES / "search_page1.json"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == [
        "stackexchange:78470001",
        "stackexchange:78469990",
        "stackexchange:78469950",
    ]
    assert [line["matches"] for line in lines] == [True, False, True]
    assert lines[0]["engagement"] == {"reposts": 0, "likes": 0, "replies": 0, "score": 1}
    assert "question_id missing or not an integer" in err
    assert "3 mention(s), 1 skipped" in err


def test_emberwatch_parse_names_a_throttle_body(capsys):
    assert main(["parse", "--source", "stackexchange", str(FIXTURES / "throttle_violation.json")]) == 1
    assert "throttle_violation" in capsys.readouterr().err


# ------------------------------------------------------------------ re-reading the watched questions


class Watched:
    """`/questions/{ids}` with the current score and answer count of the watched questions."""

    def __init__(self) -> None:
        self.now: dict[str, tuple[int, int]] = {}  # question id -> (score, answer_count)
        self.gone: set[str] = set()
        self.fail: tuple[int, Any] | None = None

    def __call__(self, ids: list[str], params: dict[str, str]) -> tuple[int, Any]:
        if self.fail:
            return self.fail
        status, payload = recorded_questions([i for i in ids if i not in self.gone], params)
        for item in payload["items"]:
            if str(item["question_id"]) in self.now:
                item["score"], item["answer_count"] = self.now[str(item["question_id"])]
        return status, payload


@responses.activate
def test_watched_questions_are_re_read_by_id_once_per_interval(store):
    """The viral-post rule needs a question's growth: the scan re-reads the brand's top questions with
    `/questions/{ids}` every 15 minutes, parsed as in a search."""
    api = Watched()
    asked: list[tuple[list[str], dict[str, str]]] = []
    serve(recorded, [], api, asked)

    first = scan(store)
    assert first.reports[0].refresh_errors == 0 and first.reports[0].errors == []
    ((ids, params),) = asked  # one call, all the watched questions in it
    assert sorted(ids) == ["78469500", "78469950", "78470001"]
    assert params == {"site": "stackoverflow", "pagesize": "100", "filter": "withbody"}

    scan(store, now=NOW + timedelta(minutes=5))  # the same 15-minute interval: nothing read again
    assert len(asked) == 1

    api.now["78470001"] = (7, 3)  # votes and answers came in
    api.gone.add("78469950")  # deleted: /questions/{ids} leaves it out
    later = scan(store, now=NOW + timedelta(minutes=16))
    assert len(asked) == 2
    assert later.reports[0].refreshed == 1
    assert later.reports[0].refresh_errors == 0 and later.reports[0].errors == []
    mentions = stored(store)
    assert (
        mentions["stackexchange:78470001"].engagement.score,
        mentions["stackexchange:78470001"].engagement.replies,
    ) == (7, 3)
    deleted = mentions["stackexchange:78469950"].engagement
    assert (deleted.score, deleted.replies) == (3, 2)  # kept as it was

    api.now["78470001"] = (5, 3)  # a lower count (votes taken back) never replaces a higher one
    scan(store, now=NOW + timedelta(minutes=31))
    assert len(asked) == 3 and stored(store)["stackexchange:78470001"].engagement.score == 7


def reread_150(store, change: Callable[[dict[str, Any], int], dict[str, Any]], sleeps: list[float], key=None):
    """Store the recorded questions, then re-read one of them and 149 made-up ids with the connector
    itself; `change(payload, n)` edits the answer to the n-th call. Returns (question, asked, fresh)."""
    serve(recorded, [])
    scan(store)
    question = stored(store)["stackexchange:78470001"]
    posts = [question] + [replace(question, native_id=str(70000000 + n)) for n in range(149)]
    asked: list[tuple[list[str], dict[str, str]]] = []
    responses.reset()

    def questions(ids, params):
        status, payload = recorded_questions(ids, params)
        return status, change(payload, len(asked))

    serve(recorded, [], questions, asked)
    ctx = ScanContext(
        http=HttpClient(sleep=sleeps.append),
        now=NOW,
        settings=parse_config(CONFIG).source("stackexchange"),
        credentials=FakeCredentials({"stackexchange": {"key": key}} if key else {}),
    )
    return question, asked, CONNECTOR.engagement(parse_config(CONFIG).brand("acme"), posts, ctx)


@responses.activate
def test_a_re_read_asks_for_100_ids_a_call_with_the_key_and_honours_backoff(store):
    sleeps: list[float] = []
    question, asked, fresh = reread_150(
        store, lambda payload, n: dict(payload, backoff=10) if n == 1 else payload, sleeps, APP_KEY
    )
    assert [len(ids) for ids, _ in asked] == [100, 50]
    assert all(params["key"] == APP_KEY for _, params in asked)
    assert sleeps and sleeps[0] >= 10  # the second call waited out the first one's backoff
    assert fresh == {"stackexchange:78470001": question.engagement}  # the made-up ids are not served


@responses.activate
def test_a_re_read_that_spends_the_quota_keeps_what_it_read_and_asks_no_more(store):
    question, asked, fresh = reread_150(store, lambda payload, n: dict(payload, quota_remaining=0), [])
    assert len(asked) == 1
    assert fresh == {"stackexchange:78470001": question.engagement}


@pytest.mark.parametrize(
    ("failure", "paused"),
    [
        ((503, "<html><body>Service Unavailable</body></html>"), None),
        # "more requests available in 3600 seconds", counted from the failed run at 14:46
        ((400, body("throttle_violation.json")), datetime(2024, 5, 13, 15, 46, tzinfo=UTC)),
    ],
    ids=["http-503", "throttle-violation"],
)
@responses.activate
def test_a_failed_re_read_is_counted_not_a_failed_scan_and_is_tried_again(store, failure, paused):
    api = Watched()
    asked: list[tuple[list[str], dict[str, str]]] = []
    serve(recorded, [], api, asked)
    scan(store)

    api.fail = failure
    api.now["78470001"] = (7, 3)
    failed = scan(store, now=NOW + timedelta(minutes=16)).reports[0]
    assert failed.refresh_errors == 1 and failed.refreshed == 0 and failed.errors == []
    assert_refresh_failure_recorded(store, "stackexchange")
    assert stored(store)["stackexchange:78470001"].engagement.score == 1
    assert store.paused_until("stackexchange") == paused  # a throttle pauses the source, as in a search
    # a throttle is not retried (that makes it worse); a 503 is, by the shared client (4 attempts)
    assert len(asked) - 1 == (1 if paused else 4)
    if paused:
        return

    api.fail = None  # the interval's claim was let go: the next run reads again
    retried = scan(store, now=NOW + timedelta(minutes=20)).reports[0]
    assert retried.refresh_errors == 0 and retried.refreshed >= 1
    assert stored(store)["stackexchange:78470001"].engagement.score == 7
