"""Bluesky connector: sessions kept between runs, searchPosts pages replayed with `responses`, into moto."""

from __future__ import annotations

import base64
import copy
import json
import logging
import time
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
from emberwatch.sources import ScanContext
from emberwatch.sources.bluesky import CONNECTOR, jwt_expiry, normalise

from tests.conftest import LambdaKilled, assert_refresh_failure_recorded

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bluesky"
HOST = "https://bsky.example"
SEARCH_URL = f"{HOST}/xrpc/app.bsky.feed.searchPosts"
CREATE_URL = f"{HOST}/xrpc/com.atproto.server.createSession"
REFRESH_URL = f"{HOST}/xrpc/com.atproto.server.refreshSession"
GET_POSTS_URL = f"{HOST}/xrpc/app.bsky.feed.getPosts"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
DAY = datetime(2024, 5, 13, tzinfo=UTC)
IDENTIFIER = "acme.bsky.social"
PASSWORD = "app-pass-SECRET-xq7k-29fd"  # a fake credential the tests look for in logs
DID = "did:plc:acmebrand0000000000000000"
CREDENTIALS = {"bluesky": {"identifier": IDENTIFIER, "app_password": PASSWORD}}

CONFIG = f"""
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets"'
sources:
  bluesky:
    enabled: true
    base_url: {HOST}
"""

JANE = "bluesky:at://did:plc:4x7vq2mjbk3tqz5e6d2y7abc/app.bsky.feed.post/3ksh2k4dfp22x"
SAM = "bluesky:at://did:plc:7hq2cw3l5kqu6pfx2bq4xyz9/app.bsky.feed.post/3ksh1z8wqbk2c"
NOHANDLE = "bluesky:at://did:plc:5kd8w2ny3zq4xr6pv7m9test/app.bsky.feed.post/3ksgyq4lmno2e"
NANO = "bluesky:at://did:plc:6ab2c3d4e5f6g7h8i9j0klmn/app.bsky.feed.post/3ksgxr7stuv2f"
ALL = {JANE, SAM, NOHANDLE, NANO}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def make_jwt(exp: float, scope: str, serial: int) -> str:
    """A JWT shaped like the PDS's (header.claims.signature); only `exp` matters to the connector."""
    header = b64({"typ": "at+jwt" if scope == "com.atproto.access" else "refresh+jwt", "alg": "ES256K"})
    claims = b64(
        {
            "scope": scope,
            "sub": DID,
            "aud": "did:web:bsky.example",
            "iat": int(exp) - 60,
            "exp": int(exp),
            "jti": f"j{serial}",
        }
    )
    return f"{header}.{claims}.c2lnbmF0dXJl{serial:04d}"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


class Secrets:
    def __init__(self, values: dict[str, dict[str, Any]] | None = None) -> None:
        self.values = CREDENTIALS if values is None else values

    def for_source(self, source: str) -> dict[str, Any]:
        return dict(self.values.get(source, {}))


