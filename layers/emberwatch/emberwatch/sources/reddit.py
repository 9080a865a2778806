"""Reddit through the OAuth API: post search (`/search`, newest first) and subreddits' newest comments.

Streams per brand: one search per query (translated to Reddit's syntax: "phrase", AND/OR/NOT,
parentheses; Reddit has no language filter, so lang: is left to the local re-check), one
`/r/{sub}/comments` stream per configured subreddit (comments matched locally), and one
`/user/{name}/comments?sort=new` stream per own account (the brand's replies, kept whatever
they say). Tokens come
from `POST /api/v1/access_token` (client credentials, or the password grant for script apps)
and are kept in the token store until they expire; a 401 fetches a new one once.

Neither listing has a `since`: it is read newest first with `after` (which pages older) until
a page reaches the *mark*, the previous high-water mark ({"names": the newest names stored,
"utc": the newest created_utc}): a page holding a marked name, or an item older than the mark
(the marked items may have been deleted), or older than 24 hours, or the listing's end.

Cursor position: {"mark": mark | None, "after": fullname | None, "top": mark | None}.
- Between passes only `mark` is set.
- While a pass is paged, `top` is the mark the pass will leave (taken from its first page) and
  `after` the oldest item stored so far; the old `mark` stays. Each stored page moves `after`.
- A run that finds `after` set first closes that gap: it pages on from `after` down to the old
  mark, then moves the mark to `top`, and only then starts a new pass from the newest item down
  to that mark. So the items between the pages read and the old mark are read before the mark
  moves, and the items newer than `top` are read by the new pass: a cut-short run loses nothing.
- If `after` no longer leads anywhere (an empty page: the item was deleted), the gap is read
  again from the newest item down to the old mark; already stored items are not written twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from ..config import Brand, SourceSettings
from ..http import SourceError
from ..models import Author, Cursor, Engagement, Mention
from ..query import And, Lang, Node, Not, Or, Query, QueryError, Term, has_positive, parse_query
from . import (
    CredentialsError,
    Page,
    Parsed,
    QuerySpec,
    ScanContext,
    brand_queries,
    json_body,
    own_specs,
    reread,
    select,
    stable_key,
)

logger = logging.getLogger(__name__)

BASE_URL = "https://oauth.reddit.com"
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
LIMIT = 100
MAX_QUERY_LENGTH = 512
LOOKBACK = timedelta(hours=24)  # search asks for t=day; comments are read no further back either
MARK_NAMES = 20
TOKEN_MARGIN = 60  # seconds: a token this close to expiry is renewed
USER_AGENT = re.compile(r"^\S+:\S+:\S+ \(by /?u/[\w-]+\)$")
_NAME = re.compile(r"^t[13]_[a-z0-9]{1,16}$")
_PLAIN_WORD = re.compile(r"^\w+$")
_GONE = ("[deleted]", "[removed]")


class MalformedItem(ValueError):
    pass


class Untranslatable(QueryError):
    """The query has nothing Reddit can search for (only language filters)."""


# ------------------------------------------------------------------ query translation


def _term(node: Term) -> str:
    if node.phrase:
        return '"' + " ".join(node.words) + '"'
    word = node.words[0]
    return word if _PLAIN_WORD.match(word) else f'"{word}"'


def _render(node: Node) -> str | None:
    """Reddit syntax for a node; None when the node constrains nothing Reddit can see (lang:)."""
    if isinstance(node, Term):
        return _term(node)
    if isinstance(node, Lang):
        return None
    if isinstance(node, Not):
        inner = _render(node.child)
        return None if inner is None else f"NOT {_wrap(node.child, inner)}"
    if isinstance(node, And):
        parts = [(c, text) for c in node.children if (text := _render(c)) is not None]
        if not parts:
            return None
        return parts[0][1] if len(parts) == 1 else " AND ".join(_wrap(c, text) for c, text in parts)
    if isinstance(node, Or):
        parts = [(c, _render(c)) for c in node.children]
        if any(text is None for _, text in parts):
            return None  # one branch is "any language-matching post": Reddit cannot narrow it
        return " OR ".join(_wrap(c, text) for c, text in parts if text is not None)
    raise Untranslatable(f"unknown query node {node!r}")


def _wrap(node: Node, text: str) -> str:
    if isinstance(node, And | Or) and (" AND " in text or " OR " in text):
        return f"({text})"
    return text


def reddit_query(query: Query) -> str:
    """The whole query in Reddit's search syntax (lang: dropped); Untranslatable if nothing is left."""
    if not has_positive(query.root):
        raise QueryError(f"query {query.text!r} has a branch with no positive term to search for")
    text = _render(query.root)
    if text is None:
        raise Untranslatable(f"query {query.text!r} has nothing Reddit can search for")
    return text


