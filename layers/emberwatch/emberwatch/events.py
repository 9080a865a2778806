"""The scheduled event every Emberwatch function receives (see docs/design.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .models import SOURCES, parse_iso


class EventError(ValueError):
    """The event does not have the shape the schedules send."""


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    id: str
    time: datetime
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, event: Any) -> ScheduledEvent:
        """Read `time` ("now" for the run) and `detail` from an EventBridge-shaped event."""
        if not isinstance(event, dict):
            raise EventError(f"event must be an object, got {type(event).__name__}")
        raw_time = event.get("time")
        if not isinstance(raw_time, str):
            raise EventError("event field 'time' is missing (expected the schedule's ISO 8601 time)")
        try:
            moment = parse_iso(raw_time)
        except ValueError as exc:
            raise EventError(f"event field 'time' is not ISO 8601: {raw_time!r}") from exc
        detail = event.get("detail") or {}
        if not isinstance(detail, dict):
            raise EventError("event field 'detail' must be an object")
        return cls(id=str(event.get("id") or ""), time=moment, detail=detail)

    def source(self) -> str:
        source = self.detail.get("source")
        if source not in SOURCES:
            raise EventError(
                f"event field 'detail.source' must be one of {', '.join(SOURCES)}; got {source!r}"
            )
        return source

    def period(self) -> str:
        period = self.detail.get("period", "daily")
        if period not in ("daily", "weekly"):
            raise EventError(f"event field 'detail.period' must be daily or weekly; got {period!r}")
        return period


def scheduled_event(
    source: str | None, time: datetime, *, kind: str = "scan", **detail: Any
) -> dict[str, Any]:
    """Build the event a schedule sends, for the local run and tests."""
    body = dict(detail)
    if source:
        body["source"] = source
    return {
        "version": "0",
        "id": f"{kind}-{source or 'all'}-{time:%Y%m%dT%H%M%S}",
        "detail-type": "Scheduled Event",
        "source": "emberwatch.scheduler",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": body,
    }
