"""X (Twitter) API v2 recent search: posts of the last 7 days, newest first, app-only bearer token.

One stream per brand query, translated to X's own syntax (space = AND, OR, -term, parentheses,
"phrases", lang:xx). X refuses a negated group: `-(a OR b)` is rewritten as `-a -b`; a query
that still cannot be written (a negated AND group) or is over 512 characters becomes one
search per OR branch (`native_keywords()` plus the branch's lang: filters). Every post is
re-checked locally against the whole query. Reposts are kept (they are how a fire spreads);
the kind of reference (`retweeted`, `quoted`, `replied_to`) is recorded in `raw`.

Cursor position (the documented polling pattern):
    {"since_id": newest id stored}                                   between passes
    {"since_id"|"start_time", "next_token", "pending_newest"}        while a pass is paged
A pass asks for everything after `since_id` (first run: `start_time` = now - 24 h) and pages
with `next_token`. The first page's `meta.newest_id` is held as `pending_newest` and becomes the
new `since_id` only once the last page of the pass is stored; until then every page keeps the
old `since_id` (or the same `start_time`) with the next token, so a run cut short resumes the
same pass where it stopped and nothing between the old `since_id` and the pages read is skipped.
A `since_id` older than X's 7-day window (a long pause) restarts the pass from 7 days ago.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..config import Brand, SourceSettings
from ..http import SourceError, retry_after_seconds
from ..models import Author, Cursor, Engagement, Mention, parse_iso, utc_iso
from ..query import And, Lang, Node, Not, Or, Query, QueryError, Term, has_positive, parse_query
from . import Page, Parsed, QuerySpec, ScanContext, json_body, select, stable_key

logger = logging.getLogger(__name__)

BASE_URL = "https://api.x.com/2"
SEARCH_PATH = "/tweets/search/recent"
LOOKUP_PATH = "/tweets"  # post lookup: up to 100 ids a call, the same fields as a search
LOOKUP_IDS = 100
MAX_RESULTS = 100
MAX_QUERY_LENGTH = 512  # self-serve limit (Enterprise: 4,096)
FIRST_RUN_LOOKBACK = timedelta(hours=24)
SEARCH_WINDOW = timedelta(days=7)
WINDOW_MARGIN = timedelta(minutes=5)  # stay clear of the 7-day edge: X refuses older since_id/start_time
TWEET_FIELDS = (
    "created_at,author_id,public_metrics,lang,conversation_id,in_reply_to_user_id,referenced_tweets"
)
USER_FIELDS = "username,name,public_metrics"
# what a search and a post lookup ask for with each post: its counts and its author
POST_FIELDS = {"tweet.fields": TWEET_FIELDS, "expansions": "author_id", "user.fields": USER_FIELDS}
SNOWFLAKE_EPOCH_MS = 1288834974657
_PLAIN_WORD = re.compile(r"^\w+$")
_ID = re.compile(r"^\d{1,20}$")
_LANG = re.compile(r"^([a-z]{2})(?:-[A-Za-z0-9]+)?$")
# types of `referenced_tweets`, in both namings, and the kind of post they make
_KINDS = {"retweeted": "repost", "reposted": "repost", "quoted": "quote", "replied_to": "reply"}
_T = TypeVar("_T")


class MalformedPost(ValueError):
    pass


class Untranslatable(QueryError):
    """The query cannot be written in X's syntax as one search (a negated group)."""


# ------------------------------------------------------------------ query translation


def _literal(node: Node) -> str:
    if isinstance(node, Term):
        if node.phrase:
            return '"' + " ".join(node.words) + '"'
        word = node.words[0]
        return word if _PLAIN_WORD.match(word) else f'"{word}"'
    if isinstance(node, Lang):
        return f"lang:{node.code}"
    raise Untranslatable(f"not a literal: {node!r}")


def _render(node: Node) -> str:
    if isinstance(node, Term | Lang):
        return _literal(node)
    if isinstance(node, Not):
        child = node.child
        if isinstance(child, Term | Lang):
            return "-" + _literal(child)
        if isinstance(child, Not):
            return _render(child.child)
        if isinstance(child, Or):  # X: "don't negate a group": -(a OR b) is -a -b
            return _render(And(tuple(Not(c) for c in child.children)))
        raise Untranslatable("X cannot negate a group of ANDed terms")
    if isinstance(node, And):
        return " ".join(_group(c) for c in node.children)
    if isinstance(node, Or):
        return " OR ".join(_group(c) for c in node.children)
    raise Untranslatable(f"unknown query node {node!r}")


