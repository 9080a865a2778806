"""The pure helpers of store.py: buckets, time shards, transaction batching and the Dynamo value mapping."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from emberwatch.models import Author, Mention
from emberwatch.store import (
    MAX_TRANSACTION_ITEMS,
    MENTIONS_PER_TRANSACTION,
    TIME_SHARDS,
    Store,
    _transaction_batches,
    bucket_start,
    deserialize,
    serialize,
    time_shard,
)

T0 = datetime(2024, 5, 13, 12, 0, tzinfo=UTC)


def mention(n: int, created: datetime, *, brand: str = "acme", source: str = "hackernews") -> Mention:
    return Mention(
        source=source,
        native_id=str(n),
        brand=brand,
        query="acme",
        author=Author("someone"),
        text=f"acme post {n}",
        created_at=created,
        url=f"https://news.ycombinator.com/item?id={n}",
    )


def touched_keys(batch: list[Mention]) -> set[tuple[str, ...]]:
    """The other items a batch updates: 5-minute, hourly and (top posts) day buckets, authors, care queue."""
    keys: set[tuple[str, ...]] = set()
    for m in batch:
        created = m.created_at.astimezone(UTC)
        keys.add(("5", m.brand, m.source, bucket_start(created).isoformat()))
        keys.add(("h", m.brand, m.source, created.strftime("%Y-%m-%dT%H")))
        keys.add(("d", m.brand, m.source, created.strftime("%Y-%m-%d")))
        if not m.own:
            keys.add(("a", m.brand, m.source, m.author.handle.lower()))
            monday = (created - timedelta(days=created.weekday())).strftime("%Y-%m-%d")
            keys.add(("aw", m.brand, m.source, m.author.handle.lower(), monday))  # the author's week
        if m.sentiment == "negative" and not m.own and not m.noise:
            keys.add(("w", m.id))
            if m.conversation_id:
                keys.add(("c", m.id))  # the waiting mention filed under its conversation
    return keys


def assert_batches_fit(mentions: list[Mention]) -> list[list[Mention]]:
    ids = [m.id for m in mentions]
    batches = list(_transaction_batches(list(mentions)))
    for batch in batches:
        assert batch, "no empty batch"
        assert len(batch) <= MENTIONS_PER_TRANSACTION
        assert len(batch) + len(touched_keys(batch)) <= MAX_TRANSACTION_ITEMS == 100
    # every mention exactly once
    out = [m.id for batch in batches for m in batch]
    assert Counter(out) == Counter(ids)
    return batches


# ---------------------------------------------------------------- bucket_start


@pytest.mark.parametrize(
    ("moment", "start"),
    [
        (datetime(2024, 5, 13, 12, 7, 33, 123456, tzinfo=UTC), datetime(2024, 5, 13, 12, 5, tzinfo=UTC)),
        (datetime(2024, 5, 13, 12, 5, tzinfo=UTC), datetime(2024, 5, 13, 12, 5, tzinfo=UTC)),
        (datetime(2024, 5, 13, 12, 4, 59, 999999, tzinfo=UTC), datetime(2024, 5, 13, 12, 0, tzinfo=UTC)),
        (datetime(2024, 5, 13, 23, 59, 59, tzinfo=UTC), datetime(2024, 5, 13, 23, 55, tzinfo=UTC)),
    ],
)
def test_bucket_start_floors_to_five_minutes(moment, start):
    assert bucket_start(moment) == start


def test_bucket_start_converts_to_utc():
    india = timezone(timedelta(hours=5, minutes=30))
    result = bucket_start(datetime(2024, 5, 13, 17, 37, tzinfo=india))  # 12:07 UTC
    assert result == datetime(2024, 5, 13, 12, 5, tzinfo=UTC)
    assert result.utcoffset() == timedelta(0)


def test_bucket_start_with_other_widths():
    moment = datetime(2024, 5, 13, 12, 47, 10, tzinfo=UTC)
    assert bucket_start(moment, 60) == datetime(2024, 5, 13, 12, 0, tzinfo=UTC)
    assert bucket_start(moment, 15) == datetime(2024, 5, 13, 12, 45, tzinfo=UTC)
    assert bucket_start(moment, 1) == datetime(2024, 5, 13, 12, 47, tzinfo=UTC)


# ---------------------------------------------------------------- time_shard


def test_time_shard_is_in_range_and_spreads_over_every_shard():
    shards = Counter(time_shard(f"hackernews:{n}") for n in range(40_000_000, 40_001_600))
    assert set(shards) == set(range(TIME_SHARDS))
    # 1,600 ids over 16 shards: about 100 each, none starved or hot
    assert min(shards.values()) > 60
    assert max(shards.values()) < 140


def test_time_shard_is_stable_across_runs_and_processes():
    # stored index keys depend on it: these values must never change (crc32, not Python's hash())
    assert time_shard("hackernews:40346001") == 2
    assert time_shard("hackernews:40345500") == 1
    assert time_shard("feed:ga-17440847249129969091") == 15
    assert time_shard("x:1") == 9
    assert time_shard("x:1") == time_shard("x:" + "1")


# ---------------------------------------------------------------- _transaction_batches


def test_one_busy_bucket_is_split_at_the_mention_cap():
    mentions = [mention(n, T0 + timedelta(seconds=n % 240)) for n in range(120)]
    batches = assert_batches_fit(mentions)
    assert [len(b) for b in batches] == [MENTIONS_PER_TRANSACTION, 120 - MENTIONS_PER_TRANSACTION]


def test_mentions_each_in_their_own_buckets_are_split_by_action_count():
    # Given one mention per hour over several days: every mention brings 2-3 new counter items
    mentions = [mention(n, T0 + timedelta(hours=n)) for n in range(200)]
    batches = assert_batches_fit(mentions)
    # fewer than the mention cap per batch: the action count is the limit here
    assert all(len(b) < MENTIONS_PER_TRANSACTION for b in batches)
    assert len(batches) > 200 // MENTIONS_PER_TRANSACTION


def test_mentions_on_different_days_each_add_four_items():
    # one per day by one author: 1 put + 4 new items each (5-minute, hourly and daily counters, the
    # hour's digest rollup), + 1 author item and one per week of the author's (19 days touch 4 weeks)
    # -> at most 19 per transaction
    mentions = [mention(n, T0 + timedelta(days=n)) for n in range(60)]
    batches = assert_batches_fit(mentions)
    assert max(len(b) for b in batches) == 19


@pytest.mark.parametrize("seed", range(8))
def test_random_mixes_always_fit_and_keep_every_mention_once(seed):
    rng = random.Random(seed)
    mentions = [
        mention(
            n,
            T0 + timedelta(seconds=rng.randrange(0, 3 * 24 * 3600)),
            brand=rng.choice(["acme", "globex"]),
            source=rng.choice(["hackernews", "feed", "reddit"]),
        )
        for n in range(rng.randrange(1, 600))
    ]
    assert_batches_fit(mentions)


def test_batches_group_by_brand_source_and_time():
    mentions = [
        mention(1, T0 + timedelta(minutes=30), source="feed"),
        mention(2, T0, source="hackernews"),
        mention(3, T0, source="feed"),
    ]
    [batch] = list(_transaction_batches(mentions))
    assert [m.id for m in batch] == ["feed:3", "feed:1", "hackernews:2"]


def test_no_mentions_no_batches():
    assert list(_transaction_batches([])) == []


@pytest.mark.parametrize("seed", range(4))
def test_each_batch_fits_one_transaction_of_real_actions(seed):
    # Given the actions the store would send for a batch (puts, 5-minute and hourly counters, top posts)
    store = Store("emberwatch-test", client=object())
    rng = random.Random(seed)
    mentions = [
        mention(
            n,
            T0 + timedelta(minutes=rng.randrange(0, 4 * 24 * 60)),
            source=rng.choice(["hackernews", "feed"]),
        )
        for n in range(300)
    ]
    for batch in _transaction_batches(mentions):
        tops = {(f"TOP#acme#{m.created_at:%Y-%m-%d}", m.source): ([], 0) for m in batch}
        actions, count = store._batch_actions(batch, tops)
        # Then the transaction stays within DynamoDB's limit of 100 items
        assert len(actions) <= MAX_TRANSACTION_ITEMS
        assert count == len(batch)


# ---------------------------------------------------------------- serialize / deserialize


def test_round_trip_of_numbers_strings_and_nesting():
    item = {
        "pk": "M#acme#hackernews:1",
        "count": 3,
        "zero": 0,
        "negative": -7,
        "big": 1_715_609_112_000,
        "ratio": 0.1,
        "tiny": 1e-12,
        "awkward": 0.30000000000000004,
        "score": -2.75,
        "flag": True,
        "off": False,
        "text": "Acme – “quoted” ünïcode",
        "nested": {"list": [1, 2.5, "s", {"deep": [0.2, 7]}], "empty": {}},
        "items": [],
    }
    assert deserialize(serialize(item)) == item


def test_round_trip_keeps_types_of_non_integral_floats_and_ints():
    back = deserialize(serialize({"f": 2.5, "i": 2, "nested": {"f": 0.125}}))
    assert type(back["f"]) is float
    assert type(back["i"]) is int
    assert type(back["nested"]["f"]) is float


def test_integral_floats_come_back_as_equal_numbers():
    back = deserialize(serialize({"expected": 2.0}))
    assert back["expected"] == 2.0


def test_floats_are_stored_as_exact_decimals():
    serialized = serialize({"ratio": 0.1, "nested": {"p": 0.001}})
    assert serialized["ratio"] == {"N": "0.1"}
    assert serialized["nested"] == {"M": {"p": {"N": "0.001"}}}


def test_none_values_are_left_out():
    serialized = serialize({"pk": "x", "title": None, "nested": {"a": 1, "b": None}})
    assert "title" not in serialized
    assert deserialize(serialized) == {"pk": "x", "nested": {"a": 1}}


def test_tuples_become_lists():
    assert deserialize(serialize({"t": (1, "a", 0.5)})) == {"t": [1, "a", 0.5]}


def test_deserialize_turns_decimals_into_python_numbers():
    back = deserialize({"n": {"N": "42"}, "f": {"N": "4.2"}})
    assert back == {"n": 42, "f": 4.2}
    assert not any(isinstance(v, Decimal) for v in back.values())


def test_a_title_only_story_is_shown_by_its_title_in_digest_summaries():
    from dataclasses import replace
    from datetime import UTC, datetime

    from emberwatch.store import _post_summary, _summary

    from tests.integration.test_detect_and_digest import mention

    title = "Acme Widgets deleted all my data and support has ignored me for 3 days"
    story = replace(mention(1, datetime(2026, 11, 18, 14, tzinfo=UTC), text=title), title=title)
    assert story.body == ""  # the body drops the leading copy of the title
    assert _summary(_post_summary(story, {}))["text"] == title
    commented = replace(story, text=f"{title}\n\nI have tried every channel.")
    assert _summary(_post_summary(commented, {}))["text"] == "I have tried every channel."


def test_stored_post_summaries_read_as_json_strings_or_older_maps():
    from emberwatch.store import _summary

    assert _summary('{"id":"x:1","text":"\u05e9\u05dc\u05d5\u05dd \U0001f525"}') == {
        "id": "x:1",
        "text": "\u05e9\u05dc\u05d5\u05dd \U0001f525",
    }
    assert _summary({"id": "x:2", "engagement": Decimal(3)}) == {"id": "x:2", "engagement": Decimal(3)}
    # a damaged value is an empty summary, not a failed digest
    assert _summary("{not json") == {} and _summary("[1, 2]") == {} and _summary(7) == {}
