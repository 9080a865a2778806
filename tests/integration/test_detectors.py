"""Every detector against moto: negative tone, per-source volume, blind spots; one notification each."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from emberwatch.config import AppConfig, Brand, Detection
from emberwatch.detect import RULE_BLIND_SPOT, RULE_NEGATIVE, RULE_VIRAL, RULE_VOLUME, run_detection
from emberwatch.models import Author, Engagement, Mention

FIRE = datetime(2024, 5, 12, 14, 1, tzinfo=UTC)
CONFIG = AppConfig(
    brands=(Brand(id="acme", name="Acme Widgets", queries=('"acme widgets"',)),),
    detection=Detection(window_minutes=30, min_mentions=10),
)


def mention(n: int, created: datetime, *, source: str = "hackernews", sentiment: str = "positive") -> Mention:
    return Mention(
        source=source,
        native_id=str(n),
        brand="acme",
        query='"acme widgets"',
        author=Author(f"user{n}"),
        text="Acme Widgets " + ("broke everything" if sentiment == "negative" else "works fine"),
        created_at=created,
        url=f"https://example.com/{source}/{n}",
        sentiment=sentiment,
    )


def seed(store, *, per_hour: dict[str, int], hours: int = 12, negative_every: int = 10) -> None:
    """`per_hour` mentions of each source over the `hours` before the fire, every tenth one negative.

    Kept small: moto copies the table on every transaction, so seeding costs grow with its square.
    """
    batch, n = [], 0
    start = FIRE.replace(minute=0) - timedelta(hours=hours)
    for source, rate in per_hour.items():
        step = timedelta(hours=1) / rate
        for i in range(hours * rate):
            n += 1
            sentiment = "negative" if n % negative_every == 0 else "positive"
            batch.append(mention(n, start + i * step, source=source, sentiment=sentiment))
    for start in range(0, len(batch), 90):  # page-sized, as a scan stores them
        assert store.store_mentions(batch[start : start + 90]).stored == len(batch[start : start + 90])


class Inbox:
    """The notifier: records what would have been published."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def __call__(self, kind, incident, signal) -> None:
        self.sent.append((kind, incident.scope, incident.rule))


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


def detect(store, inbox, now, baselines=None):
    return run_detection(now, config=CONFIG, store=store, notify=inbox, baselines=baselines)


def test_a_negative_spike_while_volume_is_normal_is_its_own_incident(store, inbox):
    # Given twelve hours at 8 mentions an hour, one in ten negative
    seed(store, per_hour={"hackernews": 6, "mastodon": 2})
    # When the next half hour has about its usual volume but most of it is angry
    window = [
        mention(
            50_000 + i,
            FIRE + timedelta(minutes=3 * i),
            sentiment="negative" if i < 6 else "positive",
        )
        for i in range(7)
    ]
    store.store_mentions(window)
    now = FIRE + timedelta(minutes=25)
    report = detect(store, inbox, now)
    again = detect(store, inbox, now)  # a retried invocation

    # Then one negative-tone incident is opened and notified, once; volume stays quiet
    assert inbox.sent == [("opened", "brand", RULE_NEGATIVE)]
    assert len(report.opened) == 1 and again.opened == [] and again.notifications == []
    assert store.active_incident("acme", "brand", RULE_VOLUME) is None
    incident = store.active_incident("acme", "brand", RULE_NEGATIVE)
    assert incident is not None and incident.observed == 6


def test_a_source_incident_stays_quiet_while_the_brand_incident_is_open(store, inbox):
    # Given Hacker News and Mastodon both mentioning the brand
    seed(store, per_hour={"hackernews": 6, "mastodon": 2})
    # When Mastodon bursts hard enough to move the whole brand
    store.store_mentions(
        [mention(60_000 + i, FIRE + timedelta(seconds=20 * i), source="mastodon") for i in range(40)]
    )
    report = detect(store, inbox, FIRE + timedelta(minutes=15))

    # Then both incidents are recorded, but only the brand's is notified
    assert len(report.opened) == 2
    assert inbox.sent == [("opened", "brand", RULE_VOLUME)]
    source = store.active_incident("acme", "source:mastodon", RULE_VOLUME)
    assert source is not None and source.notified_level == 0 and source.notifications == 0

    # When the surge ends, the brand's all-clear is the only one sent
    later = FIRE + timedelta(minutes=45)
    for step in range(12):
        detect(store, inbox, later + timedelta(minutes=5 * step))
    assert inbox.sent == [("opened", "brand", RULE_VOLUME), ("resolved", "brand", RULE_VOLUME)]
    assert store.active_incident("acme", "source:mastodon", RULE_VOLUME) is None


