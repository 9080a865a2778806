"""Bluesky: `app.bsky.feed.searchPosts` with `sort=latest`, through the PDS entryway with a session.

Anonymous search is mostly refused (403 AuthMissing), so every request carries a session made
from the account's app password (`identifier`, `app_password` in the credentials secret). Login
is limited to 30 per 5 minutes and 300 a day, so the session is never created per run: it is
kept with `ctx.tokens.put_token("bluesky", identifier, ...)` until its refresh JWT expires and
reused by every later run. When the access JWT has expired (its `exp` claim, read without
verifying, or the server's ExpiredToken/InvalidToken answer) it is renewed with
`com.atproto.server.refreshSession`; only when the refresh is refused is a new session created.
`sources.bluesky.base_url` (tests, the demo) replaces the host of all three calls.

One stream per native keyword search (`Query.native_keywords()`); every post is re-checked
locally against the brand's queries. Posts are identified by `uri` (at://did/.../rkey). One more
per own account (`own_accounts.bluesky`): `app.bsky.feed.getAuthorFeed?filter=posts_with_replies`
by `cursor` (`own_account_pages`), the brand's replies with the author each answers. The brand's
watched top posts are re-read with `app.bsky.feed.getPosts?uris=` (up to 25 a call, the same
postView as a search; a deleted post is simply absent).

Cursor position: {"since": ISO, "recent": {uri: epoch}, "pass_since": ISO, "cursor": str, "top": ISO}.
`since` is the watermark: the newest `sortAt` (min of createdAt and indexedAt, what the
`since` parameter is matched against) of a completed pass. A pass asks for everything from
`since` minus OVERLAP (late-indexed posts still get in; the re-read posts are dropped by their
`uri` in `recent`), newest first, and follows `cursor` until a page comes back empty or without
a cursor. Each stored page saves the pass's own `pass_since`, the next `cursor` and `top` (the
newest `sortAt` of the pass), so a run cut short resumes the same pass on the next run, then
starts a new one; only a completed pass moves `since` up to `top`, so nothing between runs is
skipped. The first run reaches back FIRST_RUN_LOOKBACK. A cursor the server no longer accepts
(HTTP 400) restarts the pass from its top: posts are read again, none skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from ..config import Brand, SourceSettings
from ..http import SourceError
from ..models import Author, Cursor, Engagement, Mention, utc_iso
from . import (
    AccountPage,
    CredentialsError,
    Page,
    Parsed,
    QuerySpec,
    ScanContext,
    brand_queries,
    json_body,
    keyword_specs,
    own_account_pages,
    own_specs,
    reread,
    select,
)

logger = logging.getLogger(__name__)

DEFAULT_HOST = "https://bsky.social"  # the PDS entryway: sessions, and searchPosts proxied to the AppView
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
AUTHOR_FEED = "/xrpc/app.bsky.feed.getAuthorFeed"
GET_POSTS = "/xrpc/app.bsky.feed.getPosts"
GET_POSTS_LIMIT = 25  # uris a getPosts call takes
CREATE_SESSION = "/xrpc/com.atproto.server.createSession"
REFRESH_SESSION = "/xrpc/com.atproto.server.refreshSession"
PAGE_LIMIT = 100
FIRST_RUN_LOOKBACK = timedelta(hours=24)
OVERLAP = timedelta(minutes=5)  # re-read a little before the watermark: late-indexed posts get in
RECENT_URIS = 500
EXPIRY_MARGIN = 60  # seconds: an access JWT this close to its exp is renewed first
ACCESS_FALLBACK = timedelta(minutes=100)  # lifetimes used when a JWT's exp cannot be read
REFRESH_FALLBACK = timedelta(days=60)
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
_FRACTION = re.compile(r"(\.\d+)")


class MalformedPost(ValueError):
    pass


# ---------------------------------------------------------------------------------------------- posts


def parse_time(value: Any) -> datetime:
    """An AT Protocol datetime as aware UTC, tolerating a missing zone (taken as UTC), a lower-case z
    and any number of fractional digits; ValueError when it is not a datetime."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("not a string")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)  # at most microseconds
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _count(post: dict[str, Any], key: str) -> int:
    value = post.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ref_uri(reply: dict[str, Any], key: str) -> str | None:
    ref = reply.get(key)
    uri = ref.get("uri") if isinstance(ref, dict) else None
    return f"bluesky:{uri}" if isinstance(uri, str) and uri.startswith("at://") else None