def _group(node: Node) -> str:
    text = _render(node)
    return f"({text})" if isinstance(node, And | Or) else text


def x_query(query: Query) -> str:
    """The whole query in X's search syntax; Untranslatable when X cannot express it as one search."""
    if not has_positive(query.root):
        raise QueryError(f"query {query.text!r} has a branch with no positive term to search for")
    text = _render(query.root)
    if len(text) > MAX_QUERY_LENGTH:
        raise Untranslatable(f"query is {len(text)} characters in X syntax; X allows {MAX_QUERY_LENGTH}")
    return text


def x_branch_queries(query: Query) -> list[str]:
    """One AND-only search per OR branch: `native_keywords()` with the branch's lang: filters added."""
    searches = []
    for keywords, branch in zip(query.native_keywords(), query.branches(), strict=True):
        langs = [
            ("-" if isinstance(lit, Not) else "")
            + f"lang:{(lit.child if isinstance(lit, Not) else lit).code}"
            for lit in branch
            if isinstance(lit, Lang) or (isinstance(lit, Not) and isinstance(lit.child, Lang))
        ]
        searches.append(" ".join([keywords, *langs]))
    return searches


def native_searches(text: str) -> list[str]:
    """The X searches that cover a brand query: the query itself, or one per OR branch."""
    query = parse_query(text)
    try:
        return [x_query(query)]
    except Untranslatable as exc:
        logger.info("query searched per OR branch on x", extra={"query": text, "reason": str(exc)})
    searches = []
    for search in x_branch_queries(query):
        if len(search) > MAX_QUERY_LENGTH:
            raise QueryError(f"a branch of query {text!r} is over {MAX_QUERY_LENGTH} characters")
        searches.append(search)
    return list(dict.fromkeys(searches))


