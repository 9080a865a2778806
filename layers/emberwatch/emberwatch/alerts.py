"""Alert messages: built from an incident and its posts, rendered from templates/, published to SNS.

The other channels (Slack, Teams, PagerDuty, signed webhooks) live in `channels.py`."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .config import Brand
from .detect import Signal
from .models import RULE_LABELS, SOURCE_LABELS, Incident, Mention, scope_label
from .store import Store

logger = logging.getLogger(__name__)

POSTS_IN_ALERT = 5
_SUBJECT_UNSAFE = re.compile(r"[^\x20-\x7e]")


def sns_subject(text: str) -> str:
    """SNS subjects: ASCII, one line, under 100 characters."""
    ascii_text = unicodedata.normalize("NFKD", " ".join(text.split())).encode("ascii", "ignore").decode()
    ascii_text = _SUBJECT_UNSAFE.sub("", ascii_text).strip() or "Emberwatch alert"
    return ascii_text if len(ascii_text) < 100 else ascii_text[:96].rstrip() + "..."


def driving_posts(mentions: list[Mention], limit: int = POSTS_IN_ALERT) -> list[Mention]:
    """The posts that explain a spike: the most engaged first, then the newest; one per story, no noise."""
    chosen: list[Mention] = []
    stories: set[str] = set()
    for mention in sorted(mentions, key=lambda m: (m.engagement.total, m.created_at), reverse=True):
        story = mention.story or mention.id
        if mention.noise or story in stories:
            continue
        stories.add(story)
        chosen.append(mention)
        if len(chosen) == limit:
            break
    return chosen


def alert_context(
    kind: str,
    incident: Incident,
    signal: Signal | None,
    brand: Brand,
    posts: list[Mention],
    now: datetime,
    link: str | None,
) -> dict[str, Any]:
    """The template context of one alert (contract in templates/alert.txt.j2)."""
    by_source = signal.by_source if signal else {}
    expected = signal.expected if signal else incident.expected
    observed = signal.observed if signal else incident.observed
    return {
        "kind": kind,
        "brand": {"id": brand.id, "name": brand.name},
        "scope": incident.scope,
        "scope_label": scope_label(incident.scope),
        "rule": incident.rule,
        "rule_label": RULE_LABELS.get(incident.rule, incident.rule),
        "severity": incident.severity,
        "observed": observed if kind != "resolved" else incident.peak,
        "expected": expected,
        "ratio": (observed if kind != "resolved" else incident.peak) / expected if expected else None,
        "window_minutes": int((now - signal.window_start).total_seconds() // 60) if signal else 0,
        "since": incident.opened_at,
        "now": now,
        "resolved_at": incident.resolved_at,
        "sources": [
            {"source": name, "label": SOURCE_LABELS.get(name, name), "mentions": count}
            for name, count in sorted(by_source.items(), key=lambda kv: -kv[1])
        ],
        "posts": [
            {
                "source_label": SOURCE_LABELS.get(m.source, m.source),
                "author": m.author.handle,
                "created_at": m.created_at,
                "text": m.body or m.title or "",
                "url": m.url,
                "engagement": m.engagement.total,
                "sentiment": m.sentiment,
            }
            for m in posts
        ],
        "incident_key": incident.key,
        "reason": signal.reason if signal else "",
        "link": link,
    }


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One notification, ready for any channel: its template context, subject line and plain text."""

    kind: str
    incident_key: str
    brand: str
    severity: str
    level: int
    context: dict[str, Any]
    subject: str  # ASCII, one line, < 100 characters (SNS, email)
    headline: str  # the subject without the "[Emberwatch] " prefix (chat titles, PagerDuty summary)
    text: str  # the plain text body from templates/alert.txt.j2

    @property
    def delivery_id(self) -> str:
        """Same for every retry of this notification: receivers can drop repeats by it."""
        return f"{self.incident_key}#{self.kind}#{self.level}"


