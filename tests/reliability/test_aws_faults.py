"""Point 2: DynamoDB, SNS and SES faults injected through botocore's event hooks in front of moto.

Transient faults are retried inside the run (botocore's retry handler, the store's transaction
loop); faults that outlast the run are carried to the next run. Measured: mentions and counters
against the generator's ground truth, alerts read back from an SQS subscription of the topic,
mails from moto's SES backend.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from emberwatch.events import scheduled_event
from emberwatch.http import new_session
from emberwatch.store import Store, dynamodb_client

from sim.sourceserver import SourceServer
from sim.traffic import generate
from tests.integration.test_detect_and_digest import (
    START,
    drain,
    mention,
    seed_baseline,
    sent_messages,
    subscribe_queue,
)
from tests.reliability.awsfaults import AwsFaults
from tests.reliability.ledger import record
from tests.reliability.measure import Snapshot, compare
from tests.reliability.world import DAY_START, SCAN_BUDGET, STEP, day_config, scan_once, truth

pytestmark = pytest.mark.reliability

TRAFFIC = generate(start=DAY_START, days=1, seed=3, fire_at=DAY_START + timedelta(hours=9))
# Hacker News only: one scan at the day's end reaches every post (the feed shows its newest 20 entries)
TRUTH = {i: t for i, t in truth(TRAFFIC).items() if i.startswith("hackernews:")}


def product_store(aws: Any, stack: Any) -> Store:
    """The store as the Lambda builds it: the product's DynamoDB client (adaptive retries)."""
    return Store(stack.physical["MentionsTable"]["Ref"], dynamodb_client(aws))


def scan_until_done(
    store: Store, server: SourceServer, runs: int, faults: AwsFaults | None = None, waits: list | None = None
) -> list[int]:
    """`runs` scheduled scans of both sources at the end of the day; the failed streams of each.
    With `faults` and `waits`, each run's total retry wait is appended to `waits`."""
    config = day_config(server.base_url)
    failed = []
    for k in range(runs):
        now = TRAFFIC.end + k * STEP
        slept = len(faults.sleeps) if faults else 0
        errors = 0
        errors += len(scan_once("hackernews", now, config=config, store=store, session=new_session()).failed)
        failed.append(errors)
        if faults is not None and waits is not None:
            waits.append(sum(faults.sleeps[slept:]))
    return failed


def measure_mentions(store: Store) -> tuple[int, int]:
    result = compare(set(TRUTH), Snapshot.of(store), TRUTH)
    if result.lost or result.undercounted or result.duplicates or result.extra:
        print(
            f"\nlost {sorted(result.lost)[:5]} undercounted {result.undercounted} over {result.overcounted}"
        )
    return len(result.lost) + result.undercounted, result.duplicates + len(result.extra)


DYNAMO_FAULTS = [
    # (operation, error code, how many calls fail, runs): transient ones inside botocore's 8 attempts
    ("TransactWriteItems", "ProvisionedThroughputExceededException", 5, 1),
    ("TransactWriteItems", "ThrottlingException", 5, 1),
    ("TransactWriteItems", "InternalServerError", 5, 1),
    ("TransactWriteItems", "TransactionConflict", 4, 1),
    ("BatchGetItem", "ProvisionedThroughputExceededException", 5, 1),
    ("PutItem", "ThrottlingException", 5, 1),
    ("UpdateItem", "InternalServerError", 5, 1),
    # the write went through and its answer was lost (a timeout after the commit): retried, not doubled
    ("TransactWriteItems", "InternalServerError+executed", 3, 1),
    ("UpdateItem", "InternalServerError+executed", 3, 1),
    # persistent: more failures than one run retries; the next runs carry the work
    ("TransactWriteItems", "ProvisionedThroughputExceededException", 40, 4),
    ("TransactWriteItems", "TransactionConflict", 30, 4),
    ("PutItem", "InternalServerError", 30, 4),
]


@pytest.mark.parametrize(
    ("operation", "code", "times", "runs"),
    [
        pytest.param(
            *case,
            id=f"{case[0]}-{case[1]}-x{case[2]}",
        )
        for case in DYNAMO_FAULTS
    ],
)
def test_dynamodb_faults_are_retried_or_carried_and_nothing_is_lost_or_counted_twice(
    aws, stack, operation, code, times, runs
):
    store = product_store(aws, stack)
    with AwsFaults() as faults, SourceServer(TRAFFIC) as server:
        faults.fail(store.client, operation, code.split("+")[0], times, executed=code.endswith("+executed"))
        waits: list[float] = []
        failed = scan_until_done(store, server, runs, faults, waits)
    lost, duplicates = measure_mentions(store)
    record(
        "aws faults",
        faults=faults.total,
        survived=faults.total if not (lost or duplicates) else 0,
        lost=lost,
        duplicates=duplicates,
        retry_wait=round(sum(faults.sleeps), 1),
        failed_streams=failed,
    )
    print(
        f"\n{operation} {code} x{times}: injected {faults.total}, retry waits {sum(faults.sleeps):.1f} s "
        f"(per run {[round(w, 1) for w in waits]}), "
        f"failed streams per run {failed}"
    )
    assert faults.total == times, "every planned fault was hit"
    assert lost == 0 and duplicates == 0
    if runs == 1:
        assert failed == [0], "a transient fault is absorbed inside the run"
    # each run's retry waits fit one scan's time budget (the persistent faults span several runs)
    assert max(waits) < SCAN_BUDGET, f"retry waits per run {[round(w) for w in waits]}"


