"""Mastodon: hashtag timelines (public, no credentials) and, with a token, full-text status search.

One instance is read (`sources.mastodon.base_url`, default https://mastodon.social); it sees the
posts that federated to it. Streams per brand:

- one per hashtag: `GET /api/v1/timelines/tag/:hashtag`;
- one per native keyword search (`Query.native_keywords()`), only when the credentials secret
  has `access_token` (unauthenticated full-text search returns no statuses):
  `GET /api/v2/search?type=statuses&resolve=false&q=...` with `Authorization: Bearer`;
- one per own account (`own_accounts.mastodon`, `user@domain`): `GET /api/v1/accounts/lookup`,
  then `GET /api/v1/accounts/:id/statuses?exclude_reblogs=true` newest first (`own_account_pages`).
  A reply names its parent by an instance-local id only, so each new reply is placed in its
  thread with `GET /api/v1/statuses/:id/context`: parent and root by `uri`, the parent's author.

The brand's watched top posts are re-read with `GET /api/v1/statuses/:id` (`engagement`), one call
a post, by the instance-local id kept in `raw["status_id"]` on the same instance; a 404 (deleted,
or no longer visible) leaves the post out.

Every status is re-checked locally against the brand's queries: a hashtag post that does not
match any query is counted `not_matching`, not stored.

Identity. A status is stored as `mastodon:<uri>`. The `id` is only unique within one instance
(the same post has another id on every server, a reblog has an id of its own), while `uri` is the
post's ActivityPub id, the same everywhere: a post found by a hashtag and by a search, through a
reblog, or later through another instance is stored once. Instance-local ids are used for paging
only and kept in `raw["status_id"]`. The API names a reply's parent by its instance-local id only,
so `parent_id` is `mastodon:<in_reply_to_id>`: it links up through `raw["status_id"]` on the same
instance, not through the mention id. A reblog counts as spread of the original: the reblogged
status is normalised and the reblogger is recorded in `raw["reblogged_by"]`.

Cursor position: {"min_id": str, "top": str, "max_id": str | "offset": int, "since": ISO}.
`min_id` is the newest status id of a completed pass: everything at or below it is stored. A pass
reads newest first, from the top down to `min_id`, so nothing is skipped when more than one page
arrived since the last run. The timeline is paged with `max_id` (from the `Link` header's
rel="next") while the stored `min_id` is sent as `since_id`: Mastodon's own `min_id` parameter
would return the page just above it, oldest first, not the newest. Search results are ordered by
id, newest first, and paged with `offset` (Mastodon turns search `min_id`/`max_id` into
second-precision `after:`/`before:` filters, which can drop posts of the same second), so the
stop at `min_id` is made locally. A pass ends at an empty page (or a timeline page without a
rel="next" link). Until then each stored page saves `top` (the newest id of the pass) and where
to continue (`max_id` or `offset`): a run cut short resumes the pass, then starts a new one; a
completed pass moves `min_id` up to `top`. On the first run (no `min_id`) a pass goes back to
`since` (24 hours before the run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests

from ..config import Brand, SourceSettings
from ..http import SourceError
from ..models import Author, Cursor, Engagement, Mention, parse_iso, utc_iso
from ..text import html_to_text
from . import (
    AccountPage,
    Page,
    Parsed,
    QuerySpec,
    ScanContext,
    brand_queries,
    json_body,
    keyword_specs,
    own_account_pages,
    own_specs,
    select,
    stable_key,
)

logger = logging.getLogger(__name__)

DEFAULT_INSTANCE = "https://mastodon.social"
PAGE_LIMIT = 40  # the maximum both endpoints allow
FIRST_RUN_LOOKBACK = timedelta(hours=24)
AUTH_STATUSES = (401, 403, 422)


class MalformedStatus(ValueError):
    pass


def id_key(status_id: str) -> tuple[int, str]:
    """Order of status ids: numeric snowflakes (and fixed-width flake ids) compare by length, then text."""
    return len(status_id), status_id


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _local_id(status: dict[str, Any]) -> str | None:
    value = status.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return None
    return str(value).strip()


def _language(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower().split("-")[0].split("_")[0]


def normalise(item: Any, brand: Brand, query: str) -> Mention:
    """One Status as a Mention (a reblog as the original); MalformedStatus if required fields are bad."""
    if not isinstance(item, dict):
        raise MalformedStatus(f"status is {type(item).__name__}, not an object")
    reblogger: dict[str, Any] | None = None
    status = item
    if item.get("reblog") is not None:
        status = item["reblog"]
        if not isinstance(status, dict):
            raise MalformedStatus(f"reblog in status {_local_id(item)} is not an object")
        account = item.get("account") if isinstance(item.get("account"), dict) else {}
        reblogger = {
            "acct": account.get("acct") if isinstance(account.get("acct"), str) else None,
            "display_name": account.get("display_name") or None,
            "status_id": _local_id(item),
            "created_at": item.get("created_at") if isinstance(item.get("created_at"), str) else None,
        }
    uri = status.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        raise MalformedStatus(f"status {_local_id(status)} has no uri")
    created = status.get("created_at")
    if not isinstance(created, str):
        raise MalformedStatus(f"status {uri} has no created_at")
    try:
        created_at = parse_iso(created)
    except ValueError:
        raise MalformedStatus(f"status {uri} has an unreadable created_at {created[:40]!r}") from None
    content = status.get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedStatus(f"status {uri} has content of type {type(content).__name__}")
    text = html_to_text(content)
    spoiler = status.get("spoiler_text")
    title = html_to_text(spoiler) if isinstance(spoiler, str) else ""
    if not text and not title:
        raise MalformedStatus(f"status {uri} has no text")
    account = status.get("account")
    if not isinstance(account, dict) or not isinstance(account.get("acct"), str) or not account["acct"]:
        raise MalformedStatus(f"status {uri} has no account.acct")
    followers = account.get("followers_count")
    url = status.get("url") if isinstance(status.get("url"), str) and status.get("url") else uri
    parent = status.get("in_reply_to_id")
    raw: dict[str, Any] = {"status_id": _local_id(status), "author_id": full_acct(account)}
    if reblogger:
        raw["reblogged_by"] = reblogger
    return Mention(
        source="mastodon",
        native_id=uri.strip(),
        brand=brand.id,
        query=query,
        author=Author(
            handle=account["acct"],
            display_name=account.get("display_name") or account.get("username") or account["acct"],
            followers=followers if isinstance(followers, int) and not isinstance(followers, bool) else None,
        ),
        text=text or title,
        title=title or None,
        created_at=created_at,
        url=url,
        language=_language(status.get("language")),
        engagement=Engagement(
            reposts=_count(status, "reblogs_count"),
            likes=_count(status, "favourites_count"),
            replies=_count(status, "replies_count"),
        ),
        parent_id=f"mastodon:{parent}" if isinstance(parent, str | int) and str(parent) else None,
        # a status that answers nothing is the root of its own thread (a reply's root needs its context)
        conversation_id=None if parent else f"mastodon:{uri.strip()}",
        raw=raw,
    )


def full_acct(account: dict[str, Any]) -> str:
    """`user@domain` for every account: a local account's `acct` has no domain, its `url` has."""
    acct = str(account.get("acct", "")).lstrip("@")
    if "@" in acct:
        return acct
    host = urlsplit(account["url"]).netloc if isinstance(account.get("url"), str) else ""
    return f"{acct}@{host}" if host else acct


