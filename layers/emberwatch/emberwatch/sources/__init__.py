"""Source connectors: each turns one API's pages into `Mention`s and a cursor position.

A connector is imported only when its source is scanned, so a scan of Hacker News does not
pay for the feed parser's import and vice versa.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..config import Brand, SourceSettings
from ..http import HttpClient, SourceError
from ..models import Cursor, Engagement, Mention
from ..query import Query, QueryError, parse_query

CONNECTOR_MODULES = {
    "x": "emberwatch.sources.x",
    "facebook": "emberwatch.sources.facebook",
    "reddit": "emberwatch.sources.reddit",
    "hackernews": "emberwatch.sources.hackernews",
    "mastodon": "emberwatch.sources.mastodon",
    "bluesky": "emberwatch.sources.bluesky",
    "youtube": "emberwatch.sources.youtube",
    "stackexchange": "emberwatch.sources.stackexchange",
    "feed": "emberwatch.sources.feed",
}

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """One incremental stream within a source for a brand: its own cursor."""

    key: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Parsed:
    """What one raw response body yields: mentions, and the items skipped with the reason for each."""

    mentions: list[Mention] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Page:
    """A page of normalised mentions and the cursor position that is safe once they are stored."""

    mentions: list[Mention]
    position: dict[str, Any] | None
    fetched: int = 0
    skipped: int = 0
    not_matching: int = 0


class CredentialsError(RuntimeError):
    """A source's credentials are missing from the secret; the message names the key, never a value."""


class Credentials(Protocol):
    def for_source(self, source: str) -> dict[str, Any]: ...


class TokenStore(Protocol):
    """Where short-lived session tokens live between runs (Bluesky sessions, Reddit OAuth tokens)."""

    def get_token(self, source: str, account: str) -> dict[str, Any] | None: ...

    def put_token(self, source: str, account: str, token: dict[str, Any], expires_at: datetime) -> None: ...


@dataclass
class ScanContext:
    """What a connector needs from the run: HTTP, the clock, the deadline, its settings and secrets."""

    http: HttpClient
    now: datetime
    settings: SourceSettings
    credentials: Credentials | None = None
    tokens: TokenStore | None = None

    def time_left(self) -> bool:
        return self.http.monotonic() < self.http.deadline

    def first_run_start(self, lookback: timedelta) -> datetime:
        """Where a stream with no cursor starts reading: `lookback` before the top of the current hour.

        Anchored to the hour, not to the minute, so a new stream whose first runs fail (its cursor never
        saved) still starts from the same point on the next runs of that hour, and loses nothing at the
        edge of the look-back.
        """
        return self.now.replace(minute=0, second=0, microsecond=0) - lookback

    def secret(self, *required: str) -> dict[str, Any]:
        """This source's credentials; CredentialsError names any required key that is missing."""
        values = self.credentials.for_source(self.settings.name) if self.credentials else {}
        missing = [key for key in required if not values.get(key)]
        if missing:
            raise CredentialsError(
                f"{self.settings.name}: the credentials secret has no {', '.join(missing)} "
                f"under key {self.settings.name!r}"
            )
        return values


class Connector(Protocol):
    """One source. `parse` is pure (the CLI's `emberwatch parse` uses it); `pages` does the I/O."""

    name: str

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]: ...

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]: ...

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed: ...


class ReadsEngagement(Protocol):
    """A connector that can re-read stored posts (optional: `scan.refresh_watched` looks for it).

    `engagement` returns the current engagement of each post it could read, keyed by mention id; a
    post the source no longer serves (deleted, private) or answers oddly is left out, logged and never
    fails the others. A failed request raises SourceError (the scan counts it and tries again later).
    """

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]: ...


def reread(stored: dict[str, Mention], parsed: Parsed, source: str, out: dict[str, Engagement]) -> None:
    """Add the engagement of the re-read posts in `parsed` to `out`, keyed by the stored mention id
    (`stored` maps native id -> stored mention); what the source returned unusable is logged, left out."""
    for fresh in parsed.mentions:
        if fresh.native_id in stored:
            out[stored[fresh.native_id].id] = fresh.engagement
    for reason in parsed.skipped:
        logger.info(f"{source}: a watched post was not re-read", extra={"reason": reason})


