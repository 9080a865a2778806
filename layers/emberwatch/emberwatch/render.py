"""The Jinja2 environment over ``templates/``: digest emails and alert bodies.

Templates live outside the package so they can ship as their own Lambda layer
(mounted at ``/opt/emberwatch_templates``). ``*.html.j2`` templates are
auto-escaped; ``*.txt.j2`` templates are not. Undefined variables raise, so a
template never silently renders an empty gap where a number should be.

Only jinja2 and the standard library are imported here: this module is loaded
on every cold start of the alert and digest functions.
"""

from __future__ import annotations

import functools
import math
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_ENV_VAR = "EMBERWATCH_TEMPLATES_DIR"
LAYER_TEMPLATES_DIR = Path("/opt/emberwatch_templates")
REPO_TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent.parent / "templates"

DASH = "\u2013"  # en dash: shown where a value is missing
ELLIPSIS = "\u2026"
MINUS = "\u2212"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class TemplatesNotFoundError(FileNotFoundError):
    """No templates folder in any of the places Emberwatch looks."""


def templates_dir() -> Path:
    """Where the templates are: the env var, else the Lambda layer, else the repository's ``templates/``."""
    configured = os.environ.get(TEMPLATES_ENV_VAR)
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise TemplatesNotFoundError(f"{TEMPLATES_ENV_VAR}={configured!r} is not a directory")
        return path
    for candidate in (LAYER_TEMPLATES_DIR, REPO_TEMPLATES_DIR):
        if candidate.is_dir():
            return candidate
    raise TemplatesNotFoundError(
        "no Emberwatch templates found: set "
        f"{TEMPLATES_ENV_VAR}, attach the templates layer ({LAYER_TEMPLATES_DIR}), "
        f"or run from a checkout with {REPO_TEMPLATES_DIR}"
    )


# --------------------------------------------------------------------------- filters


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime; Emberwatch keeps every time in UTC")
    return value.astimezone(UTC)


def format_dt(value: datetime | None, fmt: str | None = None) -> str:
    """An aware datetime in UTC: ``Mon 13 May 2024, 14:05 UTC`` by default.

    ``fmt`` is one of the named, locale-independent presets (``"full"`` = the default,
    ``"short"`` → ``Mon 13 May, 14:05 UTC``, ``"date"`` → ``Mon 13 May 2024``,
    ``"day"`` → ``13 May``, ``"time"`` → ``14:05 UTC``, ``"iso"`` → ``2024-05-13T14:05Z``)
    or any ``strftime`` format. ``None`` renders as an en dash.
    """
    if value is None:
        return DASH
    moment = _utc(value)
    weekday, month = _DAYS[moment.weekday()], _MONTHS[moment.month - 1]
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    preset = fmt or "full"
    if preset == "full":
        return f"{weekday} {moment.day} {month} {moment.year}, {clock} UTC"
    if preset == "short":
        return f"{weekday} {moment.day} {month}, {clock} UTC"
    if preset == "date":
        return f"{weekday} {moment.day} {month} {moment.year}"
    if preset == "day":
        return f"{moment.day} {month}"
    if preset == "time":
        return f"{clock} UTC"
    if preset == "iso":
        return moment.strftime("%Y-%m-%dT%H:%MZ")
    return moment.strftime(fmt)


def format_num(value: int | float | None, digits: int | None = None) -> str:
    """Thousands separators: ``1234567`` → ``1,234,567``; floats get one decimal unless whole."""
    if value is None:
        return DASH
    if isinstance(value, float):
        if not math.isfinite(value):
            return DASH
        if digits is None:
            digits = 0 if value.is_integer() else 1
        text = f"{value:,.{digits}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    if digits:
        return f"{value:,.{digits}f}"
    return f"{int(value):,}"


def format_compact(value: int | float | None) -> str:
    """Large counts shortened for narrow cells: ``2841300`` → ``2.8M``, ``48200`` → ``48.2K``."""
    if value is None:
        return DASH
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (10_000, "K")):
        if abs(value) >= size:
            return f"{format_num(float(value) / size, 1)}{suffix}"
    return format_num(value)


