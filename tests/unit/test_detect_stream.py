"""The seasonal baseline and the streaming detector (pure): daily rhythm, bursts, ramps, tails."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from emberwatch.baseline import (
    MAX_DISPERSION,
    SeasonalBaseline,
    binomial_tail,
    nbinom_tail,
    poisson_tail,
)
from emberwatch.config import Detection
from emberwatch.detect import BASELINE_FLOOR_PER_HOUR, StreamDetector, evaluate
from emberwatch.models import CountBucket

RULES = Detection()  # window 30 min, 7 days, min 12, ratio 3, p 0.001
MONDAY = datetime(2024, 5, 6, tzinfo=UTC)
FIVE = timedelta(minutes=5)

# relative activity per UTC hour: quiet nights, a morning ramp from 06 to 09, a busy afternoon
RHYTHM = (0.1, 0.1, 0.05, 0.05, 0.05, 0.1, 0.2, 0.45, 0.8, 1.0, 1.0, 1.0,
          1.1, 1.2, 1.3, 1.3, 1.2, 1.1, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2)  # fmt: skip


def poisson(lam: float, rng: random.Random) -> int:
    """A Poisson draw (Knuth; the rates here are small per 5 minutes)."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


def series(days: float, per_hour_at_peak: float, *, seed: int = 0, start: datetime = MONDAY, weekend=1.0):
    """5-minute counts with the daily rhythm: [(bucket start, count)]."""
    rng = random.Random(seed)
    out = []
    for i in range(int(days * 288)):
        moment = start + i * FIVE
        scale = weekend if moment.weekday() >= 5 else 1.0
        out.append((moment, poisson(per_hour_at_peak * RHYTHM[moment.hour] * scale / 12, rng)))
    return out


def feed(detector: StreamDetector, rows):
    return [(moment, detector.update(moment, value)) for moment, value in rows]


# ---------------------------------------------------------------- tails


