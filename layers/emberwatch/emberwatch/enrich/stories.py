"""Stories: the posts that are one thing spreading (reposts, quotes, copies, the same link) share a key.

A story counts once among top posts; its posts all still count in volume. `story_key` picks the
first of these that applies:

1. `ref:<source>:<id>`: a repost or quote whose original the source names (X `referenced_tweets`
   retweeted/quoted, a caller-supplied `repost_of`), or a post that is a short comment on an X
   status link. All reposts of one post share the original's id. When the caller also has the
   original's text (`original_text`), the repost is keyed like that text instead, so it joins the
   original and the original's copies.
2. `url:<hash>`: the post is a link (`link`: a feed entry's article, a Hacker News story's URL) or
   mainly a link (at most LINK_POST_WORDS words besides it), keyed by the
   canonical URL: https, lower-case host without www./m./amp., redirects unwrapped (Google,
   Facebook, Reddit, YouTube, ...), tracking parameters dropped (utm_*, fbclid, gclid, ref, ...),
   the rest sorted, no fragment, no trailing slash.
3. `sim:<hex>`: the top KEY_BITS bits of a 64-bit SimHash over the post's content words. Before
   hashing, the text is normalised so the usual kinds of copy give the same words: an "RT @x:"
   prefix and a short comment before a quoted post are dropped; case, punctuation, emoji,
   handles, links, numbers-as-words, function words of eight languages, filler ("same", "this",
   "+1", "lol") and stretched letters ("sooo") go; simple plurals and -ing/-ed endings are cut;
   a few spellings are merged ("can't"/"cannot", "log in"/"login"). Words are a set: order and
   repetition do not matter.
4. `txt:<hash>`: too few content words (under MIN_FEATURES) for a SimHash to mean anything: only the
   same short text (its words, in order; or its emoji when it has no words) shares a key; with
   nothing left, `id:<mention id>`.

The trade-off, collisions against splits. One key per post means no multi-band lookup: two posts
share a `sim:` key only when none of the top KEY_BITS bits differ, which for short posts means
(nearly) the same set of content words. More bits split more near-duplicates; fewer bits merge
unrelated posts. Emberwatch errs towards splitting: a false merge hides a distinct complaint from
top posts (the care team never sees it), a split only shows one story as two cards. With 32 bits
two unrelated posts collide with odds around 1 in 4 billion; a real paraphrase with different
content words ("can't log in" vs "login broken") is two stories. `Story.simhash` keeps all 64 bits
so a later pass over a bounded set (a digest's top posts) can merge stories within a small
Hamming distance.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from ..models import SOURCES
from .language import FUNCTION_WORDS


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


KEY_BITS = 32
MIN_FEATURES = 3
LINK_POST_WORDS = 12
QUOTE_COMMENT_WORDS = 12  # a comment this short before a quoted post is not the story

_URL = re.compile(r"https?://[^\s<>\"'“”«»]+|(?<![\w@/.])www\.[^\s<>\"'“”«»]+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@[\w.]+(?:@[\w.-]+)?")
_RT_PREFIX = re.compile(r"^\s*(?:RT|MT|QT|repost(?:ed)?(?: from)?)\s*:?\s*@[\w.]+\s*:?\s*", re.IGNORECASE)
_INLINE_QUOTE = re.compile(r"^(?P<comment>.*?)\s+(?:RT|QT|MT)\s*:?\s*@[\w.]+\s*:?\s*(?P<quoted>.+)$", re.S)
_QUOTE_MARKS = re.compile(
    r"^(?P<comment>[^“\"«]*?)\s*[“\"«](?P<quoted>[^”\"»]{20,})[”\"»]\s*(?P<tail>.*)$", re.S
)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
_STRETCHED = re.compile(r"(\w)\1{2,}")
_X_STATUS = re.compile(r"^https://x\.com/(?:[\w]+|i(?:/web)?)/status(?:es)?/(\d+)")

FILLER = _words(
    "same same here this exactly agreed true so yes yep yup omg lol lmao rofl ugh wow smh fyi ftw btw "
    "imo imho tbh pls plz please look see read via thread wtf fml rt qt mt"
)
SYNONYMS = {
    "cannot": "cant",
    "can't": "cant",
    "couldnt": "cant",
    "couldn't": "cant",
    "won't": "wont",
    "isn't": "isnt",
    "doesn't": "doesnt",
    "don't": "dont",
    "didn't": "didnt",
    "signin": "login",
    "logon": "login",
    "wi-fi": "wifi",
}
_PHRASE_SYNONYMS = (
    (re.compile(r"\b(?:log|sign)\s+(?:in|on)\b"), "login"),
    (re.compile(r"\bcan\s+not\b"), "cant"),
)

# tracking parameters, everywhere
_TRACKING = _words(
    "fbclid gclid dclid gbraid wbraid msclkid mc_cid mc_eid igshid igsh ref ref_src ref_url _ga _gl "
    "yclid spm si feature share_id cmpid ito ncid sr_share"
)
_TRACKING_BY_HOST = {"x.com": {"s", "t"}}
_HOST_ALIASES = {"twitter.com": "x.com", "mobile.twitter.com": "x.com", "youtu.be": "youtube.com"}
_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")
# (host, path prefix) -> query parameter holding the real URL
_REDIRECTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("google.com", "/url"): ("url", "q"),
    ("l.facebook.com", "/l.php"): ("u",),
    ("lm.facebook.com", "/l.php"): ("u",),
    ("facebook.com", "/l.php"): ("u",),
    ("l.instagram.com", "/"): ("u",),
    ("out.reddit.com", "/"): ("url",),
    ("youtube.com", "/redirect"): ("q",),
    ("t.umblr.com", "/redirect"): ("z",),
    ("duckduckgo.com", "/l/"): ("uddg",),
    ("linkedin.com", "/redir/redirect"): ("url",),
    ("href.li", "/"): (),  # the whole query is the URL
    ("steamcommunity.com", "/linkfilter/"): ("url", "u"),
}
PLATFORM_WRAPPERS = frozenset({"t.co"})  # X's per-post wrapper: says nothing about the target


@dataclass(frozen=True, slots=True)
class Story:
    key: str
    basis: str  # why these posts are one story, in words
    simhash: int | None = None


# ------------------------------------------------------------------ links


def canonical_url(url: str) -> str | None:
    """The URL as a story key sees it: https, canonical host, redirects unwrapped, no tracking."""
    for _ in range(4):  # a redirect can wrap a redirect
        parsed = _parse(url)
        if parsed is None:
            return None
        host, path, query = parsed
        target = _redirect_target(host, path, query)
        if target is None:
            break
        url = target
    else:
        return None
    drop = _TRACKING | _TRACKING_BY_HOST.get(host, set())
    kept = sorted((k, v) for k, v in query if not k.lower().startswith("utm_") and k.lower() not in drop)
    path = re.sub(r"/{2,}", "/", path)
    if path.endswith("/amp"):
        path = path[: -len("/amp")]
    path = path.rstrip("/")
    return f"https://{host}{path}" + (f"?{urlencode(kept)}" if kept else "")


def _parse(url: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    url = url.strip().rstrip(".,;:!?)]}»”\"'…")
    if not re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
        url = "https://" + url
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if not host or "." not in host:
        return None
    for prefix in _HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") > 1:
            host = host[len(prefix) :]
            break
    path = parts.path or ""
    query = parse_qsl(parts.query, keep_blank_values=True)
    if host == "youtu.be" and path.strip("/"):
        query = [("v", path.strip("/").split("/")[0]), *query]
        path = "/watch"
    host = _HOST_ALIASES.get(host, host)
    if port not in (None, 80, 443):
        host = f"{host}:{port}"
    return host, path, query


def _redirect_target(host: str, path: str, query: list[tuple[str, str]]) -> str | None:
    for (redirect_host, prefix), names in _REDIRECTS.items():
        if host != redirect_host or not path.startswith(prefix):
            continue
        if not names:
            raw = "&".join(f"{k}={v}" if v else k for k, v in query)
            return unquote(raw) if raw.startswith("http") else None
        params = dict(query)
        for name in names:
            value = params.get(name, "")
            if value.startswith(("http://", "https://")):
                return value
    return None


def links_in(text: str) -> list[str]:
    """The URLs written in a post, in order."""
    return _URL.findall(text)


# ------------------------------------------------------------------ text


def _stem(word: str) -> str:
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 4 and word.endswith("es") and word[-3] in "sxzh":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def story_text(text: str) -> str:
    """The part of a post that is the story: without an RT prefix or a short comment on a quote."""
    text = text.strip()
    rt = _RT_PREFIX.match(text)
    if rt:
        return text[rt.end() :]
    inline = _INLINE_QUOTE.match(text)
    if inline and len(_WORD.findall(inline["comment"])) <= QUOTE_COMMENT_WORDS:
        return inline["quoted"]
    marked = _QUOTE_MARKS.match(text)
    if marked:
        tail = _HANDLE.sub(" ", marked["tail"])
        comment_words = len(_WORD.findall(marked["comment"])) + len(_WORD.findall(tail))
        if comment_words <= QUOTE_COMMENT_WORDS and len(_WORD.findall(marked["quoted"])) > comment_words:
            return marked["quoted"]
    lines = text.splitlines()
    quoted = [line.lstrip("> ").strip() for line in lines if line.startswith(">")]
    if quoted:
        comment = [line for line in lines if not line.startswith(">")]
        if len(_WORD.findall(" ".join(comment))) <= QUOTE_COMMENT_WORDS:
            return "\n".join(quoted)
    return text


def _normal(text: str) -> str:
    text = _HANDLE.sub(" ", _URL.sub(" ", text)).lower().replace("’", "'").replace("#", " ")
    text = _STRETCHED.sub(r"\1", text)
    for pattern, word in _PHRASE_SYNONYMS:
        text = pattern.sub(word, text)
    return text


def story_features(text: str) -> list[str]:
    """The content words a post's SimHash is made of (sorted, each once)."""
    features = set()
    for word in _WORD.findall(_normal(story_text(text))):
        word = SYNONYMS.get(word, word)
        if len(word) < 2 or word in FUNCTION_WORDS or word in FILLER:
            continue
        features.add(_stem(word.replace("'", "")))
    return sorted(features)


