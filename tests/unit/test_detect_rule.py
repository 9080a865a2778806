"""The detection rules (pure): the Poisson tail, `evaluate` (volume, per brand and per source),
`evaluate_negative`, `evaluate_blind_spot`, severities, and the incident lifecycle `advance`."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from emberwatch.config import Brand, Detection
from emberwatch.detect import (
    BASELINE_FLOOR_PER_HOUR,
    BLIND_FAILED_RUNS,
    MIN_HISTORY_HOURS,
    RULE_BLIND_SPOT,
    RULE_NEGATIVE,
    RULE_VOLUME,
    BrandBaseline,
    Signal,
    advance,
    evaluate,
    evaluate_blind_spot,
    evaluate_negative,
    min_negative,
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
    later = NOW + timedelta(minutes=RULES.cooldown_minutes)  # growth at the same severity waits for it
    assert advance(incident, signal(79), BRAND, later, RULES).notify is None
    assert advance(incident, signal(80), BRAND, later, RULES).notify == "escalated"


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


# ---------------------------------------------------------------- rule and scope of an incident


def test_the_incident_takes_its_rule_and_scope_from_the_signal():
    signal = Signal(
        triggered=True,
        observed=15,
        expected=1.0,
        p_value=1e-9,
        ratio=15.0,
        severity="critical",
        window_start=WINDOW_START,
        enough_history=True,
        rule=RULE_VOLUME,
        scope="source:reddit",
    )
    transition = advance(None, signal, BRAND, NOW, RULES)
    assert (transition.incident.scope, transition.incident.rule) == ("source:reddit", RULE_VOLUME)
    assert transition.incident.key == "acme|source:reddit|volume_spike|2024-05-13T11:40:00Z"


# ---------------------------------------------------------------- covered incidents (notifications kept sane)


def test_a_covered_incident_opens_without_a_notification():
    transition = advance(None, signal(30), BRAND, NOW, RULES, covered=True)
    assert transition.notify is None
    incident = transition.incident
    assert incident.status == "open"
    assert incident.notified_level == 0  # never announced
    assert incident.pending_kind is None


def test_a_covered_incident_does_not_escalate():
    incident = open_incident(level=20)
    transition = advance(incident, signal(100), BRAND, NOW, RULES, covered=True)
    assert transition.notify is None
    assert incident.peak == 100 and incident.pending_kind is None
    assert incident.notified_level == 20


def test_a_held_back_incident_is_announced_once_no_longer_covered():
    incident = advance(None, signal(30), BRAND, NOW, RULES, covered=True).incident
    assert advance(incident, signal(32), BRAND, NOW, RULES, covered=True).notify is None
    # the covering incident is over and this one still fires
    transition = advance(incident, signal(31), BRAND, NOW + timedelta(minutes=10), RULES, covered=False)
    assert transition.notify == "opened"
    assert (incident.pending_kind, incident.pending_level, incident.notified_level) == ("opened", 31, 31)


def test_an_incident_never_announced_resolves_without_an_all_clear():
    rules = Detection(resolve_after_quiet_runs=2)
    incident = advance(None, signal(30), BRAND, NOW, rules, covered=True).incident
    advance(incident, signal(2, triggered=False), BRAND, NOW, rules)
    transition = advance(incident, signal(2, triggered=False), BRAND, NOW, rules)
    assert incident.status == "resolved"
    assert transition.notify is None and incident.pending_kind is None


def test_an_announced_incident_resolving_while_covered_leaves_the_all_clear_to_the_cover():
    rules = Detection(resolve_after_quiet_runs=1)
    incident = open_incident(level=20)
    transition = advance(incident, signal(2, triggered=False), BRAND, NOW, rules, covered=True)
    assert incident.status == "resolved"
    assert transition.notify is None


# ---------------------------------------------------------------- volume per source


def test_volume_per_source_uses_that_sources_baseline():
    # Given Hacker News at 40 an hour and Reddit at 2 an hour
    history = [*hourly(40), *hourly(2, source="reddit")]
    # When Reddit has 15 in the window and Hacker News its usual 20
    window = [*spread(20), *spread(15, source="reddit")]
    brand = evaluate(window, history, NOW, RULES)
    reddit = evaluate(window, history, NOW, RULES, source="reddit")
    hn = evaluate(window, history, NOW, RULES, source="hackernews")
    # Then the brand as a whole is calm, but Reddit alone is on fire
    assert not brand.triggered
    assert reddit.triggered and reddit.scope == "source:reddit"
    assert reddit.expected == pytest.approx(1.0)
    assert reddit.by_source == {"reddit": 15}
    assert not hn.triggered and hn.scope == "source:hackernews"


def test_a_source_never_seen_has_no_baseline_to_alert_on():
    signal = evaluate(spread(50, source="youtube"), hourly(4), NOW, RULES, source="youtube")
    assert not signal.enough_history and not signal.triggered


def test_a_prebuilt_baseline_gives_the_same_verdict():
    history = [*hourly(4), *hourly(1, source="feed")]
    baseline = BrandBaseline.build(history, CUTOFF, RULES)
    assert evaluate(spread(60), [], NOW, RULES, baseline=baseline) == evaluate(
        spread(60), history, NOW, RULES
    )


# ---------------------------------------------------------------- negative tone


def rated_hourly(per_hour: int, negative: int, *, hours: int = 7 * 24, source: str = "hackernews"):
    return [
        CountBucket(
            brand="acme",
            source=source,
            start=CUTOFF - timedelta(hours=h),
            mentions=per_hour,
            negative=negative,
            rated=per_hour,
        )
        for h in range(1, hours + 1)
    ]


def rated_window(mentions: int, negative: int, *, source: str = "hackernews"):
    """`mentions` (all rated, `negative` of them negative) over the window's six buckets."""
    out = []
    for i in range(6):
        m = mentions // 6 + (1 if i < mentions % 6 else 0)
        n = negative // 6 + (1 if i < negative % 6 else 0)
        out.append(
            CountBucket("acme", source, WINDOW_START + timedelta(minutes=5 * i), m, negative=n, rated=m)
        )
    return out


