"""Why a post is probably noise: bots, giveaways, link spam, repeats, tag spam.

`noise_reasons` returns reasons, not a verdict, so a care lead can see why a post was set aside.
Each reason starts with a stable code (`bot`, `giveaway`, `link_spam`, `repeated`, `tag_spam`)
followed by ": " and the evidence. Noise is still stored, flagged; alerts and top posts leave it
out, volume counts can choose to.

Repeats need memory across posts: `RecentTexts` is a small LRU of (author, text fingerprint) the
caller keeps per container (a module-level instance in the scanner), so it survives between
invocations of a warm container and costs nothing to lose.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from urllib.parse import urlsplit

MANY_LINKS = 4
MANY_HASHTAGS = 6
MANY_CASHTAGS = 3
SHORT_POST_WORDS = 6  # a shortened link with fewer words than this is all the post is
REPEAT_MIN_WORDS = 3  # "thanks!" twice is a conversation, not a repeat

_HASHTAG = re.compile(r"(?<![\w&])#\w+", re.UNICODE)
_CASHTAG = re.compile(r"(?<![\w$])\$[A-Za-z][A-Za-z0-9.]{0,9}\b")
_HANDLE = re.compile(r"(?<![\w@])@[\w.]+(?:@[\w.-]+)?")
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_FINGERPRINT_DROP = re.compile(r"https?://\S+|www\.\S+|(?<!\w)@[\w.]+|[^\w\s]", re.UNICODE)
_DIGITS = re.compile(r"\d+")

_BOT_HANDLE = re.compile(r"(?:^|[_\-.\d])bot(?:[_\-.\d]|$)|bot\d*$|^(?:auto|rss)[_-]?(?:post|feed|tweet)")
# Names that end in "bot" and are people.
_NOT_BOTS = frozenset({"abbot", "talbot", "cabot", "sabot", "turbot", "jabot"})
KNOWN_BOTS = frozenset({"automoderator", "remindmebot", "savevideo", "threadreaderapp", "sneakpeekbot"})
BOT_INSTANCES = frozenset({"botsin.space"})  # Mastodon servers for bots only

_GIVEAWAY = re.compile(
    r"\bgive[\s-]?aways?\b|\bwin an? (?:free|brand[\s-]new)\b|\bchance to win\b|\benter to win\b"
    r"|\b(?:retweet|rt|repost|like|follow)\s*(?:[+&,]|and)?\s*(?:(?:retweet|rt|repost|like|follow|tag)\s*"
    r"(?:[+&,]|and)?\s*)*to win\b|\bfollow\s*(?:[+&]|and)\s*(?:rt|retweet|repost)\b"
    r"|\btag \d+ friends\b|#(?:giveaway|contest|sweepstakes?|win|gewinnspiel|sorteo|concours)\b"
    r"|\bsweepstakes?\b|\bgewinnspiel\b|\bverlosung\b|\bsorteo\b|\bjeu[\s-]concours\b|\bairdrop\b"
    r"|\bclaim your (?:free|reward|prize|tokens?)\b",
    re.IGNORECASE,
)
SHORTENERS = frozenset(
    {
        "bit.ly",
        "tinyurl.com",
        "goo.gl",
        "ow.ly",
        "is.gd",
        "buff.ly",
        "rebrand.ly",
        "cutt.ly",
        "shorturl.at",
        "rb.gy",
        "t.ly",
        "tiny.cc",
        "bl.ink",
        "s.id",
        "v.gd",
        "lnkd.in",
        "dlvr.it",
        "ift.tt",
    }
)
# links written with a scheme, with www., or as a bare shortener ("bit.ly/abc")
_URL = re.compile(
    r"https?://[^\s<>\"']+|(?<![\w@/.])www\.[^\s<>\"']+|(?<![\w@/.])(?:"
    + "|".join(re.escape(host) for host in sorted(SHORTENERS))
    + r")/[^\s<>\"']+",
    re.IGNORECASE,
)
# X wraps every link in t.co: a t.co link says nothing about the poster.
PLATFORM_WRAPPERS = frozenset({"t.co"})


class RecentTexts:
    """LRU of recent (author, text fingerprint) -> first mention id; one per container."""

    def __init__(self, maxsize: int = 20_000) -> None:
        self.maxsize = maxsize
        self._seen: OrderedDict[tuple[str, bytes], str] = OrderedDict()

    def first(self, author: str, fingerprint: bytes, mention_id: str) -> str | None:
        """The id of an earlier post with this author and fingerprint, or None (and remember this one)."""
        key = (author.lower(), fingerprint)
        earlier = self._seen.get(key)
        if earlier is not None:
            self._seen.move_to_end(key)
            return earlier if earlier != mention_id else None
        self._seen[key] = mention_id
        if len(self._seen) > self.maxsize:
            self._seen.popitem(last=False)
        return None

    def __len__(self) -> int:
        return len(self._seen)


def fingerprint(text: str) -> bytes:
    """8 bytes naming a post's text up to case, links, handles, punctuation, emoji and numbers."""
    normal = _DIGITS.sub("0", _FINGERPRINT_DROP.sub(" ", text.lower()))
    return hashlib.blake2b(" ".join(normal.split()).encode(), digest_size=8).digest()


