"""The managers' digest: assembled from counts, top posts and incidents, rendered, sent once with SES v2."""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from .config import DIGEST_SECTIONS, AppConfig, Brand, Recipient
from .models import (
    RULE_LABELS,
    SOURCE_LABELS,
    CareHour,
    HourRollup,
    Incident,
    Mention,
    parse_iso,
    scope_label,
    utc_iso,
)
from .store import FRT_BINS, Store

logger = logging.getLogger(__name__)

TOP_POSTS = 5
EXAMPLES_PER_THEME = 2
AMBASSADORS = 10
VOICES = 5
VOICE_CANDIDATES = 20  # the most followed authors checked for "first seen in the period" (one batch read)
SEND_GRACE = timedelta(hours=12)  # a digest not sent at its hour is tried by the hourly runs this long
DIGEST_THEMES = ("issue", "solution_wanted", "time_cost", "feedback")
THEME_LABELS = {
    "issue": "Business issues",
    "solution_wanted": "Solutions wanted",
    "time_cost": "Time and cost",
    "feedback": "Feedback",
}


@dataclass(frozen=True, slots=True)
class Period:
    kind: str  # "daily" | "weekly"
    start: datetime  # aware, UTC
    end: datetime
    zone: str

    @property
    def days(self) -> int:
        return 7 if self.kind == "weekly" else 1

    @property
    def previous(self) -> Period:
        """The same local span just before (local days: a 23- or 25-hour day stays one day)."""
        return Period(self.kind, _local_days_before(self.start, self.days, self.zone), self.start, self.zone)

    @property
    def key(self) -> str:
        return f"{self.kind}#{utc_iso(self.start)}"


def _local_days_before(moment: datetime, days: int, zone: str) -> datetime:
    """The UTC instant of the local wall-clock time `days` days before `moment` in `zone`."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz).replace(tzinfo=None) - timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(UTC)


def period_ending(now: datetime, kind: str, zone: str) -> Period:
    """The last complete local day (or the 7 local days) before `now` in the recipient's zone."""
    tz = ZoneInfo(zone)
    local_midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    end = local_midnight.replace(tzinfo=tz).astimezone(UTC)
    return Period(kind, _local_days_before(end, 7 if kind == "weekly" else 1, zone), end, zone)


def _change(now: float | None, before: float | None) -> float | None:
    return None if not before or now is None else (now - before) / before


def _timeline(hours: list[HourRollup], period: Period) -> list[dict[str, Any]]:
    """Hourly bars for a day, one bar per local day for a week (DST days included)."""
    tz = ZoneInfo(period.zone)
    starts: list[datetime] = []
    cursor = period.start
    while cursor < period.end:
        starts.append(cursor)
        if period.kind == "daily":
            cursor += timedelta(hours=1)
        else:
            cursor = _local_days_before(cursor, -1, period.zone)
    slots: list[dict[str, Any]] = [
        {
            "label": start.astimezone(tz).strftime("%H:00" if period.kind == "daily" else "%a %d"),
            "mentions": 0,
            "negative": 0,
        }
        for start in starts
    ]
    for hour in hours:
        index = bisect_right(starts, hour.start) - 1
        if 0 <= index < len(slots) and hour.start < period.end:
            slots[index]["mentions"] += hour.mentions
            slots[index]["negative"] += hour.negative
    peak = max((s["mentions"] for s in slots), default=0) or 1
    for slot in slots:
        slot["bar"] = slot["mentions"] / peak
        slot["negative_bar"] = slot["negative"] / peak
    return slots


def _histogram(care: list[CareHour]) -> list[tuple[float, float, int]]:
    """(lower, upper seconds, count) bands of first-response times; the last band is open-ended."""
    counts: dict[int | None, int] = {}
    for hour in care:
        for limit, count in hour.bins.items():
            counts[limit] = counts.get(limit, 0) + count
    bands, lower = [], 0.0
    for limit in FRT_BINS:
        bands.append((lower, float(limit), counts.get(limit, 0)))
        lower = float(limit)
    bands.append((lower, lower, counts.get(None, 0)))  # above the last bound: shown as that bound
    return bands


def frt_quantile(care: list[CareHour], q: float) -> float | None:
    """The q-quantile of first-response seconds, interpolated linearly inside its histogram band."""
    bands = _histogram(care)
    total = sum(c for _, _, c in bands)
    if not total:
        return None
    target, seen = q * total, 0.0
    for lower, upper, count in bands:
        if count and seen + count >= target:
            return lower + (upper - lower) * (target - seen) / count
        seen += count
    return bands[-1][1]