def sort_at(post: Any) -> datetime | None:
    """The post's `sortAt` as the search index has it: the earlier of createdAt and indexedAt."""
    if not isinstance(post, dict):
        return None
    moments = []
    record = post.get("record") if isinstance(post.get("record"), dict) else {}
    for value in (record.get("createdAt"), post.get("indexedAt")):
        moment = _time(value)
        if moment is not None:
            moments.append(moment)
    return min(moments, default=None)


def normalise(post: Any, brand: Brand, query: str) -> Mention:
    """One `postView` as a Mention; MalformedPost if required fields are missing or of the wrong type."""
    if not isinstance(post, dict):
        raise MalformedPost(f"post is {type(post).__name__}, not an object")
    uri = post.get("uri")
    if not isinstance(uri, str) or not uri.startswith("at://") or uri.count("/") < 4:
        raise MalformedPost("post has no at:// uri")
    record = post.get("record")
    if not isinstance(record, dict):
        raise MalformedPost(f"post {uri} has no record")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise MalformedPost(f"post {uri} has no text")
    try:
        created_at = parse_time(record.get("createdAt"))
    except ValueError:
        raise MalformedPost(
            f"post {uri} has an unreadable createdAt {str(record.get('createdAt'))[:40]!r}"
        ) from None
    raw: dict[str, Any] = {"cid": post.get("cid") if isinstance(post.get("cid"), str) else None}
    try:
        indexed_at = parse_time(post.get("indexedAt"))
    except ValueError:
        indexed_at = None
    if indexed_at is not None and created_at > indexed_at + timedelta(minutes=5):
        raw["claimed_created_at"] = utc_iso(created_at)  # a future-dated post counts when it was indexed
        created_at = indexed_at
    author = post.get("author")
    if not isinstance(author, dict):
        raise MalformedPost(f"post {uri} has no author")
    did = author.get("did") if isinstance(author.get("did"), str) else uri.split("/")[2]
    handle = author.get("handle") if isinstance(author.get("handle"), str) and author.get("handle") else None
    profile = handle if handle and handle != "handle.invalid" else did
    followers = author.get("followersCount")
    rkey = uri.rstrip("/").rsplit("/", 1)[-1]
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    langs = record.get("langs")
    language = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
    quotes = _count(post, "quoteCount")
    if quotes:
        raw["quotes"] = quotes
    return Mention(
        source="bluesky",
        native_id=uri,
        brand=brand.id,
        query=query,
        author=Author(
            handle=profile,
            display_name=author.get("displayName") or profile,
            followers=followers if isinstance(followers, int) and not isinstance(followers, bool) else None,
        ),
        text=text.strip(),
        created_at=created_at,
        url=f"https://bsky.app/profile/{profile}/post/{rkey}",
        language=language.lower().split("-")[0] if language and language.strip() else None,
        # a quote post spreads the post like a repost does
        engagement=Engagement(
            reposts=_count(post, "repostCount") + quotes,
            likes=_count(post, "likeCount"),
            replies=_count(post, "replyCount"),
        ),
        parent_id=_ref_uri(reply, "parent"),
        # a post that answers nothing is the root of its own thread
        conversation_id=_ref_uri(reply, "root") or f"bluesky:{uri}",
        raw={**raw, "author_id": did},
    )


def parse_feed(feed: list[Any], brand: Brand) -> Parsed:
    """The posts of a getAuthorFeed page (`feed[].post`), each naming the author it answers
    (`feed[].reply.parent.author`). A repost is the reposted author's post: it is kept here and
    dropped by `select` as not the brand's own."""
    parsed = Parsed()
    for item in feed:
        try:
            if not isinstance(item, dict):
                raise MalformedPost(f"feed item is {type(item).__name__}, not an object")
            mention = normalise(item.get("post"), brand, "")
        except MalformedPost as exc:
            parsed.skipped.append(str(exc))
            continue
        reply = item.get("reply") if isinstance(item.get("reply"), dict) else {}
        parent = reply.get("parent") if isinstance(reply.get("parent"), dict) else {}
        author = parent.get("author") if isinstance(parent.get("author"), dict) else {}
        handle = author.get("handle") if isinstance(author.get("handle"), str) else author.get("did")
        if isinstance(handle, str) and handle:
            mention = mention.with_enrichment(reply_to=handle)
        parsed.mentions.append(mention)
    return parsed


