"""Detection: pure rules over stored counts, and the incident lifecycle around them.

Rules (each yields a `Signal`; each (scope, rule) pair has its own incident):

- `volume_spike`, per brand (scope "brand") and per source (scope "source:<name>"): the mentions of
  the last `window_minutes` against a seasonal baseline (`baseline.py`: the same hour on previous
  days, following the trailing level, floored), judged as counts with a negative-binomial tail
  (Poisson when the history is not over-dispersed). It fires when the count is improbable
  (p <= `p_value`), at least `min_ratio` times the expectation and at least `min_mentions`.
- `negative_spike`, per brand: the same test on negative mentions, or a share rule: the window's
  negative share against the baseline share (binomial tail, odds at least `min_ratio` times the
  usual odds, at least `min_negative(rules)` negative mentions). Tone moving while volume is normal.
- `blind_spot`, per source: a source that normally yields mentions and has failed several runs in a
  row, has not succeeded for 30 minutes, has not run for hours, or has fetched nothing for longer
  than its usual volume makes believable. Resolved at the first run that yields again.
- `viral_post`, per post (scope "post:<source>:<id>"): a recent top post whose reposts + replies
  grew by at least `viral_min_growth` within `viral_window_minutes` and at least `viral_growth_factor`
  times what it had at the window's start. The scans re-read the engagement of the brand's recent top
  posts from their sources every `refresh_minutes` (`scan.refresh_watched`; a search alone returns
  a post once); each detect run reads it as stored and keeps the readings (`Store.record_engagement`).

Only the past feeds a baseline: hourly counts strictly before the window's hour (causal).

Incidents go open -> updated -> resolved; a notification is decided in the same write as the state
change and delivered after, exactly once per channel (see `deliver_pending`). At most one
notification per incident per `cooldown_minutes`, apart from escalations of severity and the
all-clear (always sent): growth at the same severity waits for the cooldown.

Notifications stay sane through one rule, "covered" incidents are recorded but silent: a
source-scope volume incident, a brand negative-tone incident and a viral post notify only while no
brand-scope volume incident is open (the volume alert already names the sources and the posts,
with their tone). A held-back incident is announced later if it still fires once the brand
incident is over, and an incident never announced resolves silently.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .baseline import (
    BaselineModel,
    SeasonalBaseline,
    binomial_tail,
    floor_hour,
    nbinom_tail,
    poisson_tail,  # noqa: F401  (re-exported: the tail the rule reduces to without over-dispersion)
)
from .config import AppConfig, Brand, Detection
from .models import CountBucket, Incident, parse_iso
from .store import ConflictError, Store, bucket_start

logger = logging.getLogger(__name__)

RULE_VOLUME = "volume_spike"
RULE_NEGATIVE = "negative_spike"
RULE_BLIND_SPOT = "blind_spot"
RULE_VIRAL = "viral_post"
MIN_HISTORY_HOURS = 6
BASELINE_FLOOR_PER_HOUR = 0.5  # a silent history still expects a little: one post is not a fire
SEVERITIES = ("warning", "high", "critical")
BUCKET = timedelta(minutes=5)

# negative share: a prior of 2 negative in 10 rated keeps a thin history from deciding alone
SHARE_PRIOR = (2.0, 10.0)
MIN_RATED_HISTORY = 20  # rated mentions the baseline needs before the tone rules trust it
TONE_RATED_SHARE = 0.5  # and at least this share of its mentions rated (not a pre-enrichment history)

# blind spots
BLIND_FAILED_RUNS = 3  # consecutive failed runs
BLIND_NO_SUCCESS = timedelta(minutes=30)  # the last run failed and none succeeded for this long
BLIND_NO_RUN = timedelta(hours=3)  # longer than the slowest scan schedule (2 hours)
BLIND_MIN_SILENCE = timedelta(minutes=30)
BLIND_MIN_DAILY = 1.0  # "normally yields": at least one mention a day on average over the baseline
RESOLVE_AFTER = {RULE_BLIND_SPOT: 1}  # a blind spot is over as soon as the source yields again
VIRAL_LOOKBACK = timedelta(hours=24)  # posts this recent are watched for viral growth
VIRAL_POSTS = 10  # the brand's most engaged recent posts (one per story)


def severity_for(ratio: float) -> str:
    if ratio >= 10:
        return "critical"
    if ratio >= 5:
        return "high"
    return "warning"


def min_negative(rules: Detection) -> int:
    """The fewest negative mentions the share rule acts on: half the volume floor, at least 5."""
    return max(5, math.ceil(rules.min_mentions / 2))


def window_bounds(now: datetime, rules: Detection) -> tuple[datetime, datetime]:
    """(window start, baseline cutoff): the last `window_minutes` of 5-minute buckets, and its hour."""
    window_start = bucket_start(now) + BUCKET - timedelta(minutes=rules.window_minutes)
    return window_start, floor_hour(window_start)


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule's verdict for one window and one scope."""

    triggered: bool
    observed: int
    expected: float
    p_value: float
    ratio: float
    severity: str
    window_start: datetime
    enough_history: bool
    by_source: dict[str, int] = field(default_factory=dict)
    rule: str = RULE_VOLUME
    scope: str = "brand"
    dispersion: float = 0.0
    recovered: bool = True  # False keeps an untriggered incident open (a blind source not yet yielding)
    reason: str = ""

    @property
    def score(self) -> float:
        """Surprise in [0, 1]: 1 - p-value of the observed count."""
        return max(0.0, min(1.0, 1.0 - self.p_value))


