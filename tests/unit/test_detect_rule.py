"""The spike rule (pure): the Poisson tail, `evaluate`, severities, and the incident lifecycle `advance`."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from emberwatch.config import Brand, Detection
from emberwatch.detect import (
    BASELINE_FLOOR_PER_HOUR,
    MIN_HISTORY_HOURS,
    RULE_VOLUME,
    Signal,
    advance,
    evaluate,
    poisson_tail,
    severity_for,
)
from emberwatch.models import CountBucket, Incident

BRAND = Brand(id="acme", name="Acme Widgets", queries=("acme",))
RULES = Detection()  # window 30 min, 7 days, min 12 mentions, ratio 3, p 0.001
NOW = datetime(2024, 5, 13, 12, 7, tzinfo=UTC)
WINDOW_START = datetime(2024, 5, 13, 11, 40, tzinfo=UTC)  # 12:05 bucket + 5 min - 30 min
CUTOFF = datetime(2024, 5, 13, 11, 0, tzinfo=UTC)  # the window's hour: the baseline stops before it


def direct_tail(k: int, lam: float) -> float:
    """P(X >= k) summed term by term upwards from k (a different route from the code's)."""
    if k <= 0:
        return 1.0
    terms = (math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1)) for i in range(k, k + 4000))
    return math.fsum(terms)


def hourly(per_hour: int, *, hours: int = 7 * 24, end: datetime = CUTOFF, source: str = "hackernews"):
    """One hourly bucket per hour for `hours` hours before `end`."""
    return [
        CountBucket(brand="acme", source=source, start=end - timedelta(hours=h), mentions=per_hour)
        for h in range(1, hours + 1)
    ]


def recent(*counts: int, source: str = "hackernews", start: datetime = WINDOW_START):
    """5-minute buckets from the window's start."""
    return [
        CountBucket(brand="acme", source=source, start=start + timedelta(minutes=5 * i), mentions=n)
        for i, n in enumerate(counts)
        if n
    ]


def spread(total: int, source: str = "hackernews"):
    """`total` mentions over the six 5-minute buckets of the window."""
    share, rest = divmod(total, 6)
    return recent(*[share + (1 if i < rest else 0) for i in range(6)], source=source)


# ---------------------------------------------------------------- poisson_tail


@pytest.mark.parametrize("lam", [0.0, 0.25, 1.0, 7.3, 500.0])
def test_tail_at_zero_or_below_is_one(lam):
    assert poisson_tail(0, lam) == 1.0
    assert poisson_tail(-3, lam) == 1.0


def test_tail_with_zero_rate_is_zero_for_any_count():
    assert poisson_tail(1, 0.0) == 0.0
    assert poisson_tail(50, 0.0) == 0.0


@pytest.mark.parametrize("lam", [0.25, 1.0, 2.5, 4.0])
def test_tail_of_one_is_one_minus_exp(lam):
    assert poisson_tail(1, lam) == pytest.approx(1 - math.exp(-lam), rel=1e-12)


@pytest.mark.parametrize("lam", [0.25, 1.0, 3.7, 10.0, 25.0])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 12, 20, 40])
def test_tail_matches_the_direct_sum(k, lam):
    assert poisson_tail(k, lam) == pytest.approx(direct_tail(k, lam), rel=1e-9, abs=1e-15)


def test_tail_known_values():
    # P(X >= 12 | 4): the classic "12 mentions when 4 were expected"
    assert poisson_tail(12, 4.0) == pytest.approx(0.000915229, rel=1e-5)
    # P(X >= 2 | 1) = 1 - 2/e
    assert poisson_tail(2, 1.0) == pytest.approx(1 - 2 / math.e, rel=1e-12)


def test_tail_for_a_large_rate_is_near_one_half_at_the_mean():
    assert poisson_tail(1000, 1000.0) == pytest.approx(direct_tail(1000, 1000.0), rel=1e-9)
    assert 0.5 < poisson_tail(1000, 1000.0) < 0.51


def test_tail_far_beyond_the_mean_is_tiny_but_not_negative():
    value = poisson_tail(60, 1.0)
    assert 0.0 <= value < 1e-70