def check_body(body: Any) -> dict[str, Any]:
    """A searchPosts response must be an object with a `posts` list."""
    if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
        raise SourceError("bluesky: response has no 'posts' list")
    return body


def parse_posts(posts: list[Any], brand: Brand, query: str) -> Parsed:
    parsed = Parsed()
    for post in posts:
        try:
            parsed.mentions.append(normalise(post, brand, query))
        except MalformedPost as exc:
            parsed.skipped.append(str(exc))
    return parsed


# -------------------------------------------------------------------------------------------- session


def jwt_expiry(token: Any) -> float | None:
    """The `exp` claim of a JWT (epoch seconds), read without verifying; None when unreadable."""
    if not isinstance(token, str) or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _xrpc_error(response: requests.Response) -> str:
    """The `error` name of an XRPC error body ({"error": "ExpiredToken", "message": ...}), or ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error[:100] if isinstance(error, str) else ""


class Session:
    """The account's session: loaded from the token store, refreshed when expired, created last."""

    def __init__(self, ctx: ScanContext, base: str) -> None:
        try:
            secret = ctx.secret("identifier", "app_password")
        except CredentialsError as exc:
            raise SourceError(str(exc)) from None
        self.ctx = ctx
        self.base = base
        self.identifier = str(secret["identifier"])
        self._password = str(secret["app_password"])
        self._token: dict[str, Any] | None = None
        self.created = self.refreshed = 0

    def __repr__(self) -> str:  # never show the tokens or the password
        return f"Session({urlsplit(self.base).netloc})"

    def access_jwt(self) -> str:
        if self._token is None:
            stored = self.ctx.tokens.get_token("bluesky", self.identifier) if self.ctx.tokens else None
            if (
                stored
                and isinstance(stored.get("accessJwt"), str)
                and isinstance(stored.get("refreshJwt"), str)
            ):
                self._token = stored
            else:
                self._create()
        assert self._token is not None
        expires = jwt_expiry(self._token["accessJwt"]) or self._token.get("access_exp") or 0
        if float(expires) - EXPIRY_MARGIN <= self.ctx.http.wall():
            self.renew()
        return self._token["accessJwt"]

    def renew(self) -> None:
        """Refresh the session; when the refresh JWT is refused, log in again."""
        if self._token and self._refresh():
            return
        self._create()

    def _refresh(self) -> bool:
        assert self._token is not None
        response = self.ctx.http.post(
            self.base + REFRESH_SESSION, headers={"Authorization": f"Bearer {self._token['refreshJwt']}"}
        )
        if response.status_code == 200:
            self._keep(json_body(response.content, "bluesky"), "refreshSession")
            self.refreshed += 1
            return True
        if response.status_code in (400, 401):
            logger.info(
                "bluesky session refresh refused; logging in again",
                extra={"status": response.status_code, "error": _xrpc_error(response)},
            )
            return False
        raise SourceError(
            f"bluesky: refreshSession answered HTTP {response.status_code} {_xrpc_error(response)}".rstrip(),
            status=response.status_code,
        )

    def _create(self) -> None:
        response = self.ctx.http.post(
            self.base + CREATE_SESSION, json={"identifier": self.identifier, "password": self._password}
        )
        if response.status_code != 200:
            error = _xrpc_error(response)
            hint = (
                "; check identifier and app_password in the credentials secret"
                if response.status_code in (400, 401)
                else ""
            )
            raise SourceError(
                f"bluesky: login refused by {urlsplit(self.base).netloc} "
                f"(HTTP {response.status_code}{' ' + error if error else ''}){hint}",
                status=response.status_code,
            )
        self._keep(json_body(response.content, "bluesky"), "createSession")
        self.created += 1
        logger.info("bluesky session created", extra={"host": urlsplit(self.base).netloc})

    def _keep(self, body: Any, call: str) -> None:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("accessJwt"), str)
            or not isinstance(body.get("refreshJwt"), str)
        ):
            raise SourceError(f"bluesky: {call} answered no accessJwt/refreshJwt")
        now = self.ctx.http.wall()
        access_exp = jwt_expiry(body["accessJwt"]) or now + ACCESS_FALLBACK.total_seconds()
        refresh_exp = jwt_expiry(body["refreshJwt"]) or now + REFRESH_FALLBACK.total_seconds()
        self._token = {
            "accessJwt": body["accessJwt"],
            "refreshJwt": body["refreshJwt"],
            "did": body.get("did") if isinstance(body.get("did"), str) else None,
            "handle": body.get("handle") if isinstance(body.get("handle"), str) else None,
            "access_exp": access_exp,
            "refresh_exp": refresh_exp,
        }
        if self.ctx.tokens is not None:
            self.ctx.tokens.put_token(
                "bluesky", self.identifier, self._token, datetime.fromtimestamp(refresh_exp, UTC)
            )


