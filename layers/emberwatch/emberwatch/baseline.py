"""What a count usually is: a seasonal, causal baseline for hourly counts, and the tails that judge them.

`SeasonalBaseline` accumulates hourly totals of one series (all mentions of a brand, its negative
mentions, one source's mentions). It is fed either from stored hourly counters (the Lambda) or one
observation at a time (the `emberwatch detect` command): the same object, the same numbers.
`model(cutoff)` freezes what is known strictly before `cutoff` into a `BaselineModel`, which says how
many events to expect in any later stretch of time:

- the seasonal rate of an hour is a weighted mean of the same hour of day on previous days (the most
  recent day weighs most; from two weeks of history on, weekdays and weekends are profiled apart),
  smoothed over the neighbouring hours, with one outlying day (yesterday's fire) capped;
- the trailing level compares the last hours with what the profile expected of them, and half of the
  expectation follows it (a busy news day lifts the baseline; a slow build-up is tracked);
- the result never drops below a floor, so one post after a quiet night is not a fire.

Counts are treated as counts: the dispersion of hourly counts around the profile (method of moments)
gives a negative-binomial tail, which is the Poisson tail when the history is no noisier than Poisson.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RECENCY_DECAY = 0.8  # weight of the same hour k+1 days back, relative to k days back
HOUR_KERNEL = ((-1, 0.25), (0, 0.5), (1, 0.25))  # the hour itself and its neighbours
OUTLIER_CAP = (3.0, 3.0)  # a past hour counts at most 3 x the median of its samples + 3
TRAILING_HOURS = (3, 24)  # the trailing level looks back 3 hours, longer until it expects enough
TRAILING_EVENTS = 30.0  # events it should expect before it stops looking back (quiet nights)
LEVEL_PRIOR = 3.0  # pseudo-events: at low counts the trailing level stays near 1
LEVEL_CLAMP = (0.5, 3.0)
SEASONAL_WEIGHT = 0.5  # the rest of the expectation follows the trailing level
WEEKLY_PROFILE_DAYS = 14  # from this much history on, weekdays and weekends are profiled apart
MAX_DISPERSION = 0.1  # Var = mean + dispersion x mean^2; more would blunt the rule at high volume
MIN_DISPERSION_SAMPLES = 24


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _weekend(moment: datetime) -> bool:
    return moment.weekday() >= 5


def _median(values: Iterable[float]) -> float:
    """The median (statistics.median, without importing statistics on a cold start)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# ---------------------------------------------------------------- tails


def poisson_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if k <= lam:
        # below the mean the tail is large; 1 - CDF is accurate enough there
        cdf = sum(math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1)) for i in range(k))
        return max(0.0, min(1.0, 1.0 - cdf))
    total = 0.0
    i = k
    while True:
        term = math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1))
        total += term
        if term < total * 1e-12 or i > k + 10_000:
            return min(1.0, total)
        i += 1


def _sum_from(log_first: float, ratio_up, start: int, *, upward: bool, stop: int | None = None) -> float:
    """Sum a pmf from `start` outwards (up or down), term by term through the ratio of neighbours."""
    term = math.exp(log_first)
    total = term
    x = start
    for _ in range(200_000):
        if upward:
            if stop is not None and x >= stop:
                break
            term *= ratio_up(x)
            x += 1
        else:
            if x <= 0:
                break
            term /= ratio_up(x - 1)
            x -= 1
        total += term
        if term <= total * 1e-13:
            break
    return total


