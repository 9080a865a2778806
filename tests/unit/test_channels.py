"""Channel payloads (Slack, Teams, PagerDuty, signed webhook), escaping, signatures, routing, config."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from emberwatch.alerts import compose
from emberwatch.channels import (
    markdown_escape,
    pagerduty_event,
    sign,
    slack_escape,
    slack_payload,
    teams_payload,
    verify,
    webhook_body,
)
from emberwatch.config import ConfigError, Route, parse_config, route_channels
from emberwatch.models import Incident
from emberwatch.render import sample_alert_context

HOSTILE = "<!channel> *free* [click](https://evil.example) & <https://evil.example|login> # pwned"


def message(kind: str = "opened", *, hostile: bool = False):
    context = sample_alert_context()
    context["kind"] = kind
    if hostile:
        context["posts"][0]["text"] = HOSTILE
        context["posts"][0]["author"] = "<@U123>"
    if kind == "resolved":
        context["resolved_at"] = datetime(2024, 5, 13, 9, 0, tzinfo=UTC)
    incident = Incident(
        brand="acme",
        scope="brand",
        rule="volume_spike",
        opened_at=datetime(2024, 5, 13, 6, 45, tzinfo=UTC),
        status="resolved" if kind == "resolved" else "open",
        severity="high",
        observed=212,
        expected=22.6,
        peak=212,
        notified_level=212,
        last_seen_at=datetime(2024, 5, 13, 7, 5, tzinfo=UTC),
        pending_kind=kind,
        pending_level=212,
    )
    return compose(kind, incident, None, context)


def test_slack_message_has_a_plain_fallback_blocks_the_facts_and_linked_posts():
    payload = slack_payload(message())
    assert "Acme Widgets" in payload["text"] and "FIRE" in payload["text"]
    header, facts, *posts, footer = payload["blocks"]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    fields = " ".join(f["text"] for f in facts["fields"])
    assert "*Severity*\nHIGH" in fields and "expected 23" in fields and "9.4\u00d7" in fields
    assert "Hacker News 97" in fields  # the sources
    assert posts[0]["text"]["text"].startswith("<https://news.ycombinator.com/item?id=40351234|")
    assert "negative" in posts[0]["text"]["text"]  # the tone
    assert "https://emberwatch.example/dashboard/acme" in footer["elements"][0]["text"]


def test_slack_escapes_hostile_post_text_so_nobody_is_pinged_and_no_link_is_forged():
    payload = slack_payload(message(hostile=True))
    post = payload["blocks"][2]["text"]["text"]
    assert "<!channel>" not in post and "&lt;!channel&gt;" in post
    assert "&lt;@U123&gt;" in post
    assert "<https://evil.example|login>" not in post and "&amp;" in post


def test_teams_message_is_an_adaptive_card_in_the_webhook_envelope():
    payload = teams_payload(message(hostile=True))
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Severity"] == "HIGH"
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert any("\\[click\\](https://evil.example)" in t for t in texts)  # shown as typed, not a link
    assert card["actions"][0]["url"].startswith("https://emberwatch.example/dashboard")
    json.dumps(payload)  # JSON-serialisable: quotes and newlines in posts are JSON-escaped by the encoder


def test_pagerduty_trigger_and_resolve_share_the_incident_key_as_dedup_key():
    trigger = pagerduty_event(message("opened"), "R0UTINGKEY")
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == "R0UTINGKEY"
    assert trigger["dedup_key"] == "acme|brand|volume_spike|2024-05-13T06:45:00Z"
    payload = trigger["payload"]
    assert payload["severity"] == "error"  # high -> error (PagerDuty: critical, error, warning, info)
    assert payload["source"] == "emberwatch/acme" and "Acme Widgets" in payload["summary"]
    assert len(payload["summary"]) <= 1024 and payload["timestamp"] == "2024-05-13T07:05:00+00:00"
    assert trigger["links"][0]["href"].startswith("https://emberwatch.example/dashboard")
    resolve = pagerduty_event(message("resolved"), "R0UTINGKEY")
    assert resolve == {
        "routing_key": "R0UTINGKEY",
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_webhook_body_carries_the_alert_with_iso_times_and_a_stable_delivery_id():
    body = webhook_body(message())
    assert body["kind"] == "opened" and body["severity"] == "high"
    assert body["since"] == "2024-05-13T06:45:00+00:00"
    assert body["posts"][0]["url"] == "https://news.ycombinator.com/item?id=40351234"
    assert body["delivery"] == "acme|brand|volume_spike|2024-05-13T06:45:00Z#opened#212"
    assert "FIRE" in body["text"]


def test_signature_is_hmac_sha256_over_timestamp_dot_body_and_verifies():
    key, stamp, body = b"s3cret", "1715583900", b'{"a":1}'
    signature = sign(key, stamp, body)
    # computed independently: printf '1715583900.{"a":1}' | openssl dgst -sha256 -hmac s3cret
    import hashlib
    import hmac

    assert signature == "sha256=" + hmac.new(key, b'1715583900.{"a":1}', hashlib.sha256).hexdigest()
    assert verify(key, stamp, body, signature, now=1715583900 + 60)
    assert not verify(key, stamp, body + b" ", signature, now=1715583900)  # tampered body
    assert not verify(b"other", stamp, body, signature, now=1715583900)
    assert not verify(key, stamp, body, signature, now=1715583900 + 3600)  # replayed later
    assert not verify(key, "soon", body, signature, now=1715583900)


def test_escaping_helpers():
    assert slack_escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    assert markdown_escape("**x** [y](z) (ok) #1") == "\\*\\*x\\*\\* \\[y\\](z) (ok) #1"
    assert markdown_escape("# big") == "\\# big" and markdown_escape("1. item") == "1\\. item"


# ---------------------------------------------------------------- config and routing

BASE = """
brands:
  - id: acme
    name: Acme
    queries: [acme]
  - id: globex
    name: Globex
    queries: [globex]