# ------------------------------------------------------------------------------------------ connector


class BlueskyConnector:
    name = "bluesky"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        # the brand's own accounts: their author feed holds the brand's replies
        return keyword_specs(brand, "bluesky", "bsky") + own_specs(brand, "bluesky", "bsky-own")

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]:
        """Reposts (quotes included), likes and replies of stored posts, re-read with
        `app.bsky.feed.getPosts?uris=` (repeated, up to 25 a call) under the account's session; a
        deleted post is absent from the answer and left out, a malformed one logged and left out."""
        base = (ctx.settings.base_url or DEFAULT_HOST).rstrip("/")
        session = Session(ctx, base)
        by_uri = {m.native_id: m for m in posts}
        uris = list(by_uri)
        out: dict[str, Engagement] = {}
        for start in range(0, len(uris), GET_POSTS_LIMIT):
            chunk = uris[start : start + GET_POSTS_LIMIT]
            response = _xrpc_get(session, base + GET_POSTS, {"uris": chunk}, ctx, "getPosts")
            if response is None:  # only a request with a cursor is answered None
                raise SourceError("bluesky: getPosts was refused")
            body = check_body(json_body(response.content, "bluesky"))
            reread(by_uri, parse_posts(body["posts"], brand, ""), "bluesky", out)
            absent = [u for u in chunk if by_uri[u].id not in out]
            if absent:
                logger.info("bluesky: watched posts not served (deleted?)", extra={"uris": absent})
        return out

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The posts of one raw searchPosts response body."""
        return parse_posts(check_body(json_body(body, "bluesky"))["posts"], brand, query)

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        base = (ctx.settings.base_url or DEFAULT_HOST).rstrip("/")
        session = Session(ctx, base)
        if spec.params.get("kind") == "own":
            yield from own_account_pages(
                lambda token: self._author_feed(session, base, brand, spec, token, ctx),
                brand,
                "bluesky",
                cursor,
                ctx,
            )
            return
        queries = brand_queries(brand)
        position = cursor.position
        since = _time(position.get("since"))
        recent: dict[str, int] = dict(position.get("recent") or {})
        pending: str | None = position.get("cursor")
        pass_since = _time(position.get("pass_since")) if pending else None
        top = _time(position.get("top")) if pending else None
        pages_read = 0
        restarted = False
        while True:  # one pass; a resumed pass is followed by one fresh pass
            resumed = pending is not None
            if pass_since is None:
                pass_since = since - OVERLAP if since else ctx.first_run_start(FIRST_RUN_LOOKBACK)
            while True:
                if pages_read >= ctx.settings.max_pages or not ctx.time_left():
                    return
                response = self._search(session, base, spec, pass_since, pending, ctx)
                pages_read += 1
                if response is None:  # the server no longer takes the pass's cursor: restart the pass
                    if restarted:
                        raise SourceError(f"bluesky: search cursor refused twice for {spec.label!r}")
                    restarted, pending = True, None
                    continue
                body = check_body(json_body(response.content, "bluesky"))
                posts = body["posts"]
                stamps = [sort_at(p) for p in posts]
                fresh = [p for p, s in zip(posts, stamps, strict=True) if s is None or s >= pass_since]
                parsed = parse_posts(fresh, brand, spec.label)
                page = select(parsed, len(fresh), queries, recent, source="bluesky", brand=brand)
                for mention in parsed.mentions:
                    recent.setdefault(mention.id, int(mention.created_at.timestamp()))
                newest = max((s for s in stamps if s is not None), default=None)
                if newest is not None and (top is None or newest > top):
                    top = newest
                following = body.get("cursor") if isinstance(body.get("cursor"), str) else None
                if not posts or not following or len(fresh) < len(posts):
                    # the pass is complete once this page is stored: everything up to `top` is in
                    if top is not None and (since is None or top > since):
                        since = top
                    page.position = _position(since=since, recent=_prune(recent, since))
                    yield page
                    break
                pending = following
                page.position = _position(
                    since=since, pass_since=pass_since, cursor=pending, top=top, recent=_prune(recent, since)
                )
                yield page
            pending = pass_since = top = None
            if not resumed:
                return

    def _author_feed(
        self, session: Session, base: str, brand: Brand, spec: QuerySpec, token: str | None, ctx: ScanContext
    ) -> AccountPage:
        """One page of the account's posts and replies (`filter=posts_with_replies`), newest first."""
        params: dict[str, Any] = {
            "actor": spec.params["account"],
            "filter": "posts_with_replies",
            "limit": PAGE_LIMIT,
        }
        if token:
            params["cursor"] = token
        response = _xrpc_get(session, base + AUTHOR_FEED, params, ctx, f"{spec.label!r}")
        if response is None:  # the cursor was refused: read again from the newest (seen posts are skipped)
            response = _xrpc_get(session, base + AUTHOR_FEED, {**params, "cursor": None}, ctx, spec.label)
        assert response is not None
        body = json_body(response.content, "bluesky")
        if not isinstance(body, dict) or not isinstance(body.get("feed"), list):
            raise SourceError("bluesky: getAuthorFeed response has no 'feed' list")
        following = body.get("cursor") if isinstance(body.get("cursor"), str) else None
        return AccountPage(parse_feed(body["feed"], brand), len(body["feed"]), following)

    @staticmethod
    def _search(
        session: Session,
        base: str,
        spec: QuerySpec,
        since: datetime,
        cursor: str | None,
        ctx: ScanContext,
    ) -> requests.Response | None:
        """One searchPosts page; None when a cursor was refused (the caller restarts the pass)."""
        params: dict[str, Any] = {
            "q": spec.params["native"],
            "sort": "latest",
            "since": utc_iso(since),
            "limit": PAGE_LIMIT,
        }
        if cursor:
            params["cursor"] = cursor
        return _xrpc_get(session, base + SEARCH, params, ctx, f"{spec.label!r}")