class FakeBluesky:
    """A PDS entryway: createSession, refreshSession (rotating the refresh JWT), searchPosts by cursor."""

    def __init__(self, pages: dict[str | None, Any] | None = None) -> None:
        self.pages = (
            pages if pages is not None else {None: load("search_page1.json"), "3": load("search_page2.json")}
        )
        self.creates = self.refreshes = 0
        self.searches: list[dict[str, str]] = []
        self.issued: list[str] = []
        self.access: str | None = None
        self.refresh: str | None = None
        self.refresh_works = True
        self.expire_next_search = False  # the server revokes the access JWT before its exp
        self.fail: Any = None  # callable(params) -> response tuple or raises
        # getPosts: the posts of `pages` by uri, with `counts` laid over them; `deleted` ones are absent
        self.post_reads: list[dict[str, Any]] = []
        self.counts: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.fail_posts: Any = None  # a response tuple answered to every getPosts call

    def issue(self, access_ttl: float = 7200) -> dict[str, str]:
        serial = len(self.issued)
        self.access = make_jwt(time.time() + access_ttl, "com.atproto.access", serial)
        self.refresh = make_jwt(time.time() + 90 * 86400, "com.atproto.refresh", serial + 1)
        self.issued += [self.access, self.refresh]
        return {
            "accessJwt": self.access,
            "refreshJwt": self.refresh,
            "did": DID,
            "handle": IDENTIFIER,
            "active": True,
        }

    def install(self) -> FakeBluesky:
        responses.add_callback(responses.POST, CREATE_URL, callback=self.create)
        responses.add_callback(responses.POST, REFRESH_URL, callback=self.refresh_session)
        responses.add_callback(responses.GET, SEARCH_URL, callback=self.search)
        responses.add_callback(responses.GET, GET_POSTS_URL, callback=self.get_posts)
        return self

    @staticmethod
    def answer(
        status: int, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        return (
            status,
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
            json.dumps(body),
        )

    def create(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.creates += 1
        body = json.loads(request.body)
        if body != {"identifier": IDENTIFIER, "password": PASSWORD}:
            return self.answer(
                401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
            )
        return self.answer(200, self.issue())

    def refresh_session(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.refreshes += 1
        if not self.refresh_works or request.headers.get("Authorization") != f"Bearer {self.refresh}":
            return self.answer(400, {"error": "ExpiredToken", "message": "Token has been revoked"})
        return self.answer(200, self.issue())

    def search(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        auth = request.headers.get("Authorization", "")
        self.searches.append({**params, "auth": auth})
        if not auth:
            return self.answer(403, {"error": "AuthMissing", "message": "Authentication Required"})
        token = auth.removeprefix("Bearer ")
        if self.expire_next_search:
            self.expire_next_search = False
            return self.answer(400, {"error": "ExpiredToken", "message": "Token has expired"})
        if token != self.access:
            return self.answer(401, {"error": "InvalidToken", "message": "Token could not be verified"})
        if (jwt_expiry(token) or 0) < time.time():
            return self.answer(400, {"error": "ExpiredToken", "message": "Token has expired"})
        if self.fail is not None:
            answer = self.fail(params)
            if answer is not None:
                return answer
        body = self.pages.get(params.get("cursor"), {"posts": []})
        headers = {"RateLimit-Limit": "3000", "RateLimit-Remaining": "2990", "RateLimit-Policy": "3000;w=300"}
        return self.answer(200, body, headers)

    def get_posts(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        """`app.bsky.feed.getPosts?uris=a&uris=b`: the postViews it still has; a deleted post is absent."""
        query = parse_qs(urlsplit(request.url).query)
        auth = request.headers.get("Authorization", "")
        uris = query.get("uris", [])
        self.post_reads.append({"uris": uris, "params": sorted(query), "auth": auth})
        if auth.removeprefix("Bearer ") != self.access:
            return self.answer(401, {"error": "InvalidToken", "message": "Token could not be verified"})
        if self.fail_posts is not None:
            return self.fail_posts
        if len(uris) > 25:
            return self.answer(400, {"error": "InvalidRequest", "message": "uris must not have more than 25"})
        known = {
            p["uri"]: p
            for page in self.pages.values()
            for p in page.get("posts", [])
            if isinstance(p, dict) and isinstance(p.get("uri"), str)
        }
        posts = [
            {**copy.deepcopy(known[uri]), **self.counts.get(uri, {})}
            for uri in uris
            if uri in known and uri not in self.deleted
        ]
        return self.answer(200, {"posts": posts}, {"RateLimit-Remaining": "2980"})


def scan(
    store: Any, credentials: Secrets | None = None, config: str = CONFIG, now: datetime = NOW, **http: Any
) -> ScanReport:
    return scan_source(
        "bluesky",
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


def cursor(store: Any) -> Any:
    (spec,) = CONNECTOR.specs(parse_config(CONFIG).brand("acme"), SourceSettings("bluesky"))
    return store.get_cursor("acme", "bluesky", spec.key)


def keep_session(store: Any, access: str, refresh: str) -> None:
    store.put_token(
        "bluesky",
        IDENTIFIER,
        {"accessJwt": access, "refreshJwt": refresh},
        datetime.now(UTC) + timedelta(days=80),
    )


# ---------------------------------------------------------------------------------------------- pages


@responses.activate
def test_search_is_read_newest_first_by_cursor_and_normalised(store):
    fake = FakeBluesky().install()

    report = scan(store)

    (brand,) = report.reports
    assert brand.errors == []
    assert brand.stored == 4 and brand.not_matching == 1 and brand.skipped == 1
    assert [s.get("cursor") for s in fake.searches] == [None, "3"]
    for search in fake.searches:
        assert search["q"] == '"acme widgets"' and search["sort"] == "latest" and search["limit"] == "100"
        assert search["since"] == "2024-05-12T14:00:00Z"  # first run: 24 hours before the top of the hour
        assert search["auth"] == f"Bearer {fake.access}"
    mentions = stored(store)
    assert set(mentions) == ALL
    jane = mentions[JANE]
    assert jane.text == "Acme Widgets just shipped dark mode!"
    assert jane.author.handle == "jane.bsky.social" and jane.author.display_name == "Jane"
    assert jane.author.followers is None
    assert jane.url == "https://bsky.app/profile/jane.bsky.social/post/3ksh2k4dfp22x"
    assert jane.created_at == datetime(2024, 5, 13, 14, 3, 21, tzinfo=UTC)
    assert (jane.engagement.reposts, jane.engagement.likes, jane.engagement.replies) == (3, 5, 0)
    assert jane.raw["quotes"] == 2 and jane.raw["cid"] == "bafyreib2rxk3ryblouo3ybl4y6dhz4b2q"
    assert jane.language == "en" and jane.parent_id is None
    sam = mentions[SAM]
    assert sam.parent_id == "bluesky:at://did:plc:4x7vq2mjbk3tqz5e6d2y7abc/app.bsky.feed.post/3ksgzz9pppp3c"
    assert (
        sam.conversation_id
        == "bluesky:at://did:plc:4x7vq2mjbk3tqz5e6d2y7abc/app.bsky.feed.post/3ksgzz1aaaa2b"
    )
    assert sam.language == "en" and sam.engagement.replies == 1
    nohandle = mentions[NOHANDLE]  # createdAt without a zone, handle.invalid: the did stands in
    assert nohandle.created_at == datetime(2024, 5, 13, 13, 20, tzinfo=UTC)
    assert nohandle.url == "https://bsky.app/profile/did:plc:5kd8w2ny3zq4xr6pv7m9test/post/3ksgyq4lmno2e"
    assert nohandle.author.handle == nohandle.author.display_name == "did:plc:5kd8w2ny3zq4xr6pv7m9test"
    assert nohandle.language is None
    nano = mentions[NANO]  # nanosecond createdAt
    assert nano.created_at == datetime(2024, 5, 13, 13, 5, tzinfo=UTC)
    assert nano.author.followers == 812 and nano.language == "de"
    assert counted(store) == 4
    position = cursor(store).position
    assert position["since"] == "2024-05-13T14:03:21Z"  # the newest sortAt read
    assert set(position["recent"]) == {JANE, SAM}  # the uris the next run's overlap reads again
    assert "cursor" not in position


def test_odd_created_at_formats_are_read_and_an_unreadable_one_is_skipped_with_a_reason():
    brand = parse_config(CONFIG).brand("acme")
    parsed = CONNECTOR.parse((FIXTURES / "search_page2.json").read_bytes(), brand, '"acme widgets"')
    assert [m.id for m in parsed.mentions] == [NOHANDLE, NANO]
    (reason,) = parsed.skipped
    assert "unreadable createdAt 'last tuesday'" in reason


@responses.activate
def test_next_run_searches_from_the_watermark_minus_the_overlap_and_drops_known_uris(store):
    fake = FakeBluesky().install()
    scan(store)
    newer = copy.deepcopy(load("search_page1.json"))
    fresh = copy.deepcopy(newer["posts"][0])
    fresh["uri"] = "at://did:plc:4x7vq2mjbk3tqz5e6d2y7abc/app.bsky.feed.post/3ksh4new0002a"
    fresh["record"]["createdAt"] = "2024-05-13T14:21:00.000Z"
    fresh["indexedAt"] = "2024-05-13T14:21:00.700Z"
    fresh["record"]["text"] = "Is acme widgets checkout down?"
    newer["posts"] = [fresh, *newer["posts"][:2]]  # the new post and two already stored
    del newer["cursor"]
    fake.pages = {None: newer}
    fake.searches.clear()

    report = scan(store)

    assert report.reports[0].stored == 1 and report.reports[0].duplicates == 0
    assert [s["since"] for s in fake.searches] == ["2024-05-13T13:58:21Z"]
    assert cursor(store).position["since"] == "2024-05-13T14:21:00Z"
    assert counted(store) == 5


@responses.activate
def test_an_empty_result_stores_nothing_and_writes_no_cursor(store):
    FakeBluesky({None: {"posts": []}}).install()
    report = scan(store)
    assert report.reports[0].errors == [] and report.reports[0].stored == 0
    assert cursor(store).version == 0


@responses.activate
def test_rate_limit_waits_until_the_epoch_reset_then_reads(store):
    fake = FakeBluesky().install()
    reset = int(time.time()) + 40
    state = {"throttled": True}

    def throttle(params):
        if state.pop("throttled", False):
            return fake.answer(
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                {
                    "RateLimit-Limit": "3000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(reset),
                    "RateLimit-Policy": "3000;w=300",
                },
            )
        return None

    fake.fail = throttle
    sleeps: list[float] = []
    report = scan(store, sleep=sleeps.append)
    assert report.reports[0].errors == [] and report.reports[0].stored == 4
    assert sleeps and sleeps[0] == pytest.approx(40, abs=2)


@responses.activate
def test_a_rate_limit_that_outlasts_the_retries_is_reported_and_the_cursor_kept(store):
    fake = FakeBluesky().install()
    fake.fail = lambda params: fake.answer(
        429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, {"Retry-After": "600"}
    )
    report = scan(store)
    (error,) = report.reports[0].errors
    assert "429" in error
    assert stored(store) == {} and cursor(store).version == 0


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (200, (FIXTURES / "error.html").read_bytes(), "text/html", "response body is an HTML page"),
        (200, (FIXTURES / "search_page1.json").read_bytes()[:900], "application/json", "not JSON"),
        (200, b'{"posts": {"uri": "at://x"}}', "application/json", "no 'posts' list"),
        (403, b'{"error":"AuthMissing","message":"Authentication Required"}', "application/json", "HTTP 403"),
    ],
)
@responses.activate
def test_a_malformed_body_is_a_source_error_and_moves_nothing(store, status, body, content_type, expected):
    fake = FakeBluesky().install()
    fake.fail = lambda params: (status, {"Content-Type": content_type}, body)
    report = scan(store)
    (error,) = report.reports[0].errors
    assert expected in error
    assert stored(store) == {} and cursor(store).version == 0


@responses.activate
def test_malformed_posts_are_skipped_with_a_reason(store):
    FakeBluesky({None: load("search_malformed.json")}).install()
    report = scan(store)
    (brand,) = report.reports
    assert brand.errors == [] and brand.skipped == 5 and brand.stored == 1
    (post,) = stored(store).values()
    assert post.engagement.likes == 0 and post.author.followers is None and post.language is None


@pytest.mark.parametrize("lose_cursor", [False, True])
@responses.activate
def test_replaying_the_same_pages_three_times_stores_each_post_once(store, lose_cursor):
    # the fake ignores `since`: every run gets the same two pages back
    fake = FakeBluesky().install()
    reports = []
    for _ in range(3):
        reports.append(scan(store))
        if lose_cursor:
            store.client.delete_item(
                TableName=store.table,
                Key={"pk": {"S": "CUR#acme#bluesky"}, "sk": {"S": cursor(store).query_key}},
            )
    assert [r.reports[0].stored for r in reports] == [4, 0, 0]
    assert len(stored(store)) == 4 and counted(store) == 4
    assert all(not r.reports[0].errors for r in reports)
    assert fake.creates == 1


@responses.activate
def test_a_run_killed_after_its_first_page_loses_nothing(store):
    fake = FakeBluesky().install()

    def die(params):
        if params.get("cursor"):
            raise LambdaKilled("Lambda timed out")
        return None

    fake.fail = die
    with pytest.raises(LambdaKilled):
        scan(store)
    assert set(stored(store)) == {JANE, SAM}
    position = cursor(store).position
    assert position["cursor"] == "3" and position["pass_since"] == "2024-05-12T14:00:00Z"

    fake.fail = None
    fake.searches.clear()
    report = scan(store)

    assert report.reports[0].stored == 2 and report.reports[0].errors == []
    assert set(stored(store)) == ALL and counted(store) == 4
    # the interrupted pass resumed at its cursor with its own `since`, then a fresh pass began
    assert [(s["since"], s.get("cursor")) for s in fake.searches][:2] == [
        ("2024-05-12T14:00:00Z", "3"),
        ("2024-05-13T13:58:21Z", None),
    ]
    assert cursor(store).position["since"] == "2024-05-13T14:03:21Z"


@responses.activate
def test_a_cut_short_run_resumes_its_pass_on_the_next_run(store):
    fake = FakeBluesky().install()
    config = CONFIG + "    max_pages: 1\n"
    first = scan(store, config=config)
    assert first.reports[0].stored == 2
    assert cursor(store).position["cursor"] == "3"

    second = scan(store, config=config)

    assert second.reports[0].stored == 2
    assert fake.searches[-1]["cursor"] == "3" and fake.searches[-1]["since"] == "2024-05-12T14:00:00Z"
    assert cursor(store).position["since"] == "2024-05-13T14:03:21Z"
    assert "cursor" not in cursor(store).position
    assert counted(store) == 4


# -------------------------------------------------------------------------------------------- session


@responses.activate
def test_one_session_is_created_and_reused_across_three_runs(store):
    fake = FakeBluesky().install()
    two_searches = CONFIG.replace(
        """      - '"acme widgets"'""", """      - '"acme widgets" OR acmewidgets'"""
    )
    for _ in range(3):
        assert not scan(store, config=two_searches).reports[0].errors
    assert {s["q"] for s in fake.searches} == {'"acme widgets"', "acmewidgets"}
    assert fake.creates == 1 and fake.refreshes == 0
    assert {s["auth"] for s in fake.searches} == {f"Bearer {fake.issued[0]}"}
    kept = store.get_token("bluesky", IDENTIFIER)
    assert kept["accessJwt"] == fake.issued[0] and kept["refreshJwt"] == fake.issued[1]


@responses.activate
def test_an_expired_access_jwt_is_refreshed_not_recreated(store):
    fake = FakeBluesky().install()
    fake.issue(access_ttl=-30)  # a session from an earlier run whose access JWT expired
    keep_session(store, fake.access, fake.refresh)
    old_refresh = fake.refresh

    report = scan(store)

    assert report.reports[0].errors == [] and report.reports[0].stored == 4
    assert fake.creates == 0 and fake.refreshes == 1
    assert {s["auth"] for s in fake.searches} == {f"Bearer {fake.access}"}
    kept = store.get_token("bluesky", IDENTIFIER)  # the rotated session is kept for the next run
    assert kept["accessJwt"] == fake.access and kept["refreshJwt"] == fake.refresh != old_refresh
    scan(store)
    assert fake.creates == 0 and fake.refreshes == 1


@responses.activate
def test_an_access_jwt_the_server_calls_expired_is_refreshed_and_the_search_retried(store):
    fake = FakeBluesky().install()
    scan(store)
    fake.expire_next_search = True
    fake.pages = {None: {"posts": []}}

    report = scan(store)

    assert report.reports[0].errors == []
    assert fake.creates == 1 and fake.refreshes == 1
    assert fake.searches[-1]["auth"] == f"Bearer {fake.access}"


@responses.activate
def test_the_session_is_recreated_only_when_the_refresh_fails(store):
    fake = FakeBluesky().install()
    fake.issue(access_ttl=-30)
    keep_session(store, fake.access, fake.refresh)
    fake.refresh_works = False

    report = scan(store)

    assert report.reports[0].errors == [] and report.reports[0].stored == 4
    assert fake.refreshes == 1 and fake.creates == 1
    assert store.get_token("bluesky", IDENTIFIER)["accessJwt"] == fake.access


@responses.activate
def test_missing_credentials_are_reported_by_key_without_any_request(store):
    fake = FakeBluesky().install()
    report = scan(store, Secrets({"bluesky": {"identifier": IDENTIFIER}}))
    (error,) = report.reports[0].errors
    assert "app_password" in error and "bluesky" in error
    assert fake.creates == 0 and fake.searches == []


@responses.activate
def test_secrets_never_appear_in_logs_or_errors(store, caplog):
    fake = FakeBluesky().install()
    fake.issue(access_ttl=-30)
    keep_session(store, fake.access, fake.refresh)
    fake.refresh_works = False
    fake.fail = lambda params: fake.answer(400, {"error": "InvalidRequest", "message": "bad query"})
    with caplog.at_level(logging.DEBUG):
        failed = scan(store)
        refused = scan(
            store, Secrets({"bluesky": {"identifier": IDENTIFIER, "app_password": "wrong-SECRET-pw"}})
        )
    errors = failed.reports[0].errors + refused.reports[0].errors
    # both searches failed; the second run reused the stored session, so the wrong password was never sent
    assert len(errors) == 2 and all("HTTP 400 InvalidRequest" in e for e in errors)
    assert fake.creates == 1
    fake.fail = None
    store.put_token("bluesky", IDENTIFIER, {}, datetime.now(UTC) - timedelta(seconds=1))  # session gone
    with caplog.at_level(logging.DEBUG):
        login = scan(
            store, Secrets({"bluesky": {"identifier": IDENTIFIER, "app_password": "wrong-SECRET-pw"}})
        )
    (login_error,) = login.reports[0].errors
    assert "login refused" in login_error and "HTTP 401 AuthenticationRequired" in login_error
    secrets = [PASSWORD, "wrong-SECRET-pw", *fake.issued]
    # every logger but the AWS SDK's own DEBUG wire logs (which show any DynamoDB item written)
    ours = [r for r in caplog.records if not r.name.startswith(("botocore", "boto3", "moto"))]
    assert any(r.name.startswith("emberwatch") for r in ours)
    logged = "\n".join(r.getMessage() for r in ours) + json.dumps([r.__dict__ for r in ours], default=str)
    recorded = json.dumps(store.source_runs("acme"), default=str)
    for secret in secrets:
        assert secret not in logged
        assert all(secret not in e for e in [*errors, login_error])
        assert secret not in recorded


def test_parse_command_prints_the_posts_of_a_recorded_body(capsys):
    page = str(FIXTURES / "search_page1.json")
    assert cli_main(["parse", "--source", "bluesky", "--query", '"acme widgets"', page]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == [JANE, SAM, lines[2]["id"]]
    assert [line["matches"] for line in lines] == [True, True, False]
    assert lines[0]["url"] == "https://bsky.app/profile/jane.bsky.social/post/3ksh2k4dfp22x"
    assert lines[1]["conversation_id"].endswith("/3ksgzz1aaaa2b")
    assert "3 mention(s), 0 skipped" in err


# ---------------------------------------------------------------------------------- watched posts


def uri(mention_id: str) -> str:
    return mention_id.removeprefix("bluesky:")


def engagement(store: Any, mention_id: str) -> tuple[int, int, int]:
    eng = stored(store)[mention_id].engagement
    return eng.reposts, eng.likes, eng.replies


@responses.activate
def test_watched_posts_are_re_read_with_get_posts_once_per_interval(store):
    """The viral-post rule needs a post's growth: the scan re-reads the brand's top posts with
    `app.bsky.feed.getPosts?uris=` under the account's session, every `refresh_minutes` (15)."""
    fake = FakeBluesky().install()
    fake.deleted.add(uri(SAM))  # deleted: getPosts simply leaves it out
    fake.counts[uri(JANE)] = {"repostCount": 30, "likeCount": 80, "replyCount": 12, "quoteCount": 5}
    fake.counts[uri(NANO)] = {"likeCount": 15}
    fake.counts[uri(NOHANDLE)] = {"likeCount": 4}

    first = scan(store)

    (report,) = first.reports
    assert report.errors == [] and report.refresh_errors == 0
    (read,) = fake.post_reads
    assert sorted(read["uris"]) == sorted(uri(m) for m in ALL)  # repeated `uris`, one call for all four
    assert read["params"] == ["uris"] and read["auth"] == f"Bearer {fake.access}"
    assert fake.creates == 1  # the search's session, reused
    assert report.refreshed == 3
    assert engagement(store, JANE) == (35, 80, 12)  # quotes count as reposts, as in a search
    assert engagement(store, NANO) == (3, 15, 2) and engagement(store, NOHANDLE) == (0, 4, 0)
    assert engagement(store, SAM) == (0, 0, 1)  # deleted: kept as it was, no error

    scan(store, now=NOW + timedelta(minutes=5))  # the same 15-minute interval: no second read
    assert len(fake.post_reads) == 1
    fake.counts[uri(NOHANDLE)] = {"repostCount": 40, "likeCount": 90, "replyCount": 7}
    later = scan(store, now=NOW + timedelta(minutes=16))
    assert len(fake.post_reads) == 2 and later.reports[0].refreshed == 1
    assert engagement(store, NOHANDLE) == (40, 90, 7) and engagement(store, JANE) == (35, 80, 12)
    fake.counts[uri(NOHANDLE)] = {"repostCount": 2, "likeCount": 3}  # an older count never wins
    scan(store, now=NOW + timedelta(minutes=31))
    assert len(fake.post_reads) == 3 and engagement(store, NOHANDLE) == (40, 90, 7)


@responses.activate
def test_a_failed_re_read_is_counted_not_a_failed_scan_and_is_tried_next_run(store):
    fake = FakeBluesky().install()
    fake.counts[uri(JANE)] = {"repostCount": 30}
    fake.fail_posts = fake.answer(502, {"error": "UpstreamFailure", "message": "Upstream Failure"})

    report = scan(store).reports[0]

    assert report.refresh_errors == 1 and report.errors == [] and report.stored == 4
    assert report.refreshed == 0 and engagement(store, JANE) == (3, 5, 0)
    assert_refresh_failure_recorded(store, "bluesky")

    fake.fail_posts = None
    failed_reads = len(fake.post_reads)
    retried = scan(store, now=NOW + timedelta(minutes=5)).reports[0]  # released: the same interval again
    assert retried.refresh_errors == 0 and len(fake.post_reads) == failed_reads + 1
    assert engagement(store, JANE) == (32, 5, 0)


@responses.activate
def test_more_than_25_posts_are_read_25_uris_a_call_and_a_malformed_post_is_left_out(store, caplog):
    fake = FakeBluesky().install()
    brand = parse_config(CONFIG).brand("acme")
    template = load("search_page1.json")["posts"][0]
    pages: list[dict[str, Any]] = []
    for n in range(30):
        post = copy.deepcopy(template)
        post["uri"] = f"at://did:plc:4x7vq2mjbk3tqz5e6d2y7abc/app.bsky.feed.post/3kwatch{n:05d}"
        pages.append(post)
    fake.pages = {None: {"posts": pages}}
    posts = [normalise(p, brand, '"acme widgets"') for p in pages]
    fake.counts[pages[27]["uri"]] = {"likeCount": 70}
    fake.counts[pages[3]["uri"]] = {"record": {"text": "no createdAt"}}  # an odd answer for one post
    ctx = ScanContext(
        http=HttpClient(sleep=lambda s: None),
        now=NOW,
        settings=SourceSettings("bluesky", base_url=HOST),
        credentials=Secrets(),
        tokens=store,
    )

    with caplog.at_level(logging.INFO):
        fresh = CONNECTOR.engagement(brand, posts, ctx)

    assert [len(r["uris"]) for r in fake.post_reads] == [25, 5]
    assert [u for r in fake.post_reads for u in r["uris"]] == [p["uri"] for p in pages]
    assert len(fresh) == 29 and posts[3].id not in fresh
    assert fresh[posts[27].id].likes == 70 and fresh[posts[0].id].reposts == 3
    assert any("unreadable createdAt" in str(getattr(r, "reason", "")) for r in caplog.records)
