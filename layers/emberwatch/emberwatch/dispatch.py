"""Queue mode: a dispatcher enqueues one scan job per (brand, source, stream) and period; workers scan them.

For installs whose brands x sources x queries outgrow one invocation per source. The dispatcher
(every 5 minutes) sends each due stream as one message to an SQS FIFO queue:

- `MessageDeduplicationId` is the job id `<brand>/<source>/<stream>/<period start>`: a retried
  dispatcher within SQS's 5-minute deduplication window enqueues nothing twice;
- `MessageGroupId` is `<source>-<slot>`, the slot picked by brand out of the source's
  `SOURCE_CONCURRENCY[source]`: SQS hands out one message of a group at a time, so at most that
  many jobs of a source run at once, whatever Lambda's total concurrency (docs/scale.md).

The worker scans each job with `scan.scan_source` narrowed to the job's stream (the same code path
as the scheduled scan) and reports failed jobs as batch item failures (Powertools Batch), which
SQS redelivers after the visibility timeout and moves to the dead-letter queue after 3 receives.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .events import ScheduledEvent
from .models import SOURCES, parse_iso, utc_iso
from .observability import MetricUnit, logger, metrics

if TYPE_CHECKING:
    from .config import AppConfig
    from .runtime import Runtime
    from .scan import ScanReport

PERIOD = timedelta(minutes=5)  # the dispatcher's schedule
SEND_BATCH = 10  # SendMessageBatch's maximum
JOB_SAFETY_MS = 15_000  # a job is not started with less than this left in the invocation
JOB_MIN_SECONDS = 5.0

# Concurrent jobs per source = message-group slots. Derived from each API's limits in
# docs/scale.md; a job makes 1-3 requests of about 0.3-1 s, so these stay well inside them.
SOURCE_CONCURRENCY: dict[str, int] = {
    "hackernews": 4,  # Algolia: 10,000 requests/hour per IP
    "feed": 8,  # one publisher per feed URL: spread over many hosts
    "stackexchange": 2,  # 10,000/day with a key (300 without), throttled above 30/s
    "mastodon": 2,  # 300 per 5 minutes per IP and per account
    "x": 2,  # recent search: 450 per 15 minutes per app
    "reddit": 2,  # 100 per minute per OAuth client
    "bluesky": 4,  # 3000 per 5 minutes per IP
    "youtube": 2,  # 10,000 units/day; the interval, not concurrency, is what spends them
    "facebook": 2,  # app and Page usage percentages
}


class JobError(ValueError):
    """A queued message is not a scan job; the message names the field."""


class DispatchError(RuntimeError):
    """Some jobs could not be enqueued; the schedule's retry re-runs the dispatcher (deduplicated)."""


