"""Point 5, third part: hostile post text through every template and every channel format.

Each hostile string is put into every text, author, title and name field of the sample alert, care and
digest contexts (the shapes the functions pass), then rendered as the plain-text alert and subject,
the care alert, Slack, Teams, PagerDuty and webhook payloads, and the digest email (HTML, text and
headers). It must come out as inert text: no markup, mention or link it smuggled in, no header it
added, no control character, and bounded in size.
"""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email import policy
from typing import Any

import pytest
from emberwatch import render
from emberwatch.alerts import AlertMessage, sns_subject
from emberwatch.channels import pagerduty_event, slack_payload, teams_payload, webhook_body
from emberwatch.config import Recipient
from emberwatch.digest import compose_email

from tests.reliability.ledger import record

pytestmark = pytest.mark.reliability

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "attribute break-out": '"><img src=x onerror=alert(1)>',
    "tracking pixel": '<img src="http://t.example/p.gif" width="1" height="1">',
    "iframe": "<iframe src=//evil.example/></iframe>",
    "style": "<style>body{display:none}</style>",
    "markdown link": "[verify your account](javascript:alert(1))",
    "slack link and mentions": "<https://evil.example|Reset password> <!channel> <!here>",
    "header injection": "Refund\r\nBcc: victim@example.com\r\nSubject: pwned\r\n\r\nbody",
    "template syntax": "{{ 7*7 }} {% if true %}x{% endif %} ${jndi:ldap://x.example/a}",
    "controls": "bad\x00null\x07bell\x1b[31mred\x1b[0m\x7f",
    "right to left and emoji": "\u202eevil\u202c مرحبا بالعالم 🔥🔥 שלום",
    "already escaped": "&lt;script&gt;alert(1)&lt;/script&gt; &amp;",
    "sql": "'; DROP TABLE mentions; --",
    "huge": "acme widgets " * 8_000,
}
FIELDS = {"text", "author", "title", "name", "handle", "snippet"}
NOW = datetime(2024, 5, 14, 8, tzinfo=UTC)


def poison(value: Any, hostile: str) -> Any:
    """A copy of a context with every human-written string field replaced by the hostile text."""
    if isinstance(value, dict):
        return {
            key: hostile if key in FIELDS and isinstance(item, str) else poison(item, hostile)
            for key, item in value.items()
            if key != "brand"  # the brand's name is the operator's validated configuration, not a post
        } | ({"brand": value["brand"]} if "brand" in value else {})
    if isinstance(value, list):
        return [poison(item, hostile) for item in value]
    return value


def alert_message(context: dict[str, Any]) -> AlertMessage:
    subject = sns_subject(render.render("alert_subject.txt.j2", alert=context))
    return AlertMessage(
        kind="opened",
        incident_key="acme|brand|volume_spike|2024-05-14T08:00Z",
        brand="acme",
        severity="high",
        level=1,
        context=context,
        subject=subject,
        headline=subject.removeprefix("[Emberwatch]").strip(),
        text=render.render("alert.txt.j2", alert=context),
    )


def care_context(hostile: str) -> dict[str, Any]:
    waiting = {
        "source_label": "Hacker News",
        "author": hostile,
        "created_at": NOW,
        "waiting_minutes": 42,
        "text": hostile,
        "url": "https://news.ycombinator.com/item?id=1",
    }
    return {
        "brand": {"id": "acme", "name": "Acme Widgets"},
        "target_minutes": 15,
        "waiting": [waiting, waiting],
        "now": NOW,
        "link": None,
    }


def mrkdwn_texts(value: Any) -> list[str]:
    """The texts of a Slack payload that Slack parses as mrkdwn."""
    if isinstance(value, list):
        return [text for item in value for text in mrkdwn_texts(item)]
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str) else []
        return (
            own
            + [text for key, item in value.items() if key != "text" for text in mrkdwn_texts(item)]
            + (mrkdwn_texts(value["text"]) if isinstance(value.get("text"), dict) else [])
        )
    return []


def no_controls(text: str) -> bool:
    return not any((ord(ch) < 32 and ch not in "\n\t") or ord(ch) == 127 for ch in text)


def check_html(out: str) -> None:
    lowered = out.lower()
    for marker in ("<script", "<iframe", "<img src=x", '<img src="http://t.example', "<style>body{display"):
        assert marker not in lowered, marker
    assert 'href="javascript' not in lowered and "href='javascript" not in lowered, "a javascript: link"
    assert no_controls(out)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_post_text_is_shown_as_inert_text_everywhere(name):
    hostile = HOSTILE[name]
    checked = 0

    # the alert: plain text, subject, and each channel's rich format
    message = alert_message(poison(render.sample_alert_context(), hostile))
    assert "\n" not in message.subject and "\r" not in message.subject and len(message.subject) < 100
    assert message.subject.isascii()
    assert no_controls(message.text) and len(message.text) < 20_000
    # Slack parses mrkdwn (links, <!channel> pings) in the fallback text and mrkdwn fields; plain_text
    # (the header) is shown as typed
    payload = slack_payload(message)
    for parsed_text in [payload["text"], *mrkdwn_texts(payload["blocks"])]:
        for marker in ("<script", "<!channel>", "<!here>", "<https://evil.example|"):
            assert marker not in parsed_text, (marker, parsed_text[:200])
    # Teams TextBlocks are markdown: a post's link must not become one
    teams = json.dumps(teams_payload(message), ensure_ascii=False)
    assert "[verify your account](javascript:" not in teams
    for payload in (pagerduty_event(message, "R0UTINGKEY"), webhook_body(message)):
        body = json.dumps(payload, ensure_ascii=False)
        assert len(body) < 100_000  # data, kept as data, but bounded
        json.loads(body)
    checked += 6

    # the care alert
    care = render.render("care_alert.txt.j2", care=care_context(hostile))
    assert no_controls(care) and len(care) < 5_000
    checked += 1

    # the digest: HTML, text and the email's headers (the recipient's name is hostile too)
    digest = poison(render.sample_digest_context(), hostile)
    check_html(render.render("digest.html.j2", digest=digest))
    text = render.render("digest.txt.j2", digest=digest)
    assert no_controls(text) and "<script" not in text.replace(HOSTILE["script"], "")
    recipient = Recipient(email="ops@acme.example", name=hostile[:200], brands=("acme",))
    mail = compose_email(digest, sender="digest@acme.example", recipient=recipient, now=NOW)
    parsed = email.message_from_bytes(mail.as_bytes(), policy=policy.default)
    assert parsed.get_all("Bcc") is None
    assert len(parsed.get_all("To")) == 1 and len(parsed.get_all("Subject")) == 1
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])
    html_part = parsed.get_body(("html",)).get_content()
    check_html(html_part)
    assert len(mail.as_bytes()) < 1_000_000
    checked += 4

    record("bad input", faults=checked, survived=checked, hostile=name)
