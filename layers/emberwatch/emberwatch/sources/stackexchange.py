"""Stack Exchange API 2.3: questions by `/search/advanced`, newest first (`sort=creation&order=desc`).

Cursor position per native keyword string: {"since": epoch, "upper": epoch | None,
"high": epoch | None, "recent": {mention id: creation_date}}, the same walk as Hacker News. A
run reads the window [since - overlap, upper] (`fromdate`/`todate`) newest first, page by page
while `has_more`. After each stored page `upper` drops to the oldest question on it, so a run cut
short (time budget, `max_pages`, a failure) resumes where it stopped; when the window is
exhausted `since` moves up to the newest question stored. `recent` holds the ids at and just
below the watermark, which the overlap reads again without storing them twice.

Throttling lives in the body, not in headers:
- `backoff` (seconds): the host is blocked for that long (`ctx.http.block`), so the next request
  waits;
- `quota_remaining` 0: the page is stored, then a SourceError pauses the source until the next
  UTC day, when the daily quota resets;
- `{"error_id": 502, "error_name": "throttle_violation", ...}` with HTTP 400 or 502: a
  SourceError whose `retry_after` comes from "more requests available in N seconds". The check
  runs as a response hook so the shared client does not retry a 502 throttle (retrying is what
  Stack Exchange penalises).

The optional app `key` raises the daily quota from 300 to 10,000; it goes in `params`, never in a
message. `site` comes from the spec (stackoverflow for now). Mention ids are the `question_id`;
when other sites are added the id must carry the site, as question ids are per site.
Reputation is not an audience: `Author.followers` stays None, reputation is kept in `raw`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from itertools import batched
from typing import Any

import requests

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

BASE_URL = "https://api.stackexchange.com/2.3"
DEFAULT_SITE = "stackoverflow"
PAGE_SIZE = 100  # also the most ids /questions/{ids} takes
FILTER = "withbody"  # the default fields and the question's HTML body
FIRST_RUN_LOOKBACK = timedelta(hours=24)
OVERLAP_SECONDS = 300  # re-read a little before `since`: late-indexed questions still get in
RECENT_IDS = 500
BACKOFF_MARGIN = 1.0  # backoff is whole seconds; waiting a second more never violates it
THROTTLE_WAIT = 300.0  # a throttle that does not say how long
_AVAILABLE_IN = re.compile(r"available in (\d+) seconds?", re.I)


class MalformedQuestion(ValueError):
    pass


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def normalise(item: dict[str, Any], brand: Brand, query: str) -> Mention:
    """One question as a Mention; MalformedQuestion if required fields are bad."""
    if not isinstance(item, dict):
        raise MalformedQuestion(f"item is {type(item).__name__}, not an object")
    question_id = _int(item.get("question_id"))
    if question_id is None:
        raise MalformedQuestion("question_id missing or not an integer")
    created = _int(item.get("creation_date"))
    if created is None:
        raise MalformedQuestion(f"creation_date is not an integer in question {question_id}")
    title = html_to_text(item["title"]) if isinstance(item.get("title"), str) else ""  # entity-encoded
    body = html_to_text(item["body"]) if isinstance(item.get("body"), str) else ""
    text = "\n\n".join(part for part in (title, body) if part)
    if not text:
        raise MalformedQuestion(f"question {question_id} has no title or body")
    owner = item.get("owner") if isinstance(item.get("owner"), dict) else {}
    name = html_to_text(owner["display_name"]) if isinstance(owner.get("display_name"), str) else ""
    name = name or "unknown"
    link = item.get("link")
    tags = (
        [t for t in item.get("tags", []) if isinstance(t, str)] if isinstance(item.get("tags"), list) else []
    )
    return Mention(
        source="stackexchange",
        native_id=str(question_id),
        brand=brand.id,
        query=query,
        author=Author(handle=name, display_name=name),
        text=text,
        title=title or None,
        created_at=datetime.fromtimestamp(created, UTC),
        url=link
        if isinstance(link, str) and link.startswith("http")
        else f"https://stackoverflow.com/q/{question_id}",
        engagement=Engagement(
            replies=_int(item.get("answer_count")) or 0, score=_int(item.get("score")) or 0
        ),
        raw={
            "tags": tags[:10],
            "views": _int(item.get("view_count")),
            "reputation": _int(owner.get("reputation")),
            "answered": item.get("is_answered") is True,
        },
    )


def parse_items(items: list[Any], brand: Brand, query: str) -> Parsed:
    parsed = Parsed()
    for item in items:
        try:
            parsed.mentions.append(normalise(item, brand, query))
        except MalformedQuestion as exc:
            parsed.skipped.append(str(exc))
    return parsed


def throttle_error(body: dict[str, Any], status: int) -> SourceError:
    """A `throttle_violation` body as a SourceError that waits as long as the message says."""
    message = str(body.get("error_message") or "")
    match = _AVAILABLE_IN.search(message)
    wait = float(match.group(1)) if match else THROTTLE_WAIT
    return SourceError(
        f"stackexchange: throttle_violation (HTTP {status}): {message[:200]}", status=status, retry_after=wait
    )


def check_body(body: Any, status: int = 200) -> dict[str, Any]:
    """A search response: an object with an `items` list; an error body raises SourceError."""
    if isinstance(body, dict) and "error_id" in body:
        if body.get("error_name") == "throttle_violation":
            raise throttle_error(body, status)
        raise SourceError(
            f"stackexchange: error {body.get('error_id')} {body.get('error_name')} (HTTP {status}): "
            f"{str(body.get('error_message') or '')[:200]}",
            status=status,
        )
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise SourceError("stackexchange: response has no 'items' list")
    return body


def _json_or_none(body: bytes) -> Any:
    try:
        return json_body(body, "stackexchange")
    except SourceError:
        return None


def _throttle_hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """Stop at a throttle body before the shared client retries a 502 (another request makes it worse)."""
    if response.status_code in (400, 502):
        body = _json_or_none(response.content)
        if isinstance(body, dict) and body.get("error_name") == "throttle_violation":
            raise throttle_error(body, response.status_code)
    return response


def next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)


def _get(url: str, params: dict[str, Any], key: str | None, ctx: ScanContext, what: str) -> dict[str, Any]:
    """One API call (the app `key` added when configured) and its checked body; a `backoff` blocks the
    host for the next request. An error or throttle body is a SourceError naming `what`, never the key."""
    if key:
        params = {**params, "key": key}
    try:
        response = ctx.http.get(url, params=params, hooks={"response": _throttle_hook})
        if response.status_code != 200:
            error = _json_or_none(response.content)
            if isinstance(error, dict) and "error_id" in error:
                check_body(error, response.status_code)  # raises, naming the error
            raise SourceError(f"stackexchange: HTTP {response.status_code}", status=response.status_code)
        body = check_body(json_body(response.content, "stackexchange"))
    except SourceError as exc:
        message = str(exc).replace(key, "***") if key else str(exc)
        raise SourceError(f"{message} for {what}", status=exc.status, retry_after=exc.retry_after) from None
    backoff = body.get("backoff")
    if isinstance(backoff, int | float) and not isinstance(backoff, bool) and backoff > 0:
        logger.info("stackexchange asked for a backoff", extra={"seconds": backoff})
        ctx.http.block(url, float(backoff) + BACKOFF_MARGIN)
    return body


def quota_spent(body: dict[str, Any]) -> bool:
    """The body says no requests are left today (`quota_remaining` 0)."""
    remaining = _int(body.get("quota_remaining"))
    return remaining is not None and remaining <= 0


class StackExchangeConnector:
    name = "stackexchange"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        return keyword_specs(brand, "stackexchange", "se", key_text=f"{DEFAULT_SITE}:", site=DEFAULT_SITE)

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        base = (ctx.settings.base_url or BASE_URL).rstrip("/")
        key = ctx.secret().get("key")  # optional: no key is fine, with a lower quota
        query = parse_query(spec.params["query"])
        walk = NewestFirstWalk.resume(
            cursor.position, ctx.first_run_start(FIRST_RUN_LOOKBACK), overlap=OVERLAP_SECONDS, keep=RECENT_IDS
        )
        page_number = 1
        while page_number <= ctx.settings.max_pages and ctx.time_left():
            body = self._fetch(base, spec, walk.since, walk.upper, page_number, key, ctx)
            page, oldest, newest = self._page(body["items"], brand, query, walk.recent)
            walk.saw(newest)
            if body.get("has_more") is not True or not body["items"]:
                page.position = walk.done()
                yield page
                self._check_quota(body, ctx)
                return
            lowest = oldest if oldest is not None else walk.upper
            page.position = walk.paused(lowest)
            yield page
            self._check_quota(body, ctx)
            page_number += 1

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The questions in one raw `/search/advanced` response body."""
        return parse_items(check_body(json_body(body, "stackexchange"))["items"], brand, query)

    @staticmethod
    def _fetch(
        base: str,
        spec: QuerySpec,
        since: int,
        upper: int | None,
        page: int,
        key: str | None,
        ctx: ScanContext,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "q": spec.params["native"],
            "site": spec.params.get("site", DEFAULT_SITE),
            "sort": "creation",
            "order": "desc",
            "fromdate": max(0, since - OVERLAP_SECONDS),
            "page": page,
            "pagesize": PAGE_SIZE,
            "filter": FILTER,
        }
        if upper is not None:
            params["todate"] = upper + 1  # the boundary second again: its ids are in `recent`
        return _get(f"{base}/search/advanced", params, key, ctx, repr(spec.label))

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]:
        """Score and answer count of stored questions, re-read with `/questions/{ids}` (`;`-joined, 100 a
        call, the search's filter and item shape, parsed by the same `normalise`); a deleted question is
        left out. `backoff` blocks the host as in a search; when the daily quota runs out, the questions
        read so far are returned and no further call is made (the next search meets the quota and pauses
        the source). Only questions are stored, so there are no answers to re-read."""
        base = (ctx.settings.base_url or BASE_URL).rstrip("/")
        key = ctx.secret().get("key")
        by_id = {m.native_id: m for m in posts if m.native_id.isdigit()}
        out: dict[str, Engagement] = {}
        for batch in batched(by_id, PAGE_SIZE):
            params = {"site": DEFAULT_SITE, "pagesize": PAGE_SIZE, "filter": FILTER}
            body = _get(f"{base}/questions/{';'.join(batch)}", params, key, ctx, "watched questions")
            reread(by_id, parse_items(body["items"], brand, ""), "stackexchange", out)
            if quota_spent(body):
                logger.warning("stackexchange: daily quota used up while re-reading watched questions")
                break
        missing = [m.id for m in posts if m.id not in out]
        if missing:
            logger.info(
                "stackexchange: watched questions not served again (deleted)", extra={"posts": missing}
            )
        return out

    @staticmethod
    def _check_quota(body: dict[str, Any], ctx: ScanContext) -> None:
        """After a stored page: no requests left today pauses the source until the quota resets."""
        if quota_spent(body):
            until = next_utc_midnight(ctx.now)
            raise SourceError(
                f"stackexchange: daily quota used up (quota_max {body.get('quota_max')}); "
                f"it resets at {until:%Y-%m-%dT%H:%MZ}",
                status=429,
                retry_after=(until - ctx.now).total_seconds(),
            )

    @staticmethod
    def _page(
        items: list[Any], brand: Brand, query: Query, recent: dict[str, int]
    ) -> tuple[Page, int | None, int | None]:
        parsed = parse_items(items, brand, query.text)
        stamps = [int(m.created_at.timestamp()) for m in parsed.mentions]
        page = select(parsed, len(items), [query], recent, source="stackexchange", brand=brand)
        for mention, created in zip(parsed.mentions, stamps, strict=True):
            recent.setdefault(mention.id, created)
        return page, min(stamps, default=None), max(stamps, default=None)


CONNECTOR = StackExchangeConnector()