def test_negative_spike_while_volume_is_normal():
    # Given 40 mentions an hour, 4 of them negative (10%)
    history = rated_hourly(40, 4)
    # When the window has its usual 20 mentions, but 9 of them negative
    window = rated_window(20, 9)
    volume = evaluate(window, history, NOW, RULES)
    negative = evaluate_negative(window, history, NOW, RULES)
    # Then the volume rule is calm and the tone rule fires on the share
    assert not volume.triggered
    assert negative.triggered
    assert negative.rule == RULE_NEGATIVE and negative.scope == "brand"
    assert negative.observed == 9
    assert negative.expected == pytest.approx(20 * (4 * 168 + 2) / (40 * 168 + 10))
    assert negative.p_value < RULES.p_value
    assert "9 of 20" in negative.reason


def test_the_usual_share_of_negative_mentions_does_not_fire():
    history = rated_hourly(40, 4)
    signal = evaluate_negative(rated_window(20, 3), history, NOW, RULES)
    assert not signal.triggered


def test_the_share_rule_needs_a_minimum_negative_count():
    # Given a quiet brand, 4 an hour, 10% negative: 2 in the window, both negative
    history = rated_hourly(4, 0)
    signal = evaluate_negative(rated_window(4, min_negative(RULES) - 1), history, NOW, RULES)
    assert not signal.triggered
    assert min_negative(RULES) == 6


def test_the_tone_rules_need_a_rated_history():
    # a history without sentiment (before tone enrichment) has no usual tone to compare with
    history = hourly(40)
    signal = evaluate_negative(rated_window(20, 15), history, NOW, RULES)
    assert not signal.triggered
    assert not signal.enough_history
    # nor does one where most mentions were not rated
    half = [*rated_hourly(40, 0, hours=24), *hourly(40, end=CUTOFF - timedelta(hours=24), hours=144)]
    assert not evaluate_negative(rated_window(20, 15), half, NOW, RULES).triggered


