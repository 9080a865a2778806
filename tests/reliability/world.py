"""The simulated world the reliability cases run in: generated traffic, the local source server, scans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from emberwatch.config import parse_config
from emberwatch.http import HttpClient
from emberwatch.scan import scan_source

from sim.traffic import Traffic
from tests.reliability.conftest import VirtualClock

STEP = timedelta(minutes=5)
DAY_START = datetime(2024, 5, 14, tzinfo=UTC)
SCAN_BUDGET = 220  # seconds: runtime.SCAN_MAX_SECONDS (240) less the safety margin it keeps


def scan_once(
    source: str, now: datetime, *, config: Any, store: Any, session: Any, credentials: Any = None
) -> Any:
    """One scheduled invocation with the Lambda's budget on a virtual clock (sleeps are instant)."""
    clock = VirtualClock()
    http = HttpClient(
        session=session, deadline=clock.now + SCAN_BUDGET, sleep=clock.sleep, monotonic=clock.monotonic
    )
    report = scan_source(source, now, config=config, store=store, http=http, credentials=credentials)
    report.virtual_seconds = clock.now - 1000.0  # type: ignore[attr-defined]
    return report


def day_config(base_url: str, extra: str = "") -> Any:
    """Acme watched on the local server's Hacker News and Google Alerts feed."""
    return parse_config(day_yaml(base_url, extra))


def day_yaml(base_url: str, extra: str = "") -> str:
    return f"""
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
    feeds:
      - {base_url}/alerts/feeds/00651117406639347610/11001411275176557724
sources:
  hackernews:
    base_url: {base_url}/hn/api/v1
  feed: {{}}
{extra}"""


def truth(traffic: Traffic) -> dict[str, datetime]:
    """The mention ids the generator meant to be found, with their creation times."""
    return {
        (f"hackernews:{p.native_id}" if p.kind.startswith("hn_") else f"feed:ga-{p.native_id}"): p.created
        for p in traffic.posts
        if p.about_brand
    }