# ---------------------------------------------------------------- baselines


@dataclass(frozen=True, slots=True)
class BrandBaseline:
    """Every baseline one brand's rules need, frozen at one cutoff (cached per hour by a container)."""

    cutoff: datetime
    mentions: BaselineModel
    negative: BaselineModel
    sources: dict[str, BaselineModel]
    negative_share: float
    rated: int

    @classmethod
    def build(cls, history: Iterable[CountBucket], cutoff: datetime, rules: Detection) -> BrandBaseline:
        """From hourly counters (every source); only hours in [cutoff - baseline_days, cutoff) count."""
        cutoff = floor_hour(cutoff)
        start = cutoff - timedelta(days=rules.baseline_days)
        days, floor = rules.baseline_days, BASELINE_FLOOR_PER_HOUR
        mentions = SeasonalBaseline(days=days, floor_per_hour=floor)
        negative = SeasonalBaseline(days=days, floor_per_hour=floor)
        sources: dict[str, SeasonalBaseline] = {}
        negatives = rated = 0
        for bucket in history:
            if not start <= bucket.start < cutoff:
                continue
            mentions.add(bucket.start, bucket.mentions)
            negative.add(bucket.start, bucket.negative)
            per_source = sources.setdefault(bucket.source, SeasonalBaseline(days=days, floor_per_hour=floor))
            per_source.add(bucket.start, bucket.mentions)
            negatives += bucket.negative
            rated += bucket.rated
        prior_negative, prior_rated = SHARE_PRIOR
        share = (negatives + prior_negative) / (rated + prior_rated)
        return cls(
            cutoff=cutoff,
            mentions=mentions.model(cutoff),
            negative=negative.model(cutoff),
            sources={name: b.model(cutoff) for name, b in sources.items()},
            negative_share=max(0.01, min(0.95, share)),
            rated=rated,
        )

    @property
    def tone_known(self) -> bool:
        """Whether the history was rated for tone (most of it, and enough) so negatives can be judged."""
        return self.rated >= max(MIN_RATED_HISTORY, TONE_RATED_SHARE * self.mentions.total)

    def source(self, name: str) -> BaselineModel:
        """One source's baseline (an empty one for a source never seen: not enough history)."""
        return self.sources.get(name) or _no_history(self.cutoff, self.mentions.days)


def _no_history(cutoff: datetime, days: int) -> BaselineModel:
    """A baseline without history: it never has enough to alert on."""
    return SeasonalBaseline(days=days, floor_per_hour=BASELINE_FLOOR_PER_HOUR).model(cutoff)


def _in_window(recent: Iterable[CountBucket], window_start: datetime, now: datetime) -> list[CountBucket]:
    return [b for b in recent if window_start <= b.start <= now]


