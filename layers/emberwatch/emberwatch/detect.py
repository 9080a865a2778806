"""Spike detection: a pure rule over stored counts, and the incident lifecycle around it.

The volume rule treats mentions as counts: in the last `window_minutes` we expect
lambda = (baseline rate) x window, and raise when the observed count is improbable under a
Poisson(lambda) tail, is at least `min_ratio` times lambda and reaches a minimum floor. Only
buckets before the window feed the baseline (causal). Incidents go open -> updated ->
resolved; a notification is decided in the same write as the state change and delivered
after, exactly once (see `deliver_pending`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import AppConfig, Brand, Detection
from .models import CountBucket, Incident
from .store import ConflictError, Store, bucket_start

logger = logging.getLogger(__name__)

RULE_VOLUME = "volume_spike"
MIN_HISTORY_HOURS = 6
BASELINE_FLOOR_PER_HOUR = 0.5  # a silent history still expects a little: one post is not a fire
SEVERITIES = ("warning", "high", "critical")


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


def severity_for(ratio: float) -> str:
    if ratio >= 10:
        return "critical"
    if ratio >= 5:
        return "high"
    return "warning"


@dataclass(frozen=True, slots=True)
class Signal:
    """The rule's verdict for one window."""

    triggered: bool
    observed: int
    expected: float
    p_value: float
    ratio: float
    severity: str
    window_start: datetime
    enough_history: bool
    by_source: dict[str, int] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Surprise in [0, 1]: 1 - p-value of the observed count."""
        return max(0.0, min(1.0, 1.0 - self.p_value))


def evaluate(
    recent: Iterable[CountBucket], history: Iterable[CountBucket], now: datetime, rules: Detection
) -> Signal:
    """Volume spike verdict from 5-minute buckets of the window and hourly buckets before it."""
    window_start = bucket_start(now) + timedelta(minutes=5) - timedelta(minutes=rules.window_minutes)
    by_source: dict[str, int] = {}
    for bucket in recent:
        if window_start <= bucket.start <= now:
            by_source[bucket.source] = by_source.get(bucket.source, 0) + bucket.mentions
    observed = sum(by_source.values())

    baseline_start = window_start - timedelta(days=rules.baseline_days)
    # hourly buckets strictly before the window's hour keep the baseline causal and unpolluted
    cutoff = window_start.replace(minute=0, second=0, microsecond=0)
    past = [b for b in history if baseline_start <= b.start < cutoff]
    earliest = min((b.start for b in past), default=None)
    hours = (cutoff - max(earliest, baseline_start)).total_seconds() / 3600 if earliest else 0.0
    enough = hours >= MIN_HISTORY_HOURS
    rate_per_hour = (
        max(BASELINE_FLOOR_PER_HOUR, sum(b.mentions for b in past) / hours)
        if hours > 0
        else BASELINE_FLOOR_PER_HOUR
    )
    expected = rate_per_hour * rules.window_minutes / 60
    p_value = poisson_tail(observed, expected)
    ratio = observed / expected if expected else float("inf")
    triggered = (
        enough and observed >= rules.min_mentions and ratio >= rules.min_ratio and p_value <= rules.p_value
    )
    return Signal(
        triggered=triggered,
        observed=observed,
        expected=expected,
        p_value=p_value,
        ratio=ratio,
        severity=severity_for(ratio),
        window_start=window_start,
        enough_history=enough,
        by_source=by_source,
    )


@dataclass(frozen=True, slots=True)
class Transition:
    """What changed for an incident in this run; `notify` is the kind of message owed, if any."""

    incident: Incident
    notify: str | None


def advance(
    incident: Incident | None, signal: Signal, brand: Brand, now: datetime, rules: Detection
) -> Transition | None:
    """The incident lifecycle as a pure step: open, escalate, keep, or resolve."""
    if incident is not None and incident.status == "resolved":
        return None  # resolved, only its all-clear is still owed
    if incident is None:
        if not signal.triggered:
            return None
        opened = Incident(
            brand=brand.id,
            scope="brand",
            rule=RULE_VOLUME,
            opened_at=signal.window_start,
            status="open",
            severity=signal.severity,
            observed=signal.observed,
            expected=signal.expected,
            peak=signal.observed,
            notified_level=signal.observed,
            last_seen_at=now,
            pending_kind="opened",
            pending_level=signal.observed,
        )
        return Transition(opened, "opened")
    if signal.triggered:
        incident.observed = signal.observed
        incident.expected = signal.expected
        incident.peak = max(incident.peak, signal.observed)
        incident.last_seen_at = now
        incident.quiet_runs = 0
        rises = SEVERITIES.index(signal.severity) > SEVERITIES.index(incident.severity)
        if rises or signal.observed >= incident.notified_level * rules.escalate_factor:
            incident.severity = max(incident.severity, signal.severity, key=SEVERITIES.index)
            incident.notified_level = signal.observed
            incident.pending_kind, incident.pending_level = "escalated", signal.observed
            return Transition(incident, "escalated")
        return Transition(incident, None)
    incident.observed = signal.observed
    incident.quiet_runs += 1
    if incident.quiet_runs >= rules.resolve_after_quiet_runs:
        incident.status = "resolved"
        incident.resolved_at = now
        incident.pending_kind, incident.pending_level = "resolved", incident.peak
        return Transition(incident, "resolved")
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


def _history(
    store: Store, brand_id: str, now: datetime, rules: Detection, baselines: dict[Any, Any] | None
) -> list[CountBucket]:
    """Hourly counts before the window's hour; a warm container reuses them until the hour turns."""
    cutoff = (bucket_start(now) + timedelta(minutes=5) - timedelta(minutes=rules.window_minutes)).replace(
        minute=0
    )
    key = (brand_id, cutoff, rules.baseline_days)
    if baselines is not None and key in baselines:
        return baselines[key]
    history = store.hourly_counts(brand_id, cutoff - timedelta(days=rules.baseline_days, hours=1), cutoff)
    if baselines is not None:
        for stale in [k for k in baselines if k[0] == brand_id]:
            del baselines[stale]
        baselines[key] = history
    return history


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
    """Evaluate one brand, move its incident along, deliver what is owed."""
    rules = config.detection
    now = now.astimezone(UTC)
    window = timedelta(minutes=rules.window_minutes)
    recent = store.counts(brand.id, bucket_start(now) - window, now + timedelta(minutes=5))
    signal = evaluate(recent, _history(store, brand.id, now, rules, baselines), now, rules)
    active = store.active_incident(brand.id, "brand", RULE_VOLUME)
    transition = advance(active, signal, brand, now, rules)
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
            return
        if transition.notify == "escalated":
            report.escalated.append(incident.key)
        elif transition.notify == "resolved":
            report.resolved.append(incident.key)
        active = incident
    if active is not None and active.pending_kind:
        deliver_pending(active, signal, now, store=store, notify=notify, report=report)


def deliver_pending(
    incident: Incident,
    signal: Signal | None,
    now: datetime,
    *,
    store: Store,
    notify: Notifier,
    report: DetectReport,
) -> None:
    """Send the notification an incident owes, at most once even across retries and crashes."""
    kind, level = incident.pending_kind, incident.pending_level
    assert kind is not None
    pk, sk = f"N#{incident.key}", f"{kind}#{level}"
    if store.claim(pk, sk, now, ttl_days=30, lease_seconds=120):
        try:
            notify(kind, incident, signal)
        except Exception as exc:
            store.release(pk, sk)
            report.failures.append(f"{incident.key} {kind}: {exc}")
            logger.exception("alert delivery failed; the next run retries", extra={"brand": incident.brand})
            return
        store.complete(pk, sk, {"sent_at": now.isoformat()})
        incident.notifications += 1
        report.notifications.append(f"{kind}:{incident.key}")
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
    every five minutes: the baseline only changes when the hour turns.
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
