"""A local HTTP server that plays Hacker News (Algolia) search and Google Alerts Atom feeds.

It serves a ``Traffic`` in the APIs' real response formats, revealing only the posts created at or
before its simulated clock ``now``, so the real connectors can be pointed at ``base_url``::

    with SourceServer(generate(start=monday)) as server:
        server.now = monday + timedelta(hours=9)
        requests.get(f"{server.base_url}/hn/api/v1/search_by_date", params={"query": '"acme widgets"'})

Endpoints: ``GET /hn/api/v1/search_by_date`` and ``GET /alerts/feeds/<user>/<alert>``; anything
else is a 404. ``fail_next()`` injects errors; ``requests`` records every request.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import threading
import time
import unicodedata
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from xml.sax.saxutils import escape, quoteattr

from sim.traffic import SimPost, Traffic

HN_SEARCH_PATH = "/hn/api/v1/search_by_date"
ALERTS_PATH = re.compile(r"^/alerts/feeds/([^/]+)/([^/]+)$")
PAGINATION_LIMIT = 1000  # Algolia's paginationLimitedTo: hits beyond it are unreachable
MAX_HITS_PER_PAGE = 1000
FEED_SIZE = 20

_NUMERIC_FILTER = re.compile(r"^\s*(created_at_i|points|num_comments)\s*(<=|>=|!=|<|>|=)\s*(-?\d+)\s*$")
_QUERY_TERM = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')
_TAG_GROUP = re.compile(r"\s*(?:\(([^()]*)\)|([^,()]+))\s*(?:,|$)")
_WORD = re.compile(r"[^\W_]+")
_TAG = re.compile(r"<[^>]*>")
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<": int.__lt__,
    "<=": int.__le__,
    "=": int.__eq__,
    "!=": int.__ne__,
    ">=": int.__ge__,
    ">": int.__gt__,
}


class _Response(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


class _BadRequest(ValueError):
    """A parameter Algolia would reject with a 400."""


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Response:
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    return _Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tokens(text: str) -> tuple[str, ...]:
    """Lower-cased, accent-folded words, split on anything that is not a letter or digit."""
    folded = unicodedata.normalize("NFKD", text.lower())
    return tuple(_WORD.findall("".join(c for c in folded if not unicodedata.combining(c))))


def _html_tokens(markup: str) -> tuple[str, ...]:
    return _tokens(html.unescape(_TAG.sub(" ", markup)))


class _Query:
    """An Algolia query with advanced syntax: ANDed words (the last one prefix-matched),
    ``"exact phrases"`` and ``-exclusions``, case- and accent-insensitive."""

    def __init__(self, text: str) -> None:
        self.words: list[str] = []
        self.phrases: list[tuple[str, ...]] = []
        self.excluded: list[tuple[str, ...]] = []
        self.prefix = ""
        last_is_word = False
        for match in _QUERY_TERM.finditer(text):
            negated = bool(match.group(1) or match.group(3))
            quoted = match.group(2) is not None
            tokens = _tokens(match.group(2) if quoted else match.group(4))
            last_is_word = not (negated or quoted) and len(tokens) == 1
            if not tokens:
                continue
            if negated:
                self.excluded.append(tokens)
            elif quoted or len(tokens) > 1:
                self.phrases.append(tokens)
            else:
                self.words.append(tokens[0])
        if last_is_word:
            self.prefix = self.words.pop()

    def matches(self, fields: tuple[tuple[str, ...], ...], vocabulary: frozenset[str]) -> bool:
        if not all(word in vocabulary for word in self.words):
            return False
        if self.prefix and not any(token.startswith(self.prefix) for token in vocabulary):
            return False
        if not all(_contains(fields, phrase) for phrase in self.phrases):
            return False
        return not any(_contains(fields, phrase) for phrase in self.excluded)


def _contains(fields: tuple[tuple[str, ...], ...], phrase: tuple[str, ...]) -> bool:
    """Whether the consecutive tokens ``phrase`` occur within one field."""
    size = len(phrase)
    return any(
        field[i : i + size] == phrase
        for field in fields
        for i in range(len(field) - size + 1)
        if field[i] == phrase[0]
    )


def _parse_tags(text: str) -> list[frozenset[str]]:
    """``a,(b,c)`` → [{a}, {b, c}]: groups are ANDed, alternatives inside parentheses ORed."""
    groups, position = [], 0
    while position < len(text):
        match = _TAG_GROUP.match(text, position)
        if match is None:
            raise _BadRequest(f"invalid tags: {text}")
        alternatives = match.group(1) if match.group(1) is not None else match.group(2)
        if group := frozenset(tag.strip() for tag in alternatives.split(",") if tag.strip()):
            groups.append(group)
        position = match.end()
    return groups


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer") from None


class _HackerNews:
    """The Algolia ``search_by_date`` index over the traffic's HN posts, oldest first."""

    def __init__(self, posts: list[SimPost]) -> None:
        self.posts = [p for p in posts if p.kind in ("hn_story", "hn_comment")]
        self.times = [int(p.created.timestamp()) for p in self.posts]
        self.hits = [self._hit(p) for p in self.posts]
        self.fields = [self._fields(p) for p in self.posts]
        self.vocabularies = [
            frozenset(token for field in fields for token in field) for fields in self.fields
        ]
        self.tags = [frozenset(hit["_tags"]) for hit in self.hits]
        children: dict[int, tuple[list[int], list[int]]] = {}  # story id -> direct replies (times, ids)
        for post, created in zip(self.posts, self.times, strict=True):
            if post.kind == "hn_comment" and post.parent_id == post.story_id:
                times, ids = children.setdefault(post.parent_id, ([], []))
                times.append(created)
                ids.append(int(post.native_id))
        self.children = children
        # every comment of a story (any depth), oldest first: a story's counts grow as they arrive
        threads: dict[int, list[int]] = {}
        for post, created in zip(self.posts, self.times, strict=True):
            if post.kind == "hn_comment" and post.story_id is not None:
                threads.setdefault(post.story_id, []).append(created)
        self.threads = {story: sorted(times) for story, times in threads.items()}
        self.matching = lru_cache(maxsize=512)(self._matching)

    @staticmethod
    def _hit(post: SimPost) -> dict[str, Any]:
        """The static part of an Algolia hit (stories get ``children`` per request)."""
        created = _iso(post.created)
        hit: dict[str, Any] = {
            "_tags": [post.kind.removeprefix("hn_"), f"author_{post.author}", f"story_{post.story_id}"],
            "author": post.author,
            "created_at": created,
            "created_at_i": int(post.created.timestamp()),
            "objectID": post.native_id,
            "story_id": post.story_id,
            "updated_at": created,
        }
        if post.kind == "hn_comment":
            hit.update(comment_text=post.text, parent_id=post.parent_id, story_title=post.story_title)
            hit["story_url"] = post.url or None
            return hit
        for prefix, tag in (("Ask HN:", "ask_hn"), ("Show HN:", "show_hn")):
            if post.title.startswith(prefix):
                hit["_tags"].append(tag)
        hit.update(title=post.title, points=post.points, num_comments=post.num_comments)
        if post.url:
            hit["url"] = post.url
        if post.text:
            hit["story_text"] = post.text
        return hit

    @staticmethod
    def _fields(post: SimPost) -> tuple[tuple[str, ...], ...]:
        """Searchable attributes: title, story_text / comment_text and url (for stories)."""
        if post.kind == "hn_comment":
            return (_html_tokens(post.text),)
        return _tokens(post.title), _html_tokens(post.text), _tokens(post.url)

    def _matching(self, query: str, tags: str) -> list[int]:
        """Indexes (oldest first) of every post matching ``query`` and ``tags``, whatever the clock."""
        parsed, groups = _Query(query), _parse_tags(tags)
        return [
            i
            for i in range(len(self.posts))
            if all(group & self.tags[i] for group in groups)
            and parsed.matches(self.fields[i], self.vocabularies[i])
        ]

    def search(self, params: Mapping[str, str], now: int) -> _Response:
        """One ``search_by_date`` request: newest first, at most ``PAGINATION_LIMIT`` hits reachable."""
        started = time.perf_counter()
        query = params.get("query", "")
        page = _int_param(params, "page", 0)
        per_page = min(max(_int_param(params, "hitsPerPage", 20), 0), MAX_HITS_PER_PAGE)
        if page < 0:
            raise _BadRequest("page must be >= 0")
        low, high, checks = 0, now, []
        for condition in filter(None, (c.strip() for c in params.get("numericFilters", "").split(","))):
            match = _NUMERIC_FILTER.match(condition)
            if not match:
                raise _BadRequest(f"invalid numericFilters: {condition}")
            attribute, operator, value = match.group(1), match.group(2), int(match.group(3))
            if attribute == "created_at_i" and operator != "!=":
                if operator in (">=", ">", "="):
                    low = max(low, value + (operator == ">"))
                if operator in ("<=", "<", "="):
                    high = min(high, value - (operator == "<"))
            else:
                checks.append((attribute, _COMPARE[operator], value))
        matched = self.matching(query, params.get("tags", ""))
        oldest = bisect_left(matched, low, key=self.times.__getitem__)
        candidates = matched[oldest : bisect_right(matched, high, key=self.times.__getitem__)]
        if checks:
            candidates = [
                i for i in candidates if all(_numeric(self.hits[i], a, op, v) for a, op, v in checks)
            ]
        reachable = min(len(candidates), PAGINATION_LIMIT)
        first, last = page * per_page, min((page + 1) * per_page, reachable)
        newest_first = candidates[::-1]
        payload = {
            "exhaustive": {"nbHits": True, "typo": True},
            "exhaustiveNbHits": True,
            "exhaustiveTypo": True,
            "hits": [self._render(i, now) for i in newest_first[first:last]] if first < last else [],
            "hitsPerPage": per_page,
            "nbHits": len(candidates),
            "nbPages": math.ceil(reachable / per_page) if per_page else 0,
            "page": page,
            "params": urlencode({**params, "advancedSyntax": "true"}),
            "processingTimeMS": max(1, round((time.perf_counter() - started) * 1000)),
            "query": query,
        }
        return _json(200, payload)

    def _render(self, index: int, now: int) -> dict[str, Any]:
        hit = self.hits[index]
        if "comment_text" in hit:
            return hit
        story = int(hit["objectID"])
        times, ids = self.children.get(story, ((), ()))
        rendered = {**hit, "children": list(ids[: bisect_right(times, now)])}
        thread = self.threads.get(story)
        if thread and isinstance(hit.get("num_comments"), int):
            # num_comments as of `now`: the story's final count in step with its simulated comments
            arrived = bisect_right(thread, now)
            rendered["num_comments"] = round(hit["num_comments"] * arrived / len(thread))
        return rendered


