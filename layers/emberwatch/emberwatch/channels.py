"""Alert channels: the SNS topic, Slack, Microsoft Teams, PagerDuty Events API v2 and signed webhooks.

Each channel's URL, routing key or HMAC key lives in Secrets Manager (a secret name) or SSM
Parameter Store (a SecureString path starting with '/'), read through Powertools Parameters
with caching; never in the configuration text, environment variables or logs. A secret is a
JSON object ({"url": ...}, {"routing_key": ...}, {"url": ..., "hmac_key": ...}) or, for Slack,
Teams and PagerDuty, the bare URL or routing key.

Every request goes through `HttpClient`: a timeout, TLS verified, 429/5xx retried inside the
run's time budget. What still fails raises `ChannelError`; the detector releases that channel's
claim so the next run sends it again, without re-sending to the channels that succeeded.

Webhook signature: `X-Emberwatch-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<raw body>">`
with the timestamp (Unix seconds) in `X-Emberwatch-Timestamp`. See the README for verification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .alerts import AlertBuilder, AlertMessage, SnsAlerter
from .config import AppConfig, Brand, Channel, route_channels
from .models import Incident

if TYPE_CHECKING:  # requests is imported on the first webhook send, not at the detect's cold start
    from .http import HttpClient

logger = logging.getLogger(__name__)

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITY = {"warning": "warning", "high": "error", "critical": "critical"}
SLACK_COLOURS = {"warning": "#d69e2e", "high": "#dd6b20", "critical": "#c53030", "resolved": "#2f855a"}
TEAMS_COLOURS = {"warning": "Warning", "high": "Attention", "critical": "Attention", "resolved": "Good"}
POSTS_IN_CARD = 5
SECRET_MAX_AGE = 300
_MARKDOWN = re.compile(r"([\\`*_\[\]~])")  # emphasis, code, links; a link needs its [ ]
_MARKDOWN_LEAD = re.compile(r"^(\s*)([#>+-]|\d+(?=\.))")  # a heading, quote or list only at a line's start


class ChannelError(RuntimeError):
    """A channel did not take the alert (after retries); the next run tries that channel again."""


def read_secret(secret_id: str, *, max_age: int = SECRET_MAX_AGE) -> Any:
    """A channel secret: SSM SecureString when the name starts with '/', else Secrets Manager."""
    from aws_lambda_powertools.utilities import parameters

    if secret_id.startswith("/"):
        value = parameters.get_parameter(secret_id, decrypt=True, max_age=max_age)
    else:
        value = parameters.get_secret(secret_id, max_age=max_age)
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()
    return data if isinstance(data, dict) else text.strip()  # a bare key that happens to parse as JSON


def secret_field(channel: Channel, value: Any, name: str, *, bare: bool) -> str:
    """One field of a channel's secret; the bare string counts when the channel needs only one value."""
    if isinstance(value, dict) and isinstance(value.get(name), str) and value[name].strip():
        return value[name].strip()
    if bare and isinstance(value, str) and value:
        return value
    # names where the secret lives and what it lacks, never any of its content
    raise ChannelError(f"channel {channel.name}: secret {channel.secret} has no {name!r}")


# ---------------------------------------------------------------- escaping and shared pieces


def slack_escape(text: str) -> str:
    """Slack mrkdwn control characters: '&', '<', '>' (so '<!channel>' in a post pings nobody)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_escape(text: str) -> str:
    """Teams TextBlock markdown: a post's '[x](y)', '**' or '# ' show as typed, not as markup."""
    text = _MARKDOWN.sub(r"\\\1", text)
    return _MARKDOWN_LEAD.sub(lambda m: m[1] + (m[2] + "\\" if m[2][0].isdigit() else "\\" + m[2]), text)


def _oneline(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


POST_TEXT_MAX = 2_000  # characters of a post's field in a webhook body (the whole post is one click away)


def _clip(text: Any, limit: int) -> Any:
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "\u2026"


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _number(value: float | None) -> str:
    if value is None:
        return "\u2013"
    return f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.1f}"