class JobFailed(RuntimeError):
    """A job's stream failed; SQS redelivers it (then the dead-letter queue)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One stream of one brand's source, for the period starting at `time`."""

    brand: str
    source: str
    stream: str
    time: datetime

    @property
    def id(self) -> str:
        """Unique per period: the FIFO deduplication id (at most 128 characters)."""
        text = f"{self.brand}/{self.source}/{self.stream}/{self.time:%Y%m%dT%H%MZ}"
        return text if len(text) <= 128 else hashlib.sha256(text.encode()).hexdigest()

    @property
    def group(self) -> str:
        """The message group: one of the source's concurrency slots, by brand.

        A brand's streams of one source share a slot, so they run one after another: they update the
        same count and top-post items, which concurrent transactions would make conflict.
        """
        slots = SOURCE_CONCURRENCY.get(self.source, 1)
        return f"{self.source}-{zlib.crc32(self.brand.encode()) % slots}"

    def body(self) -> str:
        return json.dumps(
            {"brand": self.brand, "source": self.source, "stream": self.stream, "time": utc_iso(self.time)},
            sort_keys=True,
        )

    @classmethod
    def parse(cls, body: str) -> Job:
        """Read a job message; JobError names the missing or wrong field."""
        try:
            data = json.loads(body)
        except (TypeError, ValueError):
            raise JobError("scan job body is not JSON") from None
        if not isinstance(data, dict):
            raise JobError("scan job body must be an object")
        for name in ("brand", "source", "stream", "time"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise JobError(f"scan job field {name!r} is missing or not a string")
        if data["source"] not in SOURCES:
            raise JobError(
                f"scan job field 'source' must be one of {', '.join(SOURCES)}; got {data['source']!r}"
            )
        try:
            moment = parse_iso(data["time"])
        except ValueError:
            raise JobError(f"scan job field 'time' is not ISO 8601: {data['time']!r}") from None
        return cls(brand=data["brand"], source=data["source"], stream=data["stream"], time=moment)


def period_start(moment: datetime) -> datetime:
    """The start of the 5-minute period `moment` falls in (UTC)."""
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return moment - timedelta(minutes=moment.minute % 5)


def plan_jobs(
    config: AppConfig,
    now: datetime,
    *,
    every_minutes: Mapping[str, int] | None = None,
    paused: Mapping[str, datetime | None] | None = None,
) -> list[Job]:
    """Every enabled, due, unpaused source's streams of every brand, as jobs of the period of `now`."""
    from .runtime import due
    from .sources import get_connector

    period = period_start(now)
    jobs = []
    for source in SOURCES:
        settings = config.source(source)
        if not settings.enabled:
            continue
        every = max((every_minutes or {}).get(source, 5), settings.every_minutes)
        if not due(period, every):
            continue
        until = (paused or {}).get(source)
        if until and until > now:
            logger.info("source paused by its rate limit", extra={"source": source, "until": utc_iso(until)})
            continue
        connector = get_connector(source)
        for brand in config.brands:
            jobs.extend(Job(brand.id, source, spec.key, period) for spec in connector.specs(brand, settings))
    return jobs


@dataclass
class DispatchReport:
    jobs: int = 0
    sent: int = 0
    calls: int = 0
    failed: list[str] = field(default_factory=list)
    per_source: dict[str, int] = field(default_factory=dict)


def enqueue(sqs: Any, queue_url: str, jobs: Iterable[Job]) -> DispatchReport:
    """Send the jobs, 10 per SendMessageBatch; entries SQS refuses are retried once, then reported."""
    report = DispatchReport()
    pending = list(jobs)
    report.jobs = len(pending)
    for job in pending:
        report.per_source[job.source] = report.per_source.get(job.source, 0) + 1
    for attempt in range(2):
        refused: list[Job] = []
        for start in range(0, len(pending), SEND_BATCH):
            chunk = pending[start : start + SEND_BATCH]
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": job.body(),
                        "MessageGroupId": job.group,
                        "MessageDeduplicationId": job.id,
                    }
                    for i, job in enumerate(chunk)
                ],
            )
            report.calls += 1
            report.sent += len(response.get("Successful", []))
            refused += [chunk[int(entry["Id"])] for entry in response.get("Failed", [])]
        pending = refused
        if not pending:
            break
        logger.warning("jobs refused by SQS", extra={"count": len(pending), "attempt": attempt + 1})
    report.failed = [job.id for job in pending]
    return report


def queue_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """The scan queue's URL (SCAN_QUEUE_URL), checked at cold start."""
    from .settings import SettingsError

    value = ((os.environ if env is None else env).get("SCAN_QUEUE_URL") or "").strip()
    if not value.startswith(("https://", "http://")):
        raise SettingsError(
            f"environment variable SCAN_QUEUE_URL must be the scan queue's URL; got {value!r}"
        )
    return value