def _numeric(hit: Mapping[str, Any], attribute: str, compare: Callable[[int, int], bool], value: int) -> bool:
    """Algolia skips records that lack the attribute (comments have no points)."""
    actual = hit.get(attribute)
    return actual is not None and compare(actual, value)


class _AlertsFeed:
    """The Google Alerts Atom feed: the 20 newest visible entries, rendered once per clock step."""

    def __init__(self, traffic: Traffic) -> None:
        entries = [p for p in traffic.posts if p.kind == "alert_entry"]
        self.traffic = traffic
        self.entries = entries
        self.times = [int(p.created.timestamp()) for p in entries]
        self.xml = [self._entry(p) for p in entries]
        self.title = escape(f'Google Alert - "{traffic.brand.lower()}"')
        self.render = lru_cache(maxsize=256)(self._render)

    @staticmethod
    def _entry(post: SimPost) -> str:
        digest = hashlib.sha256(post.native_id.encode()).digest()
        cd = "CAIyG" + base64.urlsafe_b64encode(digest[:12]).decode()
        usg = "AOvVaw" + base64.urlsafe_b64encode(digest[12:30]).decode()[:22]
        link = (
            f"https://www.google.com/url?rct=j&sa=t&url={quote(post.url, safe=':/')}&ct=ga&cd={cd}&usg={usg}"
        )
        stamp = _iso(post.created)
        return (
            f"<entry><id>tag:google.com,2013:googlealerts/feed:{post.native_id}</id>"
            f'<title type="html">{escape(post.title)}</title>'
            f"<link href={quoteattr(link)}/>"
            f"<published>{stamp}</published><updated>{stamp}</updated>"
            f'<content type="html">{escape(post.text)}</content>'
            f"<author><name/></author></entry>"
        )

    def _render(self, user: str, alert: str, visible: int) -> tuple[bytes, str, datetime | None]:
        """(body, ETag, newest entry time) of the feed when the first ``visible`` entries exist."""
        shown = range(visible - 1, max(visible - FEED_SIZE, 0) - 1, -1)
        ids = "\n".join(self.entries[i].native_id for i in shown)
        etag = '"' + hashlib.sha1(ids.encode()).hexdigest() + '"'
        newest = self.entries[visible - 1].created if visible else None
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:idx="urn:atom-extension:indexing">'
            f"<id>tag:google.com,2005:reader/user/{escape(user)}/state/com.google/alerts/{escape(alert)}</id>"
            f"<title>{self.title}</title>"
            f'<link href="https://www.google.com/alerts/feeds/{escape(user)}/{escape(alert)}" rel="self"/>'
            f"<updated>{_iso(newest or self.traffic.start)}</updated>"
            + "".join(self.xml[i] for i in shown)
            + "</feed>"
        )
        return body.encode(), etag, newest

    def respond(self, user: str, alert: str, now: int, request_headers: Mapping[str, str]) -> _Response:
        body, etag, newest = self.render(user, alert, bisect_right(self.times, now))
        headers = {"Content-Type": "application/atom+xml; charset=utf-8", "ETag": etag}
        if newest is not None:
            headers["Last-Modified"] = format_datetime(newest, usegmt=True)
        if _not_modified(request_headers, etag, newest):
            return _Response(304, b"", headers)
        return _Response(200, body, headers)


