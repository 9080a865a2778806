"""What a Lambda container keeps between invocations, and the three jobs the handlers call.

`Runtime` creates each client once per container, lazily, so the scan never builds an SES
client and the digest never imports a connector. Tests and the local run pass their own.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .config import AppConfig
from .events import ScheduledEvent
from .lastgood import ConfigKeeper
from .observability import MetricUnit, count_invalid_config, logger, metrics
from .settings import Settings
from .store import Store

SCAN_SAFETY_MS = 20_000  # stop starting new pages this long before the Lambda timeout
SCAN_MAX_SECONDS = 240  # and never run into the next 5-minute schedule
DETECT_SAFETY_MS = 15_000  # alert sends stop retrying this long before the detect Lambda's timeout
DETECT_MAX_SECONDS = 120  # what is still failing then is carried to the next run
CONFIG_MAX_AGE = 60  # seconds the SSM configuration is cached per container
SCHEDULE_TICK = 300  # the scan schedules fire every 5 minutes


@dataclass
class Runtime:
    settings: Settings
    clients: dict[str, Any] = field(default_factory=dict)
    config_override: AppConfig | None = None
    baselines: dict[Any, Any] = field(default_factory=dict)  # detection baselines, per warm container

    @classmethod
    def from_env(cls, *, require: tuple[str, ...] = ()) -> Runtime:
        return cls(settings=Settings.from_env(require=require))

    def client(self, service: str) -> Any:
        if service not in self.clients:
            import boto3

            if service == "dynamodb":
                from .store import dynamodb_client

                self.clients[service] = dynamodb_client()
            else:
                self.clients[service] = boto3.client(service)
        return self.clients[service]

    @property
    def config(self) -> AppConfig:
        # cached by Powertools for max_age seconds: edits in SSM apply without a redeploy; an invalid
        # edit is rejected and the last good configuration kept (lastgood.py)
        return self.config_override or self.config_keeper.get()

    @cached_property
    def config_keeper(self) -> ConfigKeeper:
        from .store import Store

        def load_text(name: str) -> str:
            from aws_lambda_powertools.utilities import parameters

            return str(parameters.get_parameter(name, max_age=CONFIG_MAX_AGE))

        # its own Store: the run's store takes its retention from the configuration being loaded
        table = Store(self.settings.table_name, self.client("dynamodb"))
        return ConfigKeeper(
            self.settings.config_parameter,
            load_text=load_text,
            load_last_good=table.last_good_config,
            save_last_good=table.save_last_good_config,
            on_invalid=count_invalid_config,
        )

    @cached_property
    def store(self) -> Store:
        return Store(
            self.settings.table_name, self.client("dynamodb"), retention_days=self.config.retention_days
        )

    def credentials_for(self, config: AppConfig) -> Any:
        """The shared secret, and the own secret of each source whose configuration names one."""
        from .credentials import SecretCredentials

        own = {name: s.secret for name, s in config.sources.items() if s.secret}
        return SecretCredentials(self.settings.credentials_secret, per_source=own)

    @cached_property
    def http_session(self) -> Any:
        from .http import new_session

        return new_session()

    # ------------------------------------------------------------------ jobs

    def scan(self, event: ScheduledEvent, remaining_ms: int | None = None) -> dict[str, Any]:
        from .http import HttpClient
        from .scan import scan_source

        source = event.source()
        config = self.config  # read before the source dimension is added (ConfigInvalid has none)
        logger.append_keys(source=source, brand=event.detail.get("brand"))
        every = config.source(source).every_minutes
        if not due(event.time, every):
            logger.info("not due: the source is scanned every %d minutes", every)
            return {"source": source, "time": event.time.isoformat(), "skipped": f"every {every} minutes"}
        budget = (
            SCAN_MAX_SECONDS
            if remaining_ms is None
            else min(SCAN_MAX_SECONDS, (remaining_ms - SCAN_SAFETY_MS) / 1000)
        )
        http = HttpClient(session=self.http_session, deadline=time.monotonic() + max(1.0, budget))
        metrics.add_dimension(name="source", value=source)
        report = scan_source(
            source,
            event.time,
            config=config,
            store=self.store,
            http=http,
            credentials=self.credentials_for(config),
            brand_id=event.detail.get("brand"),
            comprehend=lambda: self.client("comprehend"),
        )
        fetched = sum(r.fetched for r in report.reports)
        metrics.add_metric(name="MentionsFetched", unit=MetricUnit.Count, value=fetched)
        metrics.add_metric(name="MentionsStored", unit=MetricUnit.Count, value=report.stored)
        metrics.add_metric(
            name="MentionsSkipped", unit=MetricUnit.Count, value=sum(r.skipped for r in report.reports)
        )
        metrics.add_metric(name="SourceErrors", unit=MetricUnit.Count, value=len(report.failed))
        # one datapoint per run: ScanStale<Source> alarms when a source has no good run for 30 minutes
        succeeded = 0 if report.failed or report.paused_until else 1
        metrics.add_metric(name="ScanSucceeded", unit=MetricUnit.Count, value=succeeded)
        return {
            "source": source,
            "time": event.time.isoformat(),
            "brands": {
                r.brand: {**r.stats(), "errors": r.errors, "complete": r.complete} for r in report.reports
            },
            "requests": http.requests_made,
            "paused_until": report.paused_until.isoformat() if report.paused_until else None,
        }

    def alert_dispatcher(self, config: AppConfig, *, budget_seconds: float = DETECT_MAX_SECONDS) -> Any:
        """The SNS alerter and the other channels (Slack, Teams, PagerDuty, webhooks) behind routing."""
        from .alerts import SnsAlerter
        from .channels import ChannelSender, Dispatcher

        topic = self.settings.alert_topic_arn
        if not topic:
            raise RuntimeError("ALERT_TOPIC_ARN is not set for the detect function")
        alerter = SnsAlerter(
            topic,
            store=self.store,
            brands={b.id: b for b in config.brands},
            link=config.alert_link or self.settings.alert_link,
            client=self.client("sns"),
        )
        deadline = time.monotonic() + max(1.0, budget_seconds)

        def http() -> Any:  # made on first use: a run that only publishes to SNS never imports requests
            from .http import HttpClient

            return HttpClient(session=self.http_session, deadline=deadline)

        sender = ChannelSender(config.channels, http=http, sns=alerter)
        return Dispatcher(config, alerter.builder, sender)

    def detect(self, event: ScheduledEvent, remaining_ms: int | None = None) -> dict[str, Any]:
        from .care import check_care
        from .detect import run_detection

        config = self.config
        budget = DETECT_MAX_SECONDS if remaining_ms is None else (remaining_ms - DETECT_SAFETY_MS) / 1000
        dispatcher = self.alert_dispatcher(config, budget_seconds=min(DETECT_MAX_SECONDS, budget))
        alerter = dispatcher.sender.sns
        report = run_detection(
            event.time, config=config, store=self.store, notify=dispatcher, baselines=self.baselines
        )
        metrics.add_metric(name="IncidentsOpened", unit=MetricUnit.Count, value=len(report.opened))
        metrics.add_metric(name="IncidentsResolved", unit=MetricUnit.Count, value=len(report.resolved))
        metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=len(report.notifications))
        metrics.add_metric(name="NotificationFailures", unit=MetricUnit.Count, value=len(report.failures))
        care = check_care(event.time, config=config, store=self.store, notify=alerter.care)
        metrics.add_metric(name="CareAlerts", unit=MetricUnit.Count, value=len(care.alerted))
        metrics.add_metric(name="MentionsWaiting", unit=MetricUnit.Count, value=care.waiting)
        return {
            "time": event.time.isoformat(),
            "opened": report.opened,
            "escalated": report.escalated,
            "resolved": report.resolved,
            "notifications": report.notifications,
            "failures": report.failures + care.failures,
            "care_alerted": care.alerted,
            "alerts": alerter.sent,
            "channels": dispatcher.sender.sent,
        }

    def digest(self, event: ScheduledEvent) -> dict[str, Any]:
        from .digest import DigestService

        sender = self.settings.sender_email
        if not sender:
            raise RuntimeError("SENDER_EMAIL is not set for the digest function")
        service = DigestService(
            config=self.config,
            store=self.store,
            sender=sender,
            ses=self.client("sesv2"),
            unsubscribe_url=os.environ.get("UNSUBSCRIBE_URL") or None,
        )
        # the hourly schedule sends no period: every recipient whose local hour it is gets theirs
        report = service.run(event.time, event.period() if "period" in event.detail else None)
        metrics.add_metric(name="DigestsSent", unit=MetricUnit.Count, value=len(report.sent))
        metrics.add_metric(name="DigestFailures", unit=MetricUnit.Count, value=len(report.failed))
        return {
            "time": event.time.isoformat(),
            "sent": len(report.sent),
            "skipped": len(report.skipped),
            "failed": report.failed,
        }


def due(moment: Any, every_minutes: int) -> bool:
    """Whether a 5-minute scan tick at `moment` is the first of its `every_minutes` interval.

    Stateless: exactly one tick of a 5-minute schedule falls into each interval, whatever the
    schedule's offset, so a source configured for every 15 minutes runs on one tick in three.
    """
    if every_minutes * 60 <= SCHEDULE_TICK:
        return True
    seconds = int(moment.timestamp())
    interval = every_minutes * 60
    return seconds // interval != (seconds - SCHEDULE_TICK) // interval
