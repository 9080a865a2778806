"""Domain types shared by every stage: what a mention, a cursor and an incident are."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

SOURCES = (
    "x",
    "facebook",
    "reddit",
    "hackernews",
    "mastodon",
    "bluesky",
    "youtube",
    "stackexchange",
    "feed",
)

SOURCE_LABELS = {
    "x": "X",
    "facebook": "Facebook",
    "reddit": "Reddit",
    "hackernews": "Hacker News",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "youtube": "YouTube",
    "stackexchange": "Stack Exchange",
    "feed": "News & blogs",
}
RULE_LABELS = {
    "volume_spike": "Volume spike",
    "negative_spike": "Negative-tone spike",
    "blind_spot": "Blind spot",
    "viral_post": "Viral post",
}


def scope_label(scope: str) -> str:
    """'brand' -> 'All sources'; 'source:reddit' -> 'Reddit'."""
    if scope.startswith("source:"):
        name = scope.split(":", 1)[1]
        return SOURCE_LABELS.get(name, name)
    if scope.startswith("post:"):  # one post (viral_post): "post:<source>:<native id>"
        name = scope.split(":")[1]
        return f"One post on {SOURCE_LABELS.get(name, name)}"
    return "All sources"


def utc_iso(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with a trailing Z, to the second."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; Emberwatch keeps every time in UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 time (Z or offset) into an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Engagement:
    reposts: int = 0
    likes: int = 0
    replies: int = 0
    score: int = 0

    @property
    def total(self) -> int:
        return self.reposts + self.likes + self.replies + self.score


@dataclass(frozen=True, slots=True)
class Author:
    handle: str
    display_name: str | None = None
    followers: int | None = None


@dataclass(frozen=True, slots=True)
class Mention:
    """One post that matched one of a brand's queries, normalised across sources."""

    source: str
    native_id: str
    brand: str
    query: str
    author: Author
    text: str
    created_at: datetime
    url: str
    title: str | None = None
    language: str | None = None
    engagement: Engagement = field(default_factory=Engagement)
    parent_id: str | None = None
    conversation_id: str | None = None
    sentiment: str | None = None
    sentiment_score: float | None = None
    theme: str | None = None
    story: str | None = None  # near-duplicates, reposts and shares of one link share a story key
    noise: tuple[str, ...] = ()  # why this looks like a bot, spam or a repeat (kept, flagged)
    own: bool = False  # written by one of the brand's own accounts: a reply, not a customer's mention
    reply_to: str | None = None  # the author a reply answers (handle or platform id), when the source says
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.source}:{self.native_id}"

    @property
    def body(self) -> str:
        """The text without a leading copy of the title (HN stories, feed entries repeat it)."""
        if self.title and self.text.startswith(self.title):
            rest = self.text[len(self.title) :].strip()
            return rest
        return self.text

    @property
    def shown(self) -> str:
        """What a digest or an alert shows of the post: its body, or its title when it has nothing else."""
        return self.body or self.text

    def with_enrichment(self, **changes: Any) -> Mention:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the last stored page of one (brand, source, query) ended."""

    brand: str
    source: str
    query_key: str
    position: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class CountBucket:
    """Mentions stored in one 5-minute bucket of one brand and source."""

    brand: str
    source: str
    start: datetime
    mentions: int
    negative: int = 0
    rated: int = 0  # mentions with a sentiment label: the base of the negative share
    themes: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Incident:
    """A spike raised by the detector, from open through escalations to resolved."""

    brand: str
    scope: str  # "brand" or "source:<name>"
    rule: str
    opened_at: datetime
    status: str  # "open" | "resolved"
    severity: str
    observed: int
    expected: float
    peak: int
    notified_level: int
    last_seen_at: datetime
    resolved_at: datetime | None = None
    quiet_runs: int = 0
    notifications: int = 0
    sample_ids: list[str] = field(default_factory=list)
    pending_kind: str | None = None  # a notification decided on but not yet delivered
    pending_level: int = 0
    version: int = 0
    notified_at: datetime | None = None  # when a notification was last owed: the cooldown counts from it

    @property
    def key(self) -> str:
        return f"{self.brand}|{self.scope}|{self.rule}|{utc_iso(self.opened_at)}"


@dataclass(frozen=True, slots=True)
class HourRollup:
    """One brand's mentions of one UTC hour, all sources together: what a digest reads instead of mentions."""

    brand: str
    start: datetime
    mentions: int = 0
    negative: int = 0
    rated: int = 0
    engagement: int = 0
    reach: int = 0  # followers of the authors, summed per mention
    customer: int = 0  # mentions not by the brand's own accounts
    awaiting: int = 0  # negative customer mentions that entered the care queue
    sources: dict[str, int] = field(default_factory=dict)
    themes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # theme -> one post of that hour
    voices: list[dict[str, Any]] = field(default_factory=list)  # well-followed authors of that hour
    care: CareHour | None = None  # first responses to this hour's customer mentions


@dataclass(frozen=True, slots=True)
class CareHour:
    """First responses to the customer mentions created in one UTC hour, as a histogram."""

    brand: str
    start: datetime
    answered: int = 0
    answered_negative: int = 0
    seconds_total: int = 0
    bins: dict[int | None, int] = field(default_factory=dict)  # upper bound in seconds (None: above all)


@dataclass(frozen=True, slots=True)
class ToneWeek:
    """One author's mentions of one week (starting Monday, UTC) by tone."""

    start: datetime
    mentions: int = 0
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    mean_score: float | None = None  # mean tone score of the rated mentions
    engagement: int = 0


@dataclass(frozen=True, slots=True)
class AuthorProfile:
    """What Emberwatch knows of one author of one source for one brand: counts, tone over time, reach."""

    brand: str
    source: str
    handle: str
    display_name: str | None
    mentions: int
    positive: int
    negative: int
    engagement: int
    followers: int | None  # the latest count seen
    followers_max: int | None  # the highest count seen in the weeks kept
    first_seen: datetime | None
    last_seen: datetime | None
    first_negative_at: datetime | None = None
    answered_at: datetime | None = None  # the brand's first reply to this author
    ambassador_at: datetime | None = None  # a critic turned positive after the reply
    weeks: tuple[ToneWeek, ...] = ()  # oldest first, at most the last AUTHOR_WEEKS weeks
