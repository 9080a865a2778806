"""A source whose quota is spent is paused until its reset; missing credentials stop only that source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import responses
from emberwatch.config import parse_config
from emberwatch.http import HttpClient
from emberwatch.scan import scan_source

NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
CONFIG = parse_config(
    """
brands:
  - {id: acme, name: Acme, queries: ['"acme widgets"']}
  - {id: other, name: Other, queries: ['other']}
sources:
  hackernews: {base_url: 'https://hn.example/api/v1'}
"""
)


class NoCredentials:
    def for_source(self, source: str) -> dict:
        return {}


@responses.activate
def test_a_long_rate_limit_pauses_the_source_for_later_runs(store):
    # Given the API refuses with a reset an hour away
    responses.get(
        "https://hn.example/api/v1/search_by_date",
        status=429,
        headers={"Retry-After": "3600"},
        json={"message": "too many requests"},
    )
    first = scan_source("hackernews", NOW, config=CONFIG, store=store, http=HttpClient(sleep=lambda s: None))
    # Then the run stops at the first brand and records the pause
    assert first.paused_until is not None and first.paused_until >= NOW + timedelta(minutes=59)
    assert [r.brand for r in first.reports] == ["acme"]
    assert store.paused_until("hackernews") == first.paused_until
    calls = len(responses.calls)

    # When the next run comes five minutes later, it does not call the API at all
    later = scan_source(
        "hackernews", NOW + timedelta(minutes=5), config=CONFIG, store=store, http=HttpClient()
    )
    assert later.paused_until == first.paused_until and later.reports == []
    assert len(responses.calls) == calls

    # and after the reset it scans again
    responses.replace(
        responses.GET,
        "https://hn.example/api/v1/search_by_date",
        json={"hits": [], "nbHits": 0, "nbPages": 0, "page": 0, "hitsPerPage": 100},
    )
    after = scan_source("hackernews", NOW + timedelta(hours=2), config=CONFIG, store=store, http=HttpClient())
    assert after.paused_until is None and [r.brand for r in after.reports] == ["acme", "other"]


def test_missing_credentials_are_reported_for_that_source_without_a_crash(store):
    config = parse_config(
        """
brands:
  - {id: acme, name: Acme, queries: ['"acme widgets"']}
sources:
  x: {enabled: true}
"""
    )
    report = scan_source("x", NOW, config=config, store=store, http=HttpClient(), credentials=NoCredentials())
    (brand,) = report.reports
    assert brand.errors and "bearer_token" in brand.errors[0]
    assert store.source_runs("acme")["x"]["last_error"].startswith("x:")


@responses.activate
def test_a_connector_bug_stops_only_its_stream(store, monkeypatch):
    # Given the connector blows up for the first brand only
    from emberwatch.sources import hackernews

    real = hackernews.HackerNewsConnector.pages

    def flaky(self, brand, spec, cursor, ctx):
        if brand.id == "acme":
            raise KeyError("nbHits")
        yield from real(self, brand, spec, cursor, ctx)

    monkeypatch.setattr(hackernews.HackerNewsConnector, "pages", flaky)
    responses.get(
        "https://hn.example/api/v1/search_by_date",
        json={"hits": [], "nbHits": 0, "nbPages": 0, "page": 0, "hitsPerPage": 100},
    )
    report = scan_source("hackernews", NOW, config=CONFIG, store=store, http=HttpClient())
    acme, other = report.reports
    # Then the error is reported for that brand and the other brand is still scanned
    assert acme.errors and "KeyError" in acme.errors[0]
    assert other.errors == [] and other.pages == 1
