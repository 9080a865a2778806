"""YouTube Data API v3: videos found by search, and comments on the brand's own channels.

Two kinds of stream per brand, each with its own cursor:

- search, one per native keyword string of each query: `search.list` (`q`, `type=video`,
  `order=date`, `publishedAfter`), newest first, followed by one batched `videos.list?part=statistics`
  call per page for the videos kept. Position {"since": epoch, "upper": epoch | None,
  "high": epoch | None, "recent": {mention id: epoch}}: the window [since - overlap, upper] is
  walked newest first by `pageToken`; after each stored page `upper` drops to the oldest video
  on it, so a run cut short resumes with `publishedBefore=upper`; when the pages run out, `since`
  moves up to the newest video stored and `recent` keeps the ids the overlap will see again.
- channel, one per `brand.youtube_channels`: `commentThreads.list?allThreadsRelatedToChannelId`,
  `order=time` (newest first). There is no time filter, so a walk pages down until it reaches
  comments older than the watermark. Position {"since", "high", "page_token", "recent"}:
  `page_token` resumes a walk cut short; when the walk ends, `since` moves to the newest comment.
  Top-level comments only; they are matched locally against all of the brand's queries.
- own replies, one per channel when the brand lists `own_accounts.youtube`: the same threads with
  `part=snippet,replies`, back to threads started REPLY_WINDOW before the watermark (a reply comes
  after its thread); the replies by the brand's channel are kept (`own_account_pages`). A thread
  carries at most a few of its replies, so a brand reply below many others can be missed.

Watched posts (`engagement`, the viral-post rule's re-reads): videos through `videos.list?part=statistics`
and top-level comments through `commentThreads.list?part=snippet&id=`, 50 ids and 1 unit a call.

Quota: 10,000 units a day per project, and a search costs 100 (comment and statistics pages 1).
A run reads at most `MAX_SEARCH_PAGES` search pages per stream (and `max_pages` in any case).
403 `quotaExceeded` is a SourceError whose `retry_after` runs to the next midnight Pacific time,
when the quota resets: the scanner pauses the source until then.

Engagement: `likeCount` -> likes, `commentCount` (videos) or `totalReplyCount` (comments) ->
replies. `viewCount` is kept in `raw["views"]`, not in `score`: views are not interactions and run
orders of magnitude above other sources' likes and points, so every video would top the digest.

The API key goes in the `key` parameter only; error messages name the endpoint, never the key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, timezone
from itertools import batched
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from ..config import Brand, SourceSettings
from ..http import SourceError
from ..models import Author, Cursor, Engagement, Mention, parse_iso
from ..query import parse_query
from ..text import html_to_text
from . import (
    AccountPage,
    NewestFirstWalk,
    Page,
    Parsed,
    QuerySpec,
    ScanContext,
    brand_queries,
    json_body,
    keyword_specs,
    own_account_pages,
    prune_recent,
    reread,
    select,
    stable_key,
)

logger = logging.getLogger(__name__)

BASE_URL = "https://www.googleapis.com/youtube/v3"
SEARCH_PAGE_SIZE = 50  # search.list maximum
IDS_PER_CALL = 50  # the id limit of videos.list and commentThreads.list
COMMENT_PAGE_SIZE = 100  # commentThreads.list maximum
MAX_SEARCH_PAGES = 5  # 500 quota units per stream and run at most
FIRST_RUN_LOOKBACK = timedelta(hours=24)
OVERLAP_SECONDS = 3600  # search results are not instant: re-read the last hour, deduped by id
RECENT_IDS = 500
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
RATE_LIMIT_WAIT = 60.0
REPLY_WINDOW = 3 * 24 * 3600  # the brand's replies are looked for on threads started this long before


class MalformedItem(ValueError):
    pass


def _text(value: Any) -> str:
    return html_to_text(value) if isinstance(value, str) else ""


def _count(value: Any) -> int:
    """A count as YouTube sends it: an integer, or a string of digits (statistics)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _published(snippet: dict[str, Any], what: str) -> datetime:
    value = snippet.get("publishedAt")
    if not isinstance(value, str):
        raise MalformedItem(f"{what} has no publishedAt")
    try:
        return parse_iso(value)
    except ValueError:
        raise MalformedItem(f"{what} has an unreadable publishedAt {value[:40]!r}") from None