def test_negative_count_rule_fires_on_its_own_baseline():
    # Given 2 negative an hour out of 40, When 30 negatives arrive among 200 mentions (share 15%)
    history = rated_hourly(40, 2)
    window = rated_window(200, 30)
    signal = evaluate_negative(window, history, NOW, RULES)
    # Then it fires on the count (30 against 1 expected), whatever the share says
    assert signal.triggered
    assert signal.expected == pytest.approx(1.0)
    assert signal.severity == "critical"


# ---------------------------------------------------------------- blind spot


def run_item(*, failures=0, last_run=None, last_success=None, fetched=5, error=None, last_error=None):
    item = {"failures": failures, "last_stats": json.dumps({"fetched": fetched, "stored": 0})}
    if last_error:
        item["last_error_at"] = last_error.strftime("%Y-%m-%dT%H:%M:%SZ")
    if last_run:
        item["last_run_at"] = last_run.strftime("%Y-%m-%dT%H:%M:%SZ")
    if last_success:
        item["last_success_at"] = last_success.strftime("%Y-%m-%dT%H:%M:%SZ")
    if error:
        item["last_error"] = error
    return item


REDDIT_HISTORY = [*hourly(20), *hourly(6, source="reddit")]


def test_consecutive_failures_of_a_source_that_yields_are_a_blind_spot():
    run = run_item(
        failures=BLIND_FAILED_RUNS,
        last_run=NOW,
        last_success=NOW - timedelta(minutes=16),
        error="reddit: HTTP 503",
    )
    signal = evaluate_blind_spot("reddit", run, spread(10), REDDIT_HISTORY, NOW, RULES)
    assert signal.triggered
    assert (signal.rule, signal.scope) == (RULE_BLIND_SPOT, "source:reddit")
    assert "3 failed runs in a row" in signal.reason and "HTTP 503" in signal.reason
    assert not signal.recovered


def test_a_single_failure_is_not_yet_a_blind_spot():
    run = run_item(failures=1, last_run=NOW, last_success=NOW - timedelta(minutes=6))
    assert not evaluate_blind_spot("reddit", run, [], REDDIT_HISTORY, NOW, RULES).triggered


def test_no_success_for_thirty_minutes_is_a_blind_spot():
    # a source on a 15-minute schedule: two failures, the last success 35 minutes ago
    run = run_item(failures=2, last_run=NOW, last_success=NOW - timedelta(minutes=35))
    signal = evaluate_blind_spot("reddit", run, [], REDDIT_HISTORY, NOW, RULES)
    assert signal.triggered and "no successful run for 35 min" in signal.reason


def test_a_source_that_stopped_running_is_a_blind_spot():
    run = run_item(last_run=NOW - timedelta(hours=4), last_success=NOW - timedelta(hours=4))
    signal = evaluate_blind_spot("reddit", run, [], REDDIT_HISTORY, NOW, RULES)
    assert signal.triggered and "no run for 4 h" in signal.reason


def test_an_hourly_source_between_runs_is_not_blind():
    run = run_item(last_run=NOW - timedelta(minutes=55), last_success=NOW - timedelta(minutes=55))
    earlier = recent(2, source="reddit", start=WINDOW_START - timedelta(minutes=30))
    assert not evaluate_blind_spot("reddit", run, earlier, REDDIT_HISTORY, NOW, RULES).triggered


def test_fetching_nothing_for_unusually_long_is_a_blind_spot():
    # Given Reddit usually brings 6 an hour, When its runs succeed but fetch nothing for 2 hours
    history = [
        b for b in REDDIT_HISTORY if not (b.source == "reddit" and b.start >= CUTOFF - timedelta(hours=1))
    ]
    run = run_item(last_run=NOW, last_success=NOW, fetched=0)
    signal = evaluate_blind_spot("reddit", run, [], history, NOW, RULES)
    # Then silence that long is improbable (about 12 expected): a blind spot
    assert signal.triggered
    assert signal.p_value < RULES.p_value
    assert "nothing fetched" in signal.reason


