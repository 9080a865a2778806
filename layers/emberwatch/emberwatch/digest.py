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
from zoneinfo import ZoneInfo

from .config import AppConfig, Brand, Recipient
from .models import RULE_LABELS, SOURCE_LABELS, CountBucket, Incident, Mention, scope_label, utc_iso
from .store import Store

logger = logging.getLogger(__name__)

TOP_POSTS = 5


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


def _change(now: int, before: int) -> float | None:
    return None if before == 0 else (now - before) / before


def _timeline(buckets: list[CountBucket], period: Period) -> list[dict[str, Any]]:
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
    for bucket in buckets:
        index = bisect_right(starts, bucket.start) - 1
        if 0 <= index < len(slots) and bucket.start < period.end:
            slots[index]["mentions"] += bucket.mentions
            slots[index]["negative"] += bucket.negative
    peak = max((s["mentions"] for s in slots), default=0) or 1
    for slot in slots:
        slot["bar"] = slot["mentions"] / peak
        slot["negative_bar"] = slot["negative"] / peak
    return slots


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
    current: list[CountBucket],
    previous: list[CountBucket],
    top: Iterable[Mention],
    incidents: Iterable[Incident],
    now: datetime,
    unsubscribe_url: str,
) -> dict[str, Any]:
    """The digest context (pure): hourly buckets of this and the previous period, top posts, incidents."""
    mentions = sum(b.mentions for b in current)
    negative = sum(b.negative for b in current)
    rated = sum(b.rated for b in current)
    before = sum(b.mentions for b in previous)
    before_negative = sum(b.negative for b in previous)
    before_rated = sum(b.rated for b in previous)
    per_source: dict[str, int] = {}
    for bucket in current:
        per_source[bucket.source] = per_source.get(bucket.source, 0) + bucket.mentions
    local_start = period.start.astimezone(ZoneInfo(period.zone))
    local_last = (period.end - timedelta(seconds=1)).astimezone(ZoneInfo(period.zone))
    label = (
        local_start.strftime("%a %d %b %Y")
        if period.kind == "daily"
        else f"{local_start:%d %b} – {local_last:%d %b %Y}"
    )
    return {
        "brand": {"id": brand.id, "name": brand.name},
        "period": {
            "kind": period.kind,
            "title": "Daily digest" if period.kind == "daily" else "Weekly digest",
            "start": period.start,
            "end": period.end,
            "label": label,
        },
        "totals": {
            "mentions": mentions,
            "previous_mentions": before,
            "change": _change(mentions, before),
            "negative": negative,
            # shares of the mentions that have a tone: unrated ones do not count as "not negative"
            "negative_share": negative / rated if rated else None,
            "previous_negative_share": before_negative / before_rated if before_rated else None,
            "sources": len([s for s, n in per_source.items() if n]),
        },
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
        "generated_at": now,
        "unsubscribe_url": unsubscribe_url,
    }


def compose_email(
    context: dict[str, Any], *, sender: str, recipient: Recipient, now: datetime
) -> EmailMessage:
    """A multipart/alternative message (plain text first, HTML preferred) with List-Unsubscribe."""
    from .render import render

    message = EmailMessage()
    brand = " ".join(context["brand"]["name"].split())
    message["Subject"] = f"{brand}: {context['period']['title'].lower()} for {context['period']['label']}"
    message["From"] = formataddr(("Emberwatch", sender))
    message["To"] = formataddr((" ".join((recipient.name or "").split()), recipient.email))
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid(domain=sender.split("@", 1)[1])
    message["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
    message["X-Emberwatch-Period"] = f"{context['period']['kind']} {context['period']['start']:%Y-%m-%d}"
    message.set_content(render("digest.txt.j2", digest=context))
    message.add_alternative(render("digest.html.j2", digest=context), subtype="html")
    return message


@dataclass
class DigestReport:
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)


class DigestService:
    """Builds each recipient's digests and sends them through SES v2, once per period."""

    def __init__(self, *, config: AppConfig, store: Store, sender: str, ses: Any = None) -> None:
        self.config = config
        self.store = store
        self.sender = sender
        if ses is None:
            import boto3

            ses = boto3.client("sesv2")
        self.ses = ses

    def context_for(
        self, brand: Brand, period: Period, now: datetime, recipient_email: str | None = None
    ) -> dict[str, Any]:
        current = self.store.hourly_counts(brand.id, period.start, period.end)
        previous = self.store.hourly_counts(brand.id, period.previous.start, period.previous.end)
        top = self.store.top_mentions(brand.id, period.start, period.end, TOP_POSTS)
        incidents = self.store.incidents_between(brand.id, period.start, period.end)
        unsubscribe = f"mailto:{self.sender}?subject=unsubscribe%20{recipient_email or ''}"
        return build_digest(
            brand,
            period,
            current=current,
            previous=previous,
            top=top,
            incidents=incidents,
            now=now,
            unsubscribe_url=unsubscribe,
        )

    def run(self, now: datetime, kind: str = "daily") -> DigestReport:
        """Send every due digest of this cadence; one rejected recipient does not stop the others."""
        report = DigestReport()
        for recipient in self.config.recipients:
            if recipient.cadence != kind:
                continue
            period = period_ending(now, kind, recipient.timezone)
            for brand_id in recipient.brands:
                brand = self.config.brand(brand_id)
                label = f"{recipient.email}/{brand.id}/{period.key}"
                pk, sk = f"D#{recipient.email}", f"{brand.id}#{period.key}"
                if not self.store.claim(pk, sk, now, ttl_days=400, lease_seconds=900):
                    report.skipped.append(label)
                    continue
                try:
                    context = self.context_for(brand, period, now, recipient.email)
                    message = compose_email(context, sender=self.sender, recipient=recipient, now=now)
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