def with_context(mention: Mention, body: Any) -> Mention:
    """A reply placed in its thread from `GET /api/v1/statuses/:id/context`: its parent and the thread's
    root by `uri` (the ids the mentions are stored under) and the author it answers."""
    ancestors = body.get("ancestors") if isinstance(body, dict) else None
    chain = [a for a in ancestors or [] if isinstance(a, dict) and isinstance(a.get("uri"), str)]
    if not chain:
        return mention
    parent, root = chain[-1], chain[0]  # ancestors come root first
    account = parent.get("account") if isinstance(parent.get("account"), dict) else {}
    return mention.with_enrichment(
        parent_id=f"mastodon:{parent['uri']}",
        conversation_id=f"mastodon:{root['uri']}",
        reply_to=account.get("acct") if isinstance(account.get("acct"), str) else None,
    )


@dataclass
class _Batch:
    """One response's statuses: the mentions, and what paging needs (instance ids and times)."""

    parsed: Parsed = field(default_factory=Parsed)
    ids: list[str] = field(default_factory=list)  # instance-local ids of the top-level statuses
    kept: int = 0  # statuses above the floor and inside the first-run window
    reached_floor: bool = False


def statuses_of(body: Any) -> list[Any]:
    """The statuses of a timeline (a JSON array) or of a v2 search result (`statuses`)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("statuses"), list):
        return body["statuses"]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        raise SourceError(f"mastodon: the instance answered an error: {body['error'][:200]}")
    raise SourceError("mastodon: response is neither a list of statuses nor a search result")


def _batch(
    statuses: list[Any], brand: Brand, query: str, floor: str | None, since: datetime | None
) -> _Batch:
    batch = _Batch()
    for item in statuses:
        local = _local_id(item) if isinstance(item, dict) else None
        if local is not None:
            if floor is not None and id_key(local) <= id_key(floor):
                batch.reached_floor = True  # the server ignored since_id, or search reached the floor
                continue
            batch.ids.append(local)
            if since is not None:
                try:
                    wrapper_time = (
                        parse_iso(item["created_at"]) if isinstance(item.get("created_at"), str) else None
                    )
                except ValueError:
                    wrapper_time = None
                if wrapper_time is not None and wrapper_time < since:
                    batch.reached_floor = True
                    continue
        batch.kept += 1
        try:
            batch.parsed.mentions.append(normalise(item, brand, query))
        except MalformedStatus as exc:
            batch.parsed.skipped.append(str(exc))
    return batch


def _next_max_id(response: requests.Response) -> tuple[bool, str | None]:
    """(whether a Link header came, the max_id of its rel="next" link)."""
    if not response.headers.get("Link"):
        return False, None
    link = response.links.get("next", {}).get("url")
    if not link:
        return True, None
    values = parse_qs(urlsplit(link).query).get("max_id")
    return True, values[0] if values else None


class MastodonConnector:
    name = "mastodon"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        specs = [
            QuerySpec(
                key=stable_key("mtag", tag.lower()), label=f"#{tag}", params={"kind": "tag", "hashtag": tag}
            )
            for tag in dict.fromkeys(brand.hashtags)
        ]
        # search streams are listed always; `pages` reads them only when the secret has a token
        specs += keyword_specs(brand, "mastodon", "msearch", kind="search")
        # the brand's own accounts: their statuses are the brand's replies
        return specs + own_specs(brand, "mastodon", "mown")

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]:
        """Reblogs, favourites and replies of stored statuses, re-read one by one with
        `GET /api/v1/statuses/:id` on the configured instance (the id in `raw["status_id"]` is local
        to it). A deleted status (404), one without a local id, or an answer for another post (the
        instance changed since it was stored) is logged and left out."""
        base = (ctx.settings.base_url or DEFAULT_INSTANCE).rstrip("/")
        headers = _headers(ctx)
        out: dict[str, Engagement] = {}
        for done, mention in enumerate(posts):
            if not ctx.time_left():
                logger.info(
                    "mastodon: out of time; watched posts left unread", extra={"left": len(posts) - done}
                )
                break
            status_id = mention.raw.get("status_id")
            if not isinstance(status_id, str) or not status_id:
                logger.info("mastodon: a watched post has no status id to re-read", extra={"id": mention.id})
                continue
            url = f"{base}/api/v1/statuses/{quote(status_id, safe='')}"
            body = _get_json(ctx, url, {}, headers, missing_ok=True)
            if body is None:
                continue  # deleted, or no longer visible to this instance
            try:
                fresh = normalise(body, brand, mention.query)
            except MalformedStatus as exc:
                logger.info("mastodon: a watched post was not re-read", extra={"reason": str(exc)})
                continue
            if fresh.native_id != mention.native_id:
                logger.info(
                    "mastodon: the status id now names another post; not re-read",
                    extra={"id": mention.id, "status_id": status_id},
                )
                continue
            out[mention.id] = fresh.engagement
        return out

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The statuses of one timeline or search response body (a reblog yields the original)."""
        return _batch(statuses_of(json_body(body, "mastodon")), brand, query, None, None).parsed

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        base = (ctx.settings.base_url or DEFAULT_INSTANCE).rstrip("/")
        if spec.params.get("kind") == "own":
            yield from self._own_pages(brand, spec, cursor, ctx, base)
            return
        search = spec.params.get("kind") == "search"
        headers: dict[str, str] = {"Accept": "application/json"}
        if search:
            token = ctx.secret().get("access_token")
            if not token:
                logger.debug("mastodon search needs an access_token; skipped", extra={"query": spec.label})
                return
            headers["Authorization"] = f"Bearer {token}"
        queries = brand_queries(brand)
        position = cursor.position
        place = "offset" if search else "max_id"
        floor: str | None = position.get("min_id")
        top: str | None = position.get("top")
        resume: Any = position.get(place)
        pages_read = 0
        while True:  # one pass; a resumed pass is followed by one fresh pass
            resumed = resume is not None
            if not resumed:
                top = None
            since = None
            if floor is None:
                since = (
                    parse_iso(position["since"])
                    if position.get("since")
                    else ctx.first_run_start(FIRST_RUN_LOOKBACK)
                )
            while True:
                if pages_read >= ctx.settings.max_pages or not ctx.time_left():
                    return
                response = self._fetch(base, spec, headers, floor, resume, ctx)
                pages_read += 1
                statuses = statuses_of(json_body(response.content, "mastodon"))
                batch = _batch(statuses, brand, spec.label, floor, since)
                if batch.ids:
                    newest = max(batch.ids, key=id_key)
                    top = newest if top is None or id_key(newest) > id_key(top) else top
                page = select(batch.parsed, batch.kept, queries, source="mastodon", brand=brand)
                if search:
                    following = (resume or 0) + PAGE_LIMIT if statuses else None
                else:
                    has_link, following = _next_max_id(response)
                    if not has_link and batch.ids:
                        following = min(batch.ids, key=id_key)  # a server without Link headers
                if batch.reached_floor or following is None or not batch.ids:
                    # the pass is complete once this page is stored: everything up to `top` is in
                    if top is not None and (floor is None or id_key(top) > id_key(floor)):
                        floor = top
                    page.position = {"min_id": floor} if floor is not None else {}
                    yield page
                    break
                resume = following
                page.position = {"min_id": floor, "top": top, place: resume}
                if floor is None:
                    del page.position["min_id"]
                    page.position["since"] = utc_iso(since or ctx.first_run_start(FIRST_RUN_LOOKBACK))
                yield page
            resume = None
            if not resumed:
                return

    # ------------------------------------------------------------------ the brand's own account

    def _own_pages(
        self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext, base: str
    ) -> Iterator[Page]:
        """`GET /api/v1/accounts/lookup?acct=`, then the account's statuses newest first (`max_id`);
        each new reply is placed in its thread with `GET /api/v1/statuses/:id/context`."""
        headers = _headers(ctx)
        account = _get_json(ctx, f"{base}/api/v1/accounts/lookup", {"acct": spec.params["account"]}, headers)
        if not isinstance(account, dict) or not isinstance(account.get("id"), str | int):
            raise SourceError(f"mastodon: account lookup for {spec.params['account']!r} answered no id")
        statuses_url = f"{base}/api/v1/accounts/{quote(str(account['id']), safe='')}/statuses"

        def fetch(max_id: str | None) -> AccountPage:
            params: dict[str, Any] = {"limit": PAGE_LIMIT, "exclude_reblogs": "true"}
            if max_id:
                params["max_id"] = max_id
            response = ctx.http.get(statuses_url, params=params, headers=headers)
            if response.status_code != 200:
                raise _status_error(response, spec.label, base)
            statuses = statuses_of(json_body(response.content, "mastodon"))
            ids = [i for i in (_local_id(s) for s in statuses if isinstance(s, dict)) if i]
            has_link, following = _next_max_id(response)
            if not has_link and ids:
                following = min(ids, key=id_key)
            return AccountPage(_batch(statuses, brand, "", None, None).parsed, len(statuses), following)

        def resolve(mentions: list[Mention]) -> list[Mention]:
            placed = []
            for mention in mentions:
                status_id = mention.raw.get("status_id")
                if mention.parent_id and status_id:
                    url = f"{base}/api/v1/statuses/{quote(str(status_id), safe='')}/context"
                    body = _get_json(ctx, url, {}, headers, missing_ok=True)
                    if body is None:
                        logger.info("mastodon: the reply's context is gone; stored unplaced")
                    mention = with_context(mention, body) if body is not None else mention
                placed.append(mention)
            return placed

        yield from own_account_pages(fetch, brand, "mastodon", cursor, ctx, resolve=resolve)

    @staticmethod
    def _fetch(
        base: str, spec: QuerySpec, headers: dict[str, str], floor: str | None, resume: Any, ctx: ScanContext
    ) -> requests.Response:
        if spec.params.get("kind") == "search":
            url = f"{base}/api/v2/search"
            params: dict[str, Any] = {
                "q": spec.params["native"],
                "type": "statuses",
                "resolve": "false",
                "limit": PAGE_LIMIT,
            }
            if resume:
                params["offset"] = resume
        else:
            url = f"{base}/api/v1/timelines/tag/{quote(spec.params['hashtag'], safe='')}"
            params = {"limit": PAGE_LIMIT}
            if floor is not None:
                params["since_id"] = floor
            if resume is not None:
                params["max_id"] = resume
        response = ctx.http.get(url, params=params, headers=headers)
        if response.status_code == 200:
            return response
        host = urlsplit(base).netloc
        detail = _error_detail(response)
        if response.status_code in AUTH_STATUSES:
            if spec.params.get("kind") == "search":
                raise SourceError(
                    f"mastodon: {host} refused the access token for status search "
                    f"(HTTP {response.status_code}{detail}); check access_token (scope read:search)",
                    status=response.status_code,
                )
            raise SourceError(
                f"mastodon: {host} requires sign-in for hashtag timelines "
                f"(HTTP {response.status_code}{detail}); point sources.mastodon.base_url "
                "at an instance with public hashtag timelines",
                status=response.status_code,
            )
        raise SourceError(
            f"mastodon: HTTP {response.status_code}{detail} for {spec.label!r} on {host}",
            status=response.status_code,
        )


