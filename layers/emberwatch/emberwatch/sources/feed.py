"""RSS and Atom feeds, Google Alerts included: conditional GET with `requests`, parsed by feedparser.

Cursor position per feed URL: {"etag", "modified", "seen": [entry ids, newest first]}.
Feeds carry only their last N entries, so the connector keeps the ids it has stored and
sends the validators back: an unchanged feed costs one 304.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

from ..config import Brand, SourceSettings
from ..http import SourceError
from ..models import Author, Cursor, Mention
from ..text import html_to_text
from . import Page, Parsed, QuerySpec, ScanContext, brand_queries, select, stable_key

logger = logging.getLogger(__name__)

SEEN_IDS = 1000
_GOOGLE_ALERT_ID = re.compile(r"googlealerts/feed:(\d+)")


class MalformedEntry(ValueError):
    pass


def _entry_link(entry: Any) -> str:
    link = entry.get("link") or ""
    parsed = urlparse(link)
    if parsed.netloc.endswith("google.com") and parsed.path == "/url":
        real = parse_qs(parsed.query).get("url")
        if real and real[0].startswith(("http://", "https://")):
            return real[0]
    return link


def _native_id(entry: Any, link: str) -> str:
    raw_id = entry.get("id") or link
    if not raw_id:
        raise MalformedEntry("entry has neither id nor link")
    match = _GOOGLE_ALERT_ID.search(raw_id)
    return f"ga-{match.group(1)}" if match else raw_id.strip()


def normalise(entry: Any, brand: Brand, query: str, feed_title: str | None) -> Mention:
    """One feedparser entry as a Mention; MalformedEntry if it lacks an id, a date or text."""
    link = _entry_link(entry)
    native_id = _native_id(entry, link)
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if not stamp:
        raise MalformedEntry(f"entry {native_id} has no published or updated date")
    created = datetime.fromtimestamp(calendar.timegm(stamp), UTC)
    title = html_to_text(entry.get("title") or "")
    content = entry.get("content") or []
    body_html = content[0].get("value") if content and isinstance(content[0], dict) else entry.get("summary")
    body = html_to_text(body_html or "")
    text = body or title
    if not text:
        raise MalformedEntry(f"entry {native_id} has no text")
    author = (entry.get("author") or "").strip() or (feed_title or urlparse(link).netloc or "feed")
    return Mention(
        source="feed",
        native_id=native_id,
        brand=brand.id,
        query=query,
        author=Author(handle=author, display_name=author),
        text=text,
        title=title or None,
        created_at=created,
        url=link,
        raw={"feed": feed_title} if feed_title else {},
    )


class FeedConnector:
    name = "feed"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        return [QuerySpec(key=stable_key("feed", url), label=url, params={"url": url}) for url in brand.feeds]

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        position = cursor.position
        headers = {"Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"}
        if position.get("etag"):
            headers["If-None-Match"] = position["etag"]
        if position.get("modified"):
            headers["If-Modified-Since"] = position["modified"]
        response = ctx.http.get(spec.params["url"], headers=headers)
        if response.status_code == 304:
            return
        if response.status_code != 200:
            raise SourceError(
                f"feed: HTTP {response.status_code} for {spec.label}", status=response.status_code
            )
        parsed = self.parse(response.content, brand, "")
        seen = list(position.get("seen", []))
        fetched = len(parsed.mentions) + len(parsed.skipped)
        page = select(parsed, fetched, brand_queries(brand), set(seen), source="feed", brand=brand)
        fresh = [m.id for m in parsed.mentions if m.id not in seen]
        page.position = {
            "etag": response.headers.get("ETag"),
            "modified": response.headers.get("Last-Modified"),
            "seen": list(dict.fromkeys(fresh + seen))[:SEEN_IDS],
        }
        yield page

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The entries of one RSS/Atom document as mentions."""
        import feedparser  # only scans of feeds pay for this import

        document = feedparser.parse(body)
        if document.bozo and not document.entries:
            raise SourceError(f"feed: unreadable feed: {type(document.get('bozo_exception')).__name__}")
        feed_title = html_to_text(document.feed.get("title") or "") or None
        parsed = Parsed()
        for entry in document.entries:
            try:
                parsed.mentions.append(normalise(entry, brand, query, feed_title))
            except MalformedEntry as exc:
                parsed.skipped.append(str(exc))
        return parsed


CONNECTOR = FeedConnector()