def test_unprocessed_keys_are_read_again(aws, stack):
    store = product_store(aws, stack)
    with AwsFaults() as faults, SourceServer(TRAFFIC) as server:
        faults.unprocessed(store.client, 6)
        scan_until_done(store, server, 1)
        # the top-posts lists come through BatchGetItem: a second day's page reads them back
        scan_until_done(store, server, 1)
    lost, duplicates = measure_mentions(store)
    record("aws faults", faults=faults.total, lost=lost, duplicates=duplicates)
    assert faults.total > 0 and lost == 0 and duplicates == 0


def test_two_concurrent_scans_store_each_mention_once(aws, stack):
    """A late run overlapping the next one: both read the same pages and race on every write."""
    store_a, store_b = product_store(aws, stack), product_store(aws, stack)
    errors: list[BaseException] = []
    with AwsFaults(), SourceServer(TRAFFIC) as server:
        config = day_config(server.base_url)

        def run(store: Store) -> None:
            try:
                scan_once("hackernews", TRAFFIC.end, config=config, store=store, session=new_session())
            except BaseException as exc:  # a thread's failure must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,)) for s in (store_a, store_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        scan_until_done(store_a, server, 1)  # the next scheduled run
    lost, duplicates = measure_mentions(store_a)
    record("aws faults", faults=1, lost=lost, duplicates=duplicates)
    assert not errors and lost == 0 and duplicates == 0


# ---------------------------------------------------------------- alerts and digests


def burst(store: Store) -> Any:
    seed_baseline(store)
    fire = START + timedelta(days=3, hours=2)
    store.store_mentions(
        [
            mention(60_000 + i, fire + timedelta(seconds=15 * i), text="Acme Widgets is down")
            for i in range(40)
        ]
    )
    return fire + timedelta(minutes=10)


def opened_alerts(aws: Any, inbox: str) -> int:
    messages = drain(aws, inbox)
    return sum(1 for m in messages if m["MessageAttributes"]["kind"]["Value"] == "opened")


SNS_FAULTS = [("Throttling", 2, 1), ("InternalError", 2, 1), ("Throttling", 60, 3), ("InternalError", 60, 3)]


@pytest.mark.parametrize(("code", "times", "runs"), SNS_FAULTS, ids=[f"{c}-x{n}" for c, n, _ in SNS_FAULTS])
def test_sns_faults_deliver_the_alert_exactly_once(
    aws, stack, store, handler, lambda_context, code, times, runs
):
    now = burst(store)
    inbox = subscribe_queue(aws, stack)
    app = handler("detect")
    with AwsFaults() as faults:
        faults.fail(app.runtime.client("sns"), "Publish", code, times)
        outcomes = []
        for k in range(runs + 2):  # the runs the faults span, then two more: nothing more is sent
            if k == runs:
                faults.clear()
            result = app.lambda_handler(scheduled_event(None, now + k * STEP, kind="detect"), lambda_context)
            outcomes.append(len(result["failures"]))
    alerts = opened_alerts(aws, inbox)
    lost, duplicates = int(alerts == 0), max(0, alerts - 1)
    record(
        "aws faults",
        faults=faults.total,
        survived=faults.total if alerts == 1 else 0,
        lost=lost,
        duplicates=duplicates,
        failures_per_run=outcomes,
    )
    assert faults.total > 0 and alerts == 1, outcomes


SES_FAULTS = [
    ("TooManyRequestsException", 2, 1),
    ("InternalFailure", 2, 1),
    ("TooManyRequestsException", 60, 3),
]


@pytest.mark.parametrize(("code", "times", "runs"), SES_FAULTS, ids=[f"{c}-x{n}" for c, n, _ in SES_FAULTS])
def test_ses_faults_send_the_digest_exactly_once(
    aws, stack, store, handler, lambda_context, code, times, runs
):
    seed_baseline(store, days=3)
    before = len(sent_messages())
    app = handler("digest")
    event = scheduled_event(None, START + timedelta(days=3, hours=8), kind="digest", period="daily")
    with AwsFaults() as faults:
        faults.fail(app.runtime.client("sesv2"), "SendEmail", code, times)
        results = []
        for k in range(runs + 2):  # Lambda's retries of the same event, then a late duplicate invocation
            if k == runs:
                faults.clear()
            results.append(app.lambda_handler(event, lambda_context))
    mails = len(sent_messages()) - before
    record(
        "aws faults",
        faults=faults.total,
        survived=faults.total if mails == 1 else 0,
        lost=int(mails == 0),
        duplicates=max(0, mails - 1),
    )
    assert faults.total > 0 and mails == 1, results
