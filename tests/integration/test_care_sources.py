"""Care tracking through each source's own-account stream: the brand's reply, fetched like any page,
closes the customer's wait once, and never counts as a customer mention.

Each test scans one source with recorded pages replayed by `responses` (fixtures/<source>/own_*),
into moto: the customer's negative post comes from the source's usual stream, the brand's reply
from the stream of its own account.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses
from emberwatch.care import check_care
from emberwatch.config import parse_config
from emberwatch.http import HttpClient
from emberwatch.scan import scan_source
from emberwatch.store import deserialize, serialize

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
COMPLAINED = datetime(2024, 5, 13, 14, 0, tzinfo=UTC)
REPLY_SECONDS = 7 * 60  # every fixture's brand reply comes 7 minutes after the complaint


class Secrets:
    def __init__(self, values: dict[str, dict[str, Any]]) -> None:
        self.values = values

    def for_source(self, source: str) -> dict[str, Any]:
        return dict(self.values.get(source, {}))


def fixture(source: str, name: str) -> Any:
    return json.loads((FIXTURES / source / name).read_text())


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> tuple[int, dict, str]:
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, json.dumps(body)


def params_of(request: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def config(source: str, own: str, extra: str = "", settings: str = "") -> Any:
    return parse_config(
        f"""