def _headers(ctx: ScanContext) -> dict[str, str]:
    """JSON, and the access token when the credentials secret has one (public reads work without)."""
    headers = {"Accept": "application/json"}
    token = ctx.secret().get("access_token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _get_json(
    ctx: ScanContext, url: str, params: dict[str, Any], headers: dict[str, str], *, missing_ok: bool = False
) -> Any:
    """One GET's JSON body; None for a 404 when `missing_ok` (a deleted status); SourceError otherwise."""
    response = ctx.http.get(url, params=params, headers=headers)
    if response.status_code == 404 and missing_ok:
        logger.info("mastodon status gone (deleted or not visible)", extra={"url": urlsplit(url).path})
        return None
    if response.status_code != 200:
        raise _status_error(response, urlsplit(url).path, url)
    return json_body(response.content, "mastodon")


def _status_error(response: requests.Response, what: str, url: str) -> SourceError:
    host = urlsplit(url).netloc
    return SourceError(
        f"mastodon: HTTP {response.status_code}{_error_detail(response)} for {what} on {host}",
        status=response.status_code,
    )


def _error_detail(response: requests.Response) -> str:
    """`: <error>` from a Mastodon error body ({"error": "..."}), or nothing."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return f": {error[:200]}" if isinstance(error, str) and error else ""


CONNECTOR = MastodonConnector()