# ------------------------------------------------------------------ response shapes


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _language(value: Any) -> str | None:
    """ISO 639-1 from X's BCP 47 tag; `und` and X's own codes (qme, zxx, ...) are None."""
    match = _LANG.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def snowflake_time(post_id: str) -> datetime | None:
    """When an X id was made (ids are snowflakes: milliseconds since X's epoch in the high bits)."""
    if not _ID.match(post_id) or int(post_id) < 1 << 32:
        return None
    return datetime.fromtimestamp(((int(post_id) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)


def normalise(post: Any, users: dict[str, dict[str, Any]], brand: Brand, query: str) -> Mention:
    """One post of `data` (its author joined from `includes.users`); MalformedPost if it is unusable."""
    if not isinstance(post, dict):
        raise MalformedPost(f"post is {type(post).__name__}, not an object")
    post_id = post.get("id")
    if not isinstance(post_id, str) or not _ID.match(post_id):
        raise MalformedPost("post id missing or not numeric")
    created = post.get("created_at")
    try:
        created_at = parse_iso(created) if isinstance(created, str) else None
    except ValueError:
        created_at = None
    if created_at is None:
        raise MalformedPost(f"created_at missing or invalid in post {post_id}")
    note = post.get("note_tweet") or post.get("note_post")
    text = note.get("text") if isinstance(note, dict) and isinstance(note.get("text"), str) else None
    text = text or post.get("text")
    if not isinstance(text, str) or not text.strip():
        raise MalformedPost(f"post {post_id} has no text")
    author_id = post.get("author_id") if isinstance(post.get("author_id"), str) else None
    user = users.get(author_id or "", {})
    username = user.get("username") if isinstance(user.get("username"), str) else None
    name = user.get("name") if isinstance(user.get("name"), str) else None
    user_metrics = user.get("public_metrics") if isinstance(user.get("public_metrics"), dict) else {}
    followers = user_metrics.get("followers_count")
    metrics = post.get("public_metrics") if isinstance(post.get("public_metrics"), dict) else {}
    reposts = _int(metrics.get("retweet_count", metrics.get("repost_count")))
    quotes = _int(metrics.get("quote_count"))
    references: dict[str, str] = {}
    for ref in post.get("referenced_tweets") or post.get("referenced_posts") or []:
        if isinstance(ref, dict) and isinstance(ref.get("type"), str) and isinstance(ref.get("id"), str):
            references.setdefault(ref["type"], ref["id"])
    kind = next((_KINDS[t] for t in references if t in _KINDS), "post")
    replied_to = references.get("replied_to")
    conversation = post.get("conversation_id")
    return Mention(
        source="x",
        native_id=post_id,
        brand=brand.id,
        query=query,
        author=Author(
            handle=username or author_id or "unknown",
            display_name=name,
            followers=followers if isinstance(followers, int) and not isinstance(followers, bool) else None,
        ),
        text=html.unescape(text),  # v2 escapes &, < and > in post text
        created_at=created_at,
        url=f"https://x.com/{username}/status/{post_id}"
        if username
        else f"https://x.com/i/web/status/{post_id}",
        language=_language(post.get("lang")),
        # quotes spread a post as reposts do
        engagement=Engagement(
            reposts=reposts + quotes,
            likes=_int(metrics.get("like_count")),
            replies=_int(metrics.get("reply_count")),
        ),
        parent_id=f"x:{replied_to}" if replied_to else None,
        conversation_id=f"x:{conversation}" if isinstance(conversation, str) and conversation else None,
        # the user a reply answers, by id: care tracking matches it to the waiting mentions' author_id
        reply_to=post["in_reply_to_user_id"] if isinstance(post.get("in_reply_to_user_id"), str) else None,
        raw={
            "kind": kind,
            "referenced": references,
            "author_id": author_id,
            "quotes": quotes,
            "impressions": _int(metrics.get("impression_count")),
        },
    )


def error_kind(body: Any) -> tuple[str | None, str]:
    """What an X error body says: ("rate_limit" | "usage_capped" | None, a short description).

    Two shapes: `{"errors": [{"code": 88, "message": ...}]}` and problem JSON
    `{"title", "detail", "type": "https://api.x.com/2/problems/<kind>"}`.
    """
    if not isinstance(body, dict):
        return None, ""
    problems = [body] if body.get("type") or body.get("title") else []
    errors = body.get("errors")
    if isinstance(errors, list):
        problems += [e for e in errors if isinstance(e, dict)]
    for problem in problems:
        kind = str(problem.get("type") or "").rstrip("/").rsplit("/", 1)[-1]
        if kind == "usage-capped":
            return "usage_capped", "usage cap reached"
        if problem.get("code") == 88 or kind == "rate-limit-exceeded":
            return "rate_limit", "rate limit exceeded" + (" (error 88)" if problem.get("code") == 88 else "")
    if not problems:
        return None, ""
    first = problems[0]
    parts = [str(first[k]) for k in ("title", "detail", "message") if isinstance(first.get(k), str)]
    return None, ": ".join(dict.fromkeys(parts))[:300]


def check_body(body: Any) -> tuple[list[Any], dict[str, dict[str, Any]], dict[str, Any]]:
    """A search response's `data`, its users by id and `meta`; SourceError for error bodies and bad shapes."""
    if not isinstance(body, dict):
        raise SourceError("x: response is not a JSON object")
    if "data" not in body and "meta" not in body:
        kind, description = error_kind(body)
        if kind is not None:  # a throttle body: the caller adds when to retry
            raise SourceError(f"x: {description}", status=429)
        raise SourceError(f"x: error response: {description}" if description else "x: response has no 'meta'")
    data = body.get("data", [])
    if not isinstance(data, list):
        raise SourceError("x: response 'data' is not a list")
    meta = body.get("meta", {})
    if not isinstance(meta, dict):
        raise SourceError("x: response 'meta' is not an object")
    includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
    users = {
        u["id"]: u
        for u in (includes.get("users") if isinstance(includes.get("users"), list) else [])
        if isinstance(u, dict) and isinstance(u.get("id"), str)
    }
    return data, users, meta


def check_lookup(body: Any) -> tuple[list[Any], dict[str, dict[str, Any]], list[str]]:
    """A post lookup response (`GET /2/tweets?ids=`): its `data`, users by id, and why each post asked
    for did not come. Posts deleted, protected or of a suspended account come back with a 200 as
    partial errors (`errors[]` naming the id in `resource_id`/`value`); none found is `errors` alone."""
    errors = body.get("errors") if isinstance(body, dict) else None
    errors = errors if isinstance(errors, list) else []
    partial = [
        e for e in errors if isinstance(e, dict) and isinstance(e.get("resource_id") or e.get("value"), str)
    ]
    if (
        isinstance(body, dict)
        and "data" not in body
        and partial
        and len(partial) == len(errors)
        and error_kind(body)[0] is None
    ):
        body = {**body, "data": []}  # none of the posts asked for is served any more
    data, users, _ = check_body(body)
    reasons = [
        f"post {e.get('resource_id') or e.get('value')}: "
        + (str(e.get("title") or e.get("detail") or "not returned"))[:100]
        for e in partial
    ]
    return data, users, reasons


def parse_posts(data: list[Any], users: dict[str, dict[str, Any]], brand: Brand, query: str) -> Parsed:
    parsed = Parsed()
    for post in data:
        try:
            parsed.mentions.append(normalise(post, users, brand, query))
        except MalformedPost as exc:
            parsed.skipped.append(str(exc))
    return parsed


# ------------------------------------------------------------------ the connector


def _newer(a: str | None, b: str | None) -> str | None:
    """The larger of two numeric ids (either may be missing)."""
    ids = [i for i in (a, b) if isinstance(i, str) and _ID.match(i)]
    return max(ids, key=int) if ids else None


def _next_utc_day(now: datetime) -> datetime:
    return (now.astimezone(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


class XConnector:
    name = "x"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        specs: dict[str, QuerySpec] = {}
        for query in brand.queries:
            try:
                searches = native_searches(query)
            except QueryError as exc:
                logger.warning("skipping query for x", extra={"brand": brand.id, "error": str(exc)})
                continue
            for native in searches:
                key = stable_key("x", native)
                specs.setdefault(
                    key, QuerySpec(key=key, label=native, params={"query": query, "native": native})
                )
        # the brand's own accounts: their replies rarely repeat the watch terms, so they get their
        # own stream; `select` keeps their posts whatever they say and care tracking links them
        for handle in brand.own_accounts.get("x", ()):
            native = f"from:{handle.lstrip('@')}"
            key = stable_key("x", native)
            specs.setdefault(
                key, QuerySpec(key=key, label=native, params={"query": brand.queries[0], "native": native})
            )
        return list(specs.values())

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        token = ctx.secret("bearer_token")["bearer_token"]
        url = (ctx.settings.base_url or BASE_URL).rstrip("/") + SEARCH_PATH
        query = parse_query(spec.params["query"])
        position = cursor.position
        since_id: str | None = position.get("since_id")
        start_time: str | None = position.get("start_time")
        next_token: str | None = position.get("next_token")
        pending: str | None = position.get("pending_newest")
        oldest = ctx.now - SEARCH_WINDOW + WINDOW_MARGIN
        made = snowflake_time(since_id) if since_id else None
        if (made is not None and made < oldest) or (start_time and parse_iso(start_time) < oldest):
            logger.warning(
                "x cursor is older than the 7-day search window; reading from its start",
                extra={"brand": brand.id, "query": spec.label},
            )
            since_id, next_token, pending, start_time = None, None, None, utc_iso(oldest)
        if not since_id and not start_time:
            start_time = utc_iso(ctx.first_run_start(FIRST_RUN_LOOKBACK))
        window = {"since_id": since_id} if since_id else {"start_time": start_time}
        pages_read = 0
        while pages_read < ctx.settings.max_pages and ctx.time_left():
            params: dict[str, Any] = {
                "query": spec.params["native"],
                "max_results": MAX_RESULTS,
                "sort_order": "recency",
                **POST_FIELDS,
                **window,
            }
            if next_token:
                params["next_token"] = next_token
            data, users, meta = self._fetch(url, params, token, ctx, check_body)
            pages_read += 1
            parsed = parse_posts(data, users, brand, query.text)
            page = select(parsed, len(data), [query], source="x", brand=brand)
            if not next_token:  # the first page of a pass: its newest id ends the pass
                pending = meta.get("newest_id") if isinstance(meta.get("newest_id"), str) else None
            following = meta.get("next_token") if isinstance(meta.get("next_token"), str) else None
            if following and following != next_token:
                page.position = {**window, "next_token": following}
                if pending:
                    page.position["pending_newest"] = pending
                yield page
                next_token = following
                continue
            # the pass is complete once this page is stored: everything up to `pending` is in
            newest = _newer(pending, since_id)
            page.position = {"since_id": newest} if newest else {}
            yield page
            return

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]:
        """Reposts, likes and replies of stored posts, re-read with the post lookup `GET /2/tweets?ids=`
        (up to 100 a call; X bills each post read, hence the hourly default). Parsed as a search's
        posts, so the counts are the same; deleted or withheld posts are left out and logged."""
        token = ctx.secret("bearer_token")["bearer_token"]
        url = (ctx.settings.base_url or BASE_URL).rstrip("/") + LOOKUP_PATH
        by_id = {m.native_id: m for m in posts if _ID.match(m.native_id)}
        ids = list(by_id)
        out: dict[str, Engagement] = {}
        for start in range(0, len(ids), LOOKUP_IDS):
            batch = ids[start : start + LOOKUP_IDS]
            if not ctx.time_left():
                logger.info("x: out of time; watched posts not re-read", extra={"posts": len(ids) - start})
                break
            params = {"ids": ",".join(batch), **POST_FIELDS}
            data, users, gone = self._fetch(url, params, token, ctx, check_lookup)
            parsed = parse_posts(data, users, brand, "")
            for fresh in parsed.mentions:
                if fresh.native_id in by_id:
                    out[by_id[fresh.native_id].id] = fresh.engagement
            for reason in gone + parsed.skipped:
                logger.info("x: a watched post was not re-read", extra={"brand": brand.id, "reason": reason})
        return out

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The posts in one raw recent-search response body (authors joined from `includes.users`)."""
        data, users, _ = check_body(json_body(body, "x"))
        return parse_posts(data, users, brand, query)

    @staticmethod
    def _fetch(
        url: str,
        params: dict[str, Any],
        token: str,
        ctx: ScanContext,
        check: Callable[[Any], _T],
    ) -> _T:
        throttled: dict[str, Any] = {}

        def on_response(response: Any, *args: Any, **kwargs: Any) -> None:
            # HttpClient retries a 429 itself; look at the body on the way to tell a cap from a limit
            if response.status_code == 429:
                try:
                    throttled["kind"], throttled["description"] = error_kind(response.json())
                except ValueError:
                    throttled["kind"], throttled["description"] = None, ""
                if throttled["kind"] == "usage_capped":
                    # no use retrying today: keep the host blocked so the next attempt stops at once
                    ctx.http.block(url, (_next_utc_day(ctx.now) - ctx.now).total_seconds())

        hooks: dict[str, list[Callable[..., Any]]] = {"response": [on_response]}
        try:
            response = ctx.http.get(
                url, params=params, headers={"Authorization": f"Bearer {token}"}, hooks=hooks
            )
        except SourceError as exc:
            if exc.status != 429:
                raise
            raise _throttle_error(
                throttled.get("kind"), throttled.get("description"), exc.retry_after, ctx, detail=str(exc)
            ) from None
        if response.status_code != 200:
            raise _status_error(response)
        try:
            return check(json_body(response.content, "x"))
        except SourceError as exc:
            if exc.status != 429:
                raise
            # a throttle body with a 200: wait for the reset headers
            kind, description = error_kind(json_body(response.content, "x"))
            wait = retry_after_seconds(response.headers, ctx.http.wall())
            raise _throttle_error(kind, description, wait, ctx) from None


def _throttle_error(
    kind: str | None,
    description: str | None,
    retry_after: float | None,
    ctx: ScanContext,
    detail: str | None = None,
) -> SourceError:
    if kind == "usage_capped":
        until = _next_utc_day(ctx.now)
        return SourceError(
            f"x: usage cap reached (the post reads of this billing period are used up); "
            f"paused until {utc_iso(until)}",
            status=429,
            retry_after=(until - ctx.now).total_seconds(),
        )
    message = f"x: {description or 'rate limited'}"
    if retry_after is not None:
        message += f"; retry in {retry_after:.0f} s"
    if detail:
        message += f" [{detail}]"
    return SourceError(message, status=429, retry_after=retry_after)


def _status_error(response: Any) -> SourceError:
    try:
        _, description = error_kind(response.json())
    except ValueError:
        kind = response.headers.get("Content-Type", "unknown content type").split(";")[0]
        description = f"answered {kind}"
    where = urlsplit(response.url or "").path or SEARCH_PATH
    hint = {401: " (the bearer token was refused)", 403: " (the app has no access to this endpoint)"}
    return SourceError(
        f"x: HTTP {response.status_code} for {where}{hint.get(response.status_code, '')}"
        + (f": {description}" if description else ""),
        status=response.status_code,
    )


CONNECTOR = XConnector()