brands:
  - id: acme
    name: Acme Widgets
    queries: ['"acme widgets"']
    own_accounts:
      {source}: [{own}]
    reply_target_minutes: 15
{extra}
sources:
  {source}:
    enabled: true
{settings}
"""
    )


def scan(store: Any, source: str, cfg: Any, secrets: dict[str, Any] | None = None) -> Any:
    return scan_source(
        source,
        NOW,
        config=cfg,
        store=store,
        http=HttpClient(sleep=lambda s: None),
        credentials=Secrets(secrets or {}),
    )


def item(store: Any, mention_id: str) -> dict[str, Any]:
    got = store.client.get_item(
        TableName=store.table, Key=serialize({"pk": f"M#acme#{mention_id}", "sk": "M"})
    ).get("Item")
    assert got, f"{mention_id} is not stored"
    return deserialize(got)


def care_hour(store: Any) -> dict[str, Any]:
    got = store.client.get_item(
        TableName=store.table, Key=serialize({"pk": "CARE#acme#2024-05", "sk": "13T14"})
    ).get("Item")
    return deserialize(got or {})


def forget_cursors(store: Any, source: str) -> None:
    """A run that crashed before saving its cursors: the next run reads the same pages again."""
    for cursor in store._query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues=serialize({":pk": f"CUR#acme#{source}"})
    ):
        store.client.delete_item(
            TableName=store.table, Key=serialize({"pk": cursor["pk"], "sk": cursor["sk"]})
        )


def assert_answered_once(store: Any, cfg: Any, source: str, customer: str, reply: str, rescan) -> None:
    """The complaint is answered by the reply, out of the care queue, not alerted; the reply is the
    brand's own and not in the source's volume; a replay of the same pages counts nothing again."""
    complaint, answer_item = item(store, customer), item(store, reply)
    assert complaint["sentiment"] == "negative"
    assert answer_item["own"] is True and answer_item["answers"] == customer
    assert complaint["first_response_id"] == reply
    assert complaint["first_response_seconds"] == REPLY_SECONDS
    assert store.waiting("acme", NOW, NOW) == []
    hour = care_hour(store)
    assert hour["answered"] == 1 and hour["frt_le_900"] == 1
    # the brand's own posts are not customer mentions: the source's volume holds the complaint alone
    counted = sum(b.mentions for b in store.counts("acme", COMPLAINED - timedelta(hours=3), NOW))
    assert counted == 1
    sent: list[Any] = []
    report = check_care(NOW + timedelta(hours=1), config=cfg, store=store, notify=lambda *a: sent.append(a))
    assert report.alerted == [] and sent == []

    forget_cursors(store, source)
    again = rescan()
    assert sum(r.stored for r in again.reports) == 0 and not any(r.errors for r in again.reports)
    assert care_hour(store)["answered"] == 1
    assert item(store, customer)["first_response_id"] == reply


# ------------------------------------------------------------------------------------------ Reddit

REDDIT_TOKEN = "https://www.reddit.com/api/v1/access_token"
REDDIT_SECRET = {
    "reddit": {
        "client_id": "cid-Xy12abcDEF",
        "client_secret": "s3cr3t-reddit-9f8e7d6c5b",
        "user_agent": "python:emberwatch-test:0.1 (by /u/acme_care)",
    }
}


@responses.activate
def test_reddit_a_reply_from_the_brands_user_comments_is_linked(store):
    cfg = config("reddit", "AcmeSupport", extra="    subreddits: [smallbusiness]")
    empty = {"kind": "Listing", "data": {"after": None, "children": [], "before": None}}
    responses.add(
        responses.POST,
        REDDIT_TOKEN,
        json={"access_token": "tok-1", "token_type": "bearer", "expires_in": 86400, "scope": "*"},
    )
    responses.add(responses.GET, "https://oauth.reddit.com/search", json=empty)
    responses.add(
        responses.GET,
        "https://oauth.reddit.com/r/smallbusiness/comments",
        json=fixture("reddit", "own_subreddit_comments.json"),
    )
    own = responses.add(
        responses.GET,
        "https://oauth.reddit.com/user/AcmeSupport/comments",
        json=fixture("reddit", "own_user_comments.json"),
    )

    report = scan(store, "reddit", cfg, REDDIT_SECRET)

    assert not any(r.errors for r in report.reports)
    assert parse_qs(urlsplit(own.calls[0].request.url).query)["sort"] == ["new"]
    # the brand's comment on a thread nobody complained in is kept as its own post, linked to nothing
    (old,) = store.get_mentions("acme", ["reddit:t1_l1old99"])
    assert old.own and "answers" not in item(store, old.id)
    assert_answered_once(
        store,
        cfg,
        "reddit",
        "reddit:t1_l2cust1",
        "reddit:t1_l2rep01",
        lambda: scan(store, "reddit", cfg, REDDIT_SECRET),
    )


# ------------------------------------------------------------------------------------------ Bluesky

BSKY = "https://bsky.example"


def jwt(exp: float) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": int(exp)}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJFUzI1NksifQ.{claims}.c2ln"


@responses.activate
def test_bluesky_a_reply_deep_in_the_thread_is_linked_through_its_root(store):
    # Given Rita's complaint (found by search) and the brand's answer to her follow-up, which is not
    # stored (it does not name the brand): the reply's root is the complaint, its parent's author Rita
    cfg = config("bluesky", "acmecare.bsky.social", settings=f"    base_url: {BSKY}")
    secrets = {"bluesky": {"identifier": "acme.bsky.social", "app_password": "app-pass-1234"}}
    session = {
        "accessJwt": jwt(time.time() + 7200),
        "refreshJwt": jwt(time.time() + 86400 * 60),
        "did": "did:plc:acmeidentity",
        "handle": "acme.bsky.social",
    }
    responses.add(responses.POST, f"{BSKY}/xrpc/com.atproto.server.createSession", json=session)
    search = fixture("bluesky", "own_search.json")
    responses.add_callback(
        responses.GET,
        f"{BSKY}/xrpc/app.bsky.feed.searchPosts",
        callback=lambda r: answer({"posts": []} if "cursor" in params_of(r) else search),
    )
    feeds: list[dict[str, str]] = []

    def author_feed(request: Any) -> tuple[int, dict, str]:
        feeds.append(params_of(request))
        return answer(fixture("bluesky", "own_author_feed.json"))

    responses.add_callback(responses.GET, f"{BSKY}/xrpc/app.bsky.feed.getAuthorFeed", callback=author_feed)

    report = scan(store, "bluesky", cfg, secrets)

    assert not any(r.errors for r in report.reports)
    assert feeds[0]["actor"] == "acmecare.bsky.social" and feeds[0]["filter"] == "posts_with_replies"
    root = "bluesky:at://did:plc:r1t4q2mjbk3tqz5e6d2y7abc/app.bsky.feed.post/3kxroot1aaa2x"
    reply = "bluesky:at://did:plc:acme2cw3l5kqu6pfx2bq4care/app.bsky.feed.post/3kxrepl7bbb2c"
    reposted = "bluesky:at://did:plc:7hq2cw3l5kqu6pfx2bq4xyz9/app.bsky.feed.post/3kxrpst3ccc2d"
    announcement = "bluesky:at://did:plc:acme2cw3l5kqu6pfx2bq4care/app.bsky.feed.post/3kxanno4ddd2e"
    # a repost by the brand is someone else's post: not stored from the brand's feed
    assert store.get_mentions("acme", [reposted]) == []
    (own_post,) = store.get_mentions("acme", [announcement])
    assert own_post.own and "answers" not in item(store, announcement)
    assert_answered_once(store, cfg, "bluesky", root, reply, lambda: scan(store, "bluesky", cfg, secrets))


# ------------------------------------------------------------------------------------------ Mastodon

MASTODON = "https://mastodon.example"


@responses.activate
def test_mastodon_a_reply_of_the_brands_account_is_placed_in_its_thread_and_linked(store):
    # the API names a reply's parent by an instance-local id; the status context gives its uri
    cfg = config(
        "mastodon",
        "acmecare@mastodon.example",
        extra="    hashtags: [acme]",
        settings=f"    base_url: {MASTODON}",
    )
    responses.add_callback(
        responses.GET,
        f"{MASTODON}/api/v1/timelines/tag/acme",
        callback=lambda r: answer([] if "max_id" in params_of(r) else fixture("mastodon", "own_tag.json")),
    )
    lookup = responses.add(
        responses.GET, f"{MASTODON}/api/v1/accounts/lookup", json=fixture("mastodon", "own_lookup.json")
    )
    statuses: list[dict[str, str]] = []

    def account_statuses(request: Any) -> tuple[int, dict, str]:
        statuses.append(params_of(request))
        return answer([] if "max_id" in params_of(request) else fixture("mastodon", "own_statuses.json"))

    responses.add_callback(
        responses.GET, f"{MASTODON}/api/v1/accounts/109000000000000042/statuses", callback=account_statuses
    )
    context = responses.add(
        responses.GET,
        f"{MASTODON}/api/v1/statuses/112440042000000002/context",
        json=fixture("mastodon", "own_context.json"),
    )

    report = scan(store, "mastodon", cfg)

    assert not any(r.errors for r in report.reports)
    assert parse_qs(urlsplit(lookup.calls[0].request.url).query)["acct"] == ["acmecare@mastodon.example"]
    assert statuses[0]["exclude_reblogs"] == "true"
    assert len(context.calls) == 1  # only the reply is placed; the brand's plain post needs no context
    customer = "mastodon:https://social.example/users/vera/statuses/112439998877665544"
    reply = "mastodon:https://mastodon.example/users/acmecare/statuses/112440042000000002"
    (stored_reply,) = store.get_mentions("acme", [reply])
    assert stored_reply.parent_id == customer and stored_reply.conversation_id == customer
    assert_answered_once(store, cfg, "mastodon", customer, reply, lambda: scan(store, "mastodon", cfg))
    assert len(context.calls) == 2  # the replay placed the reply again; it linked nothing twice


# ------------------------------------------------------------------------------------------ YouTube

YOUTUBE = "https://youtube.example/youtube/v3"
CHANNEL = "UCacmeWidgetsOfficial001"


@responses.activate
def test_youtube_a_reply_by_the_brands_channel_is_linked_to_the_thread(store):
    cfg = config(
        "youtube", CHANNEL, extra=f"    youtube_channels: [{CHANNEL}]", settings=f"    base_url: {YOUTUBE}"
    )
    secrets = {"youtube": {"api_key": "AIza-test-key-000"}}
    responses.add(responses.GET, f"{YOUTUBE}/search", json=fixture("youtube", "search_empty.json"))
    parts: list[str] = []

    def threads(request: Any) -> tuple[int, dict, str]:
        params = params_of(request)
        if "id" in params:  # the scan re-reading its watched comments' engagement, by thread id
            listing = fixture("youtube", "own_channel_threads.json")
            wanted = params["id"].split(",")
            return answer(dict(listing, items=[i for i in listing["items"] if i["id"] in wanted]))
        parts.append(params["part"])
        assert params["allThreadsRelatedToChannelId"] == CHANNEL
        name = "own_threads_with_replies.json" if "replies" in params["part"] else "own_channel_threads.json"
        return answer(fixture("youtube", name))

    responses.add_callback(responses.GET, f"{YOUTUBE}/commentThreads", callback=threads)

    report = scan(store, "youtube", cfg, secrets)

    assert not any(r.errors for r in report.reports)
    assert sorted(parts) == ["snippet", "snippet,replies"]
    customer = "youtube:comment:UgxKREWq2nR5aCvbZ6x4AaABAg"
    reply = "youtube:comment:UgxKREWq2nR5aCvbZ6x4AaABAg.A1b2C3d4E5f"
    # another viewer's reply in the thread is not the brand's: the own stream does not store it
    assert store.get_mentions("acme", ["youtube:comment:UgxKREWq2nR5aCvbZ6x4AaABAg.A1b2C3d4E5g"]) == []
    assert_answered_once(store, cfg, "youtube", customer, reply, lambda: scan(store, "youtube", cfg, secrets))


# ------------------------------------------------------------------------------------------ Facebook

GRAPH = "https://graph.example/v26.0"
PAGE = "1234567890"


@responses.activate
def test_facebook_the_pages_reply_comment_is_the_brands_and_is_linked(store):
    # Given the Page the brand manages (facebook_pages): its comments come `from` the Page's id
    cfg = config(
        "facebook", "Acme Widgets", extra=f"    facebook_pages: ['{PAGE}']", settings=f"    base_url: {GRAPH}"
    )
    secrets = {"facebook": {"page_tokens": {PAGE: "EAAB-test-page-token"}}}
    responses.add(responses.GET, f"{GRAPH}/{PAGE}/tagged", json={"data": []})
    responses.add(
        responses.GET,
        f"{GRAPH}/{PAGE}/posts",
        json={"data": [{"id": f"{PAGE}_9001", "created_time": "2024-05-12T09:00:00+0000"}]},
    )
    responses.add(
        responses.GET, f"{GRAPH}/{PAGE}_9001/comments", json=fixture("facebook", "own_page_replies.json")
    )

    report = scan(store, "facebook", cfg, secrets)

    assert not any(r.errors for r in report.reports)
    assert_answered_once(
        store,
        cfg,
        "facebook",
        "facebook:9001_998950",
        "facebook:9001_998990",
        lambda: scan(store, "facebook", cfg, secrets),
    )


def test_a_facebook_page_is_the_brands_own_account_even_when_not_listed():
    cfg = config("facebook", "AcmeCare", extra=f"    facebook_pages: ['{PAGE}']")
    brand = cfg.brand("acme")
    assert brand.is_own("facebook", PAGE) and brand.is_own("facebook", "acmecare")
    assert not brand.is_own("facebook", "7788990011") and not brand.is_own("facebook", "")