def facts(message: AlertMessage) -> list[tuple[str, str]]:
    """The what / how much / since / severity / sources lines every rich format shows."""
    a = message.context
    observed = (
        f"{_number(a['observed'])} in {a['window_minutes']} min"
        if a["window_minutes"]
        else _number(a["observed"])
    )
    expected = f"expected {_number(a['expected'])}"
    ratio = f" ({a['ratio']:.1f}\u00d7)" if a.get("ratio") else ""
    out = [
        ("Brand", a["brand"]["name"]),
        ("What", f"{a['rule_label']} \u00b7 {a['scope_label']}"),
        ("Severity", str(a["severity"]).upper()),
        ("Observed", f"{observed}, {expected}{ratio}"),
        ("Since", f"{a['since']:%a %d %b %H:%M} UTC"),
    ]
    if a.get("resolved_at"):
        out.append(("Resolved", f"{a['resolved_at']:%a %d %b %H:%M} UTC"))
    if a["sources"]:
        out.append(("Sources", ", ".join(f"{s['label']} {s['mentions']}" for s in a["sources"])))
    return out


def _tone(post: dict[str, Any]) -> str:
    return str(post.get("sentiment") or "unrated")


def _mood(message: AlertMessage) -> str:
    return "resolved" if message.kind == "resolved" else str(message.severity)


# ---------------------------------------------------------------- payloads (pure)


def slack_payload(message: AlertMessage) -> dict[str, Any]:
    """Slack incoming-webhook message: Block Kit blocks, with `text` as the notification fallback."""
    a = message.context
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _oneline(message.headline, 150)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{slack_escape(_oneline(value, 300))}"}
                for label, value in facts(message)[:10]
            ],
        },
    ]
    for post in a["posts"][:POSTS_IN_CARD]:
        where = slack_escape(f"{post['source_label']} \u00b7 {_oneline(post['author'], 40)}")
        text = slack_escape(_oneline(post["text"], 280))
        url = slack_escape(post["url"]).replace("|", "%7C")
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"<{url}|{where}> \u00b7 {_tone(post)} \u00b7 {post['engagement']} engagements\n"
                    f">{text}",
                },
            }
        )
    footer = f"Incident `{slack_escape(message.incident_key)}`"
    if a.get("link"):
        footer += f" \u00b7 <{slack_escape(a['link'])}|Dashboard / runbook>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": slack_escape(message.headline), "blocks": blocks}


def teams_payload(message: AlertMessage) -> dict[str, Any]:
    """Teams incoming-webhook message: one Adaptive Card attachment."""
    a = message.context
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": markdown_escape(message.headline),
            "size": "Large",
            "weight": "Bolder",
            "color": TEAMS_COLOURS[_mood(message)],
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [{"title": label, "value": markdown_escape(value)} for label, value in facts(message)],
        },
    ]
    for post in a["posts"][:POSTS_IN_CARD]:
        body.append(
            {
                "type": "TextBlock",
                "text": markdown_escape(
                    f"{post['source_label']} \u00b7 {_oneline(post['author'], 40)} \u00b7 {_tone(post)} "
                    f"\u00b7 {post['engagement']} engagements"
                ),
                "weight": "Bolder",
                "spacing": "Medium",
                "wrap": True,
            }
        )
        body.append({"type": "TextBlock", "text": markdown_escape(_oneline(post["text"], 280)), "wrap": True})
        body.append(
            {"type": "TextBlock", "text": markdown_escape(post["url"]), "isSubtle": True, "wrap": True}
        )
    actions = (
        [{"type": "Action.OpenUrl", "title": "Open post", "url": a["posts"][0]["url"]}] if a["posts"] else []
    )
    if a.get("link"):
        actions.insert(0, {"type": "Action.OpenUrl", "title": "Dashboard / runbook", "url": a["link"]})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def pagerduty_event(message: AlertMessage, routing_key: str) -> dict[str, Any]:
    """Events API v2: trigger (opened, escalated) or resolve, deduplicated by the incident key."""
    if message.kind == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": message.incident_key}
    a = message.context
    links = [{"href": a["link"], "text": "Dashboard / runbook"}] if a.get("link") else []
    links += [
        {"href": p["url"], "text": _oneline(f"{p['source_label']}: {p['text']}", 100)}
        for p in a["posts"][:3]
        if p.get("url")
    ]
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": message.incident_key,
        "payload": {
            "summary": _oneline(message.headline, 1024),
            "source": f"emberwatch/{message.brand}",
            "severity": PAGERDUTY_SEVERITY.get(message.severity, "warning"),
            "timestamp": _iso(a["now"]),
            "component": a["scope_label"],
            "group": message.brand,
            "class": a["rule"],
            "custom_details": dict(facts(message)),
        },
        "client": "Emberwatch",
        "links": links,
    }