def json_body(body: bytes | str, source: str) -> Any:
    """Decode a raw response body as JSON; SourceError says what came instead."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            # keep the page: the broken bytes become U+FFFD in the one post that carries them
            logger.warning(
                "response body is not valid UTF-8; replaced", extra={"source": source, "at": exc.start}
            )
            body = body.decode("utf-8", errors="replace")
    try:
        return json.loads(body)
    except RecursionError:
        raise SourceError(f"{source}: response body is nested too deeply to read") from None
    except ValueError:
        start = body[:40] if isinstance(body, str) else body[:40].decode("utf-8", "replace")
        what = "an HTML page" if start.lstrip().lower().startswith(("<!doctype", "<html")) else "not JSON"
        raise SourceError(f"{source}: response body is {what}") from None


def select(
    parsed: Parsed,
    fetched: int,
    queries: list[Query],
    seen: Container[str] = (),
    *,
    source: str,
    brand: Brand | str,
) -> Page:
    """Keep the parsed mentions not seen before that match one of the brand's queries (recorded on each).

    Posts by the brand's own accounts are kept whatever they say and marked `own`: they are the
    brand's replies, which care tracking links to the customers' mentions.
    """
    brand_id = brand if isinstance(brand, str) else brand.id
    page = Page(mentions=[], position=None, fetched=fetched, skipped=len(parsed.skipped))
    for reason in parsed.skipped:
        logger.warning(
            "skipped malformed item", extra={"source": source, "brand": brand_id, "reason": reason}
        )
    for mention in parsed.mentions:
        if mention.id in seen:
            continue
        if not isinstance(brand, str) and is_own_post(brand, mention):
            page.mentions.append(as_own(mention))
            continue
        haystack = (
            f"{mention.title}\n{mention.text}"
            if mention.title and mention.title not in mention.text
            else mention.text
        )
        matched = next((q for q in queries if q.matches(haystack, mention.language)), None)
        if matched is None:
            page.not_matching += 1
            continue
        page.mentions.append(
            mention if mention.query == matched.text else mention.with_enrichment(query=matched.text)
        )
    return page


def is_own_post(brand: Brand, mention: Mention) -> bool:
    """Written by one of the brand's own accounts: by its handle, or by the platform's author id
    (`raw["author_id"]`: an X user id, a YouTube channel id, a Facebook Page id, a full Mastodon acct)."""
    author_id = mention.raw.get("author_id")
    return brand.is_own(mention.source, mention.author.handle) or (
        isinstance(author_id, str) and brand.is_own(mention.source, author_id)
    )


def as_own(mention: Mention) -> Mention:
    """The brand's own post, kept whatever it says: care tracking links it, counts leave it out."""
    return mention.with_enrichment(own=True, query=mention.query or "own account")


def brand_queries(brand: Brand) -> list[Query]:
    """The brand's parsed queries; an invalid one is logged and left out (config validation names it)."""
    queries = []
    for text in brand.queries:
        try:
            queries.append(parse_query(text))
        except QueryError as exc:
            logger.warning("skipping invalid query", extra={"brand": brand.id, "error": str(exc)})
    return queries


def keyword_specs(
    brand: Brand, source: str, prefix: str, *, key_text: str = "", **params: Any
) -> list[QuerySpec]:
    """One stream per AND-only search of each query, for sources whose search has no OR.

    The cursor key is `stable_key(prefix, key_text + native)`; `params` go on every spec with the
    query and the native search. An invalid query is logged and left out (validation names it).
    """
    specs = []
    for query in brand.queries:
        try:
            natives = parse_query(query).native_keywords()
        except QueryError as exc:
            logger.warning("skipping query", extra={"source": source, "brand": brand.id, "error": str(exc)})
            continue
        for native in natives:
            specs.append(
                QuerySpec(
                    key=stable_key(prefix, key_text + native),
                    label=native,
                    params={**params, "query": query, "native": native},
                )
            )
    return specs


def prune_recent(recent: dict[str, int], floor: float, keep: int) -> dict[str, int]:
    """The ids seen at or after `floor` (epoch seconds), newest first, at most `keep` of them."""
    kept = {i: c for i, c in recent.items() if c >= floor}
    return dict(sorted(kept.items(), key=lambda kv: -kv[1])[:keep])


@dataclass(slots=True)
class NewestFirstWalk:
    """A newest-first walk down the window [since, upper] (HN, Stack Exchange, YouTube, Facebook tagged).

    `recent` keeps the ids the overlap below `since` will read again; `high` is the newest item seen
    while the window is being read. `done()` is the cursor once the walk has read down to `since`: the
    window moves up to the newest item seen. `paused(lowest)` is the cursor of a walk stopped part way:
    the window's top comes down to the oldest item stored, so the next run resumes below it and nothing
    in between is skipped.
    """

    since: int
    upper: int | None
    high: int | None
    recent: dict[str, int]
    overlap: int
    keep: int

    @classmethod
    def resume(
        cls, position: dict[str, Any], first_run: datetime, *, overlap: int, keep: int
    ) -> NewestFirstWalk:
        """The walk a cursor position left off (or, on a first run, the window from `first_run` up)."""
        return cls(
            since=int(position.get("since") or first_run.timestamp()),
            upper=position.get("upper"),
            high=position.get("high"),
            recent=dict(position.get("recent", {})),
            overlap=overlap,
            keep=keep,
        )

    def saw(self, newest: int | None) -> None:
        """Note the newest item of a page (None: the page had none)."""
        if newest is not None:
            self.high = newest if self.high is None else max(self.high, newest)

    def done(self) -> dict[str, Any]:
        since = max(self.high or self.since, self.since)
        return {
            "since": since,
            "upper": None,
            "high": None,
            "recent": prune_recent(self.recent, since - self.overlap, self.keep),
        }

    def paused(self, lowest: int | None) -> dict[str, Any]:
        return {
            "since": self.since,
            "upper": lowest,
            "high": self.high,
            "recent": prune_recent(self.recent, self.since - self.overlap, self.keep),
        }


