"""The viral-post rule over engagement readings, and the notification cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emberwatch.config import Brand, Detection
from emberwatch.detect import RULE_VIRAL, EngagementReading, Signal, advance, evaluate_viral

BRAND = Brand(id="acme", name="Acme Widgets", queries=("acme",))
RULES = Detection(viral_window_minutes=60, viral_min_growth=50, viral_growth_factor=2.0, cooldown_minutes=30)
NOW = datetime(2024, 5, 13, 12, 7, tzinfo=UTC)


def reading(minutes_ago: int, reposts: int, replies: int, post: str = "x:1") -> EngagementReading:
    return EngagementReading(post, post.split(":")[0], NOW - timedelta(minutes=minutes_ago), reposts, replies)


def test_a_post_whose_reposts_and_replies_grow_fast_is_viral():
    (signal,) = evaluate_viral([reading(90, 10, 5), reading(30, 40, 20), reading(0, 90, 40)], NOW, RULES)
    # against the last reading before the window (90 min ago: 15), not the first ever
    assert signal.triggered and signal.observed == 115 and signal.expected == 15
    assert signal.rule == RULE_VIRAL and signal.scope == "post:x:1" and signal.by_source == {"x": 115}
    assert signal.severity == "warning"  # 115 / 50 = 2.3 times the minimum growth


def test_growth_below_the_minimum_or_the_factor_is_not_viral():
    slow = [reading(90, 10, 5), reading(0, 40, 20)]  # +45 < 50
    big_already = [reading(90, 400, 100), reading(0, 480, 100)]  # +80, but 580 < 2 x 500
    assert not any(s.triggered for s in evaluate_viral(slow, NOW, RULES))
    assert not any(s.triggered for s in evaluate_viral(big_already, NOW, RULES))


def test_a_post_first_seen_big_is_not_growth_and_one_reading_is_not_enough():
    (first,) = evaluate_viral([reading(0, 900, 300)], NOW, RULES)
    assert not first.triggered and first.observed == 0 and not first.enough_history


def test_each_post_gets_its_own_verdict_and_future_readings_are_ignored():
    signals = evaluate_viral(
        [
            reading(70, 0, 0, "a:1"),
            reading(0, 300, 10, "a:1"),
            reading(5, 1, 1, "b:2"),
            reading(-5, 999, 0, "b:2"),
        ],
        NOW,
        RULES,
    )
    verdicts = {s.scope: s.triggered for s in signals}
    assert verdicts == {"post:a:1": True, "post:b:2": False}
    assert next(s for s in signals if s.scope == "post:a:1").severity == "high"  # 310 / 50 >= 5


def volume(observed: int, severity: str) -> Signal:
    return Signal(
        triggered=True,
        observed=observed,
        expected=5.0,
        p_value=1e-9,
        ratio=observed / 5,
        severity=severity,
        window_start=NOW - timedelta(minutes=25),
        enough_history=True,
    )


def test_growth_at_the_same_severity_waits_for_the_cooldown_a_rise_in_severity_does_not():
    opened = advance(None, volume(30, "high"), BRAND, NOW, RULES)
    incident = opened.incident
    assert opened.notify == "opened" and incident.notified_at == NOW
    incident.pending_kind = None
    # doubled five minutes later, same severity: held back (no notification, level not moved)
    held = advance(incident, volume(60, "high"), BRAND, NOW + timedelta(minutes=5), RULES)
    assert held.notify is None and incident.notified_level == 30
    # critical ten minutes later: a severity escalation goes out at once
    rises = advance(incident, volume(70, "critical"), BRAND, NOW + timedelta(minutes=10), RULES)
    assert rises.notify == "escalated" and incident.notified_at == NOW + timedelta(minutes=10)
    incident.pending_kind = None
    # doubled again at critical: only once the cooldown since the last notification has passed
    assert (
        advance(incident, volume(150, "critical"), BRAND, NOW + timedelta(minutes=39), RULES).notify is None
    )
    late = advance(incident, volume(150, "critical"), BRAND, NOW + timedelta(minutes=40), RULES)
    assert late.notify == "escalated"


def test_the_all_clear_is_never_held_by_the_cooldown():
    rules = Detection(cooldown_minutes=600, resolve_after_quiet_runs=1)
    incident = advance(None, volume(30, "high"), BRAND, NOW, rules).incident
    incident.pending_kind = None
    quiet = Signal(
        triggered=False,
        observed=1,
        expected=5.0,
        p_value=0.5,
        ratio=0.2,
        severity="warning",
        window_start=NOW,
        enough_history=True,
    )
    assert advance(incident, quiet, BRAND, NOW + timedelta(minutes=5), rules).notify == "resolved"