def native_searches(text: str) -> list[str]:
    """The Reddit searches covering a brand query: the query itself, or one per OR branch when too long."""
    query = parse_query(text)
    whole = reddit_query(query)
    if len(whole) <= MAX_QUERY_LENGTH:
        return [whole]
    searches = []
    for branch in query.branches():
        rendered = _render(And(tuple(branch)))
        if rendered is None or len(rendered) > MAX_QUERY_LENGTH:
            raise QueryError(f"a branch of query {text!r} cannot be searched on Reddit (over 512 characters)")
        searches.append(rendered)
    return list(dict.fromkeys(searches))


# ------------------------------------------------------------------ response shapes


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, float) else 0


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def normalise(child: Any, brand: Brand, query: str) -> Mention:
    """One listing child (t3 post or t1 comment) as a Mention; MalformedItem if it is unusable."""
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        raise MalformedItem("listing child is not an object with 'data'")
    kind, data = child.get("kind"), child["data"]
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise MalformedItem(f"{kind} item has no valid 'name'")
    if kind not in ("t1", "t3") or not name.startswith(f"{kind}_"):
        raise MalformedItem(f"item {name} is of kind {kind!r}, not a post or comment")
    created = data.get("created_utc")
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise MalformedItem(f"created_utc is not a number in item {name}")
    native = name.split("_", 1)[1]
    author = _text(data, "author") or "[deleted]"
    subreddit = _text(data, "subreddit") or None
    permalink = _text(data, "permalink")
    is_comment = kind == "t1"
    link_id = data.get("link_id") if isinstance(data.get("link_id"), str) else None
    parent = data.get("parent_id") if isinstance(data.get("parent_id"), str) else None
    if is_comment:
        body = _text(data, "body")
        if not body or body in _GONE:
            raise MalformedItem(f"comment {name} has no text (deleted or removed)")
        title, text = None, body
        if not permalink and link_id:
            permalink = f"/comments/{link_id.split('_', 1)[-1]}/_/{native}/"
    else:
        title = _text(data, "title")
        selftext = _text(data, "selftext")
        if not title or selftext in _GONE:
            raise MalformedItem(f"post {name} has no title or was deleted")
        text = f"{title}\n\n{selftext}" if selftext else title
        permalink = permalink or f"/comments/{native}/"
    return Mention(
        source="reddit",
        native_id=name,
        brand=brand.id,
        query=query,
        author=Author(handle=author, display_name=author),
        text=text,
        title=title,
        created_at=datetime.fromtimestamp(created, UTC),
        url="https://www.reddit.com" + (permalink if permalink.startswith("/") else "/" + permalink),
        engagement=Engagement(score=_int(data.get("score")), replies=_int(data.get("num_comments"))),
        parent_id=f"reddit:{parent}" if is_comment and parent else None,
        conversation_id=f"reddit:{link_id}"
        if is_comment and link_id
        else (None if is_comment else f"reddit:{name}"),
        # a comment on the post itself answers the post's author (`link_author` on comment listings)
        reply_to=(_text(data, "link_author") or None) if is_comment and parent == link_id else None,
        raw={
            "kind": "comment" if is_comment else "post",
            "subreddit": subreddit,
            "link": None if is_comment or data.get("is_self") else data.get("url"),
            "link_title": (_text(data, "link_title") or None) if is_comment else None,
            "over_18": bool(data.get("over_18")),
        },
    )


def check_listing(body: Any) -> tuple[list[Any], str | None]:
    """A Listing's children and its `after`; SourceError for error bodies and wrong shapes."""
    if not isinstance(body, dict):
        raise SourceError("reddit: response is not a JSON object")
    if "error" in body and "data" not in body:
        message = body.get("message") or body.get("reason") or ""
        raise SourceError(f"reddit: error {body.get('error')} {message}".strip())
    data = body.get("data")
    if body.get("kind") != "Listing" or not isinstance(data, dict):
        raise SourceError("reddit: response is not a Listing")
    children = data.get("children")
    if not isinstance(children, list):
        raise SourceError("reddit: Listing has no 'children' list")
    after = data.get("after")
    return children, after if isinstance(after, str) and _NAME.match(after) else None


