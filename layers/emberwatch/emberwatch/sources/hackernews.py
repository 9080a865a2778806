"""Hacker News through the Algolia API (`search_by_date`): stories and comments, newest first.

Cursor position: {"since": epoch, "upper": epoch | None, "high": epoch | None, "recent": [ids]}.
A run walks the window [since, upper] newest first. Algolia serves at most 1,000 hits per
query, so when the pages run out before the window does, the window's top is lowered to the
oldest hit seen and paging restarts. After each stored page the position records how far down
the window has been read, so a run cut short by its time budget resumes where it stopped;
when the window is exhausted, `since` moves up to the newest hit stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import Brand, SourceSettings
from ..http import SourceError
from ..models import Author, Cursor, Engagement, Mention
from ..query import Query, parse_query
from ..text import html_to_text
from . import (
    NewestFirstWalk,
    Page,
    Parsed,
    QuerySpec,
    ScanContext,
    json_body,
    keyword_specs,
    reread,
    select,
)

logger = logging.getLogger(__name__)

BASE_URL = "https://hn.algolia.com/api/v1"
HITS_PER_PAGE = 100
PAGINATION_LIMIT = 1000  # Algolia's default paginationLimitedTo
FIRST_RUN_LOOKBACK = timedelta(hours=24)
OVERLAP_SECONDS = 120  # re-read a little before `since`: late-indexed items still get in
RECENT_IDS = 500


class MalformedHit(ValueError):
    pass


def normalise(hit: dict[str, Any], brand: Brand, query: str) -> Mention:
    """One Algolia hit (story or comment) as a Mention; MalformedHit if required fields are bad."""
    if not isinstance(hit, dict):
        raise MalformedHit(f"hit is {type(hit).__name__}, not an object")
    object_id = hit.get("objectID")
    created_i = hit.get("created_at_i")
    if not isinstance(object_id, str | int) or not str(object_id).strip():
        raise MalformedHit("objectID missing")
    if isinstance(created_i, bool) or not isinstance(created_i, int):
        raise MalformedHit(f"created_at_i is not an integer in hit {object_id}")
    tags = hit.get("_tags") if isinstance(hit.get("_tags"), list) else []
    is_comment = "comment" in tags or ("comment_text" in hit and not hit.get("title"))
    title = hit.get("title") if isinstance(hit.get("title"), str) else None
    body_html = hit.get("comment_text") if is_comment else hit.get("story_text")
    body = html_to_text(body_html if isinstance(body_html, str) else "")
    text = body if is_comment else "\n\n".join(p for p in (html_to_text(title), body) if p)
    if not text:
        raise MalformedHit(f"hit {object_id} has no text")
    author = hit.get("author") if isinstance(hit.get("author"), str) else "unknown"

    def number(key: str) -> int:
        value = hit.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    story_id = hit.get("story_id")
    parent_id = hit.get("parent_id")
    return Mention(
        source="hackernews",
        native_id=str(object_id),
        brand=brand.id,
        query=query,
        author=Author(handle=author, display_name=author),
        text=text,
        title=None if is_comment else html_to_text(title),
        created_at=datetime.fromtimestamp(created_i, UTC),
        url=f"https://news.ycombinator.com/item?id={object_id}",
        engagement=Engagement(replies=number("num_comments"), score=number("points")),
        parent_id=f"hackernews:{parent_id}" if isinstance(parent_id, int) else None,
        conversation_id=f"hackernews:{story_id}" if isinstance(story_id, int) else None,
        raw={
            "kind": "comment" if is_comment else "story",
            "link": hit.get("url") or hit.get("story_url"),
            "story_title": html_to_text(hit["story_title"])
            if isinstance(hit.get("story_title"), str)
            else None,
        },
    )


class HackerNewsConnector:
    name = "hackernews"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        return keyword_specs(brand, "hackernews", "hn")

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        base = (ctx.settings.base_url or BASE_URL).rstrip("/")
        query = parse_query(spec.params["query"])
        # ids already stored near `since`: the overlap re-reads them, they are not written again
        walk = NewestFirstWalk.resume(
            cursor.position, ctx.first_run_start(FIRST_RUN_LOOKBACK), overlap=OVERLAP_SECONDS, keep=RECENT_IDS
        )
        page_number = pages_read = 0
        while pages_read < ctx.settings.max_pages and ctx.time_left():
            body = self._fetch(base, spec, walk.since, walk.upper, page_number, ctx)
            pages_read += 1
            page, oldest, newest = self._page(body["hits"], brand, query, walk.recent)
            walk.saw(newest)
            last_page = page_number + 1 >= body["nbPages"] or not body["hits"]
            capped = (page_number + 1) * HITS_PER_PAGE >= PAGINATION_LIMIT
            if last_page and not capped:
                # window exhausted: once this page is stored, everything from `since` up is stored
                page.position = walk.done()
                yield page
                return
            lowest = oldest if oldest is not None else walk.upper
            page.position = walk.paused(lowest)
            yield page
            if last_page or capped:
                # Algolia stops at 1,000 hits: lower the window's top to the oldest hit seen
                walk.upper = lowest if lowest != walk.upper else (lowest or walk.since) - 1
                page_number = 0
            else:
                page_number += 1

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]:
        """Points and comment counts of watched stories, re-read in one search per 100 stories:
        `tags=story,(story_1,story_2,...)` matches exactly those stories (comments carry no counts on
        Algolia, so they are not re-read). A story no longer indexed is left out."""
        base = (ctx.settings.base_url or BASE_URL).rstrip("/")
        stories = {m.native_id: m for m in posts if m.conversation_id == m.id}
        out: dict[str, Engagement] = {}
        ids = list(stories)
        for start in range(0, len(ids), HITS_PER_PAGE):
            chunk = ids[start : start + HITS_PER_PAGE]
            response = ctx.http.get(
                f"{base}/search_by_date",
                params={
                    "tags": f"story,({','.join(f'story_{i}' for i in chunk)})",
                    "hitsPerPage": len(chunk),
                },
            )
            if response.status_code != 200:
                raise SourceError(
                    f"hackernews: HTTP {response.status_code} re-reading {len(chunk)} stories",
                    status=response.status_code,
                )
            hits = check_body(json_body(response.content, "hackernews"))["hits"]
            reread(stories, parse_hits(hits, brand, ""), "hackernews", out)
        return out

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The mentions in one raw `search_by_date` response body."""
        return parse_hits(check_body(json_body(body, "hackernews"))["hits"], brand, query)

    @staticmethod
    def _fetch(
        base: str, spec: QuerySpec, since: int, upper: int | None, page: int, ctx: ScanContext
    ) -> dict[str, Any]:
        filters = [f"created_at_i>={max(0, since - OVERLAP_SECONDS)}"]
        if upper is not None:
            filters.append(f"created_at_i<={upper}")
        response = ctx.http.get(
            f"{base}/search_by_date",
            params={
                "query": spec.params["native"],
                "tags": "(story,comment)",
                "numericFilters": ",".join(filters),
                "hitsPerPage": HITS_PER_PAGE,
                "page": page,
            },
        )
        if response.status_code != 200:
            raise SourceError(
                f"hackernews: HTTP {response.status_code} for {spec.label!r}", status=response.status_code
            )
        return check_body(json_body(response.content, "hackernews"))

    @staticmethod
    def _page(
        hits: list[Any], brand: Brand, query: Query, recent: dict[str, int]
    ) -> tuple[Page, int | None, int | None]:
        parsed = parse_hits(hits, brand, query.text)
        stamps = [int(m.created_at.timestamp()) for m in parsed.mentions]
        page = select(parsed, len(hits), [query], recent, source="hackernews", brand=brand)
        for mention, created in zip(parsed.mentions, stamps, strict=True):
            recent.setdefault(mention.id, created)
        return page, min(stamps, default=None), max(stamps, default=None)


def check_body(body: Any) -> dict[str, Any]:
    """The response must be an object with a `hits` list and an integer `nbPages`."""
    if not isinstance(body, dict) or not isinstance(body.get("hits"), list):
        raise SourceError("hackernews: response has no 'hits' list")
    if isinstance(body.get("nbPages"), bool) or not isinstance(body.get("nbPages"), int):
        raise SourceError("hackernews: response has no integer 'nbPages'")
    return body


def parse_hits(hits: list[Any], brand: Brand, query: str) -> Parsed:
    parsed = Parsed()
    for hit in hits:
        try:
            parsed.mentions.append(normalise(hit, brand, query))
        except MalformedHit as exc:
            parsed.skipped.append(str(exc))
    return parsed


CONNECTOR = HackerNewsConnector()