@dataclass(slots=True)
class AccountPage:
    """One page of an account's posts, newest first: what `own_account_pages` walks."""

    parsed: Parsed
    fetched: int
    next_token: str | None
    oldest: int | None = None  # epoch of the page's oldest item in the listing's own order


OWN_LOOKBACK = timedelta(hours=24)
OWN_OVERLAP = 600  # seconds re-read below the watermark: late-indexed replies still get in
OWN_RECENT = 500


def own_specs(brand: Brand, source: str, prefix: str, **params: Any) -> list[QuerySpec]:
    """One stream per own account of the brand on `source` (its cursor keyed by the account)."""
    return [
        QuerySpec(
            key=stable_key(prefix, account.lower().lstrip("@")),
            label=f"own account {account}",
            params={**params, "kind": "own", "account": account.lstrip("@")},
        )
        for account in dict.fromkeys(brand.own_accounts.get(source, ()))
    ]


def own_account_pages(
    fetch: Callable[[str | None], AccountPage],
    brand: Brand,
    source: str,
    cursor: Cursor,
    ctx: ScanContext,
    *,
    resolve: Callable[[list[Mention]], list[Mention]] | None = None,
    reach_back: int = 0,
) -> Iterator[Page]:
    """The brand's own posts on one account, newest first, down to the watermark: the brand's replies.

    Every source's own-account stream walks the same way. `fetch(token)` reads one page (None: the
    newest). Posts are kept only when `select` finds them the brand's own (a repost of someone else
    is dropped, not stored as a customer's mention); `resolve` completes the new ones (e.g. their
    parent's id) before they are stored. `reach_back` (seconds) keeps walking past the watermark
    when the listing is ordered by something older than the posts (YouTube threads and their replies).

    Position {"since": epoch, "high": epoch | None, "token": str | None, "recent": {id: epoch}}:
    a walk cut short resumes at `token`; when it ends, `since` moves up to the newest post kept.
    """
    position = cursor.position
    since = int(position.get("since") or (ctx.now - OWN_LOOKBACK).timestamp())
    floor = since - OWN_OVERLAP
    high: int | None = position.get("high")
    token: str | None = position.get("token")
    recent: dict[str, int] = dict(position.get("recent", {}))
    pages_read = 0
    while pages_read < ctx.settings.max_pages and ctx.time_left():
        got = fetch(token)
        pages_read += 1
        stamps = [int(m.created_at.timestamp()) for m in got.parsed.mentions]
        oldest = got.oldest if got.oldest is not None else min(stamps, default=None)
        reached = oldest is not None and oldest < floor - reach_back
        fresh = [(m, s) for m, s in zip(got.parsed.mentions, stamps, strict=True) if s >= floor]
        got.parsed.mentions = [m for m, _ in fresh]
        page = select(got.parsed, got.fetched, [], recent, source=source, brand=brand)
        if resolve and page.mentions:
            page.mentions = resolve(page.mentions)
        for mention, created in fresh:
            recent.setdefault(mention.id, created)
            high = created if high is None else max(high, created)
        if reached or not got.next_token or not got.fetched:
            new_since = max(high or since, since)
            page.position = {
                "since": new_since,
                "high": None,
                "token": None,
                "recent": prune_recent(recent, new_since - OWN_OVERLAP, OWN_RECENT),
            }
            yield page
            return
        token = got.next_token
        page.position = {
            "since": since,
            "high": high,
            "token": token,
            "recent": prune_recent(recent, floor, OWN_RECENT),
        }
        yield page


def stable_key(prefix: str, text: str) -> str:
    """A short stable key for a query or URL, used as the cursor's sort key."""
    return f"{prefix}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def get_connector(source: str) -> Connector:
    """The connector for a source name; ValueError names the known ones."""
    try:
        module = importlib.import_module(CONNECTOR_MODULES[source])
    except KeyError:
        raise ValueError(
            f"no connector for source {source!r} (available: {', '.join(CONNECTOR_MODULES)})"
        ) from None
    return module.CONNECTOR