def simhash(features: Iterable[str]) -> int:
    """64-bit SimHash: bit b is set when most features' hashes have bit b set."""
    rows = [
        format(int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "big"), "064b")
        for f in features
    ]
    if not rows:
        return 0
    half = len(rows) / 2
    columns = map("".join, zip(*rows, strict=True))
    return int("".join("1" if column.count("1") > half else "0" for column in columns), 2)


def hamming(a: int, b: int) -> int:
    """How many of the 64 bits two SimHashes differ in."""
    return (a ^ b).bit_count()


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


# ------------------------------------------------------------------ keys


def repost_parent(source: str | None, raw: Mapping[str, Any] | None) -> str | None:
    """The original's mention id ("x:123") when the source says this post reposts or quotes it."""
    if not raw:
        return None
    for name in ("repost_of", "reblog_of", "quote_of"):
        value = raw.get(name)
        if isinstance(value, str) and value:
            if value.split(":", 1)[0] in SOURCES or not source:
                return value
            return f"{source}:{value}"
    referenced = raw.get("referenced")
    if source == "x" and isinstance(referenced, Mapping):
        for kind in ("retweeted", "reposted", "quoted"):
            value = referenced.get(kind)
            if isinstance(value, str) and value:
                return f"x:{value}"
    return None


def find_story(
    text: str,
    *,
    link: str | None = None,
    links: Sequence[str] = (),
    repost_of: str | None = None,
    original_text: str | None = None,
    mention_id: str | None = None,
) -> Story:
    """The story a post belongs to, with the basis of the key (see the module docstring)."""
    if original_text:
        # the caller knows the original's words: key the repost like the original itself
        story = find_story(original_text, link=link, links=links, mention_id=mention_id)
        return Story(story.key, f"{story.basis}, of the reposted original", story.simhash)
    if repost_of:
        return Story(f"ref:{repost_of}", f"repost or quote of {repost_of}")
    body = story_text(text)
    written = links_in(body)
    words = len(_WORD.findall(_HANDLE.sub(" ", _URL.sub(" ", body)).replace("#", " ")))
    main = canonical_url(link) if link else None
    if main:
        return Story(f"url:{_digest(main)}", f"link {main}")
    canonical = [c for c in (canonical_url(u) for u in [*links, *written]) if c]
    canonical = [c for c in canonical if urlsplit(c).hostname not in PLATFORM_WRAPPERS]
    if canonical and words <= LINK_POST_WORDS:
        status = _X_STATUS.match(canonical[0])
        if status:
            return Story(f"ref:x:{status.group(1)}", f"comment on the X post {status.group(1)}")
        return Story(f"url:{_digest(canonical[0])}", f"link {canonical[0]}")
    features = story_features(body)
    if len(features) >= MIN_FEATURES:
        value = simhash(features)
        return Story(
            f"sim:{value >> (64 - KEY_BITS):0{KEY_BITS // 4}x}",
            f"text ({len(features)} content words)",
            value,
        )
    normal = " ".join(_WORD.findall(_normal(body))) or "".join(_normal(body).split())
    if normal:
        return Story(f"txt:{_digest(normal)}", "short text, same words only")
    if mention_id:
        return Story(f"id:{mention_id}", "nothing to group by")
    return Story("txt:empty", "nothing to group by")


def story_key(
    text: str,
    *,
    link: str | None = None,
    links: Sequence[str] = (),
    repost_of: str | None = None,
    original_text: str | None = None,
    mention_id: str | None = None,
) -> str:
    """A stable key shared by the posts of one story (see `find_story` for why)."""
    return find_story(
        text, link=link, links=links, repost_of=repost_of, original_text=original_text, mention_id=mention_id
    ).key