def test_a_short_silence_is_not_a_blind_spot():
    run = run_item(last_run=NOW, last_success=NOW, fetched=0)
    recent_reddit = recent(1, source="reddit", start=NOW - timedelta(minutes=30))
    assert not evaluate_blind_spot("reddit", run, recent_reddit, REDDIT_HISTORY, NOW, RULES).triggered


def test_a_source_that_never_yields_is_not_a_blind_spot_whatever_its_errors():
    run = run_item(failures=10, last_run=NOW, last_success=None, error="youtube: quota exceeded")
    assert not evaluate_blind_spot("youtube", run, [], REDDIT_HISTORY, NOW, RULES).triggered


def test_a_disabled_source_is_not_a_blind_spot_and_counts_as_recovered():
    run = run_item(failures=5, last_run=NOW)
    signal = evaluate_blind_spot("reddit", run, [], REDDIT_HISTORY, NOW, RULES, enabled=False)
    assert not signal.triggered and signal.recovered


def test_a_blind_spot_stays_open_until_the_source_yields_again():
    rules = Detection(resolve_after_quiet_runs=6)
    failing = run_item(failures=3, last_run=NOW, last_success=NOW - timedelta(minutes=20))
    opened = advance(
        None, evaluate_blind_spot("reddit", failing, [], REDDIT_HISTORY, NOW, RULES), BRAND, NOW, rules
    )
    assert opened.notify == "opened"
    incident = opened.incident
    incident.pending_kind = None  # delivered
    # a success that fetched nothing is not yet "yielding": the incident waits
    empty = run_item(last_run=NOW, last_success=NOW, fetched=0)
    waiting = evaluate_blind_spot("reddit", empty, [], REDDIT_HISTORY, NOW, RULES)
    assert not waiting.triggered and not waiting.recovered
    assert advance(incident, waiting, BRAND, NOW, rules).notify is None
    assert incident.status == "open" and incident.quiet_runs == 0
    # the first run that brings something back resolves it, without waiting six quiet runs
    back = evaluate_blind_spot(
        "reddit", run_item(last_run=NOW, last_success=NOW, fetched=7), [], REDDIT_HISTORY, NOW, RULES
    )
    transition = advance(incident, back, BRAND, NOW, rules)
    assert transition.notify == "resolved" and incident.status == "resolved"


def test_only_mentions_stored_since_the_last_error_count_as_yielding_again():
    # Given the last failed run at 12:00 and a success at 12:07 that fetched nothing new
    run = run_item(last_run=NOW, last_success=NOW, fetched=0, last_error=NOW - timedelta(minutes=7))
    before = recent(3, source="reddit", start=NOW - timedelta(minutes=20))
    after = recent(2, source="reddit", start=NOW - timedelta(minutes=2))
    # Then mentions from before the error do not end the blind spot, mentions after it do
    assert not evaluate_blind_spot("reddit", run, before, REDDIT_HISTORY, NOW, RULES).recovered
    assert evaluate_blind_spot("reddit", run, [*before, *after], REDDIT_HISTORY, NOW, RULES).recovered


def test_a_blind_spot_does_not_escalate():
    run = run_item(failures=3, last_run=NOW, last_success=NOW - timedelta(minutes=20))
    signal = evaluate_blind_spot("reddit", run, [], REDDIT_HISTORY, NOW, RULES)
    incident = advance(None, signal, BRAND, NOW, RULES).incident
    incident.pending_kind = None
    worse = evaluate_blind_spot("reddit", {**run, "failures": 30}, [], REDDIT_HISTORY, NOW, RULES)
    assert advance(incident, worse, BRAND, NOW, RULES).notify is None


# ---------------------------------------------------------------- viral post (a hook)
