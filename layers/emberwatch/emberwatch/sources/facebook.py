"""Facebook Graph API v26.0: posts that tag the brand's Pages, and comments on the Pages' own posts.

There is no public keyword search of Facebook: only Pages the brand manages can be read, each
with its own Page access token (`page_tokens` in the credentials secret, keyed by Page id). The
token goes in the `access_token` parameter only; it never appears in a message or a log line.

Two streams per Page in `brand.facebook_pages`, each with its own cursor:

- tagged: `/{page-id}/tagged`, newest first, `since` = watermark - overlap. Position
  {"since": epoch, "upper": epoch | None, "high": epoch | None, "recent": {id: epoch}}: after
  each stored page `upper` drops to the oldest post on it (a run cut short resumes with
  `until`); when the pages run out, `since` moves to the newest post stored. Tagged posts are
  re-checked locally against the brand's queries, like every other source.
- comments: `/{page-id}/posts` (created since watermark - 7 days), then each post's
  `/{post-id}/comments` (`filter=stream`, replies included, `order=reverse_chronological`,
  `since` = watermark - overlap). Position {"since", "high", "done": [post ids walked in this
  sweep], "post": post id | None, "upper": epoch | None, "recent"}: a sweep cut short skips the
  posts already done and resumes the current post with `until`; when every post is done,
  `since` moves to the newest comment stored (at most to the sweep's start: a comment added
  meanwhile to a post already done is newer than that).

The one exception to the local re-check: comments on the brand's own Page are about the brand by
definition, so every comment is stored (query "page:<page id>"), after the same text cleaning.
The Page's own comments (`from` the Page's id) are the brand's replies: stored marked `own`.

Throttling is an error body with code 4, 17, 32, 613 or 80001 (not necessarily a 429): a
SourceError waiting `estimated_time_to_regain_access` (minutes) from X-Business-Use-Case-Usage,
else 15 minutes, which pauses the source. X-App-Usage percentages are logged at debug.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from ..config import Brand, SourceSettings
from ..http import SourceError
from ..models import Author, Cursor, Engagement, Mention
from ..text import normalise_space
from . import (
    CredentialsError,
    NewestFirstWalk,
    Page,
    Parsed,
    QuerySpec,
    ScanContext,
    as_own,
    brand_queries,
    is_own_post,
    json_body,
    prune_recent,
    select,
    stable_key,
)

logger = logging.getLogger(__name__)

BASE_URL = "https://graph.facebook.com/v26.0"
PAGE_SIZE = 100
FIRST_RUN_LOOKBACK = timedelta(hours=24)
POSTS_LOOKBACK = timedelta(days=7)  # comments are read on posts created this long before the watermark
OVERLAP_SECONDS = 120
RECENT_IDS = 1000
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001})
THROTTLE_WAIT = 15 * 60.0
TAGGED_FIELDS = (
    "id,message,from,created_time,permalink_url,"
    "reactions.limit(0).summary(total_count),comments.limit(0).summary(total_count)"
)
COMMENT_FIELDS = "id,message,from,created_time,like_count,comment_count,parent,permalink_url"
IDS_PER_READ = 50  # Graph's multi-id read: `GET /?ids=a,b&fields=`
_WORD = re.compile(r"\w+")  # the ids a Graph error message names


class MalformedItem(ValueError):
    pass


class NotServed(SourceError):
    """Graph does not serve an object asked for (deleted, hidden, no permission): error 803, or 100
    with subcode 33. A multi-id read fails whole for one such id; `named` are the ids the message names."""

    def __init__(self, message: str, *, status: int | None, named: set[str]) -> None:
        super().__init__(message, status=status)
        self.named = named


def parse_time(value: Any, what: str) -> datetime:
    """Graph times look like 2024-05-13T14:00:00+0000."""
    if not isinstance(value, str):
        raise MalformedItem(f"{what} has no created_time")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
    except ValueError:
        raise MalformedItem(f"{what} has an unreadable created_time {value[:40]!r}") from None


def _count(item: dict[str, Any], field: str, edge: str) -> int:
    """A count field (comments) or an edge's summary total (posts: reactions, comments)."""
    value = item.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, value)
    summary = item.get(edge, {}).get("summary") if isinstance(item.get(edge), dict) else None
    total = summary.get("total_count") if isinstance(summary, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else 0


def normalise(
    item: Any, brand: Brand, query: str, *, post_id: str | None = None, page_id: str | None = None
) -> Mention:
    """One post or comment as a Mention (`post_id`: the post a comment is on); MalformedItem if bad."""
    if not isinstance(item, dict):
        raise MalformedItem(f"item is {type(item).__name__}, not an object")
    native_id = item.get("id")
    if not isinstance(native_id, str) or not native_id.strip():
        raise MalformedItem("item has no id")
    created = parse_time(item.get("created_time"), native_id)
    message = item.get("message")
    text = normalise_space(message) if isinstance(message, str) else ""  # plain text, not HTML
    if not text:
        raise MalformedItem(f"{native_id} has no message (a photo or sticker only)")
    sender = item.get("from") if isinstance(item.get("from"), dict) else {}
    # `from` is withheld for people who did not grant the app access
    name = normalise_space(sender["name"]) if isinstance(sender.get("name"), str) else ""
    name = name or "Facebook user"
    parent = item.get("parent") if isinstance(item.get("parent"), dict) else {}
    parent_id = parent.get("id") if isinstance(parent.get("id"), str) else post_id
    link = item.get("permalink_url")
    if isinstance(link, str) and link.startswith("/"):
        link = f"https://www.facebook.com{link}"
    raw = {"kind": "comment" if post_id else "post"}
    if page_id:
        raw["page"] = page_id
    if isinstance(sender.get("id"), str) and sender["id"]:
        raw["author_id"] = sender["id"]  # a Page's own comment comes from the Page's id
    return Mention(
        source="facebook",
        native_id=native_id,
        brand=brand.id,
        query=query,
        author=Author(handle=name, display_name=name),
        text=text,
        created_at=created,
        url=link
        if isinstance(link, str) and link.startswith("http")
        else f"https://www.facebook.com/{native_id}",
        engagement=Engagement(
            likes=_count(item, "like_count", "reactions"), replies=_count(item, "comment_count", "comments")
        ),
        parent_id=f"facebook:{parent_id}" if parent_id else None,
        conversation_id=f"facebook:{post_id}" if post_id else None,
        raw=raw,
    )


def parse_data(
    data: list[Any], brand: Brand, query: str, *, post_id: str | None = None, page_id: str | None = None
) -> Parsed:
    parsed = Parsed()
    for item in data:
        try:
            parsed.mentions.append(normalise(item, brand, query, post_id=post_id, page_id=page_id))
        except MalformedItem as exc:
            parsed.skipped.append(str(exc))
    return parsed


def check_body(body: Any) -> dict[str, Any]:
    """A Graph list response: an object with a `data` list."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        raise SourceError(f"facebook: Graph error code {error.get('code')} ({error.get('type')})")
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise SourceError("facebook: response has no 'data' list")
    if body.get("paging") is not None and not isinstance(body.get("paging"), dict):
        raise SourceError("facebook: response has a malformed 'paging'")
    return body


def next_params(body: dict[str, Any]) -> dict[str, str] | None:
    """The parameters of the next page (from `paging.next`, without its access token), or None."""
    paging = body.get("paging") or {}
    link = paging.get("next")
    if not isinstance(link, str) or not link:
        return None
    params = {k: v for k, v in parse_qsl(urlsplit(link).query) if k != "access_token"}
    cursors = paging.get("cursors")
    if "after" not in params and isinstance(cursors, dict) and isinstance(cursors.get("after"), str):
        params["after"] = cursors["after"]
    return params


def regain_seconds(headers: Any) -> float:
    """Seconds until access returns: X-Business-Use-Case-Usage `estimated_time_to_regain_access` (minutes)."""
    try:
        usage = json.loads(headers.get("X-Business-Use-Case-Usage") or "{}")
    except ValueError:
        usage = {}
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else [])
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    longest = max((m for m in minutes if isinstance(m, int | float) and not isinstance(m, bool)), default=0)
    return float(longest) * 60 if longest > 0 else THROTTLE_WAIT


def _prune(recent: dict[str, int], since: int) -> dict[str, int]:
    return prune_recent(recent, since - OVERLAP_SECONDS, RECENT_IDS)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class _Budget:
    """Requests left in this run for one stream (`max_pages`)."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.left = ctx.settings.max_pages

    def take(self) -> bool:
        if self.left <= 0 or not self.ctx.time_left():
            return False
        self.left -= 1
        return True


class FacebookConnector:
    name = "facebook"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        specs = []
        for page_id in brand.facebook_pages:
            specs.append(
                QuerySpec(
                    key=stable_key("fbt", page_id),
                    label=f"page {page_id} tagged",
                    params={"kind": "tagged", "page": page_id},
                )
            )
            specs.append(
                QuerySpec(
                    key=stable_key("fbc", page_id),
                    label=f"page {page_id} comments",
                    params={"kind": "comments", "page": page_id},
                )
            )
        return specs

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        page_id = spec.params["page"]
        token = self._token(ctx, page_id)
        base = (ctx.settings.base_url or BASE_URL).rstrip("/")
        if spec.params["kind"] == "comments":
            yield from self._comment_pages(brand, spec, cursor, ctx, base, token)
        else:
            yield from self._tagged_pages(brand, spec, cursor, ctx, base, token)

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]:
        """Reactions and comment counts of stored tagged posts and comments, re-read with Graph's
        multi-id read `GET /?ids=a,b&fields=` (up to 50 a call) with the Page token that read them.

        Posts and comments are read apart, each with the fields of the stream that stored it (a post's
        counts are edge summaries, a comment's are `like_count`/`comment_count`), and parsed by the same
        `normalise`. Graph fails a whole multi-id read when one object is gone: the ids its message names
        are left out and the rest asked again; when it names none, the batch is halved until the gone one
        is alone. Posts of a Page with no token, gone or unreadable are left out and logged.
        """
        base = (ctx.settings.base_url or BASE_URL).rstrip("/")
        groups: dict[tuple[str, str], list[Mention]] = {}
        for mention in posts:
            page_id = mention.raw.get("page")
            if page_id is None and len(brand.facebook_pages) == 1:
                page_id = brand.facebook_pages[0]
            if page_id not in brand.facebook_pages:
                _not_reread(brand, mention.native_id, "not read through one of the brand's Pages")
                continue
            kind = "comment" if mention.raw.get("kind") == "comment" else "post"
            groups.setdefault((page_id, kind), []).append(mention)
        out: dict[str, Engagement] = {}
        budget = _Budget(ctx)
        for (page_id, kind), group in groups.items():
            try:
                token = self._token(ctx, page_id)
            except CredentialsError as exc:
                for mention in group:
                    _not_reread(brand, mention.native_id, str(exc))
                continue
            fields = COMMENT_FIELDS if kind == "comment" else TAGGED_FIELDS
            batches = [group[i : i + IDS_PER_READ] for i in range(0, len(group), IDS_PER_READ)]
            while batches:
                batch = batches.pop()
                if not budget.take():
                    for mention in batch + [m for b in batches for m in b]:
                        _not_reread(brand, mention.native_id, "out of requests or time in this run")
                    break
                params = {"ids": ",".join(m.native_id for m in batch), "fields": fields}
                try:
                    body = self._call(ctx, f"{base}/", params, token, f"page {page_id} {kind}s (engagement)")
                except NotServed as exc:
                    gone = {m.native_id for m in batch if m.native_id in exc.named}
                    if not gone and len(batch) == 1:
                        gone = {batch[0].native_id}
                    for native_id in sorted(gone):
                        _not_reread(brand, native_id, str(exc))
                    rest = [m for m in batch if m.native_id not in gone]
                    if len(rest) == len(batch):  # the message names none: halve until the gone one is alone
                        batches += [rest[: len(rest) // 2], rest[len(rest) // 2 :]]
                    elif rest:
                        batches.append(rest)
                    continue
                if not isinstance(body, dict):
                    raise SourceError(f"facebook: a multi-id read of page {page_id} answered no JSON object")
                for mention in batch:
                    item = body.get(mention.native_id)
                    if not isinstance(item, dict):
                        _not_reread(brand, mention.native_id, "not in the answer")
                        continue
                    try:
                        out[mention.id] = normalise(item, brand, "", page_id=page_id).engagement
                    except MalformedItem as reason:
                        _not_reread(brand, mention.native_id, str(reason))
        return out

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The posts or comments in one raw Graph list response body."""
        return parse_data(check_body(json_body(body, "facebook"))["data"], brand, query)

    @staticmethod
    def _token(ctx: ScanContext, page_id: str) -> str:
        tokens = ctx.secret("page_tokens")["page_tokens"]
        token = tokens.get(page_id) if isinstance(tokens, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise CredentialsError(
                f"facebook: the credentials secret has no Page access token for page {page_id} "
                "(facebook.page_tokens)"
            )
        return token

    # ------------------------------------------------------------------ tagged posts

    def _tagged_pages(
        self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext, base: str, token: str
    ) -> Iterator[Page]:
        page_id = spec.params["page"]
        queries = brand_queries(brand)
        walk = NewestFirstWalk.resume(
            cursor.position, ctx.first_run_start(FIRST_RUN_LOOKBACK), overlap=OVERLAP_SECONDS, keep=RECENT_IDS
        )
        floor = walk.since - OVERLAP_SECONDS
        budget = _Budget(ctx)
        params: dict[str, Any] = {"fields": TAGGED_FIELDS, "since": floor, "limit": PAGE_SIZE}
        if walk.upper is not None:
            params["until"] = walk.upper + 1  # the boundary second again: its ids are in `recent`
        while budget.take():
            body = self._get(ctx, f"{base}/{page_id}/tagged", params, token, spec.label)
            parsed = parse_data(body["data"], brand, "", page_id=page_id)
            stamps = [_epoch(m.created_at) for m in parsed.mentions]
            reached = bool(stamps) and min(stamps) < floor  # in case `since` was not applied
            fresh = [(m, s) for m, s in zip(parsed.mentions, stamps, strict=True) if s >= floor]
            parsed.mentions = [m for m, _ in fresh]
            page = select(parsed, len(body["data"]), queries, walk.recent, source="facebook", brand=brand)
            for mention, created in fresh:
                walk.recent.setdefault(mention.id, created)
                walk.saw(created)
            following = next_params(body)
            if reached or following is None or not body["data"]:
                page.position = walk.done()
                yield page
                return
            lowest = min(stamps) if stamps else walk.upper
            page.position = walk.paused(lowest)
            yield page
            params = following

    # ------------------------------------------------------------------ comments on the Page's posts

    def _comment_pages(
        self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext, base: str, token: str
    ) -> Iterator[Page]:
        page_id = spec.params["page"]
        position = cursor.position
        since = int(position.get("since") or _epoch(ctx.first_run_start(FIRST_RUN_LOOKBACK)))
        floor = since - OVERLAP_SECONDS
        high: int | None = position.get("high")
        done: list[str] = list(position.get("done", []))
        resume_post: str | None = position.get("post")
        resume_upper: int | None = position.get("upper")
        # when this sweep began: a comment added later to a post already done is newer than this
        started = int(position.get("started") or _epoch(ctx.now))
        recent: dict[str, int] = dict(position.get("recent", {}))
        budget = _Budget(ctx)
        posts = self._recent_posts(ctx, base, page_id, token, since, spec.label)
        if posts is None:
            return  # out of time while listing posts: the stored cursor is unchanged
        query = f"page:{page_id}"
        for post_id in posts:
            if post_id in done:
                continue
            upper = resume_upper if post_id == resume_post else None
            params: dict[str, Any] = {
                "fields": COMMENT_FIELDS,
                "order": "reverse_chronological",
                "filter": "stream",
                "since": floor,
                "limit": PAGE_SIZE,
            }
            if upper is not None:
                params["until"] = upper + 1
            while True:
                if not budget.take():
                    return
                body = self._get(
                    ctx, f"{base}/{post_id}/comments", params, token, f"{spec.label} on {post_id}"
                )
                parsed = parse_data(body["data"], brand, query, post_id=post_id, page_id=page_id)
                stamps = [_epoch(m.created_at) for m in parsed.mentions]
                reached = bool(stamps) and min(stamps) < floor
                page = Page(
                    mentions=[], position=None, fetched=len(body["data"]), skipped=len(parsed.skipped)
                )
                for reason in parsed.skipped:
                    logger.warning(
                        "skipped malformed item",
                        extra={"source": "facebook", "brand": brand.id, "reason": reason},
                    )
                # every comment on the brand's own Page is kept: no query re-check (see the module notes);
                # the Page's own comments are its replies
                for mention, created in zip(parsed.mentions, stamps, strict=True):
                    if created < floor or mention.id in recent:
                        continue
                    page.mentions.append(as_own(mention) if is_own_post(brand, mention) else mention)
                    recent[mention.id] = created
                    high = created if high is None else max(high, created)
                following = next_params(body)
                if reached or following is None or not body["data"]:
                    done.append(post_id)
                    page.position = {
                        "since": since,
                        "started": started,
                        "high": high,
                        "done": list(done),
                        "post": None,
                        "upper": None,
                        "recent": _prune(recent, since),
                    }
                    yield page
                    break
                upper = min(stamps) if stamps else upper
                page.position = {
                    "since": since,
                    "started": started,
                    "high": high,
                    "done": list(done),
                    "post": post_id,
                    "upper": upper,
                    "recent": _prune(recent, since),
                }
                yield page
                params = following
        # every post swept: the watermark moves up to the newest comment stored, but never past the
        # sweep's start (comments added meanwhile to posts already done are newer than that)
        new_since = max(since, min(high if high is not None else started, started))
        yield Page(
            mentions=[],
            position={
                "since": new_since,
                "started": None,
                "high": None,
                "done": [],
                "post": None,
                "upper": None,
                "recent": _prune(recent, new_since),
            },
        )

    def _recent_posts(
        self, ctx: ScanContext, base: str, page_id: str, token: str, since: int, label: str
    ) -> list[str] | None:
        """Ids of the Page's posts created since the watermark minus `POSTS_LOOKBACK`, newest first.

        Not counted in `max_pages`: the listing is read again every run, so counting it could leave
        no page for the comments and the sweep would never move.
        """
        params: dict[str, Any] = {
            "fields": "id,created_time",
            "since": since - int(POSTS_LOOKBACK.total_seconds()),
            "limit": PAGE_SIZE,
        }
        posts: list[str] = []
        while True:
            if not ctx.time_left():
                return None
            body = self._get(ctx, f"{base}/{page_id}/posts", params, token, f"{label} (posts)")
            posts.extend(
                p["id"] for p in body["data"] if isinstance(p, dict) and isinstance(p.get("id"), str)
            )
            following = next_params(body)
            if following is None or not body["data"]:
                return list(dict.fromkeys(posts))
            params = following

    # ------------------------------------------------------------------ HTTP

    @classmethod
    def _get(
        cls, ctx: ScanContext, url: str, params: dict[str, Any], token: str, what: str
    ) -> dict[str, Any]:
        """A Graph list response (an object with a `data` list)."""
        body = cls._call(ctx, url, params, token, what)
        try:
            return check_body(body)
        except SourceError as exc:
            raise SourceError(f"{exc} reading {what}") from None

    @staticmethod
    def _call(ctx: ScanContext, url: str, params: dict[str, Any], token: str, what: str) -> Any:
        """A Graph GET with the Page token: the decoded JSON, or SourceError for error bodies and statuses."""
        response = ctx.http.get(url, params={**params, "access_token": token})
        _log_usage(response)
        try:
            body = json_body(response.content, "facebook")
        except SourceError as exc:
            raise SourceError(
                f"{exc} (HTTP {response.status_code}) reading {what}", status=response.status_code
            ) from None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code")
            message = str(error.get("message") or "").replace(token, "***")[:200]
            if code in THROTTLE_CODES:
                wait = regain_seconds(response.headers)
                raise SourceError(
                    f"facebook: rate limited (error code {code}) reading {what}; "
                    f"retry in {wait / 60:.0f} min",
                    status=response.status_code,
                    retry_after=wait,
                )
            text = (
                f"facebook: Graph error code {code} (HTTP {response.status_code}) reading {what}: {message}"
            )
            if code == 803 or (code == 100 and error.get("error_subcode") == 33):
                full = str(error.get("message") or "").replace(token, "***")
                raise NotServed(text, status=response.status_code, named=set(_WORD.findall(full)))
            raise SourceError(text, status=response.status_code)
        if response.status_code != 200:
            raise SourceError(
                f"facebook: HTTP {response.status_code} reading {what}", status=response.status_code
            )
        return body


def _not_reread(brand: Brand, native_id: str, reason: str) -> None:
    logger.info(
        "facebook: a watched post was not re-read",
        extra={"brand": brand.id, "id": native_id, "reason": reason},
    )


def _log_usage(response: requests.Response) -> None:
    """X-App-Usage: percentages of the app's hourly call count and CPU time used (debug)."""
    header = response.headers.get("X-App-Usage")
    if not header:
        return
    try:
        usage = json.loads(header)
    except ValueError:
        return
    if isinstance(usage, dict):
        logger.debug(
            "facebook app usage",
            extra={k: usage.get(k) for k in ("call_count", "total_cputime", "total_time") if k in usage},
        )


CONNECTOR = FacebookConnector()