"""


def test_channels_and_routing_parse_and_route_by_brand_and_severity():
    config = parse_config(
        BASE
        + """
channels:
  oncall-slack: {type: slack, secret: emberwatch/prod/channels/slack}
  pager: {type: pagerduty, secret: /emberwatch/prod/channels/pagerduty}
  hook: {type: webhook, secret: emberwatch/prod/channels/hook}
routing:
  - channels: [sns, oncall-slack]
  - brands: [acme]
    min_severity: high
    channels: [pager, hook]
detection:
  cooldown_minutes: 45
"""
    )
    assert config.channels["pager"].secret == "/emberwatch/prod/channels/pagerduty"
    assert config.detection.cooldown_minutes == 45
    assert route_channels(config.routing, "acme", "warning") == ("sns", "oncall-slack")
    assert route_channels(config.routing, "acme", "critical") == ("sns", "oncall-slack", "pager", "hook")
    assert route_channels(config.routing, "globex", "critical") == ("sns", "oncall-slack")


def test_without_routing_everything_goes_to_the_sns_topic():
    config = parse_config(BASE)
    assert config.channels["sns"].type == "sns"
    assert route_channels(config.routing, "acme", "critical") == ("sns",)
    # a rule set that matches nothing for an alert still reaches the topic
    assert route_channels((Route(channels=("x",), min_severity="critical"),), "acme", "warning") == ("sns",)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("channels: {s: {type: slack}}", "channels.s.secret: is required"),
        ("channels: {s: {type: fax, secret: a}}", "channels.s.type: must be one of"),
        (
            "channels: {s: {type: slack, secret: 'https://hooks.slack.com/services/T/B/x'}}",
            "channels.s.secret",
        ),
        ("channels: {s: {type: slack, secret: a, url: b}}", "channels.s.url: unknown field"),
        ("channels: {S!: {type: slack, secret: a}}", "channels.S!"),
        ("routing: [{channels: [nope]}]", "routing[0].channels[0]: unknown channel 'nope'"),
        ("routing: [{channels: [sns], brands: [initech]}]", "routing[0].brands[0]: unknown brand"),
        ("routing: [{channels: [sns], min_severity: urgent}]", "routing[0].min_severity"),
        ("routing: [{brands: [acme]}]", "routing[0].channels: is required"),
        ("routing: {channels: [sns]}", "routing: must be a list"),
        ("detection: {cooldown_minutes: -1}", "detection.cooldown_minutes"),
    ],
)
def test_bad_channel_and_routing_config_names_the_field(extra: str, field: str):
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + extra, origin="c.yaml")
    assert field in str(info.value)
    assert "hooks.slack.com" not in str(info.value)  # a URL pasted in by mistake is not echoed