def parse_children(children: list[Any], brand: Brand, query: str) -> Parsed:
    parsed = Parsed()
    for child in children:
        try:
            parsed.mentions.append(normalise(child, brand, query))
        except MalformedItem as exc:
            parsed.skipped.append(str(exc))
    return parsed


# ------------------------------------------------------------------ the connector


def _mark(mentions: list[Mention]) -> dict[str, Any] | None:
    """The high-water mark a pass leaves: the newest names of its first page and the newest time."""
    if not mentions:
        return None
    newest = sorted(mentions, key=lambda m: m.created_at, reverse=True)
    return {
        "names": [m.native_id for m in newest[:MARK_NAMES]],
        "utc": newest[0].created_at.timestamp(),
    }


class RedditConnector:
    name = "reddit"

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]:
        specs: dict[str, QuerySpec] = {}
        for query in brand.queries:
            try:
                searches = native_searches(query)
            except QueryError as exc:
                logger.warning("skipping query for reddit", extra={"brand": brand.id, "error": str(exc)})
                continue
            for native in searches:
                key = stable_key("reddit", f"search:{native}")
                specs.setdefault(
                    key,
                    QuerySpec(
                        key=key, label=native, params={"kind": "search", "query": query, "native": native}
                    ),
                )
        for sub in brand.subreddits:
            key = stable_key("reddit", f"comments:{sub.lower()}")
            specs.setdefault(
                key,
                QuerySpec(key=key, label=f"r/{sub} comments", params={"kind": "comments", "subreddit": sub}),
            )
        # the brand's own accounts: their newest comments are the brand's replies
        for spec in own_specs(brand, "reddit", "reddit-own"):
            specs.setdefault(spec.key, spec)
        return list(specs.values())

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]:
        session = _Session(ctx)
        if spec.params["kind"] == "search":
            queries = [parse_query(spec.params["query"])]
            path = "/search"
            fixed = {"q": spec.params["native"], "sort": "new", "t": "day", "type": "link"}
        elif spec.params["kind"] == "own":
            queries = []  # `select` keeps the account's comments as the brand's own, whatever they say
            path = f"/user/{spec.params['account']}/comments"
            fixed = {"sort": "new"}
        else:
            queries = brand_queries(brand)
            path = f"/r/{spec.params['subreddit']}/comments"
            fixed = {}
        position = cursor.position
        mark: dict[str, Any] | None = position.get("mark")
        after: str | None = position.get("after")
        top: dict[str, Any] | None = position.get("top")
        resuming = after is not None  # a gap left by an earlier run is closed before a new pass
        check_resume_point = resuming
        floor = (ctx.now - LOOKBACK).timestamp()
        pages_read = 0
        while pages_read < ctx.settings.max_pages and ctx.time_left():
            body = session.get(
                path, {**fixed, "limit": LIMIT, "raw_json": 1, **({"after": after} if after else {})}
            )
            pages_read += 1
            children, next_after = check_listing(body)
            parsed = parse_children(children, brand, queries[0].text if len(queries) == 1 else "")
            marked = set(mark["names"]) if mark else set()
            page = select(
                parsed,
                len(children),
                queries,
                {f"reddit:{n}" for n in marked},
                source="reddit",
                brand=brand,
            )
            if check_resume_point and not children:
                # the stored `after` leads nowhere (its item was deleted): read the gap again from
                # the newest item down to the old mark
                logger.info(
                    "reddit listing is empty at the resume point; reading from the newest",
                    extra={"brand": brand.id, "query": spec.label},
                )
                after, top, resuming, check_resume_point = None, None, False, False
                continue
            check_resume_point = False
            if after is None:
                top = _mark(parsed.mentions) or top
            stop_utc = max(floor, mark["utc"] if mark else floor)
            reached = (
                next_after is None
                or not children
                or any(m.native_id in marked for m in parsed.mentions)
                or any(m.created_at.timestamp() < stop_utc for m in parsed.mentions)
            )
            if not reached:
                after = next_after
                page.position = {"mark": mark, "after": after, "top": top}
                yield page
                continue
            mark = top or mark
            page.position = {"mark": mark, "after": None, "top": None}
            yield page
            if not resuming:
                return
            # the gap below the last run's pages is closed; now read what is newer than its top
            after, top, resuming = None, None, False

    def engagement(self, brand: Brand, posts: list[Mention], ctx: ScanContext) -> dict[str, Engagement]:
        """Score and comment count of stored posts and comments, re-read with `/api/info?id=` (up to 100
        fullnames a call, the same Listing shape as a search); deleted or unreadable ones are left out."""
        session = _Session(ctx)
        by_name = {m.native_id: m for m in posts}
        out: dict[str, Engagement] = {}
        names = list(by_name)
        for start in range(0, len(names), 100):
            children, _ = check_listing(
                session.get("/api/info", {"id": ",".join(names[start : start + 100])})
            )
            reread(by_name, parse_children(children, brand, ""), "reddit", out)
        return out

    def parse(self, body: bytes, brand: Brand, query: str) -> Parsed:
        """The posts or comments in one raw Listing body (search or /r/{sub}/comments)."""
        children, _ = check_listing(json_body(body, "reddit"))
        return parse_children(children, brand, query)