def _count_verdict(
    observed: float,
    model: BaselineModel,
    window_start: datetime,
    rules: Detection,
    *,
    rule: str,
    scope: str,
    by_source: dict[str, int],
) -> Signal:
    """The count test shared by every count rule, the Lambda's and the command's."""
    expected = model.expected(window_start, window_start + timedelta(minutes=rules.window_minutes))
    count = round(observed)
    p_value = nbinom_tail(count, expected, model.dispersion)
    ratio = count / expected if expected else float("inf")
    enough = model.history_hours >= MIN_HISTORY_HOURS
    triggered = (
        enough and count >= rules.min_mentions and ratio >= rules.min_ratio and p_value <= rules.p_value
    )
    return Signal(
        triggered=triggered,
        observed=count,
        expected=expected,
        p_value=p_value,
        ratio=ratio,
        severity=severity_for(ratio),
        window_start=window_start,
        enough_history=enough,
        by_source=by_source,
        rule=rule,
        scope=scope,
        dispersion=model.dispersion,
    )


# ---------------------------------------------------------------- rules


def evaluate(
    recent: Iterable[CountBucket],
    history: Iterable[CountBucket],
    now: datetime,
    rules: Detection,
    *,
    source: str | None = None,
    baseline: BrandBaseline | None = None,
) -> Signal:
    """Volume spike verdict from 5-minute buckets of the window and hourly buckets before it.

    For the whole brand, or for one source (`source`, scope "source:<name>"). `baseline`, when
    given, replaces building one from `history`.
    """
    window_start, cutoff = window_bounds(now, rules)
    baseline = baseline or BrandBaseline.build(history, cutoff, rules)
    window = _in_window(recent, window_start, now)
    if source is not None:
        window = [b for b in window if b.source == source]
    by_source: dict[str, int] = {}
    for bucket in window:
        by_source[bucket.source] = by_source.get(bucket.source, 0) + bucket.mentions
    model = baseline.mentions if source is None else baseline.source(source)
    return _count_verdict(
        sum(by_source.values()),
        model,
        window_start,
        rules,
        rule=RULE_VOLUME,
        scope="brand" if source is None else f"source:{source}",
        by_source=by_source,
    )


def evaluate_negative(
    recent: Iterable[CountBucket],
    history: Iterable[CountBucket],
    now: datetime,
    rules: Detection,
    *,
    baseline: BrandBaseline | None = None,
) -> Signal:
    """Negative-tone spike: negative mentions against their own baseline, or their share against the usual."""
    window_start, cutoff = window_bounds(now, rules)
    baseline = baseline or BrandBaseline.build(history, cutoff, rules)
    window = _in_window(recent, window_start, now)
    by_source: dict[str, int] = {}
    for bucket in window:
        if bucket.negative:
            by_source[bucket.source] = by_source.get(bucket.source, 0) + bucket.negative
    negative = sum(by_source.values())
    rated = sum(b.rated for b in window)
    if not baseline.tone_known:
        # before tone was rated (enrichment newer than the history), negative counts mean nothing yet
        baseline = replace(baseline, negative=_no_history(baseline.cutoff, rules.baseline_days))
    count = _count_verdict(
        negative,
        baseline.negative,
        window_start,
        rules,
        rule=RULE_NEGATIVE,
        scope="brand",
        by_source=by_source,
    )
    # share rule: given how many mentions were rated, are this many negative ones believable?
    share = baseline.negative_share
    share_expected = rated * share
    share_p = binomial_tail(negative, rated, share) if rated else 1.0
    if not rated:
        odds = 0.0
    elif negative >= rated:
        odds = float("inf")
    else:
        odds = (negative / (rated - negative)) / (share / (1 - share))
    share_triggered = (
        count.enough_history
        and negative >= min_negative(rules)
        and odds >= rules.min_ratio
        and share_p <= rules.p_value
    )
    if share_triggered and (not count.triggered or share_p < count.p_value):
        ratio = negative / share_expected if share_expected else float("inf")
        return Signal(
            triggered=True,
            observed=negative,
            expected=share_expected,
            p_value=share_p,
            ratio=ratio,
            severity=severity_for(ratio),
            window_start=window_start,
            enough_history=True,
            by_source=by_source,
            rule=RULE_NEGATIVE,
            scope="brand",
            reason=f"{negative} of {rated} rated mentions negative (usually {share:.0%})",
        )
    return count


