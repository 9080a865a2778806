"""Digest assembly (pure): periods in the recipient's zone, totals and shares, timeline, top posts, incidents.

And the pure parts of alerts: the SNS subject, the driving posts and the alert context.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from emberwatch.alerts import alert_context, driving_posts, sns_subject
from emberwatch.config import Brand, Recipient
from emberwatch.detect import RULE_VOLUME, Signal
from emberwatch.digest import (
    TOP_POSTS,
    Period,
    _header_text,
    build_digest,
    due_period,
    frt_quantile,
    frt_share_within,
    period_ending,
    send_at,
)
from emberwatch.models import Author, CareHour, Engagement, HourRollup, Incident, Mention

BRAND = Brand(id="acme", name="Acme Widgets", queries=("acme",))
NOW = datetime(2024, 5, 14, 6, 0, tzinfo=UTC)
DAY = Period("daily", datetime(2024, 5, 13, tzinfo=UTC), datetime(2024, 5, 14, tzinfo=UTC), "UTC")


def hour(
    h: int,
    mentions: int,
    *,
    day: datetime = DAY.start,
    source: str = "hackernews",
    negative: int = 0,
    rated: int = 0,
) -> HourRollup:
    """An hourly rollup `h` hours after `day` (all of it from `source`)."""
    return HourRollup(
        "acme",
        day + timedelta(hours=h),
        mentions=mentions,
        negative=negative,
        rated=rated,
        customer=mentions,
        sources={source: mentions},
    )


def post(n: int, engagement: int, *, minutes: int = 0, source: str = "hackernews", title: str | None = None):
    return Mention(
        source=source,
        native_id=str(n),
        brand="acme",
        query="acme",
        author=Author(f"user{n}"),
        text=f"{title}\n\nbody {n}" if title else f"post {n} about acme",
        title=title,
        created_at=DAY.start + timedelta(hours=10, minutes=minutes),
        url=f"https://news.ycombinator.com/item?id={n}",
        engagement=Engagement(score=engagement),
    )


def incident(opened: datetime, *, resolved: datetime | None = None, peak: int = 40) -> Incident:
    return Incident(
        brand="acme",
        scope="brand",
        rule=RULE_VOLUME,
        opened_at=opened,
        status="resolved" if resolved else "open",
        severity="high",
        observed=peak,
        expected=4.0,
        peak=peak,
        notified_level=peak,
        last_seen_at=resolved or opened,
        resolved_at=resolved,
        notifications=2,
    )


def build(current=(), previous=(), top=(), incidents=(), period: Period = DAY):
    return build_digest(
        BRAND,
        period,
        current=list(current),
        previous=list(previous),
        top=list(top),
        incidents=list(incidents),
        now=NOW,
        unsubscribe_url="mailto:digest@acme.example?subject=unsubscribe",
    )


# ---------------------------------------------------------------- period_ending


def test_daily_period_in_utc_is_yesterday():
    period = period_ending(datetime(2024, 5, 14, 6, 30, tzinfo=UTC), "daily", "UTC")
    assert (period.start, period.end) == (
        datetime(2024, 5, 13, tzinfo=UTC),
        datetime(2024, 5, 14, tzinfo=UTC),
    )
    assert period.kind == "daily"
    assert period.key == "daily#2024-05-13T00:00:00Z"


def test_daily_period_just_after_midnight_is_the_day_that_just_ended():
    period = period_ending(datetime(2024, 5, 14, 0, 0, 1, tzinfo=UTC), "daily", "UTC")
    assert period.start == datetime(2024, 5, 13, tzinfo=UTC)


def test_weekly_period_is_the_seven_days_before_today():
    period = period_ending(datetime(2024, 5, 14, 6, 30, tzinfo=UTC), "weekly", "UTC")
    assert (period.start, period.end) == (datetime(2024, 5, 7, tzinfo=UTC), datetime(2024, 5, 14, tzinfo=UTC))


def test_daily_period_follows_the_recipient_zone():
    # 06:00 UTC is 15:00 in Tokyo: the last complete Tokyo day is 13 May, 15:00 UTC the day before
    period = period_ending(datetime(2024, 5, 14, 6, tzinfo=UTC), "daily", "Asia/Tokyo")
    assert period.start == datetime(2024, 5, 12, 15, tzinfo=UTC)
    assert period.end == datetime(2024, 5, 13, 15, tzinfo=UTC)
    assert period.start.tzinfo == UTC


def test_late_evening_utc_is_already_tomorrow_in_berlin():
    # 22:30 UTC on 13 May is 00:30 on 14 May in Berlin (CEST): 13 May has ended there
    period = period_ending(datetime(2024, 5, 13, 22, 30, tzinfo=UTC), "daily", "Europe/Berlin")
    assert period.start == datetime(2024, 5, 12, 22, tzinfo=UTC)
    assert period.end == datetime(2024, 5, 13, 22, tzinfo=UTC)


def test_berlin_day_when_clocks_go_back_has_25_hours():
    # Sunday 27 October 2024: 03:00 CEST becomes 02:00 CET
    period = period_ending(datetime(2024, 10, 28, 6, tzinfo=UTC), "daily", "Europe/Berlin")
    assert period.start == datetime(2024, 10, 26, 22, tzinfo=UTC)  # midnight CEST
    assert period.end == datetime(2024, 10, 27, 23, tzinfo=UTC)  # midnight CET
    assert period.end - period.start == timedelta(hours=25)


def test_berlin_days_either_side_of_the_change_have_24_hours():
    before = period_ending(datetime(2024, 10, 27, 6, tzinfo=UTC), "daily", "Europe/Berlin")
    after = period_ending(datetime(2024, 10, 29, 6, tzinfo=UTC), "daily", "Europe/Berlin")
    assert (before.start, before.end) == (
        datetime(2024, 10, 25, 22, tzinfo=UTC),
        datetime(2024, 10, 26, 22, tzinfo=UTC),
    )
    assert (after.start, after.end) == (
        datetime(2024, 10, 27, 23, tzinfo=UTC),
        datetime(2024, 10, 28, 23, tzinfo=UTC),
    )


def test_berlin_week_across_the_change_starts_and_ends_on_local_midnights():
    period = period_ending(datetime(2024, 10, 28, 6, tzinfo=UTC), "weekly", "Europe/Berlin")
    assert period.start == datetime(2024, 10, 20, 22, tzinfo=UTC)  # Mon 21 Oct 00:00 CEST
    assert period.end == datetime(2024, 10, 27, 23, tzinfo=UTC)  # Mon 28 Oct 00:00 CET
    assert period.end - period.start == timedelta(days=7, hours=1)


def test_previous_period_of_the_day_after_a_25_hour_day_is_that_whole_day():
    # Given the digest for Mon 28 Oct (a normal day after the 25-hour Sunday)
    period = period_ending(datetime(2024, 10, 29, 6, tzinfo=UTC), "daily", "Europe/Berlin")
    sunday = period_ending(datetime(2024, 10, 28, 6, tzinfo=UTC), "daily", "Europe/Berlin")
    # Then the day it compares with is the whole local Sunday, midnight to midnight
    assert (period.previous.start, period.previous.end) == (sunday.start, sunday.end)


def test_previous_period_of_the_25_hour_day_is_the_local_saturday():
    period = period_ending(datetime(2024, 10, 28, 6, tzinfo=UTC), "daily", "Europe/Berlin")
    saturday = period_ending(datetime(2024, 10, 27, 6, tzinfo=UTC), "daily", "Europe/Berlin")
    assert (period.previous.start, period.previous.end) == (saturday.start, saturday.end)


def test_previous_period_in_utc_is_the_day_before():
    assert DAY.previous == Period("daily", datetime(2024, 5, 12, tzinfo=UTC), DAY.start, "UTC")


# ---------------------------------------------------------------- totals, change, shares


def test_totals_change_and_negative_share():
    current = [hour(9, 30, negative=6, rated=20), hour(10, 10, negative=2, rated=5, source="feed")]
    previous = [hour(9, 16, day=DAY.start - timedelta(days=1), negative=2, rated=8)]

    totals = build(current, previous)["totals"]

    assert totals["mentions"] == 40
    assert totals["previous_mentions"] == 16
    assert totals["change"] == pytest.approx(1.5)  # +150 %
    assert totals["negative"] == 8
    # the share is of the rated mentions only (25), not of all 40
    assert totals["negative_share"] == pytest.approx(8 / 25)
    assert totals["previous_negative_share"] == pytest.approx(2 / 8)
    assert totals["sources"] == 2


def test_change_is_none_without_a_previous_period():
    totals = build([hour(9, 5)], [])["totals"]
    assert totals["change"] is None
    assert totals["previous_mentions"] == 0


def test_fall_to_nothing_is_minus_one_hundred_percent():
    totals = build([], [hour(9, 5, day=DAY.start - timedelta(days=1))])["totals"]
    assert totals["change"] == pytest.approx(-1.0)


def test_negative_share_is_none_when_nothing_is_rated():
    totals = build([hour(9, 30)], [hour(9, 3, day=DAY.start - timedelta(days=1))])["totals"]
    assert totals["negative_share"] is None
    assert totals["previous_negative_share"] is None


def test_empty_digest_is_well_formed():
    digest = build()
    assert digest["totals"]["mentions"] == 0
    assert digest["totals"]["sources"] == 0
    assert digest["by_source"] == []
    assert digest["top_posts"] == []
    assert digest["incidents"] == []
    assert len(digest["timeline"]) == 24
    assert all(slot["bar"] == 0 for slot in digest["timeline"])


def test_by_source_sorted_by_volume_with_shares_and_labels():
    current = [hour(1, 10, source="feed"), hour(2, 30), hour(3, 10, source="reddit")]
    rows = build(current)["by_source"]
    assert [r["source"] for r in rows] == ["hackernews", "feed", "reddit"]  # ties by name
    assert [r["label"] for r in rows] == ["Hacker News", "News & blogs", "Reddit"]
    assert [r["share"] for r in rows] == [pytest.approx(0.6), pytest.approx(0.2), pytest.approx(0.2)]


def test_brand_period_and_unsubscribe_are_carried():
    digest = build()
    assert digest["brand"] == {"id": "acme", "name": "Acme Widgets"}
    assert digest["period"]["title"] == "Daily digest"
    assert digest["period"]["label"] == "Mon 13 May 2024"
    assert digest["generated_at"] == NOW
    assert digest["unsubscribe_url"].startswith("mailto:")


def test_weekly_label_names_first_and_last_day():
    week = period_ending(datetime(2024, 5, 14, 6, tzinfo=UTC), "weekly", "UTC")
    digest = build(period=week)
    assert digest["period"]["title"] == "Weekly digest"
    assert digest["period"]["label"] == "07 May – 13 May 2024"


# ---------------------------------------------------------------- timeline


def test_daily_timeline_has_one_bar_per_hour_normalised_to_the_peak():
    current = [hour(9, 40, negative=10), hour(10, 10), hour(10, 10, source="feed"), hour(23, 5)]
    timeline = build(current)["timeline"]

    assert len(timeline) == 24
    assert [slot["label"] for slot in timeline[:3]] == ["00:00", "01:00", "02:00"]
    assert timeline[9]["mentions"] == 40
    assert timeline[9]["bar"] == 1.0  # the peak
    assert timeline[9]["negative_bar"] == pytest.approx(0.25)
    assert timeline[10]["mentions"] == 20  # sources added up
    assert timeline[10]["bar"] == pytest.approx(0.5)
    assert timeline[23]["bar"] == pytest.approx(0.125)
    assert timeline[0]["bar"] == 0
    assert max(slot["bar"] for slot in timeline) == 1.0


def test_buckets_outside_the_period_are_not_in_the_timeline():
    current = [hour(-1, 99), hour(24, 99), hour(5, 3)]
    timeline = build(current)["timeline"]
    assert sum(slot["mentions"] for slot in timeline) == 3
    assert timeline[5]["bar"] == 1.0


def test_daily_timeline_labels_are_local_hours():
    period = period_ending(datetime(2024, 5, 14, 6, tzinfo=UTC), "daily", "Europe/Berlin")
    timeline = build([], period=period)["timeline"]
    assert timeline[0]["label"] == "00:00"
    assert timeline[-1]["label"] == "23:00"


def test_weekly_timeline_has_one_bar_per_day():
    week = period_ending(datetime(2024, 5, 14, 6, tzinfo=UTC), "weekly", "UTC")
    current = [hour(h, 2, day=week.start) for h in range(0, 7 * 24, 12)]  # 4 a day
    current.append(hour(3 * 24 + 5, 4, day=week.start))  # Fri 10 May: 8
    timeline = build(current, period=week)["timeline"]
    assert [s["label"] for s in timeline] == [
        "Tue 07",
        "Wed 08",
        "Thu 09",
        "Fri 10",
        "Sat 11",
        "Sun 12",
        "Mon 13",
    ]
    assert [s["mentions"] for s in timeline] == [4, 4, 4, 8, 4, 4, 4]
    assert [s["bar"] for s in timeline] == [0.5, 0.5, 0.5, 1.0, 0.5, 0.5, 0.5]


def test_weekly_timeline_across_the_clock_change_has_seven_local_days():
    # Given the Berlin week Mon 21 - Sun 27 Oct 2024 (Sunday has 25 hours)
    week = period_ending(datetime(2024, 10, 28, 6, tzinfo=UTC), "weekly", "Europe/Berlin")
    # and mentions in the hours from 12:00 and 23:00 on Sunday, local time (11:00 and 22:00 UTC)
    sunday = [
        HourRollup("acme", datetime(2024, 10, 27, 11, 0, tzinfo=UTC), mentions=2),
        HourRollup("acme", datetime(2024, 10, 27, 22, 0, tzinfo=UTC), mentions=3),
    ]
    timeline = build(sunday, period=week)["timeline"]
    # Then there is one bar per local day, and Sunday's bar holds both
    assert [s["mentions"] for s in timeline] == [0, 0, 0, 0, 0, 0, 5]
    assert [s["label"] for s in timeline] == [
        "Mon 21",
        "Tue 22",
        "Wed 23",
        "Thu 24",
        "Fri 25",
        "Sat 26",
        "Sun 27",
    ]


def test_weekly_timeline_after_clocks_go_forward_puts_midnight_in_its_own_day():
    # Given the Berlin week Thu 28 Mar - Wed 3 Apr 2024 (Sunday 31 Mar has 23 hours)
    week = period_ending(datetime(2024, 4, 4, 6, tzinfo=UTC), "weekly", "Europe/Berlin")
    # and mentions in the hour from 00:00 on Monday 1 April, local time (22:00 UTC on Sunday)
    monday = HourRollup("acme", datetime(2024, 3, 31, 22, 0, tzinfo=UTC), mentions=4)
    timeline = build([monday], period=week)["timeline"]
    labels = [s["label"] for s in timeline]
    # Then it counts for Monday, not Sunday
    assert labels == ["Thu 28", "Fri 29", "Sat 30", "Sun 31", "Mon 01", "Tue 02", "Wed 03"]
    assert timeline[labels.index("Mon 01")]["mentions"] == 4


# ---------------------------------------------------------------- top posts and incidents


def test_top_posts_sorted_by_engagement_and_capped_at_five():
    posts = [post(n, engagement=e, minutes=n) for n, e in enumerate([3, 50, 7, 50, 1, 20, 9])]
    rows = build(top=posts)["top_posts"]

    assert len(rows) == TOP_POSTS == 5
    assert [r["engagement"] for r in rows] == [50, 50, 20, 9, 7]
    # equal engagement: the newer first
    assert [r["id"] for r in rows[:2]] == ["hackernews:3", "hackernews:1"]
    first = rows[0]
    assert first["source_label"] == "Hacker News"
    assert first["author"] == "user3"
    assert first["url"] == "https://news.ycombinator.com/item?id=3"


def test_top_post_text_does_not_repeat_its_title():
    [row] = build(top=[post(1, 5, title="Acme raises")])["top_posts"]
    assert row["title"] == "Acme raises"
    assert row["text"] == "body 1"


def test_incident_rows_sorted_by_opening_with_durations():
    later = incident(DAY.start + timedelta(hours=15))
    earlier = incident(DAY.start + timedelta(hours=9), resolved=DAY.start + timedelta(hours=10, minutes=35))
    rows = build(incidents=[later, earlier])["incidents"]

    assert [r["opened_at"] for r in rows] == [earlier.opened_at, later.opened_at]
    assert rows[0]["duration_minutes"] == 95
    assert rows[0]["status"] == "resolved"
    assert rows[1]["duration_minutes"] is None
    assert rows[1]["resolved_at"] is None
    assert rows[0]["rule_label"] == "Volume spike"
    assert rows[0]["scope_label"] == "All sources"
    assert rows[0]["key"] == earlier.key
    assert (rows[0]["peak"], rows[0]["expected"], rows[0]["notifications"]) == (40, 4.0, 2)


def test_a_viral_post_incident_reads_as_growth_not_against_an_expectation():
    from dataclasses import replace

    from emberwatch.render import render

    viral = replace(incident(DAY.start + timedelta(hours=14)), rule="viral_post", scope="post:hackernews:9")
    viral.peak, viral.expected = 264, 12.0
    digest = build(incidents=[viral])
    html, text = render("digest.html.j2", digest=digest), render("digest.txt.j2", digest=digest)
    assert "+264</strong> reposts and replies" in html and "(it had 12)" in html
    assert "Peak:         +264 reposts and replies (it had 12)" in text
    assert "expected" not in text.split("Viral post")[1].split("Duration")[0]


# ---------------------------------------------------------------- alerts: subject, posts, context


@pytest.mark.parametrize(
    "text",
    [
        "Acme Widgets: volume spike (critical)",
        "Ácmé Wídgets – spike 🔥🔥 “now”",
        "line one\nline two\r\nline three\ttabbed",
        "Acme " * 60,
        "Überwachung " + "ß" * 200,
        "a\x00b\x1bc\x7fd",
        "日本語のブランド名",
        "",
        "   \n  ",
    ],
)
def test_sns_subject_is_ascii_one_line_and_short(text):
    subject = sns_subject(text)
    assert subject.isascii()
    assert "\n" not in subject and "\r" not in subject and "\t" not in subject
    assert all(0x20 <= ord(c) <= 0x7E for c in subject)
    assert 0 < len(subject) < 100
    assert subject == subject.strip()


def test_sns_subject_keeps_letters_without_their_accents():
    subject = sns_subject("Ácmé Wídgets – spike\nnow")
    assert subject.startswith("Acme Widgets")
    assert subject.endswith("spike now")


def test_sns_subject_of_nothing_printable_has_a_fallback():
    assert sns_subject("🔥🔥") == "Emberwatch alert"
    assert sns_subject("") == "Emberwatch alert"


def test_long_subject_is_cut_with_an_ellipsis():
    subject = sns_subject("Acme Widgets " * 20)
    assert subject.endswith("...")
    assert subject.startswith("Acme Widgets Acme Widgets")
    assert len(subject) < 100


def test_subject_of_99_characters_is_kept_whole():
    assert sns_subject("a" * 99) == "a" * 99
    assert sns_subject("a" * 100) == "a" * 96 + "..."


def test_driving_posts_most_engaged_then_newest_limited():
    posts = [post(n, engagement=e, minutes=n) for n, e in enumerate([1, 9, 9, 4, 0, 2, 7])]
    assert [m.id for m in driving_posts(posts)] == [
        "hackernews:2",
        "hackernews:1",
        "hackernews:6",
        "hackernews:3",
        "hackernews:5",
    ]
    assert len(driving_posts(posts, limit=2)) == 2
    assert driving_posts([]) == []


WINDOW_START = datetime(2024, 5, 13, 11, 40, tzinfo=UTC)
ALERT_NOW = datetime(2024, 5, 13, 12, 10, tzinfo=UTC)


def spike_signal() -> Signal:
    return Signal(
        triggered=True,
        observed=48,
        expected=2.0,
        p_value=1e-30,
        ratio=24.0,
        severity="critical",
        window_start=WINDOW_START,
        enough_history=True,
        by_source={"feed": 8, "hackernews": 40},
    )


def test_alert_context_for_an_opened_incident():
    opened = incident(WINDOW_START, peak=48)
    posts = [post(1, 12, title="Acme down"), post(2, 3)]

    context = alert_context(
        "opened", opened, spike_signal(), BRAND, posts, ALERT_NOW, "https://console.example"
    )

    assert context["kind"] == "opened"
    assert context["brand"] == {"id": "acme", "name": "Acme Widgets"}
    assert context["observed"] == 48
    assert context["expected"] == 2.0
    assert context["ratio"] == pytest.approx(24.0)
    assert context["window_minutes"] == 30
    assert context["since"] == WINDOW_START
    assert context["now"] == ALERT_NOW
    assert context["resolved_at"] is None
    assert context["scope_label"] == "All sources"
    assert context["rule_label"] == "Volume spike"
    assert context["severity"] == "high"
    # sources by volume, with labels
    assert context["sources"] == [
        {"source": "hackernews", "label": "Hacker News", "mentions": 40},
        {"source": "feed", "label": "News & blogs", "mentions": 8},
    ]
    assert [p["author"] for p in context["posts"]] == ["user1", "user2"]
    assert context["posts"][0]["text"] == "body 1"  # the title is not repeated
    assert context["posts"][0]["engagement"] == 12
    assert context["incident_key"] == opened.key
    assert context["link"] == "https://console.example"


def test_alert_context_for_a_resolved_incident_reports_the_peak():
    resolved_at = ALERT_NOW + timedelta(minutes=30)
    closed = incident(WINDOW_START, resolved=resolved_at, peak=60)
    closed.observed = 2  # the last quiet window

    context = alert_context("resolved", closed, None, BRAND, [], resolved_at, None)

    assert context["kind"] == "resolved"
    assert context["observed"] == 60  # the peak, not the last quiet count
    assert context["expected"] == 4.0  # from the incident, no signal now
    assert context["ratio"] == pytest.approx(15.0)
    assert context["window_minutes"] == 0
    assert context["sources"] == []
    assert context["posts"] == []
    assert context["resolved_at"] == resolved_at
    assert context["since"] == WINDOW_START
    assert context["link"] is None


def test_alert_context_ratio_is_none_without_an_expectation():
    zero = incident(WINDOW_START)
    zero.expected = 0.0
    assert alert_context("resolved", zero, None, BRAND, [], ALERT_NOW, None)["ratio"] is None


# ---------------------------------------------------------------- care, themes, health, schedule


def care(**bins) -> CareHour:
    """A care histogram: frt_le_<seconds>=count, over=count."""
    counts = {int(k.split("_")[1]) if k != "over" else None: v for k, v in bins.items()}
    return CareHour("acme", DAY.start, answered=sum(counts.values()), bins=counts)


def test_first_response_quantiles_interpolate_inside_their_band():
    hist = [care(le_300=2, le_900=2)]  # two answers in 0-5 min, two in 5-15 min
    assert frt_quantile(hist, 0.5) == pytest.approx(300)
    assert frt_quantile(hist, 0.75) == pytest.approx(600)
    assert frt_quantile([], 0.5) is None
    # everything above the last bound shows as that bound, not as infinity
    assert frt_quantile([care(over=3)], 0.9) == 24 * 3600


def test_share_within_target_counts_whole_bands_and_part_of_the_straddling_one():
    hist = [care(le_300=2, le_900=2, over=1)]
    assert frt_share_within(hist, 900) == pytest.approx(4 / 5)
    assert frt_share_within(hist, 600) == pytest.approx(3 / 5)  # half the 5-15 min band
    assert frt_share_within(hist, 10**9) == pytest.approx(4 / 5)  # the open band never counts
    assert frt_share_within([], 900) is None


def test_themes_have_counts_change_and_the_two_most_engaged_examples():
    def example(n: int, likes: int) -> dict:
        return {"id": f"hackernews:{n}", "source": "hackernews", "author": f"u{n}", "url": "https://x.example",
                "text": f"post {n}", "created_at": "2024-05-13T10:00:00Z", "engagement": likes}  # fmt: skip

    current = [
        HourRollup(
            "acme", DAY.start + timedelta(hours=h), themes={"issue": 3}, examples={"issue": example(h, h)}
        )
        for h in range(4)
    ]
    previous = [HourRollup("acme", DAY.start - timedelta(hours=3), themes={"issue": 4, "feedback": 2})]
    themes = {t["theme"]: t for t in build(current, previous)["themes"]}
    assert list(themes) == ["issue", "solution_wanted", "time_cost", "feedback"]
    assert themes["issue"]["mentions"] == 12 and themes["issue"]["change"] == pytest.approx(2.0)
    assert [e["id"] for e in themes["issue"]["examples"]] == ["hackernews:3", "hackernews:2"]
    assert themes["feedback"]["mentions"] == 0 and themes["feedback"]["change"] == pytest.approx(-1.0)
    assert themes["time_cost"]["change"] is None and themes["time_cost"]["examples"] == []


def test_source_health_lists_failing_and_quiet_sources_only():
    current = [HourRollup("acme", DAY.start, mentions=5, sources={"hackernews": 5})]
    previous = [HourRollup("acme", DAY.start - timedelta(hours=2), sources={"hackernews": 3, "reddit": 4})]
    runs = {
        "hackernews": {"failures": 0, "last_success_at": "2024-05-13T23:55:00Z"},
        "x": {"failures": 2, "last_error_at": "2024-05-13T10:00:00Z", "last_error": "HTTP 429"},
        "bluesky": {"failures": 1, "last_error_at": "2024-05-01T10:00:00Z", "last_error": "old news"},
    }
    digest = build_digest(
        BRAND, DAY, current=current, previous=previous, top=[], incidents=[], now=NOW,
        unsubscribe_url="mailto:x@example.com", runs=runs,
    )  # fmt: skip
    health = {h["source"]: h for h in digest["source_health"]}
    assert set(health) == {"x", "reddit"}
    assert health["x"]["status"] == "failing" and health["x"]["error"] == "HTTP 429"
    assert health["reddit"]["status"] == "quiet" and health["reddit"]["previous_mentions"] == 4


def test_header_text_drops_line_breaks_and_controls():
    assert _header_text("Acme\r\nBcc: x@evil.example\x00\t!") == "Acme Bcc: x@evil.example !"
    assert _header_text(None) == ""


def test_send_time_is_the_local_hour_and_weekday_and_survives_dst():
    weekly = Recipient("a@x.example", None, ("acme",), "weekly", "Europe/Berlin", weekday=0, hour=9)
    # Monday 28 Oct 2024, the day after Berlin's clocks went back: 09:00 CET = 08:00 UTC
    assert send_at(weekly, datetime(2024, 10, 28, 8, 30, tzinfo=UTC)) == datetime(2024, 10, 28, 8, tzinfo=UTC)
    # a week earlier the same local hour was 07:00 UTC (CEST)
    assert send_at(weekly, datetime(2024, 10, 28, 7, 30, tzinfo=UTC)) == datetime(2024, 10, 21, 7, tzinfo=UTC)
    period = due_period(weekly, datetime(2024, 10, 28, 8, 0, 5, tzinfo=UTC))
    assert period is not None and period.end - period.start == timedelta(hours=169)
    assert due_period(weekly, datetime(2024, 10, 29, 8, tzinfo=UTC)) is None  # past the grace time