def nbinom_tail(k: int, mean: float, dispersion: float) -> float:
    """P(X >= k) for a negative binomial with this mean and Var = mean + dispersion x mean^2.

    With no over-dispersion (dispersion ~ 0) this is the Poisson tail.
    """
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if dispersion <= 1e-9:
        return poisson_tail(k, mean)
    r = 1.0 / dispersion
    q = mean / (r + mean)  # the "failure" probability of the usual parameterisation

    def log_pmf(x: int) -> float:
        return math.lgamma(x + r) - math.lgamma(r) - math.lgamma(x + 1) + r * math.log1p(-q) + x * math.log(q)

    def ratio(x: int) -> float:  # pmf(x + 1) / pmf(x)
        return (x + r) / (x + 1) * q

    if k > mean:
        return max(0.0, min(1.0, _sum_from(log_pmf(k), ratio, k, upward=True)))
    below = _sum_from(log_pmf(k - 1), ratio, k - 1, upward=False)
    return max(0.0, min(1.0, 1.0 - below))


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0

    def log_pmf(x: int) -> float:
        return (
            math.lgamma(n + 1)
            - math.lgamma(x + 1)
            - math.lgamma(n - x + 1)
            + x * math.log(p)
            + (n - x) * math.log1p(-p)
        )

    def ratio(x: int) -> float:  # pmf(x + 1) / pmf(x)
        return (n - x) / (x + 1) * p / (1 - p)

    if k > n * p:
        return max(0.0, min(1.0, _sum_from(log_pmf(k), ratio, k, upward=True, stop=n)))
    below = _sum_from(log_pmf(k - 1), ratio, k - 1, upward=False)
    return max(0.0, min(1.0, 1.0 - below))


# ---------------------------------------------------------------- the baseline


@dataclass
class SeasonalBaseline:
    """Hourly totals of one series, fed from stored counters or one observation at a time."""

    days: int
    floor_per_hour: float = 0.5
    hours: dict[datetime, float] = field(default_factory=dict)
    since: datetime | None = None  # the first hour the series was observed (counted from here)

    @classmethod
    def from_counts(
        cls, counts: Iterable[tuple[datetime, float]], *, days: int, floor_per_hour: float = 0.5
    ) -> SeasonalBaseline:
        """A baseline from (bucket start, count) pairs, e.g. stored hourly counters."""
        baseline = cls(days=days, floor_per_hour=floor_per_hour)
        for start, count in counts:
            baseline.add(start, count)
        return baseline

    def add(self, moment: datetime, count: float) -> None:
        """Count `count` events at `moment` (a zero still says the series was being watched)."""
        hour = floor_hour(moment)
        if self.since is None or hour < self.since:
            self.since = hour
        if count:
            self.hours[hour] = self.hours.get(hour, 0.0) + count

    def forget_before(self, moment: datetime) -> None:
        """Drop hours older than `moment`: a stream keeps only what its baseline can still use."""
        for hour in [h for h in self.hours if h < moment]:
            del self.hours[hour]

    def model(self, cutoff: datetime) -> BaselineModel:
        """What is known strictly before `cutoff` (an hour), over at most `days` days: causal."""
        cutoff = floor_hour(cutoff)
        start = cutoff - timedelta(days=self.days)
        since = max(self.since, start) if self.since is not None else cutoff
        known = {h: c for h, c in self.hours.items() if since <= h < cutoff}
        return BaselineModel(
            cutoff=cutoff, since=min(since, cutoff), days=self.days, counts=known, floor=self.floor_per_hour
        )