def _not_modified(request_headers: Mapping[str, str], etag: str, newest: datetime | None) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since; a bad date is ignored."""
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request_headers.get("If-Modified-Since")
    if if_modified_since is None or newest is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return since.tzinfo is not None and newest <= since


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sim: SourceServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sim = sim


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a requests.Session reuses its connection
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # headers and body leave in one segment (flushed after each request)
    server: _HTTPServer

    def do_GET(self) -> None:
        response = self.server.sim.handle(self.path, self.headers)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 304:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.status != 304:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the demo makes thousands of requests."""


class SourceServer:
    """Serves ``traffic`` on 127.0.0.1 (a free port) as seen at the simulated clock ``now``.

    ``now`` defaults to the end of the traffic, when every post is visible. ``requests`` records
    ``(path, query dict, status)`` for every request, injected failures included.
    """

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.requests: list[tuple[str, dict[str, str], int]] = []
        self._hn = _HackerNews(traffic.posts)
        self._alerts = _AlertsFeed(traffic)
        self._failures: deque[_Response] = deque()
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.now = traffic.end

    @property
    def now(self) -> datetime:
        """The simulated clock: only posts created at or before it are served."""
        return self._now

    @now.setter
    def now(self, value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        self._now = value.astimezone(UTC)
        self._now_ts = math.floor(value.timestamp())

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SourceServer:
        """Bind a free port and serve in a daemon thread."""
        if self._httpd is None:
            self._httpd = _HTTPServer(self)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="sim-sources",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self) -> SourceServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(
        self, n: int, status: int = 500, body: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer the next ``n`` requests (any endpoint) with ``status``, ``body`` and ``headers``.

        The body defaults to an Algolia-style JSON error.
        """
        if body is None:
            response = _json(status, {"message": "simulated failure", "status": status}, headers)
        else:
            response = _Response(
                status, body.encode(), {"Content-Type": "application/json", **(headers or {})}
            )
        with self._lock:
            self._failures.extend([response] * n)

    def handle(self, target: str, headers: Mapping[str, str]) -> _Response:
        """Answer one GET of ``target`` (path and query string) and record it."""
        split = urlsplit(target)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        response = failure or self._route(split.path, params, headers)
        with self._lock:
            self.requests.append((split.path, params, response.status))
        return response

    def _route(self, path: str, params: dict[str, str], headers: Mapping[str, str]) -> _Response:
        try:
            if path == HN_SEARCH_PATH:
                return self._hn.search(params, self._now_ts)
            if match := ALERTS_PATH.match(path):
                return self._alerts.respond(match.group(1), match.group(2), self._now_ts, headers)
        except _BadRequest as error:
            return _json(400, {"message": str(error), "status": 400})
        return _json(404, {"message": f"no such endpoint: {path}", "status": 404})