def webhook_body(message: AlertMessage) -> dict[str, Any]:
    """The generic webhook's JSON: the alert's fields, times in ISO 8601, and the plain text."""
    a = message.context
    return {
        "type": "emberwatch.alert",
        "delivery": message.delivery_id,
        "kind": message.kind,
        "incident_key": message.incident_key,
        "brand": a["brand"],
        "scope": a["scope"],
        "rule": a["rule"],
        "severity": message.severity,
        "observed": a["observed"],
        "expected": a["expected"],
        "ratio": a["ratio"],
        "window_minutes": a["window_minutes"],
        "since": _iso(a["since"]),
        "at": _iso(a["now"]),
        "resolved_at": _iso(a["resolved_at"]),
        "sources": a["sources"],
        "posts": [
            {
                **{key: _clip(value, POST_TEXT_MAX) for key, value in p.items()},
                "created_at": _iso(p["created_at"]),
            }
            for p in a["posts"]
        ],
        "link": a.get("link"),
        "summary": message.headline,
        "text": message.text,
    }


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of "<timestamp>." followed by the raw body."""
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    key: bytes, timestamp: str, body: bytes, signature: str, *, now: float, tolerance: int = 300
) -> bool:
    """What a receiver does: same HMAC in constant time, and a timestamp within `tolerance` seconds."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(key, timestamp, body), signature)


# ---------------------------------------------------------------- sending


