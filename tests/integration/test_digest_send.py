"""Digests against moto: built from the rollups the store keeps, sent at each recipient's local hour,
once, with one rejected recipient not stopping the others."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy

import pytest
from botocore.exceptions import ClientError
from emberwatch.config import parse_config
from emberwatch.digest import DigestService, period_ending
from emberwatch.models import Author, Engagement, Mention
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from tests.conftest import CONFIG_YAML, SENDER

DAY = datetime(2024, 5, 13, tzinfo=UTC)  # a Monday


def config_with(recipients: str, brand_name: str = "Acme Widgets"):
    head = CONFIG_YAML.split("recipients:")[0].replace("name: Acme Widgets", f"name: {brand_name}")
    return parse_config(head + "recipients:\n" + recipients)


def mention(n: int, created: datetime, **kw) -> Mention:
    return Mention(
        source=kw.pop("source", "hackernews"),
        native_id=str(n),
        brand="acme",
        query="acme",
        author=kw.pop("author", Author(f"user{n}")),
        text=kw.pop("text", f"Acme Widgets post {n}"),
        created_at=created,
        url=f"https://news.ycombinator.com/item?id={n}",
        engagement=kw.pop("engagement", Engagement(likes=n % 7)),
        **kw,
    )


def sent() -> list[email.message.EmailMessage]:
    backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    return [email.message_from_string(m.raw_data, policy=default_policy) for m in backend.sent_messages]


def service(aws, store, config, **kw) -> DigestService:
    return DigestService(config=config, store=store, sender=SENDER, ses=aws.client("sesv2"), **kw)


# ---------------------------------------------------------------- schedule: local hour, weekday, DST


def hourly(svc: DigestService, start: datetime, hours: int) -> list[tuple[datetime, str]]:
    out = []
    for h in range(hours):
        now = start + timedelta(hours=h, seconds=4)
        for label in svc.run(now).sent:
            out.append((now, label))
    return out


def test_each_recipient_gets_one_digest_at_their_local_hour(aws, stack, store):
    config = config_with(
        "  - {email: utc@acme.example, cadence: daily}\n"
        "  - {email: tokyo@acme.example, cadence: daily, timezone: Asia/Tokyo, hour: 7}\n"
        "  - {email: ny@acme.example, cadence: daily, timezone: America/New_York, hour: 18}\n"
    )
    svc = service(aws, store, config)
    # the first run catches up what was due in the hours before (Tokyo's and New York's 22:00 UTC)
    caught_up = svc.run(DAY - timedelta(hours=1)).sent
    assert sorted(label.split("/")[0] for label in caught_up) == ["ny@acme.example", "tokyo@acme.example"]
    sends = hourly(svc, DAY, 36)
    labels = [label for _, label in sends]
    assert len(labels) == len(set(labels))  # one email per recipient and period
    hours = sorted((label.split("/")[0], now.hour) for now, label in sends)
    assert hours == [
        ("ny@acme.example", 22),  # 18:00 EDT
        ("tokyo@acme.example", 22),  # 07:00 in Tokyo is 22:00 UTC the day before
        ("utc@acme.example", 8),
        ("utc@acme.example", 8),
    ]
    # the period is the local day that just ended in the recipient's zone
    ny_at, ny = next((now, label) for now, label in sends if label.startswith("ny@"))
    assert ny.endswith(period_ending(ny_at, "daily", "America/New_York").key)


def test_weekly_digest_on_its_weekday_across_the_dst_change(aws, stack, store):
    # Berlin leaves summer time on Sunday 27 Oct 2024: that week has 169 hours
    config = config_with(
        "  - {email: berlin@acme.example, cadence: weekly, weekday: mon, hour: 9, timezone: Europe/Berlin}\n"
    )
    store.store_mentions(
        [mention(i, datetime(2024, 10, 27, 10, tzinfo=UTC) + timedelta(minutes=i)) for i in range(5)]
    )
    svc = service(aws, store, config)
    sends = hourly(svc, datetime(2024, 10, 26, tzinfo=UTC), 24 * 5)
    assert len(sends) == 1
    now, label = sends[0]
    assert now.hour == 8 and now.date().isoformat() == "2024-10-28"  # 09:00 CET is 08:00 UTC
    period = period_ending(now, "weekly", "Europe/Berlin")
    assert (period.end - period.start) == timedelta(hours=169)
    assert label.endswith(period.key)
    (message,) = sent()
    assert "21 Oct – 27 Oct 2024" in message["Subject"]


def test_daily_hour_skipped_by_spring_forward_is_sent_just_after_the_gap(aws, stack, store):
    # 02:00 does not exist in Berlin on 31 Mar 2024: the 02:00 digest goes at 03:00 CEST (01:00 UTC)
    config = config_with(
        "  - {email: early@acme.example, cadence: daily, hour: 2, timezone: Europe/Berlin}\n"
    )
    sends = hourly(service(aws, store, config), datetime(2024, 3, 30, 14, tzinfo=UTC), 24)
    assert [now.strftime("%d %H") for now, _ in sends] == ["31 01"]


def test_recipient_fields_are_validated_by_name():
    with pytest.raises(ValueError) as error:
        config_with(
            "  - {email: a@acme.example, cadence: weekly, weekday: someday, hour: 25,"
            " sections: [themes, gossip]}\n"
        )
    text = str(error.value)
    assert "recipients[0].weekday" in text and "recipients[0].hour" in text
    assert "recipients[0].sections[1]" in text and "gossip" in text


# ---------------------------------------------------------------- sent once, one rejection isolated


def test_a_rejected_recipient_does_not_stop_the_others_and_is_retried(aws, stack, store, caplog):
    config = config_with(
        "  - {email: one@acme.example}\n  - {email: bounce@acme.example}\n  - {email: three@acme.example}\n"
    )
    ses = aws.client("sesv2")
    rejecting = {"bounce@acme.example"}

    def reject(params, **_):
        # SES answers MessageRejected for this address; moto would accept it, so the call is failed here
        if set(params["Destination"]["ToAddresses"]) & rejecting:
            raise ClientError(
                {"Error": {"Code": "MessageRejected", "Message": "Email address is not verified."}},
                "SendEmail",
            )

    ses.meta.events.register("provide-client-params.sesv2.SendEmail", reject)
    svc = DigestService(config=config, store=store, sender=SENDER, ses=ses)
    first = svc.run(DAY + timedelta(hours=8))
    assert [label.split("/")[0] for label in first.sent] == ["one@acme.example", "three@acme.example"]
    assert len(first.failed) == 1 and "bounce@acme.example" in first.failed[0]
    assert "MessageRejected" in first.failed[0]
    assert "digest not sent" in caplog.text
    # a retried invocation of the same run sends nothing twice
    assert svc.run(DAY + timedelta(hours=8, minutes=1)).sent == []
    # once SES accepts the address again, the next hourly run sends the one that failed, and only it
    rejecting.clear()
    later = svc.run(DAY + timedelta(hours=9))
    assert [label.split("/")[0] for label in later.sent] == ["bounce@acme.example"]
    assert sorted(m["To"].addresses[0].addr_spec for m in sent()) == [
        "bounce@acme.example",
        "one@acme.example",
        "three@acme.example",
    ]


def test_no_digest_outside_the_grace_time(aws, stack, store):
    config = config_with("  - {email: one@acme.example}\n")
    assert service(aws, store, config).run(DAY + timedelta(hours=21)).sent == []


# ---------------------------------------------------------------- sections from the aggregates


def seed_week(store) -> None:
    """A customer week: themes, negatives (some answered by the brand), a well-followed newcomer."""
    mentions = []
    for i in range(120):
        created = DAY - timedelta(hours=12) + timedelta(minutes=11 * i)
        theme = ("issue", "solution_wanted", "time_cost", "feedback")[i % 4]
        mentions.append(
            mention(
                i,
                created,
                theme=theme,
                sentiment="negative" if i % 3 == 0 else "positive",
                engagement=Engagement(likes=i),
                author=Author(f"user{i}", followers=50),
            )
        )
    mentions.append(
        mention(
            500,
            DAY + timedelta(hours=4),
            author=Author("bigvoice", "Big Voice", followers=250_000),
            sentiment="neutral",
            theme="feedback",
        )
    )
    # an older, well-followed author: not new this period
    store.store_mentions([mention(600, DAY - timedelta(days=3), author=Author("oldhand", followers=90_000))])
    mentions.append(mention(601, DAY + timedelta(hours=5), author=Author("oldhand", followers=90_000)))
    store.store_mentions(mentions)
    # the brand answers three negative mentions of the day: after 10 min, 40 min and 3 h
    for parent, minutes in ((99, 10), (102, 40), (105, 180)):
        created = DAY - timedelta(hours=12) + timedelta(minutes=11 * parent)
        store.store_mentions(
            [
                mention(
                    9000 + parent,
                    created + timedelta(minutes=minutes),
                    author=Author("acme_support"),
                    own=True,
                    parent_id=f"hackernews:{parent}",
                )
            ]
        )
    store.record_run("acme", "hackernews", DAY + timedelta(hours=23), error=None, stats={})
    store.record_run("acme", "reddit", DAY + timedelta(hours=23), error="HTTP 503 from reddit", stats={})


def test_daily_context_has_every_section_from_the_aggregates(aws, stack, store):
    seed_week(store)
    config = config_with("  - {email: one@acme.example}\n")
    svc = service(aws, store, config)
    period = period_ending(DAY + timedelta(days=1, hours=8), "daily", "UTC")
    digest = svc.context_for(config.brand("acme"), period, DAY + timedelta(days=1, hours=8))

    headline = {m["key"]: m for m in digest["headline"]}
    day_mentions = [i for i in range(120) if DAY - timedelta(hours=12) + timedelta(minutes=11 * i) >= DAY]
    assert headline["mentions"]["value"] == len(day_mentions) + 2 + 3  # + bigvoice, oldhand, 3 replies
    assert headline["mentions"]["previous"] == 120 - len(day_mentions) + 0
    assert headline["reach"]["value"] == 50 * len(day_mentions) + 250_000 + 90_000
    assert headline["reply_rate"]["value"] == pytest.approx(3 / (len(day_mentions) + 2))
    themes = {t["theme"]: t for t in digest["themes"]}
    assert sum(t["mentions"] for t in themes.values()) == len(day_mentions) + 1
    assert all(len(t["examples"]) == 2 for t in themes.values())
    # examples are the most engaged kept per hour, the best first
    assert themes["issue"]["examples"][0]["engagement"] >= themes["issue"]["examples"][1]["engagement"]
    care = digest["care"]
    assert care["answered"] == 3
    assert 10 <= care["median_minutes"] <= 60  # the middle answer (40 min) lies in the 30-60 min band
    assert care["p90_minutes"] > 60
    assert care["within_target"] == pytest.approx(1 / 3)  # target 15 min: only the 10-minute answer
    negatives_today = len([i for i in day_mentions if i % 3 == 0])
    assert care["negative"] == negatives_today
    assert care["unanswered_negative"] == negatives_today - 3
    assert 1 <= len(care["oldest_unanswered"]) <= 3
    assert [v["author"] for v in digest["voices"]] == ["bigvoice"]
    assert digest["voices"][0]["followers"] == 250_000
    health = {h["source"]: h for h in digest["source_health"]}
    assert set(health) == {"reddit"} and health["reddit"]["status"] == "failing"
    assert "HTTP 503" in health["reddit"]["error"]


def test_storing_the_same_mentions_again_changes_no_rollup(aws, stack, store):
    batch = [mention(i, DAY + timedelta(minutes=i), theme="issue") for i in range(30)]
    store.store_mentions(batch)
    before = store.rollups("acme", DAY, DAY + timedelta(days=1))
    assert store.store_mentions(batch).duplicates == 30
    assert store.rollups("acme", DAY, DAY + timedelta(days=1)) == before
    assert sum(r.mentions for r in before) == 30 and sum(r.themes["issue"] for r in before) == 30


def test_items_read_do_not_grow_with_the_mentions(aws, stack, store):
    """The digest reads the same items for a quiet day and a five-times busier one (bench/digest.py
    measures weeks of 10,000 and 200,000 mentions)."""
    config = config_with("  - {email: one@acme.example}\n")
    svc = service(aws, store, config)
    brand = config.brand("acme")

    def day_items(start: datetime, per_hour: int, offset: int) -> int:
        store.store_mentions(
            mention(
                offset + h * per_hour + k,
                start + timedelta(hours=h, minutes=k * 59 // per_hour),
                author=Author(f"user{k}"),
                theme="issue",
            )
            for h in range(24)
            for k in range(per_hour)
        )
        period = period_ending(start + timedelta(days=1, hours=8), "daily", "UTC")
        store.items_read = 0
        svc.context_for(brand, period, start + timedelta(days=1, hours=8))
        return store.items_read

    quiet = day_items(datetime(2024, 4, 1, tzinfo=UTC), 1, 0)
    busy = day_items(datetime(2024, 6, 3, tzinfo=UTC), 5, 100_000)
    assert busy <= quiet * 1.1 and busy < 100


def test_an_hour_written_by_many_scans_keeps_a_bounded_rollup(aws, stack, store):
    """Scans every few minutes write the same hour many times; its rollup keeps at most VOICE_SLOTS
    well-followed authors and one example per theme, however many batches and authors there were."""
    from emberwatch.store import VOICE_SLOTS

    for batch in range(40):
        store.store_mentions(
            mention(
                batch * 10 + k,
                DAY + timedelta(minutes=batch, seconds=k),
                author=Author(f"famous{batch}_{k}", f"Famous {k}", followers=10_000 + batch * 10 + k),
                theme=("issue", "feedback")[k % 2],
                text=f"Acme Widgets post {batch * 10 + k} " + "x" * 1000,
            )
            for k in range(10)
        )
    (item,) = aws.client("dynamodb").query(
        TableName=store.table,
        KeyConditionExpression="pk = :pk AND sk = :sk",
        ExpressionAttributeValues={":pk": {"S": "R#acme#2024-05"}, ":sk": {"S": "13T00"}},
    )["Items"]
    voices = [name for name in item if name.startswith("v#")]
    assert 1 <= len(voices) <= VOICE_SLOTS
    assert sorted(name for name in item if name.startswith("x_")) == ["x_feedback", "x_issue"]
    assert len(str(item)) < 12_000  # 400 mentions, yet a few KB: far from DynamoDB's 400 KB item limit
    (hour,) = store.rollups("acme", DAY, DAY + timedelta(hours=1))
    assert hour.mentions == 400
    assert all(v["followers"] >= 10_000 and v["source"] == "hackernews" for v in hour.voices)
    assert (
        hour.examples["issue"]["text"].startswith("Acme Widgets post")
        and len(hour.examples["issue"]["text"]) <= 400
    )


# ---------------------------------------------------------------- the email itself


def test_email_headers_resist_injection_and_offer_one_click_unsubscribe(aws, stack, store):
    config = config_with(
        '  - {email: one@acme.example, name: "Eve\\r\\nBcc: victim@example.com"}\n',
        brand_name='"Acme\\nBcc: x@evil.example"',
    )
    store.store_mentions(
        [
            mention(
                1,
                DAY - timedelta(hours=3),
                text='<img src="https://t.example/p.gif" width="1" height="1"><script>alert(1)</script>'
                + " lorem" * 200,
                engagement=Engagement(likes=99),
            ),
            mention(
                2, DAY - timedelta(hours=2), text="مرحبا Acme 👋🏽 רוב תודה", engagement=Engagement(likes=50)
            ),
        ]
    )
    svc = service(aws, store, config, unsubscribe_url="https://emberwatch.example/unsubscribe")
    report = svc.run(DAY + timedelta(hours=8))
    assert len(report.sent) == 1
    (message,) = sent()
    raw = message.as_string()
    header_block = raw.split("\n\n", 1)[0]
    assert "\nBcc:" not in header_block and "victim@example.com" in message["To"]  # kept as display text
    assert message["To"].addresses[0].addr_spec == "one@acme.example"
    assert "\n" not in str(message["Subject"]) and "Bcc: x@evil.example" in str(message["Subject"])
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(message["List-Unsubscribe"])
    assert "<https://emberwatch.example/unsubscribe?recipient=one%40acme.example&brand=acme>" in unsubscribe
    assert f"<mailto:{SENDER}?subject=unsubscribe>" in unsubscribe
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.get_payload()
    html = html_part.get_content()
    assert "<script" not in html and "&lt;script&gt;" in html
    assert '<img src="https://t.example' not in html and "&lt;img src=&#34;https://t.example" in html
    assert "lorem lorem\u2026" in html  # the long post is cut with an ellipsis
    assert "مرحبا Acme 👋🏽 רוב תודה" in html and 'dir="auto"' in html
    assert "مرحبا Acme 👋🏽 רוב תודה" in text_part.get_content()
    assert "<svg" not in html.lower() and "<script" not in html.lower()


def test_a_run_killed_after_its_claim_is_completed_by_the_next_hourly_run(aws, stack, store):
    config = config_with("  - {email: one@acme.example}\n")
    svc = service(aws, store, config)
    run_at = DAY + timedelta(hours=8)
    period = period_ending(run_at, "daily", "UTC")
    # a run claimed the send and died before sending: its retries within the lease skip it
    assert store.claim("D#one@acme.example", f"acme#{period.key}", run_at, ttl_days=400, lease_seconds=900)
    assert svc.run(run_at + timedelta(minutes=3)).skipped
    # the next hourly run finds the lease expired and sends that period's digest, once
    assert len(svc.run(run_at + timedelta(hours=1)).sent) == 1
    assert svc.run(run_at + timedelta(hours=2)).sent == []
    assert len(sent()) == 1
