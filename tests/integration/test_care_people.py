"""Care tracking by conversation, and people: tone week by week, reach, critics turned ambassadors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from emberwatch.models import Author, Engagement, Mention
from emberwatch.store import deserialize, serialize

T = datetime(2024, 5, 13, 14, 0, tzinfo=UTC)  # a Monday


def post(
    native: str,
    created: datetime,
    *,
    author: str = "rita",
    author_id: str | None = None,
    sentiment: str = "negative",
    score: float | None = None,
    conversation: str | None = "x:100",
    parent: str | None = None,
    source: str = "x",
    followers: int | None = None,
) -> Mention:
    return Mention(
        source=source,
        native_id=native,
        brand="acme",
        query='"acme widgets"',
        author=Author(author, followers=followers),
        text=f"Acme Widgets post {native}",
        created_at=created,
        url=f"https://example.test/{native}",
        parent_id=parent,
        conversation_id=conversation,
        sentiment=sentiment,
        sentiment_score=score,
        engagement=Engagement(likes=2),
        raw={"author_id": author_id} if author_id else {},
    )


def brand_reply(
    native: str, created: datetime, *, parent: str | None, reply_to: str | None = None, **kw
) -> Mention:
    return replace(
        post(native, created, author="AcmeCare", author_id="9000", sentiment="neutral", parent=parent, **kw),
        own=True,
        reply_to=reply_to,
    )


def mention_item(store, mention_id: str) -> dict:
    key = serialize({"pk": f"M#acme#{mention_id}", "sk": "M"})
    return deserialize(store.client.get_item(TableName=store.table, Key=key)["Item"])


def answered_count(store) -> int:
    key = serialize({"pk": "CARE#acme#2024-05", "sk": "13T14"})
    item = store.client.get_item(TableName=store.table, Key=key).get("Item")
    return deserialize(item).get("answered", 0) if item else 0


def waiting_ids(store) -> list[str]:
    later = T + timedelta(days=1)
    return [w["id"] for w in store.waiting("acme", later, later)]


# ------------------------------------------------------------------ linking by conversation


def test_a_reply_deeper_in_the_thread_answers_the_waiting_mention_of_the_author_it_answers(store):
    # Given two complaints in one conversation: Sam's first, then Rita's; the brand answers Rita's
    # follow-up, which was never stored (it did not name the brand)
    sam = post("90", T, author="sam", author_id="77")
    rita = post("100", T + timedelta(minutes=2), author="rita", author_id="42")
    store.store_mentions([sam, rita])
    reply = brand_reply("200", T + timedelta(minutes=12), parent="x:150", reply_to="42")

    # When the reply is stored, and replayed twice
    for _ in range(3):
        store.store_mentions([reply])

    # Then Rita's complaint is answered (10 minutes), once; Sam's still waits
    assert mention_item(store, "x:100")["first_response_seconds"] == 600
    assert mention_item(store, "x:200")["answers"] == "x:100"
    assert answered_count(store) == 1
    assert waiting_ids(store) == ["x:90"]


def test_without_the_author_answered_the_earliest_waiting_mention_is_answered_and_each_reply_once(store):
    first = post("90", T, author="sam")
    second = post("100", T + timedelta(minutes=2), author="rita")
    store.store_mentions([first, second])
    one = brand_reply("200", T + timedelta(minutes=10), parent="x:150")
    two = brand_reply("201", T + timedelta(minutes=20), parent="x:151")

    store.store_mentions([one])
    store.store_mentions([one])  # a replay does not answer the next waiting mention with the same reply
    assert waiting_ids(store) == ["x:100"]
    store.store_mentions([two, one])

    assert mention_item(store, "x:90")["first_response_id"] == "x:200"
    assert mention_item(store, "x:100")["first_response_id"] == "x:201"
    assert answered_count(store) == 2 and waiting_ids(store) == []


def test_a_reply_under_the_brands_own_post_answers_by_conversation(store):
    # the brand answers below its own post (by its main account): the author the reply names is the
    # brand, which says nothing about the customer
    own_post = brand_reply("99", T - timedelta(minutes=30), parent=None)
    complaint = post("100", T, author="rita", author_id="42", parent="x:99")
    store.store_mentions([own_post, complaint])
    store.store_mentions([brand_reply("150", T + timedelta(minutes=4), parent="x:99", reply_to="9001")])
    assert mention_item(store, "x:100")["first_response_id"] == "x:150"
    assert waiting_ids(store) == [] and "answers" not in mention_item(store, "x:99")


def test_a_reply_never_answers_a_later_mention_or_another_conversation(store):
    later = post("300", T + timedelta(hours=1))
    elsewhere = post("301", T, conversation="x:999")
    store.store_mentions([later, elsewhere])
    store.store_mentions([brand_reply("200", T + timedelta(minutes=5), parent="x:150")])
    assert sorted(waiting_ids(store)) == ["x:300", "x:301"] and answered_count(store) == 0


def test_a_direct_reply_to_an_answered_mention_counts_nothing_again(store):
    complaint = post("100", T)
    store.store_mentions([complaint, post("101", T + timedelta(minutes=1), author="sam")])
    store.store_mentions([brand_reply("200", T + timedelta(minutes=5), parent="x:100")])
    store.store_mentions([brand_reply("201", T + timedelta(minutes=9), parent="x:100")])
    assert mention_item(store, "x:100")["first_response_id"] == "x:200"
    assert "answers" not in mention_item(store, "x:201")
    assert answered_count(store) == 1 and waiting_ids(store) == ["x:101"]


# ------------------------------------------------------------------ people: tone over time and reach


def test_an_authors_tone_is_kept_week_by_week_for_twelve_weeks(store):
    old = post("1", T - timedelta(weeks=20), sentiment="positive", score=0.8, followers=100)
    week1 = [
        post("2", T - timedelta(weeks=2), score=-0.6, followers=120),
        post("3", T - timedelta(weeks=2) + timedelta(days=1), score=-0.4, followers=150),
    ]
    week2 = [post("4", T - timedelta(weeks=1), sentiment="neutral", score=0.0, followers=140)]
    week3 = [
        post("5", T + timedelta(hours=1), sentiment="positive", score=0.9, followers=160),
        post("6", T + timedelta(hours=2), sentiment="positive", score=0.5),
    ]
    store.store_mentions([old, *week1])
    store.store_mentions([*week2, *week3])
    store.store_mentions([*week1, *week3])  # replays count nothing twice

    profile = store.author("acme", "x", "RITA", now=T + timedelta(days=1))

    assert profile is not None and profile.handle == "rita"
    assert (profile.mentions, profile.positive, profile.negative) == (6, 3, 2)
    assert profile.engagement == 12
    assert profile.followers == 160  # the newest count seen
    assert profile.followers_max == 160
    assert profile.first_seen == old.created_at and profile.last_seen == week3[-1].created_at
    assert profile.first_negative_at == week1[0].created_at
    weeks = [
        (w.start.date().isoformat(), w.mentions, w.positive, w.neutral, w.negative) for w in profile.weeks
    ]
    # the post of 20 weeks ago is counted in the totals but is older than the weeks kept
    assert weeks == [
        ("2024-04-29", 2, 0, 0, 2),
        ("2024-05-06", 1, 0, 1, 0),
        ("2024-05-13", 2, 2, 0, 0),
    ]
    assert [w.mean_score for w in profile.weeks] == [-0.5, 0.0, 0.7]


def test_the_followers_max_is_the_highest_count_of_the_weeks_kept(store):
    store.store_mentions([post("1", T - timedelta(weeks=1), followers=5000)])
    store.store_mentions([post("2", T, followers=4200)])
    profile = store.author("acme", "x", "rita", now=T)
    assert profile.followers == 4200 and profile.followers_max == 5000


def test_the_brands_own_posts_make_no_author_and_an_unknown_author_is_none(store):
    store.store_mentions([brand_reply("200", T, parent=None)])
    assert store.author("acme", "x", "AcmeCare", now=T) is None
    assert store.author("acme", "x", "nobody", now=T) is None


def test_a_critic_answered_deep_in_a_bluesky_thread_who_turns_positive_is_an_ambassador(store):
    # Given a complaint on Bluesky, the brand's reply to the critic's follow-up (not stored), praise later
    root = "bluesky:at://did:plc:rita/app.bsky.feed.post/3kroot"
    complaint = post("at://did:plc:rita/app.bsky.feed.post/3kroot", T, source="bluesky", conversation=root)
    reply = brand_reply(
        "at://did:plc:acme/app.bsky.feed.post/3kreply",
        T + timedelta(minutes=9),
        parent="bluesky:at://did:plc:rita/app.bsky.feed.post/3kfollow",
        reply_to="rita",
        source="bluesky",
        conversation=root,
    )
    praise = post(
        "at://did:plc:rita/app.bsky.feed.post/3kpraise",
        T + timedelta(days=2),
        source="bluesky",
        sentiment="positive",
        conversation="bluesky:at://did:plc:rita/app.bsky.feed.post/3kpraise",
    )
    store.store_mentions([complaint])
    store.store_mentions([reply])
    store.store_mentions([praise])
    store.store_mentions([praise, reply])  # replays

    (record,) = store.ambassadors("acme", T, T + timedelta(days=3))
    assert (record["source"], record["handle"]) == ("bluesky", "rita")
    assert record["first_negative_at"] == "2024-05-13T14:00:00Z"
    assert record["answered_at"] == "2024-05-13T14:09:00Z"
    assert record["positive_at"] == "2024-05-15T14:00:00Z"
    profile = store.author("acme", "bluesky", "rita", now=T + timedelta(days=3))
    assert profile.ambassador_at == praise.created_at and profile.answered_at == reply.created_at
