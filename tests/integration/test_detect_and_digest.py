"""Detect and digest handlers against moto: one alert per incident, one email per period."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta

from emberwatch.events import scheduled_event
from emberwatch.models import Author, Engagement, Mention
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

START = datetime(2024, 5, 10, tzinfo=UTC)


def mention(
    n: int,
    created: datetime,
    *,
    text: str = "Acme Widgets works fine",
    likes: int = 0,
    source: str = "hackernews",
) -> Mention:
    return Mention(
        source=source,
        native_id=str(n),
        brand="acme",
        query='"acme widgets"',
        author=Author(f"user{n}"),
        text=text,
        created_at=created,
        url=f"https://news.ycombinator.com/item?id={n}",
        engagement=Engagement(likes=likes),
    )


def seed_baseline(store, days: int = 3) -> int:
    """Two mentions an hour for `days` days before START + days."""
    batch = [mention(i, START + timedelta(minutes=30 * i)) for i in range(days * 48)]
    assert store.store_mentions(batch).stored == len(batch)
    return len(batch)


def subscribe_queue(aws, stack) -> str:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(
        TopicArn=stack.physical["AlertTopic"]["Ref"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    return url


def drain(aws, url: str) -> list[dict]:
    sqs = aws.client("sqs")
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_burst_raises_one_alert_then_escalates_then_all_clear(aws, stack, store, handler, lambda_context):
    seed_baseline(store)
    inbox = subscribe_queue(aws, stack)
    app = handler("detect")
    fire = START + timedelta(days=3, hours=2)

    # quiet: no incident
    quiet = app.lambda_handler(
        scheduled_event(None, fire - timedelta(minutes=5), kind="detect"), lambda_context
    )
    assert quiet["opened"] == [] and drain(aws, inbox) == []

    # Given a burst of 30 angry posts in ten minutes
    burst = [
        mention(
            10_000 + i,
            fire + timedelta(seconds=20 * i),
            text="Acme Widgets deleted my data, support ignores me",
            likes=i,
        )
        for i in range(30)
    ]
    store.store_mentions(burst)
    now = fire + timedelta(minutes=10)
    first = app.lambda_handler(scheduled_event(None, now, kind="detect"), lambda_context)
    retry = app.lambda_handler(
        scheduled_event(None, now, kind="detect"), lambda_context
    )  # a retried invocation

    # Then exactly one alert went out, naming the brand, the surge and the posts driving it
    assert len(first["opened"]) == 1 and retry["opened"] == [] and retry["notifications"] == []
    (alert,) = drain(aws, inbox)
    assert alert["Subject"].startswith("FIRE") or "Acme Widgets" in alert["Subject"]
    body = alert["Message"]
    assert "Acme Widgets" in body and "deleted my data" in body
    assert "https://news.ycombinator.com/item?id=10029" in body  # the most engaged post is listed
    assert alert["MessageAttributes"]["kind"]["Value"] == "opened"

    # When it doubles at the same severity, nothing until the cooldown has passed, then one escalation
    store.store_mentions(
        [
            mention(20_000 + i, now + timedelta(seconds=5 * i), text="Acme Widgets outage again")
            for i in range(60)
        ]
    )
    soon = app.lambda_handler(
        scheduled_event(None, now + timedelta(minutes=5), kind="detect"), lambda_context
    )
    assert soon["escalated"] == [] and soon["notifications"] == [] and drain(aws, inbox) == []
    later = now + timedelta(minutes=30)  # detection.cooldown_minutes
    store.store_mentions(
        [
            mention(
                30_000 + i,
                later - timedelta(minutes=10) + timedelta(seconds=5 * i),
                text="Acme Widgets outage again",
            )
            for i in range(70)
        ]
    )
    escalated = app.lambda_handler(scheduled_event(None, later, kind="detect"), lambda_context)
    assert escalated["escalated"] and [
        m["MessageAttributes"]["kind"]["Value"] for m in drain(aws, inbox)
    ] == ["escalated"]

    # When the surge is over for six runs, one all-clear
    kinds = []
    for step in range(1, 12):
        result = app.lambda_handler(
            scheduled_event(None, later + timedelta(minutes=30 + 5 * step), kind="detect"), lambda_context
        )
        kinds += [m["MessageAttributes"]["kind"]["Value"] for m in drain(aws, inbox)]
        if result["resolved"]:
            break
    assert kinds == ["resolved"]
    (incident,) = store.incidents_between("acme", START, later + timedelta(days=1))
    assert incident.status == "resolved" and incident.notifications == 3 and incident.peak >= 60


def test_failed_publish_is_retried_next_run_and_sent_once(
    aws, stack, store, handler, lambda_context, monkeypatch
):
    seed_baseline(store)
    inbox = subscribe_queue(aws, stack)
    fire = START + timedelta(days=3, hours=2)
    store.store_mentions(
        [
            mention(30_000 + i, fire + timedelta(seconds=10 * i), text="Acme Widgets is down")
            for i in range(40)
        ]
    )
    app = handler("detect")
    sns = app.runtime.client("sns")
    real_publish = sns.publish
    calls = {"n": 0}

    def flaky_publish(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("SNS throttled")
        return real_publish(**kwargs)

    monkeypatch.setattr(sns, "publish", flaky_publish)
    first = app.lambda_handler(
        scheduled_event(None, fire + timedelta(minutes=8), kind="detect"), lambda_context
    )
    assert first["opened"] and first["failures"] and drain(aws, inbox) == []
    second = app.lambda_handler(
        scheduled_event(None, fire + timedelta(minutes=13), kind="detect"), lambda_context
    )
    assert second["notifications"] and [
        m["MessageAttributes"]["kind"]["Value"] for m in drain(aws, inbox)
    ] == ["opened"]
    third = app.lambda_handler(
        scheduled_event(None, fire + timedelta(minutes=18), kind="detect"), lambda_context
    )
    assert third["notifications"] == [] and drain(aws, inbox) == []


def sent_messages() -> list:
    """SES v2 sends are recorded by moto's SES backend (v2 delegates to v1)."""
    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def test_daily_digest_is_multipart_and_sent_once(aws, stack, store, handler, lambda_context):
    seed_baseline(store, days=3)
    store.store_mentions(
        [
            mention(
                40_000,
                START + timedelta(days=2, hours=5),
                text="<script>alert(1)</script> Acme Widgets rocks",
                likes=50,
            )
        ]
    )
    app = handler("digest")
    run_at = START + timedelta(days=3, hours=8)  # digest for day 3 (START + 2 days)

    first = app.lambda_handler(scheduled_event(None, run_at, kind="digest", period="daily"), lambda_context)
    again = app.lambda_handler(
        scheduled_event(None, run_at + timedelta(minutes=1), kind="digest", period="daily"), lambda_context
    )

    assert first["sent"] == 1 and again["sent"] == 0 and again["skipped"] == 1
    messages = sent_messages()
    assert len(messages) == 1
    parsed = email.message_from_string(messages[0].raw_data)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.get_payload()] == ["text/plain", "text/html"]
    assert " ".join(parsed["List-Unsubscribe"].split()).startswith("<mailto:")
    assert "Acme Widgets" in parsed["Subject"]
    html = parsed.get_payload()[1].get_payload(decode=True).decode()
    text = parsed.get_payload()[0].get_payload(decode=True).decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "49" in text  # 48 baseline mentions of that day plus the one above
