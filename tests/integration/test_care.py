"""Care tracking: replies close the customer's wait; a negative mention left too long alerts once."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from emberwatch.config import Brand
from emberwatch.events import scheduled_event
from emberwatch.models import Author, Mention
from emberwatch.sources import Parsed, select
from emberwatch.store import serialize

from tests.conftest import CONFIG_YAML, push_config

T = datetime(2024, 5, 13, 14, 0, tzinfo=UTC)
CARE_CONFIG = CONFIG_YAML.replace(
    "    feeds:\n",
    "    own_accounts:\n      hackernews: [acmecare]\n    reply_target_minutes: 15\n    feeds:\n",
    1,
)


def customer(n: int, created: datetime, sentiment: str = "negative") -> Mention:
    return Mention(
        source="hackernews",
        native_id=str(n),
        brand="acme",
        query='"acme widgets"',
        author=Author(f"user{n}"),
        text=f"Acme Widgets lost my order #{n}, nobody answers",
        created_at=created,
        url=f"https://news.ycombinator.com/item?id={n}",
        sentiment=sentiment,
    )


def reply(n: int, to: Mention, created: datetime) -> Mention:
    return replace(
        customer(n, created, "neutral"),
        author=Author("acmecare"),
        text="Sorry about that, we're on it: check your inbox",
        parent_id=to.id,
        own=True,
    )


def drain(aws, url):
    sqs = aws.client("sqs")
    out = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def inbox(aws, stack):
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="care-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=stack.physical["AlertTopic"]["Ref"], Protocol="sqs", Endpoint=arn)
    return url


def test_a_reply_closes_the_wait_and_counts_first_response_time_once(store, aws, stack):
    # Given an angry customer and the brand's reply five minutes later
    angry = customer(1, T)
    store.store_mentions([angry])
    assert [w["id"] for w in store.waiting("acme", T + timedelta(minutes=1), T + timedelta(minutes=1))] == [
        angry.id
    ]
    answer = reply(2, angry, T + timedelta(minutes=5))

    # When the reply is stored, and replayed twice
    for _ in range(3):
        store.store_mentions([answer])

    # Then the customer's mention is answered, out of the queue, and counted once
    (stored,) = store.get_mentions("acme", [angry.id])
    item = aws.client("dynamodb").get_item(
        TableName=store.table, Key=serialize({"pk": f"M#acme#{angry.id}", "sk": "M"})
    )["Item"]
    assert item["first_response_seconds"]["N"] == "300" and item["first_response_id"]["S"] == answer.id
    assert store.waiting("acme", T + timedelta(hours=1), T + timedelta(hours=1)) == []
    care = aws.client("dynamodb").get_item(
        TableName=store.table, Key=serialize({"pk": "CARE#acme#2024-05", "sk": "13T14"})
    )["Item"]
    assert care["answered"]["N"] == "1" and care["frt_le_300"]["N"] == "1"
    assert stored.sentiment == "negative"


def test_a_reply_stored_before_its_parent_is_linked_when_replayed(store):
    angry = customer(3, T)
    answer = reply(4, angry, T + timedelta(minutes=20))
    store.store_mentions([answer])  # the parent is not stored yet: nothing to link
    store.store_mentions([angry])
    store.store_mentions([answer])  # the next run replays the reply page
    assert store.waiting("acme", T + timedelta(hours=1), T + timedelta(hours=1)) == []


def test_negative_mentions_past_the_target_raise_one_care_alert(aws, stack, store, handler, lambda_context):
    push_config(aws, stack, CARE_CONFIG)
    url = inbox(aws, stack)
    waiting = [customer(10 + n, T + timedelta(minutes=n)) for n in range(3)]
    answered = customer(20, T)
    happy = customer(21, T, sentiment="positive")
    store.store_mentions([*waiting, answered, happy, reply(22, answered, T + timedelta(minutes=3))])
    app = handler("detect")

    early = app.lambda_handler(
        scheduled_event(None, T + timedelta(minutes=10), kind="detect"), lambda_context
    )
    assert early["care_alerted"] == [] and drain(aws, url) == []

    due = app.lambda_handler(scheduled_event(None, T + timedelta(minutes=20), kind="detect"), lambda_context)
    again = app.lambda_handler(
        scheduled_event(None, T + timedelta(minutes=25), kind="detect"), lambda_context
    )
    assert sorted(due["care_alerted"]) == sorted(m.id for m in waiting)
    assert again["care_alerted"] == []
    (message,) = drain(aws, url)
    assert message["MessageAttributes"]["kind"]["Value"] == "care"
    assert message["Subject"].startswith("[Emberwatch] CARE: 3 negative mentions")
    for mention in waiting:
        assert mention.url in message["Message"]
    assert answered.url not in message["Message"] and happy.url not in message["Message"]


def test_posts_by_the_brands_own_accounts_are_kept_as_replies():
    brand = Brand(
        id="acme", name="Acme", queries=('"acme widgets"',), own_accounts={"hackernews": ("AcmeCare",)}
    )
    from emberwatch.query import parse_query

    theirs = reply(30, customer(31, T), T)
    other = replace(theirs, native_id="32", author=Author("someone"), own=False)
    page = select(
        Parsed(mentions=[theirs, other]), 2, [parse_query('"acme widgets"')], source="hackernews", brand=brand
    )
    assert [m.id for m in page.mentions] == [theirs.id] and page.mentions[0].own
    assert page.not_matching == 1


def test_a_critic_who_was_answered_and_turns_positive_is_recorded_once(store):
    # Given a customer complains, the brand replies, and the customer later praises
    angry = customer(40, T)
    store.store_mentions([angry])
    store.store_mentions([reply(41, angry, T + timedelta(minutes=10))])
    praise = replace(
        customer(42, T + timedelta(days=1), "positive"),
        author=angry.author,
        text="Acme Widgets fixed it, great support",
    )
    later_praise = replace(praise, native_id="43", created_at=T + timedelta(days=2))
    store.store_mentions([praise])
    store.store_mentions([praise, later_praise])  # a replay and a second positive post

    # Then one ambassador record, with the three dates
    (record,) = store.ambassadors("acme", T, T + timedelta(days=3))
    assert record["handle"] == angry.author.handle
    assert record["first_negative_at"] == "2024-05-13T14:00:00Z"
    assert record["answered_at"] == "2024-05-13T14:10:00Z"
    assert record["positive_at"] == "2024-05-14T14:00:00Z"


def test_praise_without_a_reply_in_between_is_not_a_conversion(store):
    angry = customer(50, T)
    praise = replace(customer(51, T + timedelta(hours=2), "positive"), author=angry.author)
    store.store_mentions([angry, praise])
    assert store.ambassadors("acme", T, T + timedelta(days=1)) == []


def test_brands_without_own_accounts_get_no_care_alerts(aws, stack, store, handler, lambda_context):
    # the default test configuration lists no own accounts: replies cannot be seen, so no care alerts
    store.store_mentions([customer(60, T)])
    result = handler("detect").lambda_handler(
        scheduled_event(None, T + timedelta(hours=1), kind="detect"), lambda_context
    )
    assert result["care_alerted"] == []


def test_more_than_a_hundred_positive_authors_in_one_call(store):
    # BatchGetItem takes at most 100 keys: the ambassador check reads authors in chunks
    praise = [
        replace(customer(100 + n, T + timedelta(seconds=n), "positive"), author=Author(f"fan{n}"))
        for n in range(150)
    ]
    assert store.store_mentions(praise).stored == 150