class ChannelSender:
    """Sends `AlertMessage`s to the configured channels; one instance per detect run."""

    def __init__(
        self,
        channels: dict[str, Channel],
        *,
        http: HttpClient | Callable[[], HttpClient],
        sns: SnsAlerter | None = None,
        secrets: Callable[[str], Any] = read_secret,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.channels = channels
        self._http = http
        self.sns = sns
        self.secrets = secrets
        self.wall = wall
        self.sent: list[dict[str, str]] = []

    def send(self, name: str, message: AlertMessage) -> None:
        channel = self.channels.get(name)
        if channel is None:
            raise ChannelError(f"no channel named {name!r}")
        if channel.type == "sns":
            if self.sns is None:
                raise ChannelError(f"channel {name}: no alert topic (ALERT_TOPIC_ARN) to publish to")
            self.sns.publish(message)
        else:
            secret = self.secrets(channel.secret or "")
            if channel.type == "slack":
                self._post(channel, secret_field(channel, secret, "url", bare=True), slack_payload(message))
            elif channel.type == "teams":
                self._post(channel, secret_field(channel, secret, "url", bare=True), teams_payload(message))
            elif channel.type == "pagerduty":
                key = secret_field(channel, secret, "routing_key", bare=True)
                url = secret.get("url", PAGERDUTY_URL) if isinstance(secret, dict) else PAGERDUTY_URL
                self._post(channel, url, pagerduty_event(message, key))
            elif channel.type == "webhook":
                url = secret_field(channel, secret, "url", bare=False)
                key = secret_field(channel, secret, "hmac_key", bare=False).encode()
                body = json.dumps(webhook_body(message), ensure_ascii=False, separators=(",", ":")).encode()
                stamp = str(int(self.wall()))
                headers = {
                    "X-Emberwatch-Timestamp": stamp,
                    "X-Emberwatch-Signature": sign(key, stamp, body),
                    "X-Emberwatch-Delivery": message.delivery_id,
                }
                self._post(channel, url, body, headers=headers)
            else:
                raise ChannelError(f"channel {name}: unknown type {channel.type!r}")
        self.sent.append({"channel": name, "kind": message.kind, "incident": message.incident_key})
        logger.info(
            "alert sent",
            extra={"channel": name, "kind": message.kind, "incident": message.incident_key},
        )

    @property
    def http(self) -> HttpClient:
        """The HTTP client, made on first use (a run that only publishes to SNS never imports requests)."""
        if callable(self._http):
            self._http = self._http()
        return self._http

    def _post(
        self, channel: Channel, url: str, payload: Any, *, headers: dict[str, str] | None = None
    ) -> None:
        from .http import SourceError, redact

        if not url.startswith("https://"):  # TLS, verified, or nothing
            raise ChannelError(f"channel {channel.name}: the URL in {channel.secret} must be https")
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        try:
            response = self.http.post(
                url, data=body, headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})}
            )
        except SourceError as exc:  # retries spent inside the run's budget: the next run tries again
            raise ChannelError(f"channel {channel.name}: {exc}") from None
        if not 200 <= response.status_code < 300:
            # the URL carries the webhook's token: say only the status and a little of the answer
            raise ChannelError(
                f"channel {channel.name}: HTTP {response.status_code} {redact(response.text[:200])!r}"
            )
        if "text/html" in response.headers.get("Content-Type", "").lower():
            # a proxy, captive portal or login page answered, not the webhook: not delivered, retry later
            raise ChannelError(f"channel {channel.name}: HTTP {response.status_code} with an HTML page")


class Dispatcher:
    """The detector's notifier: routes an incident to channels and sends one message to one channel."""

    def __init__(self, config: AppConfig, builder: AlertBuilder, sender: ChannelSender) -> None:
        self.config = config
        self.builder = builder
        self.sender = sender

    def channels_for(self, incident: Incident) -> tuple[str, ...]:
        """Routing by brand and severity (the SNS topic when nothing else is configured)."""
        return route_channels(self.config.routing, incident.brand, incident.severity)

    def send(self, channel: str, kind: str, incident: Incident, signal: Any) -> None:
        self.sender.send(channel, self.builder.build(kind, incident, signal))

    def __call__(self, kind: str, incident: Incident, signal: Any) -> None:
        for channel in self.channels_for(incident):
            self.send(channel, kind, incident, signal)


def test_message(
    brand: Brand, channel: str, now: datetime, link: str | None, kind: str = "opened"
) -> AlertMessage:
    """What `emberwatch alert test` sends: a clearly marked test alert with its own PagerDuty key."""
    from dataclasses import replace

    from .alerts import alert_context, compose

    incident = Incident(
        brand=brand.id,
        scope="brand",
        rule="volume_spike",
        opened_at=now,
        status="resolved" if kind == "resolved" else "open",
        severity="warning",
        observed=0,
        expected=0.0,
        peak=0,
        notified_level=0,
        last_seen_at=now,
        resolved_at=now if kind == "resolved" else None,
        pending_kind=kind,
    )
    context = alert_context(kind, incident, None, brand, [], now, link)
    message = compose(kind, incident, None, context)
    note = f"TEST from `emberwatch alert test --channel {channel}`: no incident, nothing to do."
    return replace(
        message,
        incident_key=f"emberwatch-test|{brand.id}|{channel}",  # --kind resolved closes the same one
        subject=f"[Emberwatch] TEST ({channel}) {brand.name}"[:99],
        headline=f"TEST alert for {brand.name} via {channel}"
        + (" (all clear)" if kind == "resolved" else ""),
        text=f"{note}\n\n{message.text}",
    )