def compose(kind: str, incident: Incident, signal: Signal | None, context: dict[str, Any]) -> AlertMessage:
    """Render the subject and plain text of an alert from its context."""
    from .render import render

    subject = sns_subject(render("alert_subject.txt.j2", alert=context))
    return AlertMessage(
        kind=kind,
        incident_key=incident.key,
        brand=incident.brand,
        severity=incident.severity,
        level=incident.pending_level,
        context=context,
        subject=subject,
        headline=subject.removeprefix("[Emberwatch]").strip(),
        text=render("alert.txt.j2", alert=context),
    )


class AlertBuilder:
    """Builds an incident's notification once per run, with the posts driving it read from the store."""

    def __init__(self, *, store: Store, brands: dict[str, Brand], link: str | None) -> None:
        self.store = store
        self.brands = brands
        self.link = link
        self._built: dict[tuple[str, str, int], AlertMessage] = {}

    def build(self, kind: str, incident: Incident, signal: Signal | None) -> AlertMessage:
        key = (incident.key, kind, incident.pending_level)
        if key in self._built:
            return self._built[key]
        now = incident.resolved_at if kind == "resolved" and incident.resolved_at else incident.last_seen_at
        posts: list[Mention] = []
        if kind != "resolved":
            if incident.scope.startswith("post:"):
                posts = self.store.get_mentions(incident.brand, [incident.scope.split(":", 1)[1]])
            else:
                since = signal.window_start if signal else incident.opened_at
                window = self.store.mentions_between(incident.brand, since, now + timedelta(minutes=5))
                posts = driving_posts(list(window))
        context = alert_context(kind, incident, signal, self.brands[incident.brand], posts, now, self.link)
        message = compose(kind, incident, signal, context)
        self._built = {key: message}  # only the current notification: a run goes incident by incident
        return message


class SnsAlerter:
    """Publishes alerts to the alert topic (the default channel: email and SMS subscriptions)."""

    def __init__(
        self, topic_arn: str, *, store: Store, brands: dict[str, Brand], link: str | None, client: Any = None
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("sns")
        self.topic_arn = topic_arn
        self.builder = AlertBuilder(store=store, brands=brands, link=link)
        self.link = link
        self.client = client
        self.sent: list[dict[str, str]] = []

    def __call__(self, kind: str, incident: Incident, signal: Signal | None) -> None:
        self.publish(self.builder.build(kind, incident, signal))

    def publish(self, message: AlertMessage) -> None:
        """Publish one alert; the topic's subscriptions (email, SMS, queues) fan it out."""
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=message.subject,
            Message=message.text,
            MessageAttributes={
                "brand": {"DataType": "String", "StringValue": message.brand},
                "severity": {"DataType": "String", "StringValue": message.severity},
                "kind": {"DataType": "String", "StringValue": message.kind},
            },
        )
        self.sent.append(
            {"kind": message.kind, "subject": message.subject, "message_id": response["MessageId"]}
        )
        logger.info(
            "alert published",
            extra={"brand": message.brand, "kind": message.kind, "incident": message.incident_key},
        )

    def care(self, brand: Brand, waiting: list[dict[str, Any]], now: datetime) -> None:
        """Publish one care alert listing the negative mentions past the brand's reply target."""
        from .render import render

        context = {
            "brand": {"id": brand.id, "name": brand.name},
            "target_minutes": brand.reply_target_minutes,
            "waiting": waiting,
            "now": now,
            "link": self.link,
        }
        plural = "s" if len(waiting) != 1 else ""
        subject = sns_subject(
            f"[Emberwatch] CARE: {len(waiting)} negative mention{plural} of {brand.name} "
            f"waiting over {brand.reply_target_minutes} min"
        )
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=render("care_alert.txt.j2", care=context),
            MessageAttributes={
                "brand": {"DataType": "String", "StringValue": brand.id},
                "severity": {"DataType": "String", "StringValue": "warning"},
                "kind": {"DataType": "String", "StringValue": "care"},
            },
        )
        self.sent.append({"kind": "care", "subject": subject, "message_id": response["MessageId"]})
        logger.info("care alert published", extra={"brand": brand.id, "waiting": len(waiting)})
