"""Point 1: the source APIs fail 30 % of requests at random; after the faults clear every mention is
stored once and the 5-minute and hourly counters are exact.

Hacker News and Google Alerts: a generated day served by the local source server, scanned every five
minutes as EventBridge Scheduler would. The other seven sources: their recorded API pages (real
formats) served by the fakes of their integration tests, scanned every five minutes for two hours.
The ground truth is the generator's posts, and for every source also a fault-free run of the same
schedule into a second table.
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import responses
from emberwatch.config import parse_config
from emberwatch.http import new_session

from sim.sourceserver import SourceServer
from sim.traffic import generate
from tests.reliability.faults import SourceFaults
from tests.reliability.ledger import record
from tests.reliability.measure import Snapshot, clone_store, compare
from tests.reliability.world import DAY_START, STEP, day_config, scan_once
from tests.reliability.world import truth as generated_truth

pytestmark = pytest.mark.reliability

RATE = 0.30


def run_schedule(
    store: Any, server: SourceServer, config: Any, steps: int, faults: SourceFaults | None
) -> int:
    session = new_session()
    errors = 0
    for k in range(steps):
        now = DAY_START + k * STEP
        server.now = now
        if faults is not None and k == steps - 12:
            faults.active = False  # the last hour: the faults have cleared
        for source in ("hackernews", "feed"):
            report = scan_once(source, now, config=config, store=store, session=session)
            errors += len(report.failed)
    return errors


def test_a_day_of_hackernews_and_alerts_with_30_percent_faults_stores_everything_once(store):
    traffic = generate(start=DAY_START, days=1, seed=11, fire_at=DAY_START + timedelta(hours=14))
    truth = generated_truth(traffic)
    steps = 288 + 12  # a day of 5-minute runs, then an hour after the faults clear
    with SourceServer(traffic) as server:
        config = day_config(server.base_url)
        with SourceFaults(rate=RATE, seed=8) as faults:
            errors = run_schedule(store, server, config, steps, faults)
    got = Snapshot.of(store)
    vs_truth = compare(set(truth), got, truth)
    share = faults.total / max(1, faults.requests - faults.requests // 25)
    print(
        f"\nsimulated day: {len(truth)} true mentions, {len(got.ids)} stored, {faults.requests} requests, "
        f"{faults.total} faults ({dict(faults.injected)}), {errors} failed streams; "
        f"lost={len(vs_truth.lost)} extra={len(vs_truth.extra)} wrong buckets={vs_truth.buckets_wrong}"
    )
    record(
        "source faults",
        cases=1,
        faults=faults.total,
        survived=faults.total if not (vs_truth.lost or vs_truth.buckets_wrong) else 0,
        lost=len(vs_truth.lost) + vs_truth.undercounted,
        duplicates=vs_truth.duplicates + len(vs_truth.extra),
        requests=faults.requests,
        mentions=len(truth),
    )
    assert set(faults.injected) == set(faults.kinds), "every fault kind was tried"
    assert 0.2 < share < 0.4
    assert not vs_truth.lost and not vs_truth.extra
    assert vs_truth.buckets_wrong == 0, "5-minute and hourly counters equal the ground truth"


# ---------------------------------------------------------------- the seven recorded APIs


@dataclass(frozen=True)
class Recorded:
    """A source's recorded pages behind the fake of its integration test module."""

    source: str
    module: str

    def load(self) -> Any:
        return importlib.import_module(f"tests.integration.test_source_{self.module}")

    def setup(self) -> tuple[Any, Any, datetime]:
        """Register the fake API with `responses`; the parsed config, credentials and the clock."""
        m = self.load()
        if self.source == "x":
            m.serve(m.two_pages, [])
            return m.config(), m.CREDENTIALS, m.NOW
        if self.source == "reddit":
            m.Reddit(m.recorded)
            return m.config(), m.FakeCredentials({"reddit": m.SECRET}), m.NOW
        if self.source == "mastodon":
            m.serve(m.Instance(m.recorded()))
            return parse_config(m.CONFIG), m.Secrets(), m.NOW
        if self.source == "bluesky":
            m.FakeBluesky().install()
            return parse_config(m.CONFIG), m.Secrets(), m.NOW
        if self.source == "youtube":
            m.serve(m.recorded, [])
            return parse_config(m.CONFIG), m.FakeCredentials({"youtube": {"api_key": m.API_KEY}}), m.NOW
        if self.source == "stackexchange":
            m.serve(m.recorded, [])
            return parse_config(m.CONFIG), None, m.NOW
        if self.source == "facebook":
            m.serve(m.recorded, [])
            return parse_config(m.CONFIG), m.TOKENS, m.NOW
        raise ValueError(self.source)


RECORDED = [
    Recorded(s, s) for s in ("x", "reddit", "mastodon", "bluesky", "youtube", "stackexchange", "facebook")
]


def scan_recorded(
    api: Recorded, store: Any, steps: int, *, rate: float = 0.0, clear_after: int | None = None
) -> tuple[list[Any], Any, SourceFaults]:
    """`steps` scheduled scans of a recorded API, `rate` of its requests failing for `clear_after` runs."""
    reports = []
    with responses.mock:  # the default mock: the fakes register on it
        config, credentials, start = api.setup()
        # inside responses' patch, so the faults sit in front of the fake API
        with SourceFaults(rate=rate, seed=zlib.crc32(api.source.encode())) as faults:
            for k in range(steps):
                faults.active = clear_after is None or k < clear_after
                reports.append(
                    scan_once(
                        api.source,
                        start + k * STEP,
                        config=config,
                        store=store,
                        credentials=credentials,
                        session=new_session(),
                    )
                )
    return reports, credentials, faults


@pytest.mark.parametrize("api", RECORDED, ids=[r.source for r in RECORDED])
def test_recorded_api_with_30_percent_faults_stores_everything_once(api, store):
    baseline = clone_store(store, "baseline")
    steps, clear_after = 24, 12  # two hours of 5-minute runs; the faults clear after the first
    scan_recorded(api, baseline, steps)
    _, _, faults = scan_recorded(api, store, steps, rate=RATE, clear_after=clear_after)
    base, got = Snapshot.of(baseline), Snapshot.of(store)
    result = compare(base, got)
    print(f"\n{api.source}: {len(base.ids)} mentions, {faults.requests} requests, {dict(faults.injected)}")
    record(
        "source faults",
        faults=faults.total,
        survived=faults.total if not (result.lost or result.buckets_wrong) else 0,
        lost=len(result.lost) + result.undercounted,
        duplicates=result.duplicates + len(result.extra),
        source=api.source,
    )
    assert base.ids, "the recorded pages hold mentions"
    assert faults.total > 0
    assert not result.lost and not result.extra, (result.lost, result.extra)
    assert result.buckets_wrong == 0