def _run_time(run: dict[str, Any], key: str) -> datetime | None:
    value = run.get(key)
    return parse_iso(value) if isinstance(value, str) and value else None


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


def evaluate_blind_spot(
    source: str,
    run: dict[str, Any] | None,
    recent: Iterable[CountBucket],
    history: Iterable[CountBucket],
    now: datetime,
    rules: Detection,
    *,
    baseline: BrandBaseline | None = None,
    enabled: bool = True,
) -> Signal:
    """Blind spot of one source, from its last scan outcome (a RUN item) and its counts.

    `recent` should reach back to the baseline's cutoff hour, so the time of the source's last
    mention is known to the 5 minutes.
    """
    now = now.astimezone(UTC)
    window_start, cutoff = window_bounds(now, rules)
    baseline = baseline or BrandBaseline.build(history, cutoff, rules)
    model = baseline.source(source)
    buckets = [b for b in recent if b.source == source and b.start <= now]
    observed = sum(b.mentions for b in buckets if b.start >= window_start)
    expected = model.expected(window_start, window_start + timedelta(minutes=rules.window_minutes))
    yields = model.history_hours >= MIN_HISTORY_HOURS and model.mean_rate * 24 >= BLIND_MIN_DAILY
    run = run or {}
    failures = int(run.get("failures") or 0)
    try:
        fetched = int(json.loads(run.get("last_stats") or "{}").get("fetched", 0))
    except (ValueError, TypeError, AttributeError):
        fetched = 0
    last_run, last_success = _run_time(run, "last_run_at"), _run_time(run, "last_success_at")
    last_error = _run_time(run, "last_error_at")
    yielded_since_error = any(b.mentions for b in buckets if last_error is None or b.start >= last_error)

    # the source's last mention: 5-minute buckets since the cutoff, else the hourly history
    yielded = [b.start + BUCKET for b in buckets if b.mentions]
    if not yielded:
        yielded = [hour + timedelta(hours=1) for hour, count in model.counts.items() if count]
    last_yield = max(yielded, default=None)
    silent_p = 1.0
    if last_yield is not None and last_yield < now:
        silence = model.expected(last_yield, now, level=False, floor=False)
        silent_p = 1.0 - nbinom_tail(1, silence, model.dispersion)  # P(nothing at all in that time)

    causes: list[str] = []
    if failures >= BLIND_FAILED_RUNS:
        causes.append(f"{failures} failed runs in a row")
    elif failures and last_success is not None and now - last_success >= BLIND_NO_SUCCESS:
        causes.append(f"no successful run for {_minutes(now - last_success)}")
    if last_run is not None and now - last_run >= BLIND_NO_RUN:
        causes.append(f"no run for {_minutes(now - last_run)}")
    if (
        not failures
        and fetched == 0
        and last_yield is not None
        and now - last_yield >= BLIND_MIN_SILENCE
        and silent_p <= rules.p_value
    ):
        causes.append(f"nothing fetched and no mention for {_minutes(now - last_yield)}")
    reasons = (
        [*causes, f"last error: {str(run['last_error'])[:200]}"]
        if failures and run.get("last_error")
        else causes
    )
    triggered = enabled and yields and bool(causes)
    return Signal(
        triggered=triggered,
        observed=observed,
        expected=expected,
        p_value=silent_p,
        ratio=observed / expected if expected else float("inf"),
        severity="warning",
        window_start=window_start,
        enough_history=model.history_hours >= MIN_HISTORY_HOURS,
        by_source={source: observed},
        rule=RULE_BLIND_SPOT,
        scope=f"source:{source}",
        dispersion=model.dispersion,
        # over once a run succeeds and brings something back (or the source is switched off)
        recovered=not enabled or (failures == 0 and (fetched > 0 or yielded_since_error)),
        reason="; ".join(reasons),
    )


@dataclass(frozen=True, slots=True)
class EngagementReading:
    """One reading of a post's engagement (the input the viral-post rule needs)."""

    mention_id: str
    source: str
    read_at: datetime
    reposts: int
    replies: int


def viral_scope(mention_id: str) -> str:
    return f"post:{mention_id}"