def format_pct(value: float | None) -> str:
    """A fraction as a whole percentage: ``0.123`` → ``12%``; tiny non-zero shares show ``<1%``."""
    if value is None:
        return DASH
    if 0 < value < 0.005:
        return "<1%"
    return f"{round(value * 100):d}%"


def format_signed_pct(value: float | None) -> str:
    """A signed percentage change: ``0.25`` → ``+25%``, ``-0.1`` → ``-10%`` (U+2212 minus), ``None`` → new."""
    if value is None:
        return "new"
    rounded = round(value * 100)
    if rounded == 0:
        return "\u00b10%"
    sign = "+" if rounded > 0 else MINUS
    return f"{sign}{abs(rounded):,}%"


def format_duration(minutes: int | float | timedelta | None) -> str:
    """Minutes as ``45 min``, ``2 h 05 min`` or ``3 d 4 h``."""
    if minutes is None:
        return DASH
    if isinstance(minutes, timedelta):
        minutes = minutes.total_seconds() / 60
    total = max(0, round(minutes))
    if total < 60:
        return f"{total} min"
    hours, mins = divmod(total, 60)
    if hours < 24:
        return f"{hours} h {mins:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def truncate_text(text: str | None, length: int = 280, end: str = ELLIPSIS) -> str:
    """Cut ``text`` to at most ``length`` characters at a word boundary, ending with ``end``."""
    if text is None:
        return ""
    text = str(text).strip()
    if len(text) <= length:
        return text
    room = max(1, length - len(end))
    cut = text[:room]
    boundary = cut.rfind(" ")
    newline = max(cut.rfind("\n"), cut.rfind("\t"))
    boundary = max(boundary, newline)
    # Prefer a word boundary unless that would throw away most of the text (a long URL, say).
    if boundary >= room // 2:
        cut = cut[:boundary]
    cut = cut.rstrip(" \t\n\r,;:-\u2013\u2014")
    return cut + end


# C0 controls but tab and newline, DEL and the C1 controls: a post's NULs, bells and terminal escapes
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(value: Any) -> Any:
    """Every `{{ value }}` of every template passes here: control characters never reach a reader."""
    if isinstance(value, str) and _CONTROLS.search(value):
        cleaned = _CONTROLS.sub("", value)
        return type(value)(cleaned) if type(value) is not str else cleaned  # Markup stays Markup
    return value


def oneline(text: Any) -> str:
    """Collapse every run of whitespace, newlines included, into one space."""
    if text is None:
        return ""
    return " ".join(str(text).split())


FILTERS = {
    "dt": format_dt,
    "num": format_num,
    "compact": format_compact,
    "pct": format_pct,
    "signed_pct": format_signed_pct,
    "duration": format_duration,
    "truncate_text": truncate_text,
    "oneline": oneline,
}


# --------------------------------------------------------------------------- environment


