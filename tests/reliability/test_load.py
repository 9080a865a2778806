"""Point 4: a fire of 50,000 mentions in one hour for one brand, through the real scan path.

The local source server plays Algolia with the fire's posts; a scan runs every five minutes. Measured:
each scan's wall time (in-process moto, slower per request than DynamoDB) against the Lambda timeout
and the schedule period, every mention stored once with exact counters, one incident notified, and the
partition keys the writes went to.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from emberwatch.events import scheduled_event
from emberwatch.http import new_session
from emberwatch.runtime import SCAN_MAX_SECONDS
from emberwatch.store import Store, dynamodb_client

from sim.provision import load_template
from sim.sourceserver import SourceServer
from sim.traffic import SimPost, Traffic
from tests.integration.test_detect_and_digest import drain, mention, subscribe_queue
from tests.reliability.ledger import record
from tests.reliability.measure import Snapshot, compare
from tests.reliability.world import DAY_START, STEP, day_config, scan_once

pytestmark = pytest.mark.reliability

FIRE_SIZE = int(os.environ.get("EMBERWATCH_FIRE_SIZE", "50000"))  # smaller only to try the test out
FIRE_START = DAY_START + timedelta(hours=13)
# DynamoDB gives a partition at most 1,000 write units a second (an item under 1 KB: 1 unit, 2 inside a
# transaction). A scan's writes are sequential calls of at least ~5 ms each in-region, so one scan of the
# fire (some 4,000 mentions, thousands of calls) lasts 10 s or more: the most writes one partition key
# takes in one scan, doubled for transactions and spread over 10 s, must stay under 1,000 a second.
PARTITION_WCU = 1000
MIN_SCAN_SECONDS = 10
TEXTS = (
    "Acme Widgets deleted my data and support is silent",
    "acmewidgets outage again, third time this week",
    "Is Acme Widgets down for everyone?",
    "Acme Widgets status page says green but nothing loads",
    "Moving off Acme Widgets after this",
)


def fire_traffic() -> Traffic:
    rng = random.Random(50)
    story = SimPost(
        kind="hn_story",
        native_id="41000000",
        created=FIRE_START,
        author="reporter",
        title="Acme Widgets deletes customer data in outage",
        text="",
        url="https://techpress.example/acme-outage",
        sentiment="negative",
        points=900,
        num_comments=FIRE_SIZE - 1,
        story_id=41000000,
    )
    posts = [story]
    for n in range(1, FIRE_SIZE):
        created = FIRE_START + timedelta(seconds=3600 * n / FIRE_SIZE)
        posts.append(
            SimPost(
                kind="hn_comment",
                native_id=str(41000000 + n),
                created=created,
                author=f"user{rng.randrange(20_000)}",
                title="",
                text=f"{rng.choice(TEXTS)} (#{n})",
                url="https://techpress.example/acme-outage",
                sentiment="negative",
                story_id=41000000,
                parent_id=41000000,
                story_title=story.title,
            )
        )
    return Traffic(
        brand="Acme Widgets",
        start=FIRE_START - timedelta(hours=1),
        end=FIRE_START + timedelta(hours=2),
        fire_at=FIRE_START,
        posts=posts,
    )


def count_writes(client: Any) -> Counter[str]:
    """Every item write the client sends, by partition key (transactions, puts and updates)."""
    writes: Counter[str] = Counter()

    def tally(params: dict[str, Any], **kwargs: Any) -> None:
        for action in params.get("TransactItems", []):
            body = action.get("Put") or action.get("Update") or action.get("Delete")
            if body:
                key = body.get("Item") or body.get("Key")
                writes[key["pk"]["S"]] += 1
        if "Item" in params:
            writes[params["Item"]["pk"]["S"]] += 1
        elif "Key" in params and "UpdateExpression" in params:
            writes[params["Key"]["pk"]["S"]] += 1

    for operation in ("TransactWriteItems", "PutItem", "UpdateItem"):
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", tally)
    return writes


def key_family(pk: str) -> str:
    return pk.split("#", 1)[0] + "#"


def test_a_fire_of_50000_mentions_in_an_hour(aws, stack, store, handler, lambda_context):
    traffic = fire_traffic()
    # three quiet days before it (two mentions an hour): the baseline the fire stands out from
    quiet = [mention(i, FIRE_START - timedelta(days=3) + timedelta(minutes=30 * i)) for i in range(3 * 48)]
    assert store.store_mentions(quiet).stored == len(quiet)
    scan_store = Store(stack.physical["MentionsTable"]["Ref"], dynamodb_client(aws))
    writes = count_writes(scan_store.client)
    timeout = load_template()["Resources"]["ScanFunction"]["Properties"].get("Timeout") or 240
    walls, budgets, peaks = [], [], []
    with SourceServer(traffic) as server:
        config = day_config(server.base_url)
        session = new_session()
        for k in range(1, 12 + 3):  # the fire's hour of 5-minute scans, then three more
            now = FIRE_START + k * STEP
            server.now = now
            before = Counter(writes)
            started = time.perf_counter()
            report = scan_once("hackernews", now, config=config, store=scan_store, session=session)
            walls.append(time.perf_counter() - started)
            budgets.append(getattr(report, "virtual_seconds", 0.0))
            in_scan = writes - before
            if in_scan:
                peaks.append(in_scan.most_common(1)[0])
            assert not report.failed, report.failed
    got = Snapshot.of(store)
    truth = {f"hackernews:{p.native_id}": p.created for p in traffic.posts}
    truth.update({m.id: m.created_at for m in quiet})
    result = compare(set(truth), got, truth)

    inbox = subscribe_queue(aws, stack)
    app = handler("detect")
    for k in range(4):
        app.lambda_handler(
            scheduled_event(None, FIRE_START + timedelta(minutes=30 + 5 * k), kind="detect"), lambda_context
        )
    opened = [m for m in drain(aws, inbox) if m["MessageAttributes"]["kind"]["Value"] == "opened"]

    total = sum(writes.values())
    families = Counter()
    for pk, n in writes.items():
        families[key_family(pk)] += n
    hottest, hottest_n = writes.most_common(1)[0]
    peak_key, peak_n = max(peaks, key=lambda p: p[1])
    peak_rate = 2 * peak_n / MIN_SCAN_SECONDS
    print(
        f"\nfire: {len(truth)} mentions, {len(got.ids)} stored; scans: wall s "
        f"{[round(w, 1) for w in walls]} (max {max(walls):.1f} s; Lambda timeout {timeout} s, "
        f"scan budget {SCAN_MAX_SECONDS} s, period 300 s)"
    )
    print(
        f"item writes: {total} over {len(writes)} partition keys; hottest {hottest} with {hottest_n} "
        f"({hottest_n / total:.2%})"
    )
    print(
        f"busiest key in one scan: {peak_key} with {peak_n} writes: at most {peak_rate:.0f} WCU/s "
        f"(limit {PARTITION_WCU} per partition)"
    )
    for family, n in families.most_common():
        keys = sum(1 for pk in writes if key_family(pk) == family)
        print(f"  {family:<6} {n:>7} writes over {keys:>6} keys  {'#' * max(1, round(50 * n / total))}")
    record(
        "load",
        faults=0,
        lost=len(result.lost) + result.undercounted,
        duplicates=result.duplicates + len(result.extra) + max(0, len(opened) - 1),
        max_scan_seconds=round(max(walls), 1),
        hottest_share=round(hottest_n / total, 4),
    )
    assert not result.lost and not result.extra and result.buckets_wrong == 0
    assert len(opened) == 1, "the fire is notified once"
    assert max(walls) < min(timeout, SCAN_MAX_SECONDS, 300), "each scan fits the Lambda timeout and period"
    assert peak_rate < PARTITION_WCU