def evaluate_viral(readings: Iterable[EngagementReading], now: datetime, rules: Detection) -> list[Signal]:
    """Viral post: one verdict per post read, from its engagement readings over time.

    The growth is reposts + replies now against the last reading at or before the window's start
    (or the first reading inside the window: a post first seen already big is not growth we saw).
    """
    now = now.astimezone(UTC)
    window_start = now - timedelta(minutes=rules.viral_window_minutes)
    by_post: dict[str, list[EngagementReading]] = {}
    for reading in readings:
        if reading.read_at <= now:
            by_post.setdefault(reading.mention_id, []).append(reading)
    signals = []
    for mention_id, series in sorted(by_post.items()):
        series.sort(key=lambda r: r.read_at)
        before = [r for r in series if r.read_at <= window_start]
        base = before[-1] if before else series[0]
        current = series[-1]
        base_level, level = base.reposts + base.replies, current.reposts + current.replies
        growth = max(0, level - base_level)
        triggered = growth >= rules.viral_min_growth and level >= rules.viral_growth_factor * max(
            1, base_level
        )
        signals.append(
            Signal(
                triggered=triggered,
                observed=growth,
                expected=float(base_level),
                p_value=0.0 if triggered else 1.0,
                ratio=level / base_level if base_level else float("inf"),
                severity=severity_for(growth / rules.viral_min_growth),
                # the growth is measured from the base reading: an incident never starts before it
                window_start=bucket_start(max(window_start, base.read_at)),
                enough_history=len(series) > 1,
                by_source={current.source: growth},
                rule=RULE_VIRAL,
                scope=viral_scope(mention_id),
                reason=f"reposts and replies {base_level} -> {level} since {base.read_at:%H:%M} UTC",
            )
        )
    return signals


def read_engagement(store: Store, brand_id: str, now: datetime, rules: Detection) -> list[EngagementReading]:
    """Re-read the engagement of the brand's recent top posts, keeping a reading when it changed.

    The values are those the scans last stored: the scans re-read the watched posts from their
    sources every `refresh_minutes` (`scan.refresh_watched`), and a search that returns a post again
    refreshes it too (`Store.refresh_engagement`). A post keeps its readings of the window and the
    last one before.
    """
    window_start = now - timedelta(minutes=rules.viral_window_minutes)
    known = store.engagement_readings(brand_id)
    posts = store.top_mentions(brand_id, now - VIRAL_LOOKBACK, now + BUCKET, VIRAL_POSTS)
    out: list[EngagementReading] = []
    for post in posts:
        series = known.get(post.id, [])
        last = series[-1] if series else None
        if last is None or (last[1], last[2]) != (post.engagement.reposts, post.engagement.replies):
            before = [r for r in series if r[0] <= window_start]
            series = before[-1:] + [r for r in series if r[0] > window_start]
            series.append((now, post.engagement.reposts, post.engagement.replies))
            store.record_engagement(brand_id, post.id, series, expires=now + VIRAL_LOOKBACK)
        out.extend(
            EngagementReading(post.id, post.source, t, reposts, replies) for t, reposts, replies in series
        )
    return out


# ---------------------------------------------------------------- streaming (the `emberwatch detect` command)