def test_a_spike_on_one_source_alone_is_notified_for_that_source(store, inbox):
    # Given Hacker News at 16 an hour and Mastodon at 1 an hour
    seed(store, per_hour={"hackernews": 16, "mastodon": 1}, hours=8)
    # When Mastodon brings 14 in ten minutes: the brand as a whole is still within its usual range
    store.store_mentions(
        [mention(70_000 + i, FIRE + timedelta(seconds=40 * i), source="mastodon") for i in range(14)]
    )
    detect(store, inbox, FIRE + timedelta(minutes=12))
    assert inbox.sent == [("opened", "source:mastodon", RULE_VOLUME)]


def test_a_blind_spot_is_opened_and_resolved_when_the_source_yields_again(store, inbox):
    # Given Hacker News normally yields mentions
    seed(store, per_hour={"hackernews": 4, "mastodon": 1})
    now = FIRE
    store.record_run("acme", "hackernews", now - timedelta(minutes=20), error=None, stats={"fetched": 9})
    # When three runs in a row fail
    for minutes in (15, 10, 5):
        store.record_run(
            "acme", "hackernews", now - timedelta(minutes=minutes), error="hackernews: HTTP 503", stats={}
        )
    store.record_run("acme", "mastodon", now - timedelta(minutes=5), error=None, stats={"fetched": 3})
    detect(store, inbox, now)
    # Then one blind-spot incident for that source is notified
    assert inbox.sent == [("opened", "source:hackernews", RULE_BLIND_SPOT)]
    incident = store.active_incident("acme", "source:hackernews", RULE_BLIND_SPOT)
    assert incident is not None and incident.severity == "warning"

    # When a run succeeds but brings nothing back, it is not over yet
    store.record_run("acme", "hackernews", now + timedelta(minutes=5), error=None, stats={"fetched": 0})
    detect(store, inbox, now + timedelta(minutes=5))
    assert len(inbox.sent) == 1

    # When the source yields again, the all-clear goes out at once
    store.record_run("acme", "hackernews", now + timedelta(minutes=10), error=None, stats={"fetched": 6})
    report = detect(store, inbox, now + timedelta(minutes=10))
    assert report.resolved and inbox.sent[-1] == ("resolved", "source:hackernews", RULE_BLIND_SPOT)
    assert store.active_incident("acme", "source:hackernews", RULE_BLIND_SPOT) is None


def test_baselines_are_read_once_an_hour_per_container(store, inbox, monkeypatch):
    seed(store, per_hour={"hackernews": 4}, hours=8)
    reads = []
    real = store.hourly_counts
    monkeypatch.setattr(store, "hourly_counts", lambda *a, **k: reads.append(a) or real(*a, **k))
    baselines: dict = {}
    base = FIRE.replace(minute=31)
    for step in range(6):  # 14:31 to 14:56: the window starts in the same hour every time
        detect(store, inbox, base + timedelta(minutes=5 * step), baselines)
    assert len(reads) == 1
    detect(store, inbox, base + timedelta(minutes=60), baselines)  # the window's hour turned
    assert len(reads) == 2 and len(baselines) == 1


def test_a_post_spreading_fast_opens_one_viral_incident_then_an_all_clear(store, inbox):
    # Given a post first stored with a little engagement, and a quiet brand otherwise
    post = mention(7, FIRE - timedelta(minutes=10))
    store.store_mentions([replace(post, engagement=Engagement(reposts=5, replies=2))])
    assert detect(store, inbox, FIRE).opened == []  # the first reading: no growth seen yet
    # When a later scan fetches it again with many more reposts and replies
    again = store.store_mentions([replace(post, engagement=Engagement(reposts=60, likes=100, replies=30))])
    assert again.stored == 0 and again.duplicates == 1
    (stored,) = store.get_mentions("acme", [post.id])
    assert (stored.engagement.reposts, stored.engagement.replies) == (60, 30)  # refreshed on re-fetch
    # and an older copy never takes it back
    store.store_mentions([replace(post, engagement=Engagement(reposts=6, replies=2))])
    assert store.get_mentions("acme", [post.id])[0].engagement.reposts == 60
    later = FIRE + timedelta(minutes=30)
    report = detect(store, inbox, later)
    retried = detect(store, inbox, later)
    # Then one viral_post incident for that post, announced once
    # (keyed from the first reading at 14:01, not the window's start: the growth was measured from it)
    assert report.opened == [f"acme|post:{post.id}|{RULE_VIRAL}|2024-05-12T14:00:00Z"]
    assert retried.opened == [] and retried.notifications == []
    assert inbox.sent == [("opened", f"post:{post.id}", RULE_VIRAL)]
    # and once the growth stops, one all-clear
    for step in range(1, 20):
        detect(store, inbox, later + timedelta(minutes=5 * step))
    assert inbox.sent == [
        ("opened", f"post:{post.id}", RULE_VIRAL),
        ("resolved", f"post:{post.id}", RULE_VIRAL),
    ]