class BaselineModel:
    """The frozen baseline of one series at one cutoff: expected counts for any later stretch."""

    def __init__(
        self, *, cutoff: datetime, since: datetime, days: int, counts: dict[datetime, float], floor: float
    ) -> None:
        self.cutoff = cutoff
        self.since = since
        self.days = days
        self.counts = counts
        self.floor = floor
        self.history_hours = (cutoff - since) / HOUR
        self.total = sum(counts.values())
        self.mean_rate = self.total / self.history_hours if self.history_hours > 0 else 0.0
        self.weekly = self.history_hours >= WEEKLY_PROFILE_DAYS * 24
        self._seasonal: dict[datetime, float] = {}
        self.level = self._trailing_level()
        self.dispersion = self._dispersion()

    def covered(self, hour: datetime) -> bool:
        return self.since <= hour < self.cutoff

    def seasonal_rate(self, hour: datetime) -> float:
        """Events per hour usually seen at this hour of the day (and type of day), from earlier days."""
        hour = floor_hour(hour)
        if hour in self._seasonal:
            return self._seasonal[hour]
        samples: list[tuple[float, float]] = []
        rank = 0
        for k in range(1, self.days + 1):
            day = hour - k * DAY
            if day + HOUR < self.since:
                break
            if self.weekly and _weekend(day) != _weekend(hour):
                continue
            weight = RECENCY_DECAY**rank
            used = False
            for offset, share in HOUR_KERNEL:
                moment = day + offset * HOUR
                if self.covered(moment):
                    samples.append((weight * share, self.counts.get(moment, 0.0)))
                    used = True
            rank += used
        weight_sum = sum(w for w, _ in samples)
        if weight_sum == 0:
            rate = self.mean_rate
        else:
            low, high = OUTLIER_CAP
            cap = low * _median(c for _, c in samples) + high
            rate = sum(w * min(c, cap) for w, c in samples) / weight_sum
            if weight_sum < 1:  # less than a day of this hour: lean on the overall mean
                rate = weight_sum * rate + (1 - weight_sum) * self.mean_rate
        self._seasonal[hour] = rate
        return rate

    def _trailing_level(self) -> float:
        """How busy the last hours were against what the profile expected of them (1 = as usual).

        At least the last 3 hours; at night, as many more (up to a day) as it takes to expect 30
        events, so the level rests on enough counts to mean something.
        """
        shortest, longest = TRAILING_HOURS
        observed = expected = 0.0
        for back in range(1, longest + 1):
            hour = self.cutoff - back * HOUR
            if not self.covered(hour):
                break
            observed += self.counts.get(hour, 0.0)
            expected += self.seasonal_rate(hour)
            if back >= shortest and expected >= TRAILING_EVENTS:
                break
        if expected == 0 and observed == 0:
            return 1.0
        low, high = LEVEL_CLAMP
        return max(low, min(high, (observed + LEVEL_PRIOR) / (expected + LEVEL_PRIOR)))

    def _dispersion(self) -> float:
        """Over-dispersion of hourly counts around their hour-of-day mean (method of moments, clamped).

        Each hour is compared with the mean of the same hour on the other days (leave one out), so
        the daily rhythm is not mistaken for noise; an outlying hour is capped as in the profile.
        """
        groups: dict[tuple[int, bool], list[float]] = {}
        hour = self.since
        while hour < self.cutoff:
            key = (hour.hour, self.weekly and _weekend(hour))
            groups.setdefault(key, []).append(self.counts.get(hour, 0.0))
            hour += HOUR
        excess = scale = 0.0
        samples = 0
        for values in groups.values():
            n = len(values)
            if n < 3:
                continue
            low, high = OUTLIER_CAP
            cap = low * _median(values) + high
            values = [min(v, cap) for v in values]
            total = sum(values)
            for value in values:
                mean = (total - value) / (n - 1)
                # the leave-one-out mean carries its own noise: (n - 1) / n undoes it
                excess += (value - mean) ** 2 * (n - 1) / n - mean
                scale += mean * mean
                samples += 1
        if samples < MIN_DISPERSION_SAMPLES or scale <= 0:
            return 0.0
        return max(0.0, min(MAX_DISPERSION, excess / scale))

    def rate(self, hour: datetime, *, level: bool = True, floor: bool = True) -> float:
        """Expected events per hour at `hour`: seasonal, following the trailing level, floored."""
        rate = self.seasonal_rate(hour)
        if level:
            rate *= SEASONAL_WEIGHT + (1 - SEASONAL_WEIGHT) * self.level
        return max(self.floor, rate) if floor else rate

    def expected(self, start: datetime, end: datetime, *, level: bool = True, floor: bool = True) -> float:
        """Expected events in [start, end), hour by hour."""
        total = 0.0
        moment = start
        while moment < end:
            step_end = min(end, floor_hour(moment) + HOUR)
            total += self.rate(moment, level=level, floor=floor) * ((step_end - moment) / HOUR)
            moment = step_end
        return total