class StreamDetector:
    """The volume rule over one series fed one observation at a time, in time order (causal).

    Same baseline and same test as the Lambda: each observation is counted in its 5-minute bucket
    and its hour, and judged against the baseline of the hours before the window's hour.
    """

    def __init__(self, rules: Detection) -> None:
        self.rules = rules
        self.baseline = SeasonalBaseline(days=rules.baseline_days, floor_per_hour=BASELINE_FLOOR_PER_HOUR)
        self.buckets: dict[datetime, float] = {}
        self.model: BaselineModel | None = None
        self.last: datetime | None = None

    def update(self, moment: datetime, value: float) -> Signal:
        """Count `value` events at `moment` and return the verdict for the window ending there."""
        moment = moment.astimezone(UTC)
        if self.last is not None and moment < self.last:
            raise ValueError(f"out of order: {moment.isoformat()} is before {self.last.isoformat()}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"not a count: {value}")
        self.last = moment
        self.baseline.add(moment, value)
        bucket = bucket_start(moment)
        self.buckets[bucket] = self.buckets.get(bucket, 0.0) + value
        window_start, cutoff = window_bounds(moment, self.rules)
        if self.model is None or self.model.cutoff != cutoff:
            self.model = self.baseline.model(cutoff)
            self.baseline.forget_before(cutoff - timedelta(days=self.rules.baseline_days + 1))
        for old in [b for b in self.buckets if b < window_start]:
            del self.buckets[old]
        observed = sum(self.buckets.values())
        return _count_verdict(
            observed, self.model, window_start, self.rules, rule=RULE_VOLUME, scope="brand", by_source={}
        )


# ---------------------------------------------------------------- the incident lifecycle


@dataclass(frozen=True, slots=True)
class Transition:
    """What changed for an incident in this run; `notify` is the kind of message owed, if any."""

    incident: Incident
    notify: str | None


def _owe(incident: Incident, kind: str, level: int, now: datetime) -> Transition:
    incident.pending_kind, incident.pending_level = kind, level
    incident.notified_at = now
    return Transition(incident, kind)


def cooled(incident: Incident, now: datetime, rules: Detection) -> bool:
    """Whether the incident's last notification is at least `cooldown_minutes` old."""
    last = incident.notified_at
    return last is None or now - last >= timedelta(minutes=rules.cooldown_minutes)


def advance(
    incident: Incident | None,
    signal: Signal,
    brand: Brand,
    now: datetime,
    rules: Detection,
    *,
    covered: bool = False,
) -> Transition | None:
    """The incident lifecycle of the signal's (scope, rule) as a pure step: open, escalate, keep, resolve.

    `covered`: another open incident already speaks for this one; it is recorded, but sends nothing.
    An incident held back that way has `notified_level` 0 (never announced) and is announced if it
    still fires once it is no longer covered; one never announced resolves without an all-clear.
    """
    if incident is not None and incident.status == "resolved":
        return None  # resolved, only its all-clear is still owed
    level = max(1, signal.observed)
    if incident is None:
        if not signal.triggered:
            return None
        opened = Incident(
            brand=brand.id,
            scope=signal.scope,
            rule=signal.rule,
            opened_at=signal.window_start,
            status="open",
            severity=signal.severity,
            observed=signal.observed,
            expected=signal.expected,
            peak=signal.observed,
            notified_level=0 if covered else level,
            last_seen_at=now,
        )
        return Transition(opened, None) if covered else _owe(opened, "opened", level, now)
    if signal.triggered:
        incident.observed = signal.observed
        incident.expected = signal.expected
        incident.peak = max(incident.peak, signal.observed)
        incident.last_seen_at = now
        incident.quiet_runs = 0
        if covered:
            incident.severity = max(incident.severity, signal.severity, key=SEVERITIES.index)
            return Transition(incident, None)
        if incident.notified_level == 0:  # held back while covered: announce it now
            incident.severity = max(incident.severity, signal.severity, key=SEVERITIES.index)
            incident.notified_level = level
            return _owe(incident, "opened", level, now)
        if signal.rule == RULE_BLIND_SPOT:
            return Transition(incident, None)  # a blind spot does not grow; it ends
        rises = SEVERITIES.index(signal.severity) > SEVERITIES.index(incident.severity)
        grows = signal.observed >= incident.notified_level * rules.escalate_factor
        # a rise in severity always goes out; growth at the same severity waits for the cooldown
        if rises or (grows and cooled(incident, now, rules)):
            incident.severity = max(incident.severity, signal.severity, key=SEVERITIES.index)
            incident.notified_level = signal.observed
            return _owe(incident, "escalated", signal.observed, now)
        return Transition(incident, None)
    incident.observed = signal.observed
    if not signal.recovered:
        return Transition(incident, None)
    incident.quiet_runs += 1
    if incident.quiet_runs >= RESOLVE_AFTER.get(incident.rule, rules.resolve_after_quiet_runs):
        incident.status = "resolved"
        incident.resolved_at = now
        if covered or incident.notified_level == 0:
            return Transition(incident, None)  # the covering incident's all-clear speaks for it
        return _owe(incident, "resolved", incident.peak, now)
    return Transition(incident, None)


@dataclass
class DetectReport:
    brands: int = 0
    opened: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


Notifier = Callable[[str, Incident, Signal | None], None]


def _baseline(
    store: Store, brand_id: str, cutoff: datetime, rules: Detection, baselines: dict[Any, Any] | None
) -> BrandBaseline:
    """The brand's baselines at this cutoff; a warm container reuses them until the hour turns."""
    key = (brand_id, cutoff, rules.baseline_days)
    if baselines is not None and key in baselines:
        return baselines[key]
    history = store.hourly_counts(brand_id, cutoff - timedelta(days=rules.baseline_days, hours=1), cutoff)
    baseline = BrandBaseline.build(history, cutoff, rules)
    if baselines is not None:
        for stale in [k for k in baselines if k[0] == brand_id]:
            del baselines[stale]
        baselines[key] = baseline
    return baseline


def _step(
    brand: Brand,
    signal: Signal,
    now: datetime,
    *,
    covered: bool,
    rules: Detection,
    store: Store,
    notify: Notifier,
    report: DetectReport,
    pointers: dict[str, str] | None = None,
) -> Incident | None:
    """Move one (scope, rule) incident along and deliver what it owes; returns it as it now stands."""
    active = store.active_incident(brand.id, signal.scope, signal.rule, pointers=pointers)
    was_open = active is not None and active.status == "open"
    transition = advance(active, signal, brand, now, rules, covered=covered)
    if transition is not None:
        incident = transition.incident
        try:
            if active is None:
                store.open_incident(incident)
                report.opened.append(incident.key)
            else:
                store.save_incident(incident)
        except ConflictError:
            # a concurrent run got there first; it owns this step, and the next run resumes
            logger.info("incident changed by a concurrent run", extra={"brand": brand.id})
            return active
        if transition.notify == "escalated":
            report.escalated.append(incident.key)
        if was_open and incident.status == "resolved":
            report.resolved.append(incident.key)
        active = incident
    if active is not None and active.pending_kind:
        deliver_pending(active, signal, now, store=store, notify=notify, report=report)
    return active


def detect_brand(
    brand: Brand,
    now: datetime,
    *,
    config: AppConfig,
    store: Store,
    notify: Notifier,
    report: DetectReport,
    baselines: dict[Any, Any] | None = None,
) -> None:
    """Evaluate every rule and scope of one brand, move its incidents along, deliver what is owed.

    The brand's volume rule goes first: whether its incident is open decides which of the others
    are covered (recorded, not notified). One rule's failure does not stop the others.
    """
    rules = config.detection
    now = now.astimezone(UTC)
    window_start, cutoff = window_bounds(now, rules)
    # from the cutoff hour, not only the window: a blind spot needs the source's last mention
    recent = store.counts(brand.id, min(window_start - BUCKET, cutoff), now + BUCKET)
    baseline = _baseline(store, brand.id, cutoff, rules, baselines)
    pointers = store.active_pointers(brand.id)  # one query instead of a read per (scope, rule)

    def step(make: Callable[[], Signal], covered: bool) -> Incident | None:
        try:
            return _step(
                brand,
                make(),
                now,
                covered=covered,
                rules=rules,
                store=store,
                notify=notify,
                report=report,
                pointers=pointers,
            )
        except Exception as exc:  # one rule's trouble is logged and counted; the others go on
            report.failures.append(f"{brand.id}: {exc}")
            logger.exception("detection step failed", extra={"brand": brand.id})
            return None

    try:
        volume = _step(
            brand,
            evaluate(recent, (), now, rules, baseline=baseline),
            now,
            covered=False,
            rules=rules,
            store=store,
            notify=notify,
            report=report,
            pointers=pointers,
        )
        covering = volume is not None and volume.status == "open"
    except Exception as exc:
        report.failures.append(f"{brand.id}: {exc}")
        logger.exception("detection failed for the brand's volume", extra={"brand": brand.id})
        covering = True  # unknown: stay quiet on the covered rules this run rather than page twice
    step(lambda: evaluate_negative(recent, (), now, rules, baseline=baseline), covering)

    # per source only when there are several: a lone source's incident would repeat the brand's
    sources = sorted(set(baseline.sources) | {b.source for b in recent if b.mentions})
    if len(sources) > 1:
        for name in sources:
            step(lambda name=name: evaluate(recent, (), now, rules, source=name, baseline=baseline), covering)

    for name, run in sorted(store.source_runs(brand.id).items()):
        enabled = config.source(name).enabled
        step(
            lambda name=name, run=run, enabled=enabled: evaluate_blind_spot(
                name, run, recent, (), now, rules, baseline=baseline, enabled=enabled
            ),
            False,
        )

    # viral posts: each post read gets a verdict; an open one no longer read ends quietly
    try:
        viral = {s.scope: s for s in evaluate_viral(read_engagement(store, brand.id, now, rules), now, rules)}
    except Exception as exc:
        report.failures.append(f"{brand.id}: viral posts: {exc}")
        logger.exception("viral-post readings failed", extra={"brand": brand.id})
        return
    for key in pointers:
        scope, _, rule = key.rpartition("#")
        if rule == RULE_VIRAL and scope not in viral:
            viral[scope] = Signal(
                triggered=False,
                observed=0,
                expected=0.0,
                p_value=1.0,
                ratio=0.0,
                severity="warning",
                window_start=window_start,
                enough_history=True,
                rule=RULE_VIRAL,
                scope=scope,
            )
    for scope in sorted(viral):
        step(lambda scope=scope: viral[scope], covering)


def deliver_pending(
    incident: Incident,
    signal: Signal | None,
    now: datetime,
    *,
    store: Store,
    notify: Notifier,
    report: DetectReport,
) -> None:
    """Send the notification an incident owes to each of its channels, at most once per channel.

    Each (incident, notification, channel) is claimed before and completed after its send, so a
    retried or concurrent run never sends it twice. A channel that fails is released and the
    notification stays pending: the next run retries that channel only. `notify` is either a bare
    callable (one channel) or a dispatcher with `channels_for(incident)` and `send(channel, ...)`.
    """
    kind, level = incident.pending_kind, incident.pending_level
    assert kind is not None
    pk = f"N#{incident.key}"
    channels_for = getattr(notify, "channels_for", None)
    names: tuple[str, ...] = tuple(channels_for(incident)) if channels_for else ("",)
    outstanding = 0
    for name in names:
        sk = f"{kind}#{level}#{name}" if name else f"{kind}#{level}"
        if not store.claim(pk, sk, now, ttl_days=30, lease_seconds=120):
            if not store.claim_done(pk, sk):
                outstanding += 1  # another run holds it now; if it fails, this stays pending for the next
            continue
        try:
            if name:
                notify.send(name, kind, incident, signal)  # type: ignore[attr-defined]
            else:
                notify(kind, incident, signal)
        except Exception as exc:
            store.release(pk, sk)
            outstanding += 1
            report.failures.append(f"{incident.key} {kind}{' via ' + name if name else ''}: {exc}")
            logger.exception(
                "alert delivery failed; the next run retries",
                extra={"brand": incident.brand, "channel": name or "default"},
            )
            continue
        store.complete(pk, sk, {"sent_at": now.isoformat()})
        incident.notifications += 1
        report.notifications.append(f"{kind}:{incident.key}" + (f"@{name}" if name else ""))
    if outstanding:
        return  # still owed to some channel: kept pending, so the incident's pointer stays too
    incident.pending_kind, incident.pending_level = None, 0
    try:
        store.save_incident(incident)
    except ConflictError:
        logger.info("incident changed by a concurrent run after delivery", extra={"brand": incident.brand})


def run_detection(
    now: datetime,
    *,
    config: AppConfig,
    store: Store,
    notify: Notifier,
    baselines: dict[Any, Any] | None = None,
) -> DetectReport:
    """Detection for every configured brand; one brand's failure does not stop the others.

    `baselines` (kept by the container between runs) saves re-reading a week of hourly counts
    every five minutes: the baselines only change when the hour turns.
    """
    report = DetectReport()
    for brand in config.brands:
        report.brands += 1
        try:
            detect_brand(
                brand, now, config=config, store=store, notify=notify, report=report, baselines=baselines
            )
        except Exception as exc:  # keep going for the other brands; the error is logged and counted
            report.failures.append(f"{brand.id}: {exc}")
            logger.exception("detection failed for brand", extra={"brand": brand.id})
    return report
