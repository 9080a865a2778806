"""Point 3: each handler killed at each step; the next run completes the work exactly once.

`CRASH_POINTS` is the registry: a handler's steps, each killed before and after. A new handler
(or a new step, e.g. a channel send) adds rows here and gets its cases. The kill is `LambdaKilled`
(a BaseException nothing in the handler catches) raised from a patched step.
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from emberwatch.events import scheduled_event

from sim.sourceserver import SourceServer
from sim.traffic import generate
from tests.conftest import LambdaKilled, push_config
from tests.integration.test_detect_and_digest import (
    START,
    drain,
    mention,
    seed_baseline,
    sent_messages,
    subscribe_queue,
)
from tests.reliability.ledger import record
from tests.reliability.measure import Snapshot, compare
from tests.reliability.world import DAY_START, day_yaml, truth

pytestmark = pytest.mark.reliability


@dataclass(frozen=True)
class CrashPoint:
    handler: str
    step: str
    target: str  # "store.<method>" or "client.<service>.<operation>"
    when: str  # "before" | "after"
    nth: int = 1  # killed at this call of the step (a later page, the second write...)
    known: str | None = None  # a measured gap, kept visible as a strict xfail until it is closed

    @property
    def id(self) -> str:
        return f"{self.handler}-{self.when}-{self.step}"


_AT_LEAST_ONCE = (
    "at-least-once window: SNS or SES has accepted the message but the claim is not marked done; the next "
    "run cannot tell it from an unsent one and sends it again (neither service deduplicates)"
)
KNOWN = {
    "detect-after-notify": _AT_LEAST_ONCE,
    "detect-before-notify complete": _AT_LEAST_ONCE,
    "digest-after-send": _AT_LEAST_ONCE,
    "digest-before-complete": _AT_LEAST_ONCE,
}


def _points(handler: str, steps: list[tuple[str, str, int]]) -> list[CrashPoint]:
    return [
        CrashPoint(handler, step, target, when, nth, KNOWN.get(f"{handler}-{when}-{step}"))
        for step, target, nth in steps
        for when in ("before", "after")
    ]


CRASH_POINTS: list[CrashPoint] = [
    *_points(
        "scan",
        [
            ("storing", "store.store_mentions", 3),
            ("cursor move", "store.save_cursor", 2),
            ("run record", "store.record_run", 1),
        ],
    ),
    *_points(
        "detect",
        [
            ("incident write", "store.open_incident", 1),
            ("notify claim", "store.claim", 1),
            ("notify", "client.sns.publish", 1),
            ("notify complete", "store.complete", 1),
        ],
    ),
    *_points(
        "digest",
        [
            ("claim", "store.claim", 1),
            ("send", "client.sesv2.send_email", 1),
            ("complete", "store.complete", 1),
        ],
    ),
]


def arm(point: CrashPoint, app: Any) -> dict[str, Any]:
    """Patch the step so its `nth` call dies before or after doing its work."""
    kind, *path = point.target.split(".")
    if kind == "store":
        owner, name = app.runtime.store, path[0]
    else:
        owner, name = app.runtime.client(path[0]), path[1]
    original = getattr(owner, name)
    calls: dict[str, Any] = {"n": 0, "killed": 0}

    def step(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == point.nth and point.when == "before":
            calls["killed"] += 1
            raise LambdaKilled(f"killed before {point.step}")
        result = original(*args, **kwargs)
        if calls["n"] == point.nth and point.when == "after":
            calls["killed"] += 1
            raise LambdaKilled(f"killed after {point.step}")
        return result

    setattr(owner, name, step)
    calls["restore"] = lambda: setattr(owner, name, original)  # type: ignore[assignment]
    return calls


def crash_scan(point, aws, stack, store, handler, lambda_context, monkeypatch) -> dict[str, int]:
    traffic = generate(start=DAY_START, days=1, seed=5, fire_at=DAY_START + timedelta(hours=10))
    expected = truth(traffic)
    with SourceServer(traffic) as server:
        push_config(aws, stack, day_yaml(server.base_url))
        app = handler("scan")
        now = traffic.end
        calls = arm(point, app)
        with pytest.raises(LambdaKilled):
            app.lambda_handler(scheduled_event("hackernews", now), lambda_context)
        calls["restore"]()
        push_config(aws, stack, day_yaml(server.base_url))
        app = handler("scan")
        for k in (1, 2):  # the next scheduled runs
            app.lambda_handler(scheduled_event("hackernews", now + k * timedelta(minutes=5)), lambda_context)
    got = Snapshot.of(store)
    hn = {i: t for i, t in expected.items() if i.startswith("hackernews:")}
    result = compare(set(hn), got, hn)
    return {
        "killed": calls["killed"],
        "lost": len(result.lost) + result.undercounted,
        "duplicates": result.duplicates + len(result.extra),
    }


def crash_detect(point, aws, stack, store, handler, lambda_context, monkeypatch) -> dict[str, int]:
    seed_baseline(store)
    inbox = subscribe_queue(aws, stack)
    fire = START + timedelta(days=3, hours=2)
    store.store_mentions(
        [
            mention(50_000 + i, fire + timedelta(seconds=15 * i), text="Acme Widgets is down again")
            for i in range(40)
        ]
    )
    app = handler("detect")
    calls = arm(point, app)
    now = fire + timedelta(minutes=10)
    with pytest.raises(LambdaKilled):
        app.lambda_handler(scheduled_event(None, now, kind="detect"), lambda_context)
    calls["restore"]()
    app = handler("detect")
    for k in (1, 2, 3):  # the next scheduled runs, five minutes apart
        app.lambda_handler(
            scheduled_event(None, now + k * timedelta(minutes=5), kind="detect"), lambda_context
        )
    opened = [m for m in drain(aws, inbox) if m["MessageAttributes"]["kind"]["Value"] == "opened"]
    return {"killed": calls["killed"], "lost": int(not opened), "duplicates": max(0, len(opened) - 1)}


def crash_digest(point, aws, stack, store, handler, lambda_context, monkeypatch) -> dict[str, int]:
    seed_baseline(store, days=3)
    before = len(sent_messages())
    app = handler("digest")
    calls = arm(point, app)
    run_at = START + timedelta(days=3, hours=8)
    event = scheduled_event(None, run_at, kind="digest")  # the hourly schedule names no period
    with pytest.raises(LambdaKilled):
        app.lambda_handler(event, lambda_context)
    calls["restore"]()
    app = handler("digest")
    # Lambda retries a failed asynchronous invocation twice (after about 1 and 3 minutes) with the
    # same event; then the hourly schedule's next runs
    for _ in (1, 2):
        app.lambda_handler(event, lambda_context)
    for hours in (1, 2):
        app.lambda_handler(
            scheduled_event(None, run_at + timedelta(hours=hours), kind="digest"), lambda_context
        )
    mails = [
        email.message_from_string(m.raw_data) if hasattr(m, "raw_data") else m
        for m in sent_messages()[before:]
    ]
    return {"killed": calls["killed"], "lost": int(not mails), "duplicates": max(0, len(mails) - 1)}


RUNNERS = {"scan": crash_scan, "detect": crash_detect, "digest": crash_digest}


@pytest.mark.parametrize(
    "point",
    [pytest.param(p, id=p.id) for p in CRASH_POINTS],
)
def test_killed_at_this_step_the_next_run_completes_the_work_once(
    point, aws, stack, store, handler, lambda_context, monkeypatch
):
    outcome = RUNNERS[point.handler](point, aws, stack, store, handler, lambda_context, monkeypatch)
    # In the at-least-once window (SNS or SES accepted the message, the claim is not yet done) the
    # documented treatment is one repeat, never a loss: it is counted in its own column, not hidden.
    repeats = outcome["duplicates"] if point.known else 0
    record(
        "crash points",
        faults=outcome["killed"],
        survived=outcome["killed"] if not (outcome["lost"] or outcome["duplicates"] - repeats) else 0,
        lost=outcome["lost"],
        duplicates=outcome["duplicates"] - repeats,
        repeats=repeats,
        point=point.id,
    )
    assert outcome["killed"] == 1, "the step was reached and killed"
    if point.known:
        assert outcome["lost"] == 0 and outcome["duplicates"] == 1, (point.known, outcome)
    else:
        assert outcome["lost"] == 0 and outcome["duplicates"] == 0, outcome