@functools.cache
def environment() -> Environment:
    """The one Jinja2 environment (cached; ``environment.cache_clear()`` after moving the templates)."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(["html", "htm", "html.j2"], default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        finalize=strip_controls,
    )
    env.filters.update(FILTERS)
    return env


def render(template_name: str, **context: Any) -> str:
    """Render ``templates/<template_name>`` with ``context`` (e.g. ``render("alert.txt.j2", alert=...)``)."""
    return environment().get_template(template_name).render(**context)


# --------------------------------------------------------------------------- samples

_LONG_TEXT = (
    "I've been an Acme customer for six years and I want to explain, calmly, why I'm cancelling. "
    "On Monday the firmware update bricked two of our four warehouse scanners. Support told me to "
    "wait for a callback, which never came. On Tuesday the status page still said everything was "
    "operational while your own community forum had forty people reporting the same error code "
    "(E-1042). Today I finally reached someone who told me the fix is to ship the units back at our "
    "own cost and wait three weeks. We are a small business; three weeks without scanners means "
    "counting stock by hand. I like the hardware, I liked the team, but this is not how you treat "
    "customers who have been loyal since the Widget One. Please, at least update the status page."
)


def sample_digest_context() -> dict[str, Any]:
    """A realistic weekly digest context (the shape ``digest.build`` returns) for tests and previews."""
    end = datetime(2024, 5, 14, 0, 0, tzinfo=UTC)
    start = end - timedelta(days=7)
    # (mentions, negative) per day, Tue 7 May .. Mon 13 May: quiet, then the firmware 4.2 spike.
    counts = [(412, 38), (398, 41), (455, 52), (431, 47), (1290, 402), (1874, 611), (702, 139)]
    peak = max(total for total, _ in counts)
    timeline = []
    for offset, (total, neg) in enumerate(counts):
        day = start + timedelta(days=offset)
        timeline.append(
            {
                "label": f"{_DAYS[day.weekday()]} {day.day}",
                "mentions": total,
                "negative": neg,
                "bar": total / peak,
                "negative_bar": neg / peak,
            }
        )
    mentions = sum(total for total, _ in counts)
    negative = sum(neg for _, neg in counts)
    source_counts = [
        ("x", "X", 2180),
        ("reddit", "Reddit", 1310),
        ("hackernews", "Hacker News", 904),
        ("mastodon", "Mastodon", 566),
        ("bluesky", "Bluesky", 372),
        ("youtube", "YouTube", 230),
    ]
    by_source = [
        {"source": source, "label": label, "mentions": count, "share": count / mentions}
        for source, label, count in source_counts
    ]
    previous_mentions = 3980
    top_posts = [
        {
            "id": "hackernews:40351234",
            "source": "hackernews",
            "source_label": "Hacker News",
            "author": "pcollins",
            "created_at": datetime(2024, 5, 13, 9, 12, tzinfo=UTC),
            "title": "Acme Widgets firmware 4.2 bricks scanners in the field",
            "text": (
                "Our fleet of 40 Acme W-300 scanners went into a boot loop after the overnight "
                "auto-update. The rollback procedure in their docs requires a USB cable that they "
                "stopped shipping in 2022. Anyone found a workaround?"
            ),
            "url": "https://news.ycombinator.com/item?id=40351234",
            "engagement": 1873,
            "sentiment": "negative",
        },
        {
            "id": "x:1790012345678901234",
            "source": "x",
            "source_label": "X",
            "author": "@dana_builds",
            "created_at": datetime(2024, 5, 13, 10, 41, tzinfo=UTC),
            "title": None,
            "text": (
                "Shoutout to @AcmeWidgets support 🙌 they walked me through the 4.2 rollback in "
                "10 minutes and sent a replacement cable for free. That's how it's done 🔧✨"
            ),
            "url": "https://x.com/dana_builds/status/1790012345678901234",
            "engagement": 962,
            "sentiment": "positive",
        },
        {
            "id": "reddit:1cr7abc",
            "source": "reddit",
            "source_label": "Reddit",
            "author": "u/stockroom_sam",
            "created_at": datetime(2024, 5, 13, 11, 5, tzinfo=UTC),
            "title": "Six years with Acme, and I'm done",
            "text": _LONG_TEXT,
            "url": "https://www.reddit.com/r/smallbusiness/comments/1cr7abc/six_years_with_acme/",
            "engagement": 744,
            "sentiment": "negative",
        },
        {
            "id": "mastodon:112441234567890123",
            "source": "mastodon",
            "source_label": "Mastodon",
            "author": "@layla@mastodon.social",
            "created_at": datetime(2024, 5, 13, 13, 27, tzinfo=UTC),
            "title": None,
            "text": (
                "تحديث أجهزة Acme Widgets الأخير عطّل الماسح الضوئي عندنا أيضاً. "
                "هل من حل رسمي؟ الدعم الفني لم يرد منذ يومين."
            ),
            "url": "https://mastodon.social/@layla/112441234567890123",
            "engagement": 128,
            "sentiment": "negative",
        },
        {
            "id": "bluesky:3ksq2abcxyz2a",
            "source": "bluesky",
            "source_label": "Bluesky",
            "author": "@sec-notes.bsky.social",
            "created_at": datetime(2024, 5, 13, 16, 2, tzinfo=UTC),
            "title": None,
            "text": (
                'PSA: the "Acme fix" page going around is phishing. It embeds '
                '<script>alert(1)</script> and "><img src=x onerror=alert(1)> plus a tracker '
                '<img src="http://t.example/p.gif">. Only download firmware from acme.example.'
            ),
            "url": "https://bsky.app/profile/sec-notes.bsky.social/post/3ksq2abcxyz2a",
            "engagement": 97,
            "sentiment": "neutral",
        },
    ]
    incidents = [
        {
            "key": "acme#brand#volume_spike#2024-05-13T06:45Z",
            "rule": "volume_spike",
            "rule_label": "Volume spike",
            "scope": "brand",
            "scope_label": "All sources",
            "severity": "critical",
            "status": "resolved",
            "opened_at": datetime(2024, 5, 13, 6, 45, tzinfo=UTC),
            "resolved_at": datetime(2024, 5, 13, 12, 50, tzinfo=UTC),
            "duration_minutes": 365,
            "peak": 212,
            "expected": 22.6,
            "notifications": 3,
        },
        {
            "key": "acme#source:hackernews#volume_spike#2024-05-13T09:20Z",
            "rule": "volume_spike",
            "rule_label": "Volume spike",
            "scope": "source:hackernews",
            "scope_label": "Hacker News",
            "severity": "warning",
            "status": "open",
            "opened_at": datetime(2024, 5, 13, 9, 20, tzinfo=UTC),
            "resolved_at": None,
            "duration_minutes": None,
            "peak": 64,
            "expected": 7.5,
            "notifications": 1,
        },
    ]
    return {
        "brand": {"id": "acme", "name": "Acme Widgets"},
        "period": {
            "kind": "weekly",
            "title": "Weekly digest",
            "start": start,
            "end": end,
            "label": "7\u201313 May 2024",
            "zone": "UTC",
        },
        "totals": {
            "mentions": mentions,
            "previous_mentions": previous_mentions,
            "change": (mentions - previous_mentions) / previous_mentions,
            "negative": negative,
            "negative_share": negative / mentions,
            "previous_negative_share": 0.112,
            "sources": len(by_source),
        },
        "timeline": timeline,
        "by_source": by_source,
        "top_posts": top_posts,
        "incidents": incidents,
        "sections": (
            "headline",
            "trend",
            "themes",
            "top_stories",
            "incidents",
            "care",
            "ambassadors",
            "voices",
            "source_health",
        ),
        "headline": [
            _metric("mentions", "Mentions", mentions, previous_mentions, "num"),
            _metric("negative_share", "Negative", negative / mentions, 0.112, "pct", worse_when_up=True),
            _metric("reach", "Reach", 2_841_300, 1_102_950, "compact"),
            _metric("reply_rate", "Reply rate", 0.18, 0.24, "pct"),
            _metric("first_response", "Median first response", 42.5, 18.0, "duration", worse_when_up=True),
        ],
        "themes": [
            _theme("issue", "Business issues", 1480, 402, [top_posts[0], top_posts[3]]),
            _theme("solution_wanted", "Solutions wanted", 611, 215, [top_posts[2], top_posts[4]]),
            _theme("time_cost", "Time and cost", 188, 160, [top_posts[2]]),
            _theme("feedback", "Feedback", 95, 0, [top_posts[1]]),
        ],
        "care": {
            "answered": 412,
            "median_minutes": 42.5,
            "previous_median_minutes": 18.0,
            "p90_minutes": 312.0,
            "target_minutes": 15,
            "within_target": 0.31,
            "negative": 1330,
            "unanswered_negative": 918,
            "oldest_unanswered": [
                {**top_posts[3], "created_at": datetime(2024, 5, 7, 8, 2, tzinfo=UTC)},
                {**top_posts[2], "created_at": datetime(2024, 5, 7, 9, 40, tzinfo=UTC)},
            ],
        },
        "ambassadors": [
            {
                **top_posts[1],
                "first_negative_at": datetime(2024, 5, 10, 8, 0, tzinfo=UTC),
                "answered_at": datetime(2024, 5, 10, 9, 5, tzinfo=UTC),
            }
        ],
        "voices": [
            {
                **top_posts[0],
                "followers": 48_200,
                "name": "Paula Collins",
                "first_seen": datetime(2024, 5, 13, 9, 12, tzinfo=UTC),
            }
        ],
        "source_health": [
            {
                "source": "youtube",
                "label": "YouTube",
                "status": "failing",
                "failures": 7,
                "error": "quotaExceeded: The request cannot be completed because you have exceeded your "
                "quota.",
                "last_success_at": datetime(2024, 5, 12, 23, 55, tzinfo=UTC),
                "previous_mentions": 240,
            },
            {
                "source": "stackexchange",
                "label": "Stack Exchange",
                "status": "quiet",
                "failures": 0,
                "error": None,
                "last_success_at": datetime(2024, 5, 13, 23, 55, tzinfo=UTC),
                "previous_mentions": 12,
            },
        ],
        "generated_at": datetime(2024, 5, 14, 7, 0, 12, tzinfo=UTC),
        "unsubscribe_url": "https://emberwatch.example/unsubscribe?token=3f9a7c1e0b",
    }


def _metric(
    key: str, label: str, value: float, previous: float, fmt: str, *, worse_when_up: bool = False
) -> dict[str, Any]:
    change = (value - previous) / previous if previous else None
    return {
        "key": key,
        "label": label,
        "value": value,
        "previous": previous,
        "change": change,
        "format": fmt,
        "worse_when_up": worse_when_up,
    }


def _theme(theme: str, label: str, count: int, before: int, examples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "theme": theme,
        "label": label,
        "mentions": count,
        "previous": before,
        "change": (count - before) / before if before else None,
        "examples": examples,
    }


def sample_alert_context() -> dict[str, Any]:
    """A realistic spike alert context (what ``alerts`` passes) for tests and previews."""
    now = datetime(2024, 5, 13, 7, 5, tzinfo=UTC)
    return {
        "kind": "opened",
        "brand": {"id": "acme", "name": "Acme Widgets"},
        "scope": "brand",
        "scope_label": "All sources",
        "rule": "volume_spike",
        "rule_label": "Volume spike",
        "severity": "high",
        "observed": 212,
        "expected": 22.6,
        "ratio": 212 / 22.6,
        "window_minutes": 15,
        "since": datetime(2024, 5, 13, 6, 45, tzinfo=UTC),
        "now": now,
        "resolved_at": None,
        "sources": [
            {"source": "hackernews", "label": "Hacker News", "mentions": 97},
            {"source": "x", "label": "X", "mentions": 64},
            {"source": "reddit", "label": "Reddit", "mentions": 38},
            {"source": "mastodon", "label": "Mastodon", "mentions": 13},
        ],
        "posts": [
            {
                "source_label": "Hacker News",
                "author": "pcollins",
                "created_at": datetime(2024, 5, 13, 6, 41, tzinfo=UTC),
                "text": (
                    "Acme Widgets firmware 4.2 bricks scanners in the field.\n\nOur fleet of 40 Acme "
                    "W-300 scanners went into a boot loop after the overnight auto-update."
                ),
                "url": "https://news.ycombinator.com/item?id=40351234",
                "engagement": 412,
                "sentiment": "negative",
            },
            {
                "source_label": "X",
                "author": "@ops_mira",
                "created_at": datetime(2024, 5, 13, 6, 52, tzinfo=UTC),
                "text": "@AcmeWidgets every W-300 in our store is stuck on the logo 😡 #acmedown",
                "url": "https://x.com/ops_mira/status/1790001234567890123",
                "engagement": 188,
                "sentiment": "negative",
            },
            {
                "source_label": "Reddit",
                "author": "u/stockroom_sam",
                "created_at": datetime(2024, 5, 13, 6, 58, tzinfo=UTC),
                "text": _LONG_TEXT,
                "url": "https://www.reddit.com/r/smallbusiness/comments/1cr7abc/six_years_with_acme/",
                "engagement": 95,
                "sentiment": "negative",
            },
            {
                "source_label": "Mastodon",
                "author": "@noa@tooot.im",
                "created_at": datetime(2024, 5, 13, 7, 1, tzinfo=UTC),
                "text": "העדכון האחרון של Acme Widgets הקריס את הסורקים שלנו. מישהו מצא פתרון?",
                "url": "https://tooot.im/@noa/112441299999999999",
                "engagement": 21,
                "sentiment": "negative",
            },
        ],
        "incident_key": "acme#brand#volume_spike#2024-05-13T06:45Z",
        "link": "https://emberwatch.example/dashboard/acme?incident=2024-05-13T06%3A45Z",
    }
