"""Brand, source, detection and recipient configuration: YAML, validated, errors name the field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .models import SOURCES

# Sources that need no credentials are on unless the configuration turns them off; the others
# run only when `sources.<name>.enabled: true` says their credentials are in the secret.
DEFAULT_ENABLED = frozenset({"hackernews", "feed", "stackexchange", "mastodon"})
_BRAND_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


_HASHTAG = re.compile(r"^\w{1,100}$")
_SUBREDDIT = re.compile(r"^[A-Za-z0-9_]{2,21}$")
_CHANNEL = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
_PAGE_ID = re.compile(r"^\d{5,20}$")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Brand:
    id: str
    name: str
    queries: tuple[str, ...]
    feeds: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()  # Mastodon tag timelines (no credentials needed), without '#'
    subreddits: tuple[str, ...] = ()  # Reddit: also read these subreddits' newest comments
    youtube_channels: tuple[str, ...] = ()  # YouTube channel ids whose comment threads are read
    facebook_pages: tuple[str, ...] = ()  # Facebook Page ids the brand manages
    tone: str = "vader"  # "vader" (offline, default) or "comprehend" (Amazon Comprehend)
    themes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # extra keywords per theme
    own_accounts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source -> the brand's handles
    reply_target_minutes: int = 15  # a negative mention waiting longer raises a care alert

    def is_own(self, source: str, handle: str) -> bool:
        """True when the author (a handle or a platform id) is one of the brand's own accounts on that source.

        The Facebook Pages the brand manages are its own accounts there too (a Page's reply comes `from`
        the Page's id).
        """
        wanted = handle.lower().lstrip("@")
        owned = self.own_accounts.get(source, ())
        if source == "facebook":
            owned = (*owned, *self.facebook_pages)
        return bool(wanted) and any(wanted == own.lower().lstrip("@") for own in owned)


@dataclass(frozen=True, slots=True)
class SourceSettings:
    name: str
    enabled: bool = True
    base_url: str | None = None
    max_pages: int = 50
    every_minutes: int = 5  # `schedule`: scan at most this often (the template's schedule is the floor)
    secret: str | None = None  # this source's own credentials secret instead of the stack's shared one
    # re-read the engagement of the brand's watched top posts on this source this often (0: never);
    # the viral-post rule sees a post grow only through these reads and the scans' own re-fetches
    refresh_minutes: int = 15  # REFRESH_MINUTES


@dataclass(frozen=True, slots=True)
class Detection:
    window_minutes: int = 30
    baseline_days: int = 7
    min_mentions: int = 12
    min_ratio: float = 3.0
    p_value: float = 0.001
    escalate_factor: float = 2.0
    resolve_after_quiet_runs: int = 6
    cooldown_minutes: int = 30  # one notification per incident this often, severity escalations apart
    viral_window_minutes: int = 60  # a post's reposts + replies growth is measured over this span
    viral_min_growth: int = 50  # at least this many new reposts + replies in the window
    viral_growth_factor: float = 2.0  # and this many times what the post had at the window's start


DIGEST_SECTIONS = (
    "headline",
    "trend",
    "themes",
    "top_stories",
    "incidents",
    "care",
    "ambassadors",
    "voices",
    "source_health",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    name: str | None
    brands: tuple[str, ...]
    cadence: str = "daily"
    timezone: str = "UTC"
    weekday: int = 0  # weekly digests go out on this local weekday (0 = Monday)
    hour: int = 8  # local hour at which the digest is sent
    sections: tuple[str, ...] = DIGEST_SECTIONS


CHANNEL_TYPES = ("sns", "slack", "teams", "pagerduty", "webhook")
ALERT_SEVERITIES = ("warning", "high", "critical")
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# a Secrets Manager secret name, or an SSM parameter path (leading '/')
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


@dataclass(frozen=True, slots=True)
class Channel:
    """A place alerts go. `secret` names where its URL, routing key or HMAC key lives (never the value)."""

    name: str
    type: str
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Alerts of these brands (all when empty) at or above `min_severity` go to `channels`."""

    channels: tuple[str, ...]
    brands: tuple[str, ...] = ()
    min_severity: str = "warning"

    def matches(self, brand: str, severity: str) -> bool:
        rank = ALERT_SEVERITIES.index
        return (not self.brands or brand in self.brands) and rank(severity) >= rank(self.min_severity)


DEFAULT_CHANNELS = {"sns": Channel(name="sns", type="sns")}  # the stack's alert topic


def route_channels(routing: tuple[Route, ...], brand: str, severity: str) -> tuple[str, ...]:
    """The channels an alert of this brand and severity goes to; the SNS topic when no rule matches."""
    if not routing:
        return ("sns",)
    chosen = [name for route in routing if route.matches(brand, severity) for name in route.channels]
    return tuple(dict.fromkeys(chosen)) or ("sns",)


@dataclass(frozen=True, slots=True)
class AppConfig:
    brands: tuple[Brand, ...] = ()
    sources: dict[str, SourceSettings] = field(default_factory=dict)
    detection: Detection = field(default_factory=Detection)
    recipients: tuple[Recipient, ...] = ()
    alert_link: str | None = None
    retention_days: int = 90
    channels: dict[str, Channel] = field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    routing: tuple[Route, ...] = ()

    def brand(self, brand_id: str) -> Brand:
        for brand in self.brands:
            if brand.id == brand_id:
                return brand
        raise KeyError(brand_id)

    def source(self, name: str) -> SourceSettings:
        return self.sources.get(name) or SourceSettings(
            name=name,
            enabled=name in DEFAULT_ENABLED,
            refresh_minutes=REFRESH_DEFAULTS.get(name, REFRESH_MINUTES),
        )


_LAST_STEP = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")


def _line_map(text: str) -> dict[str, int]:
    """The 1-based line of every field path in the YAML ("brands[0].queries[2]" -> 12).

    A mapping entry points at its key's line, a list item at the item's own line.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                lines.setdefault(child, key.start_mark.line + 1)
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = f"{path}[{index}]"
                lines.setdefault(child, item.start_mark.line + 1)
                walk(item, child)

    if root is not None:
        lines[""] = root.start_mark.line + 1
        walk(root, "")
    return lines


class _Reader:
    """Walks the parsed YAML, collecting every error with its line and field path."""

    def __init__(self, origin: str, lines: dict[str, int] | None = None) -> None:
        self.origin = origin
        self.lines = lines or {}
        self.errors: list[str] = []

    def line_of(self, path: str) -> int | None:
        """The line of the field, or of its nearest parent present in the file (a missing field)."""
        while True:
            if path in self.lines:
                return self.lines[path]
            shorter = _LAST_STEP.sub("", path)
            if shorter == path:
                return self.lines.get("")
            path = shorter

    def error(self, path: str, message: str) -> None:
        path = path.removeprefix("(top level)").lstrip(".")
        line = self.line_of(path)
        where = f"{self.origin}:{line}" if line else self.origin
        self.errors.append(f"{where}: {path or '(top level)'}: {message}")

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {type(value).__name__}")
            return {}
        return value

    def unknown(self, data: dict[str, Any], allowed: set[str], path: str) -> None:
        for key in data:
            if key not in allowed:
                self.error(
                    f"{path}.{key}" if path else str(key),
                    f"unknown field (allowed: {', '.join(sorted(allowed))})",
                )

    def string(self, data: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.error(f"{path}.{key}", "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(f"{path}.{key}", "must be a non-empty string")
            return None
        return value.strip()

    def strings(
        self, data: dict[str, Any], key: str, path: str, *, required: bool = False
    ) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            if required:
                self.error(f"{path}.{key}", "is required (a list of strings)")
            return ()
        if not isinstance(value, list):
            self.error(f"{path}.{key}", "must be a list of strings")
            return ()
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.error(f"{path}.{key}[{index}]", "must be a non-empty string")
            else:
                out.append(item.strip())
        if required and not value:
            self.error(f"{path}.{key}", "must not be empty")
        return tuple(out)

    def number(
        self, data: dict[str, Any], key: str, path: str, default: Any, *, low: float, high: float
    ) -> Any:
        value = data.get(key, default)
        kind = type(default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind is int and not isinstance(value, int))
        ):
            self.error(f"{path}.{key}", f"must be {'an integer' if kind is int else 'a number'}")
            return default
        if not low <= value <= high:
            self.error(f"{path}.{key}", f"must be between {low:g} and {high:g}, got {value}")
            return default
        return kind(value)


def _identifiers(
    reader: _Reader, item: dict[str, Any], key: str, path: str, pattern: re.Pattern[str], what: str
) -> tuple[str, ...]:
    values = reader.strings(item, key, path)
    for index, value in enumerate(values):
        if not pattern.match(value):
            reader.error(f"{path}.{key}[{index}]", f"must be {what}, got {value!r}")
    return values


def _own_accounts(reader: _Reader, item: dict[str, Any], path: str) -> dict[str, tuple[str, ...]]:
    """The brand's own handles per source: their posts are the brand's replies."""
    raw = reader.mapping(item.get("own_accounts"), f"{path}.own_accounts")
    accounts = {}
    for source in raw:
        if source not in SOURCES:
            reader.error(f"{path}.own_accounts.{source}", f"unknown source (known: {', '.join(SOURCES)})")
            continue
        accounts[source] = reader.strings(raw, source, f"{path}.own_accounts")
    return accounts


def _tone(reader: _Reader, item: dict[str, Any], path: str) -> str:
    tone = reader.string(item, "tone", path) or "vader"
    if tone not in ("vader", "comprehend"):
        reader.error(f"{path}.tone", f"must be vader or comprehend, got {tone!r}")
    return tone


def _themes(reader: _Reader, item: dict[str, Any], path: str) -> dict[str, tuple[str, ...]]:
    """A brand's own keywords per theme, e.g. {"issue": ["scanner jam"], "time_cost": ["rebate"]}."""
    from .enrich.themes import validate_extra

    raw = reader.mapping(item.get("themes"), f"{path}.themes")
    themes = {str(name): reader.strings(raw, name, f"{path}.themes") for name in raw}
    for problem in validate_extra(themes):
        reader.error(f"{path}.themes", problem)
    return themes


def _queries(reader: _Reader, item: dict[str, Any], path: str) -> tuple[str, ...]:
    """The brand's watch terms, each parsed now so a typo fails validation instead of a scan."""
    from .query import QueryError, parse_query

    values = reader.strings(item, "queries", path, required=True)
    for index, text in enumerate(values):
        try:
            parse_query(text).branches()
        except QueryError as exc:
            reader.error(f"{path}.queries[{index}]", str(exc))
    return values


_SCHEDULE = re.compile(r"^rate\((\d+) (minutes?|hours?)\)$")
SCHEDULE_MINUTES = (5, 10, 15, 30)


def _schedule(reader: _Reader, item: dict[str, Any], path: str) -> int:
    """`schedule: rate(15 minutes)`: how often the source is scanned, in minutes.

    The scan schedules fire every 5 minutes; a longer interval skips the ticks in between. Up to 30
    minutes, so the staleness alarm (no good scan for 30 minutes) still sees a run in every window.
    """
    text = reader.string(item, "schedule", path)
    if text is None:
        return 5
    match = _SCHEDULE.match(text)
    minutes = int(match.group(1)) * (60 if match.group(2).startswith("hour") else 1) if match else 0
    if minutes not in SCHEDULE_MINUTES:
        allowed = ", ".join(f"rate({m} minutes)" for m in SCHEDULE_MINUTES)
        reader.error(f"{path}.schedule", f"must be one of {allowed}, got {text!r}")
        return 5
    return minutes


# X bills post reads ($0.005 a post, once per UTC day) and meters its endpoints: re-read hourly by default
REFRESH_MINUTES = 15
REFRESH_DEFAULTS = {"x": 60}


def _refresh_minutes(reader: _Reader, item: dict[str, Any], path: str, name: str) -> int:
    """`refresh_minutes`: how often the watched top posts' engagement is re-read (0 turns it off)."""
    default = REFRESH_DEFAULTS.get(name, REFRESH_MINUTES)
    value = item.get("refresh_minutes", default)
    if isinstance(value, bool) or not isinstance(value, int) or not (value == 0 or 5 <= value <= 1440):
        reader.error(
            f"{path}.refresh_minutes", f"must be 0 (off) or whole minutes from 5 to 1440, got {value!r}"
        )
        return default
    return value


def _secret_name(reader: _Reader, item: dict[str, Any], path: str) -> str | None:
    """`secret`: the name of a Secrets Manager secret (or an SSM path) with this source's keys."""
    name = reader.string(item, "secret", path)
    if name is not None and not _SECRET_NAME.match(name):
        reader.error(f"{path}.secret", f"is not a secret name or SSM parameter path: {name!r}")
        return None
    return name


def parse_config(text: str, origin: str = "config") -> AppConfig:
    """Parse and validate configuration YAML; raise ConfigError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    reader = _Reader(origin, _line_map(text))
    root = reader.mapping(data, "(top level)")
    reader.unknown(
        root,
        {
            "brands",
            "sources",
            "detection",
            "recipients",
            "alert_link",
            "retention_days",
            "channels",
            "routing",
        },
        "",
    )

    brands: list[Brand] = []
    raw_brands = root.get("brands") or []
    if not isinstance(raw_brands, list):
        reader.error("brands", "must be a list")
        raw_brands = []
    for index, raw in enumerate(raw_brands):
        path = f"brands[{index}]"
        item = reader.mapping(raw, path)
        reader.unknown(
            item,
            {
                "id",
                "name",
                "queries",
                "feeds",
                "languages",
                "hashtags",
                "subreddits",
                "youtube_channels",
                "facebook_pages",
                "tone",
                "themes",
                "own_accounts",
                "reply_target_minutes",
            },
            path,
        )
        brand_id = reader.string(item, "id", path, required=True)
        if brand_id and not _BRAND_ID.match(brand_id):
            reader.error(f"{path}.id", "must be lowercase letters, digits and dashes (at most 40)")
        if brand_id and any(b.id == brand_id for b in brands):
            reader.error(f"{path}.id", f"duplicate brand id {brand_id!r}")
        feeds = reader.strings(item, "feeds", path)
        for feed_index, url in enumerate(feeds):
            if not url.startswith(("https://", "http://")):
                reader.error(f"{path}.feeds[{feed_index}]", "must be an http(s) URL")
        brands.append(
            Brand(
                id=brand_id or "",
                name=reader.string(item, "name", path) or brand_id or "",
                queries=_queries(reader, item, path),
                feeds=feeds,
                languages=reader.strings(item, "languages", path),
                hashtags=_identifiers(
                    reader, item, "hashtags", path, _HASHTAG, "letters, digits and _ (no '#')"
                ),
                subreddits=_identifiers(
                    reader, item, "subreddits", path, _SUBREDDIT, "a subreddit name without r/"
                ),
                youtube_channels=_identifiers(
                    reader, item, "youtube_channels", path, _CHANNEL, "a channel id (UC...)"
                ),
                facebook_pages=_identifiers(
                    reader, item, "facebook_pages", path, _PAGE_ID, "a numeric Page id"
                ),
                tone=_tone(reader, item, path),
                themes=_themes(reader, item, path),
                own_accounts=_own_accounts(reader, item, path),
                reply_target_minutes=reader.number(item, "reply_target_minutes", path, 15, low=1, high=10080),
            )
        )

    sources: dict[str, SourceSettings] = {}
    for name, raw in reader.mapping(root.get("sources"), "sources").items():
        path = f"sources.{name}"
        if name not in SOURCES:
            reader.error(path, f"unknown source (known: {', '.join(SOURCES)})")
            continue
        item = reader.mapping(raw, path)
        reader.unknown(
            item, {"enabled", "base_url", "max_pages", "schedule", "secret", "refresh_minutes"}, path
        )
        enabled = item.get("enabled", name in DEFAULT_ENABLED)
        if not isinstance(enabled, bool):
            reader.error(f"{path}.enabled", "must be true or false")
            enabled = True
        base_url = reader.string(item, "base_url", path)
        if base_url and not base_url.startswith(("https://", "http://")):
            reader.error(f"{path}.base_url", "must be an http(s) URL")
        sources[name] = SourceSettings(
            name=name,
            enabled=enabled,
            base_url=base_url.rstrip("/") if base_url else None,
            max_pages=reader.number(item, "max_pages", path, 50, low=1, high=1000),
            every_minutes=_schedule(reader, item, path),
            secret=_secret_name(reader, item, path),
            refresh_minutes=_refresh_minutes(reader, item, path, name),
        )

    raw_detection = reader.mapping(root.get("detection"), "detection")
    defaults = Detection()
    reader.unknown(raw_detection, set(Detection.__slots__), "detection")
    detection = Detection(
        window_minutes=reader.number(
            raw_detection, "window_minutes", "detection", defaults.window_minutes, low=5, high=360
        ),
        baseline_days=reader.number(
            raw_detection, "baseline_days", "detection", defaults.baseline_days, low=1, high=28
        ),
        min_mentions=reader.number(
            raw_detection, "min_mentions", "detection", defaults.min_mentions, low=1, high=1e6
        ),
        min_ratio=reader.number(
            raw_detection, "min_ratio", "detection", defaults.min_ratio, low=1, high=1000
        ),
        p_value=reader.number(raw_detection, "p_value", "detection", defaults.p_value, low=1e-12, high=0.5),
        escalate_factor=reader.number(
            raw_detection, "escalate_factor", "detection", defaults.escalate_factor, low=1.1, high=100
        ),
        resolve_after_quiet_runs=reader.number(
            raw_detection,
            "resolve_after_quiet_runs",
            "detection",
            defaults.resolve_after_quiet_runs,
            low=1,
            high=288,
        ),
        cooldown_minutes=reader.number(
            raw_detection, "cooldown_minutes", "detection", defaults.cooldown_minutes, low=0, high=1440
        ),
        viral_window_minutes=reader.number(
            raw_detection,
            "viral_window_minutes",
            "detection",
            defaults.viral_window_minutes,
            low=10,
            high=1440,
        ),
        viral_min_growth=reader.number(
            raw_detection, "viral_min_growth", "detection", defaults.viral_min_growth, low=1, high=1e9
        ),
        viral_growth_factor=reader.number(
            raw_detection, "viral_growth_factor", "detection", defaults.viral_growth_factor, low=1, high=1000
        ),
    )
    if detection.window_minutes % 5:
        reader.error("detection.window_minutes", "must be a multiple of 5")

    brand_ids = {b.id for b in brands}
    recipients: list[Recipient] = []
    raw_recipients = root.get("recipients") or []
    if not isinstance(raw_recipients, list):
        reader.error("recipients", "must be a list")
        raw_recipients = []
    for index, raw in enumerate(raw_recipients):
        path = f"recipients[{index}]"
        item = reader.mapping(raw, path)
        reader.unknown(
            item, {"email", "name", "brands", "cadence", "timezone", "weekday", "hour", "sections"}, path
        )
        email = reader.string(item, "email", path, required=True)
        if email and not _EMAIL.match(email):
            reader.error(f"{path}.email", f"is not an email address: {email!r}")
        chosen = reader.strings(item, "brands", path) or tuple(sorted(brand_ids))
        for brand_index, brand_id in enumerate(chosen):
            if brand_id not in brand_ids:
                reader.error(f"{path}.brands[{brand_index}]", f"unknown brand {brand_id!r}")
        cadence = reader.string(item, "cadence", path) or "daily"
        if cadence not in ("daily", "weekly"):
            reader.error(f"{path}.cadence", "must be daily or weekly")
        zone = reader.string(item, "timezone", path) or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            reader.error(f"{path}.timezone", f"unknown time zone {zone!r}")
        weekday = (reader.string(item, "weekday", path) or "mon").lower()[:3]
        if weekday not in WEEKDAYS:
            reader.error(f"{path}.weekday", f"must be one of {', '.join(WEEKDAYS)}")
        elif "weekday" in item and cadence != "weekly":
            reader.error(f"{path}.weekday", "only applies to cadence: weekly")
        sections = reader.strings(item, "sections", path) or DIGEST_SECTIONS
        for section_index, section in enumerate(sections):
            if section not in DIGEST_SECTIONS:
                reader.error(
                    f"{path}.sections[{section_index}]",
                    f"unknown section {section!r}; one of {', '.join(DIGEST_SECTIONS)}",
                )
        recipients.append(
            Recipient(
                email=email or "",
                name=reader.string(item, "name", path),
                brands=chosen,
                cadence=cadence,
                timezone=zone,
                weekday=WEEKDAYS.index(weekday) if weekday in WEEKDAYS else 0,
                hour=reader.number(item, "hour", path, 8, low=0, high=23),
                sections=tuple(s for s in DIGEST_SECTIONS if s in sections),
            )
        )

    alert_link = reader.string(root, "alert_link", "(top level)")
    retention_days = reader.number(root, "retention_days", "(top level)", 90, low=1, high=3650)
    channels = _channels(reader, root)
    routing = _routing(reader, root, channels, brand_ids)
    if reader.errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(reader.errors))
    return AppConfig(
        brands=tuple(brands),
        sources=sources,
        detection=detection,
        recipients=tuple(recipients),
        alert_link=alert_link,
        retention_days=retention_days,
        channels=channels,
        routing=routing,
    )


def _channels(reader: _Reader, root: dict[str, Any]) -> dict[str, Channel]:
    """`channels:` name -> {type, secret}; the built-in `sns` (the alert topic) is always there."""
    channels = dict(DEFAULT_CHANNELS)
    for name, raw in reader.mapping(root.get("channels"), "channels").items():
        path = f"channels.{name}"
        if not isinstance(name, str) or not _CHANNEL_NAME.match(name):
            reader.error(path, "a channel name must be lowercase letters, digits, '-' and '_' (at most 40)")
            continue
        item = reader.mapping(raw, path)
        reader.unknown(item, {"type", "secret"}, path)
        kind = reader.string(item, "type", path, required=True)
        if kind and kind not in CHANNEL_TYPES:
            reader.error(f"{path}.type", f"must be one of {', '.join(CHANNEL_TYPES)}, got {kind!r}")
        secret = reader.string(item, "secret", path, required=kind not in (None, "sns"))
        if kind == "sns" and secret:
            reader.error(f"{path}.secret", "the sns channel is the stack's alert topic and takes no secret")
        if secret and "://" in secret:
            reader.error(
                f"{path}.secret", "must name a Secrets Manager secret or an SSM parameter, not the URL"
            )
        elif secret and not _SECRET_NAME.match(secret):
            reader.error(f"{path}.secret", "is not a secret name or SSM parameter path (A-Z a-z 0-9 /_+=.@-)")
        channels[name] = Channel(name=name, type=kind or "sns", secret=secret)
    return channels


def _routing(
    reader: _Reader, root: dict[str, Any], channels: dict[str, Channel], brand_ids: set[str]
) -> tuple[Route, ...]:
    """`routing:` a list of {brands, min_severity, channels}; every matching rule adds its channels."""
    raw_routes = root.get("routing") or []
    if not isinstance(raw_routes, list):
        reader.error("routing", "must be a list of rules")
        return ()
    routes = []
    for index, raw in enumerate(raw_routes):
        path = f"routing[{index}]"
        item = reader.mapping(raw, path)
        reader.unknown(item, {"brands", "min_severity", "channels"}, path)
        names = reader.strings(item, "channels", path, required=True)
        for n, name in enumerate(names):
            if name not in channels:
                reader.error(
                    f"{path}.channels[{n}]", f"unknown channel {name!r} (known: {', '.join(channels)})"
                )
        brands = reader.strings(item, "brands", path)
        for n, brand_id in enumerate(brands):
            if brand_id not in brand_ids:
                reader.error(f"{path}.brands[{n}]", f"unknown brand {brand_id!r}")
        severity = reader.string(item, "min_severity", path) or "warning"
        if severity not in ALERT_SEVERITIES:
            reader.error(f"{path}.min_severity", f"must be one of {', '.join(ALERT_SEVERITIES)}")
            severity = "warning"
        routes.append(Route(channels=names, brands=brands, min_severity=severity))
    return tuple(routes)


def load_config(parameter_name: str, *, max_age: int = 60) -> AppConfig:
    """Read the configuration from SSM Parameter Store through Powertools (cached for max_age seconds)."""
    from aws_lambda_powertools.utilities import parameters

    text = parameters.get_parameter(parameter_name, max_age=max_age)
    return parse_config(str(text), origin=f"ssm:{parameter_name}")