class _Session:
    """Authorised GETs against the OAuth API: User-Agent, bearer token from the store, one renewal on 401."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        secret = ctx.secret("client_id", "client_secret", "user_agent")
        if not USER_AGENT.match(str(secret["user_agent"])):
            raise CredentialsError(
                "reddit: the credentials secret's user_agent must read "
                "'<platform>:<app id>:<version> (by /u/<name>)'"
            )
        self.secret = secret
        base = ctx.settings.base_url
        self.base = (base or BASE_URL).rstrip("/")
        self.token_url = f"{base.rstrip('/')}/api/v1/access_token" if base else TOKEN_URL
        self.account = str(secret["client_id"])

    def get(self, path: str, params: dict[str, Any]) -> Any:
        token = self._token(renew=False)
        response = self._request(path, params, token)
        if response.status_code == 401:
            response = self._request(path, params, self._token(renew=True))
        if response.status_code == 200:
            return json_body(response.content, "reddit")
        content_type = response.headers.get("Content-Type", "")
        if response.status_code == 403 and ("html" in content_type or response.content.lstrip()[:1] == b"<"):
            raise SourceError(
                "reddit: HTTP 403 with an HTML page: Reddit is blocking this client "
                "(check the User-Agent and the OAuth app's approval)",
                status=403,
            )
        detail = ""
        try:
            body = response.json()
            if isinstance(body, dict):
                detail = str(body.get("reason") or body.get("message") or "")[:200]
        except ValueError:
            pass
        what = "the token was refused twice" if response.status_code == 401 else detail
        raise SourceError(
            f"reddit: HTTP {response.status_code} for {path}" + (f": {what}" if what else ""),
            status=response.status_code,
        )

    def _request(self, path: str, params: dict[str, Any], token: str) -> requests.Response:
        headers = {"Authorization": f"bearer {token}", "User-Agent": self.secret["user_agent"]}
        try:
            return self.ctx.http.get(self.base + path, params=params, headers=headers)
        except SourceError as exc:
            if exc.status == 429:
                raise SourceError(
                    f"reddit: rate limited (100 requests a minute per OAuth client): {exc}",
                    status=429,
                    retry_after=exc.retry_after,
                ) from None
            raise

    def _token(self, *, renew: bool) -> str:
        wall = self.ctx.http.wall()
        tokens = self.ctx.tokens
        if not renew and tokens is not None:
            stored = tokens.get_token("reddit", self.account)
            if (
                stored
                and isinstance(stored.get("access_token"), str)
                and float(stored.get("expires_at", 0)) > wall + TOKEN_MARGIN
            ):
                return stored["access_token"]
        if self.secret.get("username") and self.secret.get("password"):
            form = {
                "grant_type": "password",
                "username": self.secret["username"],
                "password": self.secret["password"],
            }
        else:
            form = {"grant_type": "client_credentials"}
        response = self.ctx.http.post(
            self.token_url,
            data=form,
            auth=(str(self.secret["client_id"]), str(self.secret["client_secret"])),
            headers={"User-Agent": self.secret["user_agent"]},
        )
        if response.status_code != 200:
            raise SourceError(
                f"reddit: token request refused with HTTP {response.status_code} "
                "(check client_id and client_secret, or username and password)",
                status=response.status_code,
            )
        body = json_body(response.content, "reddit")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            error = body.get("error") if isinstance(body, dict) else None
            raise SourceError(
                f"reddit: token request failed: {error}"
                if isinstance(error, str)
                else "reddit: no access_token"
            )
        lifetime = body.get("expires_in")
        lifetime = lifetime if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) else 3600
        expires_at = wall + float(lifetime)
        if tokens is not None:
            tokens.put_token(
                "reddit",
                self.account,
                {"access_token": body["access_token"], "expires_at": expires_at, "scope": body.get("scope")},
                datetime.fromtimestamp(expires_at, UTC),
            )
        return body["access_token"]


CONNECTOR = RedditConnector()