def normalise_video(item: dict[str, Any], brand: Brand, query: str) -> Mention:
    """One search result (a video) as a Mention; MalformedItem if required fields are bad."""
    ident = item.get("id")
    video_id = ident.get("videoId") if isinstance(ident, dict) else None
    if not isinstance(video_id, str) or not video_id.strip():
        raise MalformedItem("search result has no id.videoId")
    snippet = item.get("snippet")
    if not isinstance(snippet, dict):
        raise MalformedItem(f"video {video_id} has no snippet")
    created = _published(snippet, f"video {video_id}")
    title = _text(snippet.get("title"))  # snippet titles come entity-encoded (&#39; &amp;)
    description = _text(snippet.get("description"))
    text = "\n\n".join(part for part in (title, description) if part)
    if not text:
        raise MalformedItem(f"video {video_id} has no title or description")
    channel = _text(snippet.get("channelTitle")) or "YouTube channel"
    channel_id = snippet.get("channelId") if isinstance(snippet.get("channelId"), str) else None
    return Mention(
        source="youtube",
        native_id=video_id,
        brand=brand.id,
        query=query,
        author=Author(handle=channel, display_name=channel),
        text=text,
        title=title or None,
        created_at=created,
        url=f"https://www.youtube.com/watch?v={video_id}",
        raw={"kind": "video", "channel_id": channel_id},
    )


def normalise_comment(item: dict[str, Any], brand: Brand, query: str) -> Mention:
    """One comment thread (its top-level comment) as a Mention; MalformedItem if required fields are bad."""
    snippet = item.get("snippet")
    top = snippet.get("topLevelComment") if isinstance(snippet, dict) else None
    comment_id = top.get("id") if isinstance(top, dict) else item.get("id")
    if not isinstance(comment_id, str) or not comment_id.strip():
        raise MalformedItem("comment thread has no comment id")
    comment = top.get("snippet") if isinstance(top, dict) else None
    if not isinstance(snippet, dict) or not isinstance(comment, dict):
        raise MalformedItem(f"comment {comment_id} has no snippet")
    video_id = comment.get("videoId") or snippet.get("videoId")
    if not isinstance(video_id, str) or not video_id:
        raise MalformedItem(f"comment {comment_id} is not on a video")
    created = _published(comment, f"comment {comment_id}")
    text = _text(comment.get("textDisplay")) or _text(comment.get("textOriginal"))
    if not text:
        raise MalformedItem(f"comment {comment_id} has no text")
    author = _text(comment.get("authorDisplayName")) or "YouTube user"
    channel = comment.get("authorChannelId")
    author_id = channel.get("value") if isinstance(channel, dict) else None
    return Mention(
        source="youtube",
        native_id=f"comment:{comment_id}",
        brand=brand.id,
        query=query,
        author=Author(handle=author, display_name=author),
        text=text,
        created_at=created,
        url=f"https://www.youtube.com/watch?v={video_id}&lc={comment_id}",
        engagement=Engagement(
            likes=_count(comment.get("likeCount")), replies=_count(snippet.get("totalReplyCount"))
        ),
        parent_id=f"youtube:{video_id}",
        conversation_id=f"youtube:{video_id}",
        raw={
            "kind": "comment",
            "video_id": video_id,
            "channel_id": snippet.get("channelId"),
            "author_id": author_id if isinstance(author_id, str) else None,
        },
    )


def normalise_replies(item: Any, brand: Brand) -> tuple[Parsed, int | None]:
    """The replies a comment thread carries (`replies.comments`, part=replies) as mentions answering
    the thread's top-level comment, and when that comment was made (epoch): the thread's place in
    the listing."""
    parsed = Parsed()
    try:
        if not isinstance(item, dict):
            raise MalformedItem(f"item is {type(item).__name__}, not an object")
        thread = normalise_comment(item, brand, "")
    except MalformedItem as exc:
        parsed.skipped.append(str(exc))
        return parsed, None
    replies = item.get("replies") if isinstance(item.get("replies"), dict) else {}
    for reply in replies.get("comments") or []:
        try:
            wrapper = {"topLevelComment": reply, "videoId": thread.raw["video_id"]}
            mention = normalise_comment({"kind": "youtube#commentThread", "snippet": wrapper}, brand, "")
        except MalformedItem as exc:
            parsed.skipped.append(str(exc))
            continue
        parsed.mentions.append(
            mention.with_enrichment(
                parent_id=f"youtube:{thread.native_id}",
                conversation_id=thread.conversation_id,
                reply_to=thread.raw.get("author_id") or thread.author.handle,
                engagement=Engagement(likes=mention.engagement.likes),
                raw={**mention.raw, "kind": "reply", "thread": thread.native_id},
            )
        )
    return parsed, int(thread.created_at.timestamp())