def _xrpc_get(
    session: Session, url: str, params: dict[str, Any], ctx: ScanContext, what: str
) -> requests.Response | None:
    """One authorised XRPC GET, the session renewed once if the server calls it expired; None when the
    request's `cursor` was refused (HTTP 400 not about the token); SourceError otherwise."""
    params = {k: v for k, v in params.items() if v is not None}
    renewed = False
    while True:
        response = ctx.http.get(
            url,
            params=params,
            headers={"Authorization": f"Bearer {session.access_jwt()}", "Accept": "application/json"},
        )
        if response.status_code == 200:
            return response
        error = _xrpc_error(response)
        if response.status_code in (400, 401) and error in TOKEN_ERRORS and not renewed:
            session.renew()  # revoked or expired early: refresh (or log in) once and retry
            renewed = True
            continue
        if response.status_code == 400 and params.get("cursor") and error not in TOKEN_ERRORS:
            return None
        if response.status_code == 403:
            call = (
                "search" if url.endswith(SEARCH) else "getPosts" if url.endswith(GET_POSTS) else "author feed"
            )
            raise SourceError(
                f"bluesky: {call} refused by {urlsplit(url).netloc} (HTTP 403 {error or 'Forbidden'})",
                status=403,
            )
        raise SourceError(
            f"bluesky: HTTP {response.status_code}{' ' + error if error else ''} for {what}",
            status=response.status_code,
        )


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def _position(**values: Any) -> dict[str, Any]:
    """A cursor position without empty values; times as ISO 8601."""
    return {k: utc_iso(v) if isinstance(v, datetime) else v for k, v in values.items() if v}


def _prune(recent: dict[str, int], since: datetime | None) -> dict[str, int]:
    """The uris near the watermark (the overlap re-reads them), newest first, at most RECENT_URIS."""
    floor = (since - OVERLAP).timestamp() - 60 if since else float("-inf")
    kept = sorted(((u, c) for u, c in recent.items() if c >= floor), key=lambda kv: -kv[1])
    return dict(kept[:RECENT_URIS])


CONNECTOR = BlueskyConnector()
