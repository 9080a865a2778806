"""Alert messages: built from an incident and its posts, rendered from templates/, published to SNS."""

from __future__ import annotations

import logging
import re
import unicodedata
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


class SnsAlerter:
    """Renders an incident's notification and publishes it to the alert topic."""

    def __init__(
        self, topic_arn: str, *, store: Store, brands: dict[str, Brand], link: str | None, client: Any = None
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("sns")
        self.topic_arn = topic_arn
        self.store = store
        self.brands = brands
        self.link = link
        self.client = client
        self.sent: list[dict[str, str]] = []

    def __call__(self, kind: str, incident: Incident, signal: Signal | None) -> None:
        from .render import render

        now = incident.resolved_at if kind == "resolved" and incident.resolved_at else incident.last_seen_at
        posts: list[Mention] = []
        if kind != "resolved":
            since = signal.window_start if signal else incident.opened_at
            window = self.store.mentions_between(incident.brand, since, now + timedelta(minutes=5))
            posts = driving_posts(list(window))
        context = alert_context(kind, incident, signal, self.brands[incident.brand], posts, now, self.link)
        subject = sns_subject(render("alert_subject.txt.j2", alert=context))
        body = render("alert.txt.j2", alert=context)
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=body,
            MessageAttributes={
                "brand": {"DataType": "String", "StringValue": incident.brand},
                "severity": {"DataType": "String", "StringValue": incident.severity},
                "kind": {"DataType": "String", "StringValue": kind},
            },
        )
        self.sent.append({"kind": kind, "subject": subject, "message_id": response["MessageId"]})
        logger.info(
            "alert published", extra={"brand": incident.brand, "kind": kind, "incident": incident.key}
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