def dispatch(runtime: Runtime, event: ScheduledEvent, queue_url: str) -> dict[str, Any]:
    """One dispatcher run: enqueue this period's jobs; raise DispatchError when some could not be."""
    config = runtime.config
    every = event.detail.get("every_minutes") or {}
    if not isinstance(every, dict) or not all(isinstance(v, int) for v in every.values()):
        raise ValueError("event field 'detail.every_minutes' must map source names to whole minutes")
    paused = {s: runtime.store.paused_until(s) for s in SOURCES if config.source(s).enabled}
    jobs = plan_jobs(config, event.time, every_minutes=every, paused=paused)
    report = enqueue(runtime.client("sqs"), queue_url, jobs)
    metrics.add_metric(name="JobsDispatched", unit=MetricUnit.Count, value=report.sent)
    metrics.add_metric(name="JobsNotDispatched", unit=MetricUnit.Count, value=len(report.failed))
    logger.info(
        "dispatched", extra={"jobs": report.jobs, "sent": report.sent, "per_source": report.per_source}
    )
    result = {
        "time": event.time.isoformat(),
        "period": utc_iso(period_start(event.time)),
        "jobs": report.jobs,
        "sent": report.sent,
        "calls": report.calls,
        "per_source": report.per_source,
        "paused": sorted(s for s, until in paused.items() if until and until > event.time),
    }
    if report.failed:
        raise DispatchError(
            f"{len(report.failed)} of {report.jobs} jobs could not be enqueued: {report.failed[:5]}"
        )
    return result


# ---------------------------------------------------------------------- the worker


def scan_job(runtime: Runtime, job: Job, http: Any, config: AppConfig) -> ScanReport:
    """Scan one job's stream with the scheduled scan's own code; JobFailed when the stream failed."""
    from .scan import scan_source

    report = scan_source(
        job.source,
        job.time,
        config=config,
        store=runtime.store,
        http=http,
        credentials=runtime.credentials_for(config),
        brand_id=job.brand,
        stream=job.stream,
        comprehend=lambda: runtime.client("comprehend"),
    )
    if report.failed and not report.paused_until:
        errors = "; ".join(e for r in report.failed for e in r.errors)
        raise JobFailed(f"{job.id}: {errors}"[:1000])
    return report


def scan_batch(runtime: Runtime, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scan an SQS batch of jobs; failed ones come back as `batchItemFailures` for SQS to redeliver."""
    from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response

    from .http import HttpClient
    from .observability import separate_metrics

    remaining = context.get_remaining_time_in_millis()
    deadline = time.monotonic() + max(JOB_MIN_SECONDS, (remaining - JOB_SAFETY_MS) / 1000)
    http = HttpClient(session=runtime.http_session, deadline=deadline)
    config = runtime.config
    totals: dict[str, dict[str, int]] = {}

    def count(source: str, **values: int) -> None:
        row = totals.setdefault(source, {})
        for name, value in values.items():
            row[name] = row.get(name, 0) + value

    def handle(record: Any) -> None:
        job = Job.parse(record.body)
        if time.monotonic() + JOB_MIN_SECONDS > deadline:
            raise JobFailed(f"{job.id}: not started, the invocation's time is spent")
        try:
            report = scan_job(runtime, job, http, config)
        except JobFailed:
            count(job.source, JobsFailed=1, ScanSucceeded=0)
            raise
        count(
            job.source,
            JobsScanned=1,
            MentionsFetched=sum(r.fetched for r in report.reports),
            MentionsStored=report.stored,
            ScanSucceeded=0 if report.paused_until else 1,
        )

    # FIFO: after a failure the rest of that message group is handed back unprocessed, in order;
    # the other groups (other sources, other slots) in the batch go on.
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    response = process_partial_response(
        event=event, record_handler=handle, processor=processor, context=context
    )
    for source, values in totals.items():
        # one EMF document per source: the batch mixes sources, the shared Metrics has one dimension set
        source_metrics = separate_metrics()  # the stage dimension like every metric
        source_metrics.add_dimension(name="source", value=source)
        for name, value in values.items():
            source_metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        source_metrics.flush_metrics()
    logger.info(
        "batch scanned",
        extra={
            "records": len(event.get("Records", [])),
            "failed": len(response.get("batchItemFailures", [])),
            "requests": http.requests_made,
        },
    )
    return response