def parse_items(items: list[Any], brand: Brand, query: str) -> Parsed:
    """Search results and comment threads (told apart by `kind`) as mentions."""
    parsed = Parsed()
    for item in items:
        try:
            if not isinstance(item, dict):
                raise MalformedItem(f"item is {type(item).__name__}, not an object")
            if item.get("kind") == "youtube#commentThread":
                parsed.mentions.append(normalise_comment(item, brand, query))
            else:
                parsed.mentions.append(normalise_video(item, brand, query))
        except MalformedItem as exc:
            parsed.skipped.append(str(exc))
    return parsed


def check_body(body: Any) -> dict[str, Any]:
    """A list response must be an object with an `items` list."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise SourceError("youtube: response has no 'items' list")
    token = body.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise SourceError("youtube: response has a non-string 'nextPageToken'")
    return body


def parse_statistics(body: Any) -> dict[str, tuple[int, int, int]]:
    """videos.list?part=statistics: video id -> (views, likes, comments); counts arrive as strings."""
    stats: dict[str, tuple[int, int, int]] = {}
    for item in check_body(body)["items"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        numbers = item.get("statistics") if isinstance(item.get("statistics"), dict) else {}
        stats[item["id"]] = (
            _count(numbers.get("viewCount")),
            _count(numbers.get("likeCount")),
            _count(numbers.get("commentCount")),
        )
    return stats


def next_pacific_midnight(now: datetime) -> datetime:
    """When the daily quota resets: the next midnight in America/Los_Angeles."""
    try:
        zone: Any = ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:  # no tz database: standard time wakes an hour late in summer, never early
        zone = timezone(timedelta(hours=-8))
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def _reasons(response: requests.Response) -> list[str]:
    try:
        error = response.json().get("error", {})
        return [e["reason"] for e in error.get("errors", []) if isinstance(e.get("reason"), str)]
    except (ValueError, AttributeError, TypeError, KeyError):
        return []


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prune(recent: dict[str, int], since: int) -> dict[str, int]:
    return prune_recent(recent, since - OVERLAP_SECONDS, RECENT_IDS)


class InvalidPageToken(SourceError):
    """A stored page token was refused (tokens do not live forever): the walk restarts from the top."""


class YouTubeConnector:
    name = "youtube"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        specs = keyword_specs(brand, "youtube", "yt", kind="search")
        for channel in brand.youtube_channels:
            specs.append(
                QuerySpec(
                    key=stable_key("ytc", channel),
                    label=f"channel {channel}",
                    params={"kind": "channel", "channel": channel},
                )
            )
        # the brand's replies: threads of its channels (and of own accounts given as channel ids)
        # read with their replies; `select` keeps the replies by the brand's own channel
        own = brand.own_accounts.get("youtube", ())
        if own:
            channels = [*brand.youtube_channels, *(a for a in own if a.startswith("UC"))]
            for channel in dict.fromkeys(channels):
                specs.append(
                    QuerySpec(
                        key=stable_key("yt-own", channel),
                        label=f"own replies on channel {channel}",
                        params={"kind": "own", "channel": channel},
                    )
                )
        return specs

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        key = ctx.secret("api_key")["api_key"]
        base = (ctx.settings.base_url or BASE_URL).rstrip("/")
        if spec.params["kind"] == "channel":
            yield from self._comment_pages(brand, spec, cursor, ctx, base, key)
        elif spec.params["kind"] == "own":
            yield from self._reply_pages(brand, spec, cursor, ctx, base, key)
        else:
            yield from self._search_pages(brand, spec, cursor, ctx, base, key)

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The mentions in one raw `search.list` or `commentThreads.list` response body."""
        return parse_items(check_body(json_body(body, "youtube"))["items"], brand, query)

    # ------------------------------------------------------------------ search

    def _search_pages(
        self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext, base: str, key: str
    ) -> Iterator[Page]:
        query = parse_query(spec.params["query"])
        walk = NewestFirstWalk.resume(
            cursor.position, ctx.first_run_start(FIRST_RUN_LOOKBACK), overlap=OVERLAP_SECONDS, keep=RECENT_IDS
        )
        token: str | None = None
        pages_read = 0
        while pages_read < min(ctx.settings.max_pages, MAX_SEARCH_PAGES) and ctx.time_left():
            params: dict[str, Any] = {
                "part": "snippet",
                "q": spec.params["native"],
                "type": "video",
                "order": "date",
                "maxResults": SEARCH_PAGE_SIZE,
                "publishedAfter": _rfc3339(walk.since - OVERLAP_SECONDS),
            }
            if walk.upper is not None:
                params["publishedBefore"] = _rfc3339(walk.upper)
            if token:
                params["pageToken"] = token
            body = self._get(ctx, f"{base}/search", params, key, f"search {spec.label!r}")
            pages_read += 1
            items = body["items"]
            parsed = parse_items(items, brand, query.text)
            stamps = [_epoch(m.created_at) for m in parsed.mentions]
            page = select(parsed, len(items), [query], walk.recent, source="youtube", brand=brand)
            for mention, created in zip(parsed.mentions, stamps, strict=True):
                walk.recent.setdefault(mention.id, created)
            if page.mentions:
                page.mentions = self._with_statistics(page.mentions, ctx, base, key)
            walk.saw(max(stamps, default=None))
            token = body.get("nextPageToken")
            if not token or not items:
                page.position = walk.done()
                yield page
                return
            lowest = min(stamps) if stamps else walk.upper
            page.position = walk.paused(lowest)
            yield page

    def _with_statistics(
        self, mentions: list[Mention], ctx: ScanContext, base: str, key: str
    ) -> list[Mention]:
        """Likes, comments and views from one batched videos.list call; without them if it fails."""
        ids = [m.native_id for m in mentions][:IDS_PER_CALL]
        try:
            stats = self._statistics(ctx, base, key, ids)
        except SourceError as exc:
            if exc.retry_after:
                raise  # the quota is spent: pause, and read this page again after the reset
            logger.warning("youtube statistics unavailable", extra={"error": str(exc), "videos": len(ids)})
            return mentions
        enriched = []
        for mention in mentions:
            engagement, views = stats.get(mention.native_id, (Engagement(), 0))
            enriched.append(
                mention.with_enrichment(engagement=engagement, raw={**mention.raw, "views": views})
            )
        return enriched

    def _statistics(
        self, ctx: ScanContext, base: str, key: str, ids: list[str]
    ) -> dict[str, tuple[Engagement, int]]:
        """One `videos.list?part=statistics` call (1 unit, at most 50 ids): video id -> (engagement, views).
        A video the API no longer serves (deleted, private) is absent."""
        body = self._get(
            ctx, f"{base}/videos", {"part": "statistics", "id": ",".join(ids)}, key, "video statistics"
        )
        return {
            video: (Engagement(likes=likes, replies=comments), views)
            for video, (views, likes, comments) in parse_statistics(body).items()
        }

    # ------------------------------------------------------------------ re-reading watched posts

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]:
        """The current engagement of stored videos and top-level comments, computed as in a scan.

        Videos through `videos.list?part=statistics` (the search's own statistics call), comments
        through `commentThreads.list?part=snippet&id=` (the shape the channel stream reads, with
        `totalReplyCount`; a thread's id is its top-level comment's); 50 ids and 1 unit a call. A
        video or comment no longer served (deleted, private) is left out and logged; a spent quota
        raises like any other call. The brand's own replies are never watched and are left out.
        """
        key = ctx.secret("api_key")["api_key"]
        base = (ctx.settings.base_url or BASE_URL).rstrip("/")
        videos = {m.native_id: m for m in posts if m.raw.get("kind") == "video"}
        threads = {m.native_id: m for m in posts if m.raw.get("kind") == "comment"}
        out: dict[str, Engagement] = {}
        for batch in batched(videos, IDS_PER_CALL):
            stats = self._statistics(ctx, base, key, list(batch))
            out.update(
                {videos[video].id: engagement for video, (engagement, _) in stats.items() if video in videos}
            )
        for batch in batched(threads, IDS_PER_CALL):
            ids = ",".join(native.removeprefix("comment:") for native in batch)
            body = self._get(
                ctx,
                f"{base}/commentThreads",
                {"part": "snippet", "id": ids, "textFormat": "html"},
                key,
                "watched comments",
            )
            reread(threads, parse_items(body["items"], brand, ""), "youtube", out)
        missing = [m.id for m in posts if m.id not in out]
        if missing:
            logger.info(
                "youtube: watched posts not served again (deleted, private or replies)",
                extra={"posts": missing},
            )
        return out

    # ------------------------------------------------------------------ channel comments

    def _comment_pages(
        self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext, base: str, key: str
    ) -> Iterator[Page]:
        queries = brand_queries(brand)
        position = cursor.position
        since = int(position.get("since") or _epoch(ctx.first_run_start(FIRST_RUN_LOOKBACK)))
        floor = since - OVERLAP_SECONDS
        high: int | None = position.get("high")
        token: str | None = position.get("page_token")
        recent: dict[str, int] = dict(position.get("recent", {}))
        pages_read = 0
        while pages_read < ctx.settings.max_pages and ctx.time_left():
            body = self._threads(ctx, base, key, spec, token, "snippet")
            pages_read += 1
            items = body["items"]
            parsed = parse_items(items, brand, "")
            stamps = [_epoch(m.created_at) for m in parsed.mentions]
            # comments below the watermark were read by an earlier walk (or predate the first run)
            reached = bool(stamps) and min(stamps) < floor
            fresh = [(m, s) for m, s in zip(parsed.mentions, stamps, strict=True) if s >= floor]
            parsed.mentions = [m for m, _ in fresh]
            page = select(parsed, len(items), queries, recent, source="youtube", brand=brand)
            for mention, created in fresh:
                recent.setdefault(mention.id, created)
                high = created if high is None else max(high, created)
            token = body.get("nextPageToken")
            if reached or not token or not items:
                new_since = max(high or since, since)
                page.position = {
                    "since": new_since,
                    "high": None,
                    "page_token": None,
                    "recent": _prune(recent, new_since),
                }
                yield page
                return
            page.position = {
                "since": since,
                "high": high,
                "page_token": token,
                "recent": _prune(recent, since),
            }
            yield page

    # ------------------------------------------------------------------ the brand's replies

    def _reply_pages(
        self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext, base: str, key: str
    ) -> Iterator[Page]:
        """`commentThreads.list?part=snippet,replies`, newest threads first, back to the threads started
        REPLY_WINDOW before the watermark; the replies by the brand's channel are kept."""

        def fetch(token: str | None) -> AccountPage:
            body = self._threads(ctx, base, key, spec, token, "snippet,replies")
            parsed, oldest = Parsed(), None
            for item in body["items"]:
                replies, started = normalise_replies(item, brand)
                parsed.mentions += replies.mentions
                parsed.skipped += replies.skipped
                oldest = started if oldest is None or (started is not None and started < oldest) else oldest
            return AccountPage(parsed, len(body["items"]), body.get("nextPageToken"), oldest)

        yield from own_account_pages(fetch, brand, "youtube", cursor, ctx, reach_back=REPLY_WINDOW)

    def _threads(
        self, ctx: ScanContext, base: str, key: str, spec: QuerySpec, token: str | None, part: str
    ) -> dict[str, Any]:
        """One `commentThreads.list` page of the channel, newest first; a page token the API no longer
        takes restarts the walk from the newest thread (the ids already seen are skipped)."""
        params: dict[str, Any] = {
            "part": part,
            "allThreadsRelatedToChannelId": spec.params["channel"],
            "order": "time",
            "maxResults": COMMENT_PAGE_SIZE,
            "textFormat": "html",
        }
        if token:
            try:
                return self._get(
                    ctx, f"{base}/commentThreads", {**params, "pageToken": token}, key, spec.label
                )
            except InvalidPageToken:
                logger.info(
                    "youtube page token refused; reading from the newest", extra={"stream": spec.label}
                )
        return self._get(ctx, f"{base}/commentThreads", params, key, spec.label)

    # ------------------------------------------------------------------ HTTP

    @staticmethod
    def _get(ctx: ScanContext, url: str, params: dict[str, Any], key: str, what: str) -> dict[str, Any]:
        response = ctx.http.get(url, params={**params, "key": key})
        if response.status_code == 200:
            return check_body(json_body(response.content, "youtube"))
        status = response.status_code
        reasons = _reasons(response)
        named = ", ".join(reasons) or "no reason given"
        if QUOTA_REASONS.intersection(reasons):
            until = next_pacific_midnight(ctx.now)
            raise SourceError(
                f"youtube: daily quota exceeded ({named}) reading {what}; it resets at midnight Pacific "
                f"({until:%Y-%m-%dT%H:%MZ})",
                status=status,
                retry_after=(until - ctx.now).total_seconds(),
            )
        if RATE_REASONS.intersection(reasons):
            raise SourceError(
                f"youtube: rate limited ({named}) reading {what}", status=status, retry_after=RATE_LIMIT_WAIT
            )
        if status == 400 and "invalidPageToken" in reasons:
            raise InvalidPageToken(f"youtube: page token refused reading {what}", status=status)
        raise SourceError(
            f"youtube: HTTP {status} ({named}) reading {what}".replace(key, "***"), status=status
        )


CONNECTOR = YouTubeConnector()