@pytest.mark.parametrize("mean", [0.5, 3.0, 12.0, 80.0])
@pytest.mark.parametrize("k", [0, 1, 2, 5, 13, 40, 200])
def test_nbinom_tail_without_dispersion_is_the_poisson_tail(k, mean):
    assert nbinom_tail(k, mean, 0.0) == pytest.approx(poisson_tail(k, mean), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("mean", [0.5, 2.0, 9.0, 40.0])
@pytest.mark.parametrize("k", [1, 2, 5, 10, 30, 100])
def test_nbinom_tail_with_dispersion_one_is_geometric(k, mean):
    # r = 1: P(X >= k) = q^k with q = mean / (1 + mean)
    assert nbinom_tail(k, mean, 1.0) == pytest.approx((mean / (1 + mean)) ** k, rel=1e-9)


def direct_nbinom_tail(k: int, mean: float, dispersion: float) -> float:
    r = 1 / dispersion
    q = mean / (r + mean)
    below = math.fsum(
        math.exp(
            math.lgamma(x + r) - math.lgamma(r) - math.lgamma(x + 1) + r * math.log(1 - q) + x * math.log(q)
        )
        for x in range(k)
    )
    return 1 - below


@pytest.mark.parametrize(("k", "mean", "dispersion"), [(3, 2.0, 0.05), (12, 4.0, 0.1), (30, 25.0, 0.02)])
def test_nbinom_tail_matches_one_minus_the_cdf(k, mean, dispersion):
    assert nbinom_tail(k, mean, dispersion) == pytest.approx(
        direct_nbinom_tail(k, mean, dispersion), rel=1e-7
    )


def test_nbinom_tail_is_wider_than_poisson_and_monotone():
    assert nbinom_tail(12, 4.0, 0.1) > poisson_tail(12, 4.0)
    values = [nbinom_tail(k, 20.0, 0.05) for k in range(0, 120)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert values[0] == 1.0 and 0.0 <= values[-1] < 1e-12


def test_nbinom_tail_survives_large_means():
    # the pmf at 0 underflows here; the sums start next to k instead
    assert 0.4 < nbinom_tail(5000, 5000.0, 0.001) < 0.6
    assert nbinom_tail(3000, 5000.0, 0.001) == pytest.approx(1.0)
    assert nbinom_tail(9000, 5000.0, 0.001) < 1e-6


def test_binomial_tail_known_values():
    assert binomial_tail(1, 10, 0.1) == pytest.approx(1 - 0.9**10)
    assert binomial_tail(10, 10, 0.5) == pytest.approx(0.5**10)
    assert binomial_tail(0, 5, 0.3) == 1.0
    assert binomial_tail(6, 5, 0.3) == 0.0
    exact = math.fsum(math.comb(20, x) * 0.1**x * 0.9 ** (20 - x) for x in range(8, 21))
    assert binomial_tail(8, 20, 0.1) == pytest.approx(exact, rel=1e-9)
    exact_low = math.fsum(math.comb(30, x) * 0.4**x * 0.6 ** (30 - x) for x in range(9, 31))
    assert binomial_tail(9, 30, 0.4) == pytest.approx(exact_low, rel=1e-9)


# ---------------------------------------------------------------- the baseline


def test_expected_follows_the_hour_of_day():
    # Given a week of exact rhythm at 30 an hour at peak
    baseline = SeasonalBaseline(days=7)
    for day in range(7):
        for hour in range(24):
            baseline.add(MONDAY + timedelta(days=day, hours=hour), 30 * RHYTHM[hour])
    model = baseline.model(MONDAY + timedelta(days=7))
    # Then night and afternoon expectations differ as the rhythm does (smoothed over neighbours)
    night = model.rate(MONDAY + timedelta(days=7, hours=3))
    afternoon = model.rate(MONDAY + timedelta(days=7, hours=14))
    assert night == pytest.approx(30 * 0.05, rel=0.02)  # quiet hours around 03:00, smoothed
    assert model.rate(MONDAY + timedelta(days=7, hours=3), floor=False) == pytest.approx(night)
    assert afternoon == pytest.approx(30 * (0.25 * 1.2 + 0.5 * 1.3 + 0.25 * 1.3), rel=0.05)
    assert model.dispersion == 0.0  # exact counts are not noisy


def test_the_morning_ramp_is_expected():
    # Given a week and a night of exact rhythm, When Monday morning ramps up as every morning does
    baseline = SeasonalBaseline(days=7)
    for hour in range(7 * 24 + 8):
        moment = MONDAY + timedelta(hours=hour)
        baseline.add(moment, 40 * RHYTHM[moment.hour])
    model = baseline.model(MONDAY + timedelta(days=7, hours=8))
    nine = MONDAY + timedelta(days=7, hours=9)
    # Then the 09:00 expectation is near 09:00's usual level, not the day's mean
    assert model.level == pytest.approx(1.0, abs=0.1)  # smoothing over a ramp costs a little
    assert model.rate(nine) == pytest.approx(40 * RHYTHM[9], rel=0.1)
    assert model.rate(nine) > 1.4 * model.mean_rate


def test_a_noise_free_week_with_morning_ramps_never_alerts():
    # Given two weeks at exactly the usual level of each hour (5-minute rows, fractional counts)
    rows = [(MONDAY + i * FIVE, 60 * RHYTHM[(MONDAY + i * FIVE).hour] / 12) for i in range(14 * 288)]
    verdicts = feed(StreamDetector(RULES), rows)
    # Then nothing alerts from the second day on, mornings included (the first day has no profile yet)
    assert not [m for m, s in verdicts if m >= MONDAY + timedelta(days=1) and s.triggered]
    mornings = [s for m, s in verdicts if m >= MONDAY + timedelta(days=7) and 6 <= m.hour < 10]
    assert max(s.ratio for s in mornings) < 1.6


def test_more_recent_days_weigh_more():
    baseline = SeasonalBaseline(days=7)
    for day in range(7):
        count = 40 if day == 6 else 10  # yesterday was busier at every hour
        for hour in range(24):
            baseline.add(MONDAY + timedelta(days=day, hours=hour), count)
    model = baseline.model(MONDAY + timedelta(days=7))
    seasonal = model.seasonal_rate(MONDAY + timedelta(days=7, hours=12))
    flat_mean = (40 + 6 * 10) / 7
    assert seasonal > flat_mean


def test_one_outlying_day_is_capped():
    # Given six quiet days at 10 an hour and, three days ago, a fire of 500 an hour at noon
    baseline = SeasonalBaseline(days=7)
    for day in range(7):
        for hour in range(24):
            fire = day == 4 and hour == 12
            baseline.add(MONDAY + timedelta(days=day, hours=hour), 500 if fire else 10)
    model = baseline.model(MONDAY + timedelta(days=7))
    # Then noon's expectation moves a little, not by the fire's share of a mean
    assert model.seasonal_rate(MONDAY + timedelta(days=7, hours=12)) < 15


def test_weekends_are_profiled_apart_from_two_weeks_of_history():
    def built(days: int, cutoff: datetime):
        baseline = SeasonalBaseline(days=days)
        start = cutoff - timedelta(days=days)
        for hour in range(days * 24):
            moment = start + timedelta(hours=hour)
            baseline.add(moment, 4 if moment.weekday() >= 5 else 40)
        return baseline.model(cutoff)

    saturday = MONDAY + timedelta(days=5, hours=11)
    monday = MONDAY + timedelta(days=7, hours=11)
    # Given three weeks of busy weekdays and quiet weekends
    assert built(21, saturday).weekly
    # Then Saturday expects a weekend and Monday a weekday, though Sunday came just before
    assert built(21, saturday).seasonal_rate(saturday + timedelta(hours=1)) == pytest.approx(4)
    assert built(21, monday).seasonal_rate(monday + timedelta(hours=1)) == pytest.approx(40)
    # With one week every day counts: Saturday borrows from the weekdays before it
    one_week = built(7, saturday)
    assert not one_week.weekly
    assert one_week.seasonal_rate(saturday + timedelta(hours=1)) > 20


def test_the_trailing_level_lifts_a_busy_day():
    baseline = SeasonalBaseline(days=7)
    for day in range(7):
        for hour in range(24):
            baseline.add(MONDAY + timedelta(days=day, hours=hour), 10)
    cutoff = MONDAY + timedelta(days=7, hours=12)
    for hour in (9, 10, 11):  # this morning ran at twice the usual
        baseline.add(MONDAY + timedelta(days=7, hours=hour), 20)
    model = baseline.model(cutoff)
    assert model.level == pytest.approx((60 + 3) / (30 + 3))
    assert model.rate(cutoff) == pytest.approx(10 * (0.5 + 0.5 * model.level))


def test_the_model_only_uses_hours_before_its_cutoff():
    baseline = SeasonalBaseline(days=7)
    for hour in range(48):
        baseline.add(MONDAY + timedelta(hours=hour), 5)
    cutoff = MONDAY + timedelta(hours=30)
    before = baseline.model(cutoff)
    baseline.add(cutoff, 10_000)  # the window's own hour
    baseline.add(cutoff + timedelta(hours=3), 10_000)
    after = baseline.model(cutoff)
    assert after.counts == before.counts
    assert after.rate(cutoff) == before.rate(cutoff)


def test_dispersion_is_zero_for_poisson_history_and_positive_for_a_bursty_one():
    rng = random.Random(7)
    calm, bursty = SeasonalBaseline(days=7), SeasonalBaseline(days=7)
    for hour in range(7 * 24):
        moment = MONDAY + timedelta(hours=hour)
        calm.add(moment, poisson(30, rng))
        # a gamma-mixed Poisson: the hour's rate itself varies (Var = mean + 0.05 mean^2)
        bursty.add(moment, poisson(rng.gammavariate(20, 30 / 20), rng))
    cutoff = MONDAY + timedelta(days=7)
    assert calm.model(cutoff).dispersion < 0.01
    assert 0.02 < bursty.model(cutoff).dispersion <= MAX_DISPERSION


# ---------------------------------------------------------------- the streaming detector


def alerting_episodes(verdicts, since: datetime) -> int:
    episodes, before = 0, False
    for moment, signal in verdicts:
        if moment >= since:
            episodes += signal.triggered and not before
            before = signal.triggered
    return episodes


@pytest.mark.parametrize("peak", [6, 40, 400])
def test_normal_weeks_with_a_daily_rhythm_rarely_alert(peak):
    # Given ten different fortnights of Poisson traffic with quiet nights and morning ramps
    episodes = sum(
        alerting_episodes(
            feed(StreamDetector(RULES), series(14, peak, seed=seed)), MONDAY + timedelta(days=7)
        )
        for seed in range(10)
    )
    # Then over the ten second weeks (the first builds the baseline) chance alerts are rare: with
    # p = 0.001 over about 2,000 windows a week, pure chance may still pass the bar now and then
    assert episodes <= 2


def test_a_real_burst_alerts_within_the_first_window():
    rows = series(7, 20, seed=3)
    start = MONDAY + timedelta(days=7, hours=14, minutes=2)
    detector = StreamDetector(RULES)
    feed(detector, rows)
    # When 40 posts arrive in the first five minutes of a burst
    burst = [(start + timedelta(seconds=7 * i), 1) for i in range(40)]
    verdicts = feed(detector, burst)
    fired_at = next(m for m, s in verdicts if s.triggered)
    # Then the rule fires inside the burst's first five minutes
    assert fired_at - start < timedelta(minutes=5)
    assert not [s for m, s in verdicts if m < fired_at and s.triggered]
    assert verdicts[-1][1].score == pytest.approx(1.0)


def test_a_night_burst_a_flat_baseline_would_miss_is_caught():
    # Given busy days (about 17 an hour over the day) and near-silent nights
    detector = StreamDetector(RULES)
    feed(detector, series(7, 40, seed=4))
    flat_expected = sum(40 * r for r in RHYTHM) / 24 / 2  # the old weekly mean, per 30 minutes
    # When 15 posts arrive at 03:00
    night = MONDAY + timedelta(days=7, hours=3, minutes=1)
    verdicts = feed(detector, [(night + timedelta(minutes=i), 1) for i in range(15)])
    # Then a flat weekly mean would have seen less than 3x; the seasonal baseline sees a fire
    assert 15 / flat_expected < RULES.min_ratio
    assert verdicts[-1][1].triggered


def test_one_post_after_a_quiet_night_does_not_alert():
    # Given a brand mentioned a few times a day, never at night
    detector = StreamDetector(RULES)
    rows = [
        (MONDAY + timedelta(days=d, hours=h), 1 if h in (10, 15, 18) else 0)
        for d in range(7)
        for h in range(24)
    ]
    feed(detector, rows)
    # When one post arrives at 04:10
    ((_, verdict),) = feed(detector, [(MONDAY + timedelta(days=7, hours=4, minutes=10), 1)])
    assert not verdict.triggered
    assert verdict.expected == pytest.approx(BASELINE_FLOOR_PER_HOUR * 0.5)
    assert verdict.p_value > 0.1


def test_slow_growth_is_followed_not_alerted():
    # Given a brand whose volume grows 15% a day for three weeks (a successful launch)
    rng = random.Random(5)
    rows = []
    for i in range(21 * 288):
        moment = MONDAY + i * FIVE
        growth = 1.15 ** (i / 288)
        rows.append((moment, poisson(20 * growth * RHYTHM[moment.hour] / 12, rng)))
    verdicts = feed(StreamDetector(RULES), rows)
    # Then the baseline keeps up: no alert, even as volume ends up 18 times the first day's
    # (the first day has no hour-of-day profile yet: a deployment backfills 24 hours for that)
    assert not [m for m, s in verdicts if m >= MONDAY + timedelta(days=1) and s.triggered]


def test_a_building_fire_alerts_before_its_peak():
    # Given a normal week, When mentions double every hour from Monday 13:00 for six hours
    rng = random.Random(6)
    detector = StreamDetector(RULES)
    feed(detector, series(7, 20, seed=6))
    start = MONDAY + timedelta(days=7, hours=13)
    rows = []
    for i in range(6 * 12):
        moment = start + i * FIVE
        rows.append((moment, poisson(20 * RHYTHM[moment.hour] * 2 ** (i / 12) / 12, rng)))
    verdicts = feed(detector, rows)
    fired = [m for m, s in verdicts if s.triggered]
    # Then it alerts while the fire is building, hours before it peaks at 64x
    assert fired
    assert fired[0] - start < timedelta(hours=4)


def test_stream_and_stored_counts_give_the_same_verdict():
    # Given the same traffic fed row by row, and stored as hourly and 5-minute counters
    rows = series(5, 30, seed=8)
    rows[0] = (rows[0][0], 2)  # stored counters start at the first mention; the stream at the first row
    detector = StreamDetector(RULES)
    streamed = feed(detector, rows)
    now, verdict = streamed[-1]
    hourly: dict[datetime, int] = {}
    for moment, count in rows:
        hour = moment.replace(minute=0)
        hourly[hour] = hourly.get(hour, 0) + count
    history = [CountBucket("acme", "hackernews", h, n) for h, n in hourly.items() if n]
    recent = [CountBucket("acme", "hackernews", m, n) for m, n in rows if n and m > now - timedelta(hours=1)]
    stored = evaluate(recent, history, now, RULES)
    # Then the verdicts agree
    assert stored.observed == verdict.observed
    assert stored.expected == pytest.approx(verdict.expected, rel=1e-12)
    assert stored.p_value == pytest.approx(verdict.p_value, rel=1e-9)
    assert stored.dispersion == pytest.approx(verdict.dispersion)


def test_stream_rejects_rows_out_of_order_and_negative_counts():
    detector = StreamDetector(RULES)
    detector.update(MONDAY + timedelta(hours=1), 3)
    with pytest.raises(ValueError, match="out of order"):
        detector.update(MONDAY, 1)
    with pytest.raises(ValueError, match="not a count"):
        detector.update(MONDAY + timedelta(hours=2), -1)


def test_stream_memory_stays_bounded():
    detector = StreamDetector(RULES)
    feed(detector, series(20, 10, seed=9))
    assert len(detector.baseline.hours) <= (RULES.baseline_days + 2) * 24
    assert len(detector.buckets) <= RULES.window_minutes // 5