@pytest.mark.parametrize("lam", [0.25, 3.7, 12.0, 80.0])
def test_tail_never_increases_with_k(lam):
    values = [poisson_tail(k, lam) for k in range(0, 3 * int(lam) + 30)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_tail_grows_with_the_rate():
    values = [poisson_tail(10, lam) for lam in (0.5, 1, 2, 5, 10, 20)]
    assert values == sorted(values)


# ---------------------------------------------------------------- severity_for


@pytest.mark.parametrize(
    ("ratio", "severity"),
    [
        (3.0, "warning"),
        (4.99, "warning"),
        (5.0, "high"),
        (9.99, "high"),
        (10.0, "critical"),
        (1e6, "critical"),
    ],
)
def test_severity_thresholds(ratio, severity):
    assert severity_for(ratio) == severity


# ---------------------------------------------------------------- evaluate


def test_window_covers_the_last_window_minutes_of_buckets():
    signal = evaluate(spread(60), hourly(4), NOW, RULES)
    assert signal.window_start == WINDOW_START
    assert signal.observed == 60


def test_buckets_outside_the_window_are_not_counted():
    before = recent(100, start=WINDOW_START - timedelta(minutes=5))
    after = recent(100, start=NOW + timedelta(minutes=5))
    signal = evaluate([*before, *spread(12), *after], hourly(4), NOW, RULES)
    assert signal.observed == 12


def test_expected_is_the_baseline_rate_times_the_window():
    # 4 an hour for a week -> 2 in 30 minutes
    signal = evaluate([], hourly(4), NOW, RULES)
    assert signal.expected == pytest.approx(2.0)
    assert signal.enough_history


def test_genuine_burst_alerts():
    # Given 4 mentions an hour all week, When 60 arrive in half an hour
    signal = evaluate(spread(60), hourly(4), NOW, RULES)
    # Then the rule fires, critically (30x)
    assert signal.triggered
    assert signal.ratio == pytest.approx(30.0)
    assert signal.p_value < 1e-20
    assert signal.severity == "critical"
    assert signal.score == pytest.approx(1.0)


def test_by_source_breaks_the_window_down():
    signal = evaluate([*spread(40), *spread(8, source="feed")], hourly(4), NOW, RULES)
    assert signal.by_source == {"hackernews": 40, "feed": 8}
    assert signal.observed == 48


def test_no_alert_with_too_little_history_even_for_a_big_burst():
    # Given only five hours of history before the window's hour
    history = hourly(1, hours=MIN_HISTORY_HOURS - 1)
    signal = evaluate(spread(200), history, NOW, RULES)
    # Then the rule does not trust its baseline
    assert not signal.enough_history
    assert not signal.triggered


def test_no_alert_without_any_history():
    signal = evaluate(spread(200), [], NOW, RULES)
    assert not signal.enough_history
    assert not signal.triggered
    assert signal.expected == pytest.approx(BASELINE_FLOOR_PER_HOUR * 0.5)


def test_six_hours_of_history_are_enough():
    signal = evaluate(spread(200), hourly(1, hours=MIN_HISTORY_HOURS), NOW, RULES)
    assert signal.enough_history
    assert signal.triggered


def test_one_post_after_a_quiet_night_does_not_alert():
    # Given a brand mentioned once every six hours, When one post arrives
    history = [b for i, b in enumerate(hourly(1)) if i % 6 == 0]
    signal = evaluate(recent(1), history, NOW, RULES)
    # Then the floor on the baseline keeps it unsurprising
    assert signal.expected == pytest.approx(BASELINE_FLOOR_PER_HOUR * 0.5)
    assert signal.ratio == pytest.approx(4.0)  # above min_ratio...
    assert signal.p_value > 0.1  # ...but not improbable
    assert not signal.triggered


def test_below_min_mentions_no_alert_even_at_a_huge_ratio():
    # 11 mentions against 0.25 expected: ratio 44, p ~ 1e-13, but under the floor of 12
    history = [b for i, b in enumerate(hourly(1)) if i % 6 == 0]
    signal = evaluate(spread(11), history, NOW, RULES)
    assert signal.ratio > 40
    assert signal.p_value < 1e-10
    assert not signal.triggered
    assert evaluate(spread(12), history, NOW, RULES).triggered


def test_below_min_ratio_no_alert_even_when_improbable():
    # 10 an hour -> 5 expected; 14 observed is p ~ 0.0007 but only 2.8x
    signal = evaluate(spread(14), hourly(10), NOW, RULES)
    assert signal.p_value < RULES.p_value
    assert signal.ratio < RULES.min_ratio
    assert not signal.triggered


def test_p_value_gate():
    strict = Detection(p_value=1e-6)
    signal = evaluate(spread(12), hourly(8), NOW, strict)  # 4 expected, 12 observed, p ~ 0.0009
    assert signal.ratio == pytest.approx(3.0)
    assert not signal.triggered
    assert evaluate(spread(12), hourly(8), NOW, RULES).triggered


def test_baseline_is_causal_buckets_in_the_windows_hour_do_not_feed_it():
    # Given the burst has already reached the hourly counters of 11:00 and 12:00
    polluted = [
        *hourly(4),
        CountBucket(brand="acme", source="hackernews", start=CUTOFF, mentions=1000),
        CountBucket(brand="acme", source="hackernews", start=CUTOFF + timedelta(hours=1), mentions=1000),
    ]
    clean = evaluate(spread(60), hourly(4), NOW, RULES)
    signal = evaluate(spread(60), polluted, NOW, RULES)
    # Then the baseline is the same as without them, and the spike still fires
    assert signal.expected == pytest.approx(clean.expected) == pytest.approx(2.0)
    assert signal.triggered


def test_history_older_than_the_baseline_days_is_ignored():
    old = hourly(500, hours=24, end=WINDOW_START - timedelta(days=RULES.baseline_days))
    signal = evaluate(spread(60), [*old, *hourly(4)], NOW, RULES)
    assert signal.expected == pytest.approx(2.0)


def test_baseline_rate_counts_only_the_hours_since_the_first_bucket():
    # Given history that started 24 hours ago at 4 an hour
    signal = evaluate([], hourly(4, hours=24), NOW, RULES)
    assert signal.expected == pytest.approx(2.0)


def test_severity_follows_the_ratio():
    # 4/h baseline -> 2 expected
    assert evaluate(spread(12), hourly(4), NOW, RULES).severity == "high"  # 6x
    assert evaluate(spread(20), hourly(4), NOW, RULES).severity == "critical"  # 10x
    assert evaluate(spread(12), hourly(2), NOW, RULES).severity == "critical"  # 12x
    assert evaluate(spread(24), hourly(10), NOW, RULES).severity == "warning"  # 4.8x


# ---------------------------------------------------------------- advance


def signal(observed: int, *, triggered: bool = True, expected: float = 2.0) -> Signal:
    ratio = observed / expected
    return Signal(
        triggered=triggered,
        observed=observed,
        expected=expected,
        p_value=1e-9 if triggered else 0.5,
        ratio=ratio,
        severity=severity_for(ratio),
        window_start=WINDOW_START,
        enough_history=True,
        by_source={"hackernews": observed},
    )


def open_incident(level: int = 20, severity: str = "critical") -> Incident:
    return Incident(
        brand="acme",
        scope="brand",
        rule=RULE_VOLUME,
        opened_at=WINDOW_START,
        status="open",
        severity=severity,
        observed=level,
        expected=2.0,
        peak=level,
        notified_level=level,
        last_seen_at=NOW,
    )


def test_nothing_happens_without_an_incident_or_a_trigger():
    assert advance(None, signal(3, triggered=False), BRAND, NOW, RULES) is None


def test_a_trigger_opens_an_incident_with_its_notification_pending():
    transition = advance(None, signal(30), BRAND, NOW, RULES)

    assert transition is not None
    assert transition.notify == "opened"
    incident = transition.incident
    assert incident.status == "open"
    assert incident.brand == "acme"
    assert incident.scope == "brand"
    assert incident.rule == RULE_VOLUME
    assert incident.opened_at == WINDOW_START
    assert incident.severity == "critical"
    assert (incident.observed, incident.peak, incident.notified_level) == (30, 30, 30)
    assert (incident.pending_kind, incident.pending_level) == ("opened", 30)
    assert incident.last_seen_at == NOW
    assert incident.key == "acme|brand|volume_spike|2024-05-13T11:40:00Z"


def test_a_growing_spike_below_the_escalate_factor_sends_nothing():
    incident = open_incident(level=20)
    later = NOW + timedelta(minutes=5)

    transition = advance(incident, signal(39), BRAND, later, RULES)

    assert transition is not None
    assert transition.notify is None
    assert incident.notified_level == 20
    assert incident.pending_kind is None
    assert (incident.observed, incident.peak) == (39, 39)
    assert incident.last_seen_at == later


def test_escalates_at_the_escalate_factor():
    incident = open_incident(level=20)

    transition = advance(incident, signal(40), BRAND, NOW, RULES)  # 2 x 20

    assert transition is not None
    assert transition.notify == "escalated"
    assert incident.notified_level == 40
    assert (incident.pending_kind, incident.pending_level) == ("escalated", 40)


def test_next_escalation_is_measured_from_the_last_notified_level():
    incident = open_incident(level=20)
    advance(incident, signal(40), BRAND, NOW, RULES)
    incident.pending_kind = None  # delivered
    assert advance(incident, signal(79), BRAND, NOW, RULES).notify is None
    assert advance(incident, signal(80), BRAND, NOW, RULES).notify == "escalated"


def test_a_severity_rise_escalates_below_the_factor():
    # Given an incident notified as a warning at 8 (4x)
    incident = open_incident(level=8, severity="warning")
    # When the next window sees 12 (6x: high), far below 2 x 8
    transition = advance(incident, signal(12), BRAND, NOW, RULES)
    # Then the rise in severity is news
    assert transition.notify == "escalated"
    assert incident.severity == "high"
    assert incident.notified_level == 12


def test_severity_never_drops_on_escalation():
    incident = open_incident(level=20, severity="critical")
    # 40 observed against a higher baseline is only "warning" (4x), but it doubled the level
    transition = advance(incident, signal(40, expected=10.0), BRAND, NOW, RULES)
    assert transition.notify == "escalated"
    assert incident.severity == "critical"


def test_quiet_runs_resolve_the_incident_with_an_all_clear_pending():
    rules = Detection(resolve_after_quiet_runs=3)
    incident = open_incident(level=20)
    incident.peak = 55
    end = NOW + timedelta(minutes=15)

    first = advance(incident, signal(4, triggered=False), BRAND, NOW + timedelta(minutes=5), rules)
    second = advance(incident, signal(3, triggered=False), BRAND, NOW + timedelta(minutes=10), rules)
    assert first.notify is None and second.notify is None
    assert incident.status == "open"
    assert incident.quiet_runs == 2

    third = advance(incident, signal(2, triggered=False), BRAND, end, rules)

    assert third.notify == "resolved"
    assert incident.status == "resolved"
    assert incident.resolved_at == end
    assert (incident.pending_kind, incident.pending_level) == ("resolved", 55)
    assert incident.observed == 2


def test_a_new_trigger_resets_the_quiet_count():
    rules = Detection(resolve_after_quiet_runs=3)
    incident = open_incident(level=20)
    advance(incident, signal(3, triggered=False), BRAND, NOW, rules)
    advance(incident, signal(3, triggered=False), BRAND, NOW, rules)
    advance(incident, signal(25), BRAND, NOW, rules)
    assert incident.quiet_runs == 0
    advance(incident, signal(3, triggered=False), BRAND, NOW, rules)
    advance(incident, signal(3, triggered=False), BRAND, NOW, rules)
    assert incident.status == "open"


def test_a_resolved_incident_with_a_pending_all_clear_is_left_alone():
    incident = open_incident(level=20)
    incident.status = "resolved"
    incident.resolved_at = NOW
    incident.pending_kind, incident.pending_level = "resolved", 20
    snapshot = (incident.status, incident.observed, incident.peak, incident.quiet_runs, incident.pending_kind)

    # neither a new burst nor a quiet window touches it: only its all-clear is still owed
    assert advance(incident, signal(100), BRAND, NOW + timedelta(minutes=5), RULES) is None
    assert advance(incident, signal(1, triggered=False), BRAND, NOW, RULES) is None
    assert (
        incident.status,
        incident.observed,
        incident.peak,
        incident.quiet_runs,
        incident.pending_kind,
    ) == snapshot