def bot_reason(handle: str | None, display_name: str | None = None) -> str | None:
    """Why an author looks like a bot, or None."""
    if not handle:
        return None
    name = handle.lower().lstrip("@")
    instance = ""
    if "@" in name:  # Mastodon: user@instance
        name, instance = name.split("@", 1)
    elif name.endswith(".bsky.social"):
        name = name.removesuffix(".bsky.social")
    if instance in BOT_INSTANCES:
        return f"bot: account on {instance}"
    if name in KNOWN_BOTS:
        return f"bot: known bot account {handle!r}"
    if name not in _NOT_BOTS and _BOT_HANDLE.search(name):
        return f"bot: handle {handle!r} looks automated"
    if display_name and re.search(r"\((?:a )?bot\)|\[bot\]|🤖", display_name, re.IGNORECASE):
        return f"bot: display name {display_name!r} says bot"
    return None


def _host(url: str) -> str:
    if not url.lower().startswith(("http://", "https://")):
        url = "https://" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def noise_reasons(
    text: str,
    *,
    author: str | None = None,
    author_name: str | None = None,
    mention_id: str | None = None,
    recent: RecentTexts | None = None,
    is_bot: bool | None = None,
) -> list[str]:
    """Why a post is probably noise, one reason each (empty when it is not)."""
    reasons = []
    if is_bot:
        reasons.append("bot: the source flags the account as automated")
    else:
        bot = bot_reason(author, author_name)
        if bot:
            reasons.append(bot)
    giveaway = _GIVEAWAY.search(text)
    if giveaway:
        reasons.append(f"giveaway: {giveaway.group(0).strip()!r}")
    urls = _URL.findall(text)
    if urls:
        rest = _URL.sub(" ", text)
        words = len(_WORD.findall(_HASHTAG.sub(" ", _HANDLE.sub(" ", rest))))
        hosts = [_host(u) for u in urls]
        counted = [h for h in hosts if h not in PLATFORM_WRAPPERS]
        if len(urls) >= MANY_LINKS:
            reasons.append(f"link_spam: {len(urls)} links")
        elif len(urls) > words:
            reasons.append(f"link_spam: {len(urls)} link(s), {words} word(s)")
        elif (
            counted
            and all(h in SHORTENERS for h in counted)
            and (len(counted) >= 2 or words < SHORT_POST_WORDS)
        ):
            reasons.append(f"link_spam: only shortened links ({', '.join(sorted(set(counted)))})")
    hashtags = len(_HASHTAG.findall(text))
    if hashtags >= MANY_HASHTAGS:
        reasons.append(f"tag_spam: {hashtags} hashtags")
    cashtags = len(_CASHTAG.findall(text))
    if cashtags >= MANY_CASHTAGS:
        reasons.append(f"tag_spam: {cashtags} cashtags")
    if recent is not None and author and mention_id and len(_WORD.findall(text)) >= REPEAT_MIN_WORDS:
        earlier = recent.first(author, fingerprint(text), mention_id)
        if earlier:
            reasons.append(f"repeated: same text as {earlier} by the same author")
    return reasons