def frt_share_within(care: list[CareHour], seconds: float) -> float | None:
    """Share of answered mentions whose first response came within `seconds` (interpolated in its band)."""
    bands = _histogram(care)
    total = sum(c for _, _, c in bands)
    if not total:
        return None
    within = 0.0
    for lower, upper, count in bands:
        if upper == lower:
            continue  # the open-ended band above every bound: never within a target below it
        if upper <= seconds:
            within += count
        elif lower < seconds:
            within += count * (seconds - lower) / (upper - lower)
    return min(1.0, within / total)


def _post(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored post summary (rollup example, voice, ambassador) as the templates show posts."""
    created = entry.get("created_at") or entry.get("positive_at")
    return {
        "id": entry.get("id") or entry.get("mention_id"),
        "source": entry.get("source", ""),
        "source_label": SOURCE_LABELS.get(entry.get("source", ""), entry.get("source", "")),
        "author": entry.get("author") or entry.get("handle") or "",
        "created_at": parse_iso(created) if isinstance(created, str) else created,
        "text": entry.get("text") or "",
        "url": entry.get("url") or "",
        "engagement": entry.get("engagement", 0),
        "sentiment": entry.get("sentiment"),
    }


def _themes(current: list[HourRollup], previous: list[HourRollup]) -> list[dict[str, Any]]:
    out = []
    for theme in DIGEST_THEMES:
        count = sum(h.themes.get(theme, 0) for h in current)
        before = sum(h.themes.get(theme, 0) for h in previous)
        examples = sorted(
            (h.examples[theme] for h in current if theme in h.examples),
            key=lambda e: (e.get("engagement", 0), e.get("created_at", "")),
            reverse=True,
        )
        out.append(
            {
                "theme": theme,
                "label": THEME_LABELS[theme],
                "mentions": count,
                "previous": before,
                "change": _change(count, before),
                "examples": [_post(e) for e in examples[:EXAMPLES_PER_THEME]],
            }
        )
    return out


def _care(
    brand: Brand,
    current: list[HourRollup],
    care: list[CareHour],
    previous_care: list[CareHour],
    waiting: list[dict[str, Any]],
) -> dict[str, Any]:
    answered = sum(c.answered for c in care)
    awaiting = sum(h.awaiting for h in current)
    target = brand.reply_target_minutes * 60
    return {
        "answered": answered,
        "median_minutes": _minutes(frt_quantile(care, 0.5)),
        "previous_median_minutes": _minutes(frt_quantile(previous_care, 0.5)),
        "p90_minutes": _minutes(frt_quantile(care, 0.9)),
        "target_minutes": brand.reply_target_minutes,
        "within_target": frt_share_within(care, target),
        "negative": awaiting,
        "unanswered_negative": max(0, awaiting - sum(c.answered_negative for c in care)),
        "oldest_unanswered": [_post(w) for w in waiting],
    }


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _voices(
    current: list[HourRollup], first_seen: dict[tuple[str, str], datetime], period: Period
) -> list[dict[str, Any]]:
    """Well-followed authors whose first mention of the brand falls in the period, most followed first."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for voice in voice_candidates(current):
        key = (voice["source"], voice["author"].lower())
        seen = first_seen.get(key)
        if seen is not None and period.start <= seen < period.end:
            chosen.setdefault(
                key,
                {
                    **_post(voice),
                    "followers": voice.get("followers", 0),
                    "name": voice.get("name"),
                    "first_seen": seen,
                },
            )
    return list(chosen.values())[:VOICES]


def voice_candidates(current: list[HourRollup], limit: int = VOICE_CANDIDATES) -> list[dict[str, Any]]:
    """The most followed authors the rollups kept, one entry each (their first kept post)."""
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for hour in current:
        for voice in hour.voices:
            key = (voice.get("source", ""), str(voice.get("author", "")).lower())
            if key not in unique or voice.get("created_at", "") < unique[key].get("created_at", ""):
                unique[key] = voice
    return sorted(unique.values(), key=lambda v: -(v.get("followers") or 0))[:limit]


def _per_source(hours: list[HourRollup]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for hour in hours:
        for source, n in hour.sources.items():
            totals[source] = totals.get(source, 0) + n
    return totals


def _source_health(
    runs: dict[str, dict[str, Any]], current: list[HourRollup], previous: list[HourRollup], period: Period
) -> list[dict[str, Any]]:
    """Sources that failed in the period, or went quiet (nothing this period, something before)."""
    now_counts, before_counts = _per_source(current), _per_source(previous)
    out = []
    for source in sorted(set(runs) | set(before_counts)):
        run = runs.get(source, {})
        failed_at = run.get("last_error_at")
        failing = bool(run.get("failures")) and failed_at is not None and parse_iso(failed_at) >= period.start
        quiet = not now_counts.get(source) and before_counts.get(source, 0) > 0
        if not failing and not quiet:
            continue
        success = run.get("last_success_at")
        out.append(
            {
                "source": source,
                "label": SOURCE_LABELS.get(source, source),
                "status": "failing" if failing else "quiet",
                "failures": run.get("failures", 0),
                "error": run.get("last_error") if failing else None,
                "last_success_at": parse_iso(success) if success else None,
                "previous_mentions": before_counts.get(source, 0),
            }
        )
    return out


def _incident_row(incident: Incident) -> dict[str, Any]:
    duration = None
    if incident.resolved_at:
        duration = int((incident.resolved_at - incident.opened_at).total_seconds() // 60)
    return {
        "key": incident.key,
        "rule": incident.rule,
        "rule_label": RULE_LABELS.get(incident.rule, incident.rule),
        "scope": incident.scope,
        "scope_label": scope_label(incident.scope),
        "severity": incident.severity,
        "status": incident.status,
        "opened_at": incident.opened_at,
        "resolved_at": incident.resolved_at,
        "duration_minutes": duration,
        "peak": incident.peak,
        "expected": incident.expected,
        "notifications": incident.notifications,
    }


def build_digest(
    brand: Brand,
    period: Period,
    *,
    current: list[HourRollup],
    previous: list[HourRollup],
    top: Iterable[Mention],
    incidents: Iterable[Incident],
    now: datetime,
    unsubscribe_url: str,
    care: list[CareHour] = (),  # type: ignore[assignment]
    previous_care: list[CareHour] = (),  # type: ignore[assignment]
    waiting: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ambassadors: Iterable[dict[str, Any]] = (),
    first_seen: dict[tuple[str, str], datetime] | None = None,
    runs: dict[str, dict[str, Any]] | None = None,
    sections: tuple[str, ...] = DIGEST_SECTIONS,
) -> dict[str, Any]:
    """The digest context (pure), from the hourly rollups of this and the previous period and the
    other aggregates (care histograms, top-post lists, incidents, ambassadors, source runs)."""
    care, previous_care = list(care), list(previous_care)
    fields = ("mentions", "negative", "rated", "reach", "customer")
    mentions, negative, rated, reach, customer = (sum(getattr(h, f) for h in current) for f in fields)
    before, before_negative, before_rated, before_reach, before_customer = (
        sum(getattr(h, f) for h in previous) for f in fields
    )
    answered = sum(c.answered for c in care)
    before_answered = sum(c.answered for c in previous_care)
    per_source = _per_source(current)
    tz = ZoneInfo(period.zone)
    local_start = period.start.astimezone(tz)
    local_last = (period.end - timedelta(seconds=1)).astimezone(tz)
    label = (
        local_start.strftime("%a %d %b %Y")
        if period.kind == "daily"
        else f"{local_start:%d %b} – {local_last:%d %b %Y}"
    )
    negative_share = negative / rated if rated else None
    previous_negative_share = before_negative / before_rated if before_rated else None
    reply_rate = answered / customer if customer else None
    previous_reply_rate = before_answered / before_customer if before_customer else None
    care_section = _care(brand, current, care, previous_care, list(waiting))
    headline = [
        {"key": "mentions", "label": "Mentions", "value": mentions, "previous": before, "format": "num"},
        {
            "key": "negative_share",
            "label": "Negative",
            "value": negative_share,
            "previous": previous_negative_share,
            "format": "pct",
            "worse_when_up": True,
        },
        {"key": "reach", "label": "Reach", "value": reach, "previous": before_reach, "format": "compact"},
        {
            "key": "reply_rate",
            "label": "Reply rate",
            "value": reply_rate,
            "previous": previous_reply_rate,
            "format": "pct",
        },
        {
            "key": "first_response",
            "label": "Median first response",
            "value": care_section["median_minutes"],
            "previous": care_section["previous_median_minutes"],
            "format": "duration",
            "worse_when_up": True,
        },
    ]
    for metric in headline:
        metric.setdefault("worse_when_up", False)
        metric["change"] = _change(metric["value"], metric["previous"])
    return {
        "brand": {"id": brand.id, "name": brand.name},
        "sections": sections,
        "period": {
            "kind": period.kind,
            "title": "Daily digest" if period.kind == "daily" else "Weekly digest",
            "start": period.start,
            "end": period.end,
            "label": label,
            "zone": period.zone,
        },
        "totals": {
            "mentions": mentions,
            "previous_mentions": before,
            "change": _change(mentions, before),
            "negative": negative,
            # shares of the mentions that have a tone: unrated ones do not count as "not negative"
            "negative_share": negative_share,
            "previous_negative_share": previous_negative_share,
            "sources": len([s for s, n in per_source.items() if n]),
        },
        "headline": headline,
        "timeline": _timeline(current, period),
        "by_source": [
            {
                "source": s,
                "label": SOURCE_LABELS.get(s, s),
                "mentions": n,
                "share": n / mentions if mentions else 0.0,
            }
            for s, n in sorted(per_source.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "themes": _themes(current, previous),
        "top_posts": [
            {
                "id": m.id,
                "source": m.source,
                "source_label": SOURCE_LABELS.get(m.source, m.source),
                "author": m.author.handle,
                "created_at": m.created_at,
                "title": m.title,
                "text": m.body,
                "url": m.url,
                "engagement": m.engagement.total,
                "sentiment": m.sentiment,
            }
            for m in sorted(top, key=lambda m: (m.engagement.total, m.created_at), reverse=True)[:TOP_POSTS]
        ],
        "incidents": [_incident_row(i) for i in sorted(incidents, key=lambda i: i.opened_at)],
        "care": care_section,
        "ambassadors": [
            {
                **_post(a),
                "first_negative_at": parse_iso(a["first_negative_at"]),
                "answered_at": parse_iso(a["answered_at"]),
            }
            for a in sorted(ambassadors, key=lambda a: a.get("positive_at", ""))
        ][:AMBASSADORS],
        "voices": _voices(current, first_seen or {}, period),
        "source_health": _source_health(runs or {}, current, previous, period),
        "generated_at": now,
        "unsubscribe_url": unsubscribe_url,
    }


def _header_text(value: Any) -> str:
    """One line for a mail header: CR, LF and every other control character become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(value or "")).split())


def compose_email(
    context: dict[str, Any],
    *,
    sender: str,
    recipient: Recipient,
    now: datetime,
    unsubscribe_https: str | None = None,
) -> EmailMessage:
    """A multipart/alternative message (plain text first, HTML preferred) with List-Unsubscribe."""
    from .render import render

    message = EmailMessage()
    brand = _header_text(context["brand"]["name"])
    message["Subject"] = _header_text(
        f"{brand}: {context['period']['title'].lower()} for {context['period']['label']}"
    )
    message["From"] = formataddr(("Emberwatch", sender))
    message["To"] = formataddr((_header_text(recipient.name), recipient.email))
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid(domain=sender.split("@", 1)[1])
    mailto = f"mailto:{sender}?subject=unsubscribe"
    if unsubscribe_https:
        message["List-Unsubscribe"] = f"<{unsubscribe_https}>, <{mailto}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        message["List-Unsubscribe"] = f"<{mailto}>"
    message["X-Emberwatch-Period"] = f"{context['period']['kind']} {context['period']['start']:%Y-%m-%d}"
    message.set_content(render("digest.txt.j2", digest=context))
    message.add_alternative(render("digest.html.j2", digest=context), subtype="html")
    return message


def send_at(recipient: Recipient, now: datetime) -> datetime:
    """The recipient's latest scheduled send time at or before `now` (their local hour, and weekday)."""
    tz = ZoneInfo(recipient.timezone)
    day = now.astimezone(tz).date()
    while True:
        # fold=0: an hour skipped by a DST change is the first instant after the gap, a repeated one
        # its first occurrence
        moment = datetime(day.year, day.month, day.day, recipient.hour, tzinfo=tz).astimezone(UTC)
        if moment <= now and (recipient.cadence != "weekly" or day.weekday() == recipient.weekday):
            return moment
        day -= timedelta(days=1)


def due_period(recipient: Recipient, now: datetime) -> Period | None:
    """The period to send now: the one that ended before the latest send time, if that was < GRACE ago.

    Runs are hourly, so a send that failed (or a run that never came) is tried again by the next runs
    within the grace time; the send record keeps it to one email.
    """
    moment = send_at(recipient, now)
    if now - moment >= SEND_GRACE:
        return None
    return period_ending(moment, recipient.cadence, recipient.timezone)


@dataclass
class DigestReport:
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)


class DigestService:
    """Builds each recipient's digests and sends them through SES v2, once per period."""

    def __init__(
        self,
        *,
        config: AppConfig,
        store: Store,
        sender: str,
        ses: Any = None,
        unsubscribe_url: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.sender = sender
        self.unsubscribe_url = unsubscribe_url
        if ses is None:
            import boto3

            ses = boto3.client("sesv2")
        self.ses = ses

    def unsubscribe_https(self, recipient_email: str | None, brand_id: str) -> str | None:
        if not self.unsubscribe_url or not recipient_email:
            return None
        query = urlencode({"recipient": recipient_email, "brand": brand_id})
        return f"{self.unsubscribe_url}{'&' if '?' in self.unsubscribe_url else '?'}{query}"

    def context_for(
        self,
        brand: Brand,
        period: Period,
        now: datetime,
        recipient_email: str | None = None,
        sections: tuple[str, ...] = DIGEST_SECTIONS,
    ) -> dict[str, Any]:
        """Read the period's aggregates (never its mentions) and build the digest context."""
        store, previous = self.store, period.previous
        current = store.rollups(brand.id, period.start, period.end)
        before = store.rollups(brand.id, previous.start, previous.end)
        candidates = voice_candidates(current)
        unsubscribe = self.unsubscribe_https(recipient_email, brand.id)
        return build_digest(
            brand,
            period,
            current=current,
            previous=before,
            top=store.top_mentions(brand.id, period.start, period.end, TOP_POSTS),
            incidents=store.incidents_between(brand.id, period.start, period.end),
            now=now,
            unsubscribe_url=unsubscribe or f"mailto:{self.sender}?subject=unsubscribe",
            # the first-response histograms ride in the same hourly rollups: no further reads
            care=[h.care for h in current if h.care],
            previous_care=[h.care for h in before if h.care],
            waiting=store.oldest_waiting(brand.id, period.start, period.end, now),
            ambassadors=store.ambassadors(brand.id, period.start, period.end, limit=AMBASSADORS),
            first_seen=store.first_seen(brand.id, [(v["source"], v["author"]) for v in candidates]),
            runs=store.source_runs(brand.id),
            sections=sections,
        )

    def run(self, now: datetime, kind: str | None = None) -> DigestReport:
        """Send every digest due at `now` (each recipient's local hour); `kind` limits it to one cadence.

        One rejected recipient does not stop the others; its send record is released so the next
        hourly run tries again.
        """
        report = DigestReport()
        for recipient in self.config.recipients:
            if kind is not None and recipient.cadence != kind:
                continue
            period = due_period(recipient, now)
            if period is None:
                continue
            for brand_id in recipient.brands:
                brand = self.config.brand(brand_id)
                label = f"{recipient.email}/{brand.id}/{period.key}"
                pk, sk = f"D#{recipient.email}", f"{brand.id}#{period.key}"
                if not self.store.claim(pk, sk, now, ttl_days=400, lease_seconds=900):
                    report.skipped.append(label)
                    continue
                try:
                    context = self.context_for(brand, period, now, recipient.email, recipient.sections)
                    message = compose_email(
                        context,
                        sender=self.sender,
                        recipient=recipient,
                        now=now,
                        unsubscribe_https=self.unsubscribe_https(recipient.email, brand.id),
                    )
                    response = self.ses.send_email(
                        FromEmailAddress=self.sender,
                        Destination={"ToAddresses": [recipient.email]},
                        Content={"Raw": {"Data": message.as_bytes()}},
                    )
                except Exception as exc:
                    self.store.release(pk, sk)
                    report.failed.append(f"{label}: {exc}")
                    logger.exception("digest not sent", extra={"brand": brand.id, "period": period.key})
                    continue
                self.store.complete(pk, sk, {"message_id": response.get("MessageId")})
                report.sent.append(label)
                report.messages.append(message)
                logger.info("digest sent", extra={"brand": brand.id, "period": period.key})
        return report
