"""`make demo`: a simulated week of Emberwatch on this machine, with no AWS account and no network.

A moto server on loopback plays AWS, with the resources created from infra/template.yaml; a
local HTTP server plays Hacker News (Algolia) and a Google Alerts feed with a generated week
of traffic and a fire in it. The real handlers run in-process, driven by the scheduled events
EventBridge Scheduler would send (every 5 minutes per source, detection every 5 minutes, the
digest daily at 08:00 UTC). What people would receive lands in out/.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import importlib.util
import io
import json
import logging
import math
import os
import shutil
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SENDER = "digest@acme.example"
RECIPIENT = "care-lead@acme.example"
DIGEST_HOUR = 8
STEP = timedelta(minutes=5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config_yaml(base_url: str) -> str:
    return f"""\
# The configuration the demo pushes to SSM, as `emberwatch config push` would.
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
    feeds:
      - {base_url}/alerts/feeds/00651117406639347610/11001411275176557724
sources:
  hackernews:
    base_url: {base_url}/hn/api/v1
  feed: {{}}
detection:
  window_minutes: 30
  min_mentions: 12
recipients:
  - email: {RECIPIENT}
    name: Care Lead
    brands: [acme]
    cadence: daily
    timezone: UTC
alert_link: https://runbooks.acme.example/social-fire
# every alert to the SNS topic (email/SMS on-call) and the chat channels; PagerDuty from severity high
channels:
  slack: {{type: slack, secret: emberwatch/dev/channels/slack}}
  teams: {{type: teams, secret: emberwatch/dev/channels/teams}}
  pagerduty: {{type: pagerduty, secret: emberwatch/dev/channels/pagerduty}}
  webhook: {{type: webhook, secret: /emberwatch/dev/channels/webhook}}
routing:
  - channels: [sns, slack, teams, webhook]
  - min_severity: high
    channels: [pagerduty]
"""


@dataclass
class LocalContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 240_000


def _load_handler(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"demo_{name}_app", ROOT / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Progress:
    def __init__(self, total: int, stream: Any = sys.stderr) -> None:
        self.total = total
        self.stream = stream
        self.interactive = stream.isatty()
        self.last_percent = -1

    def update(self, done: int, label: str) -> None:
        percent = int(100 * done / self.total)
        if self.interactive:
            bar = "#" * (percent // 4)
            self.stream.write(f"\r  [{bar:<25}] {percent:3d}%  {label}   ")
            self.stream.flush()
        elif percent // 10 != self.last_percent // 10:
            self.stream.write(f"  {percent:3d}%  {label}\n")
        self.last_percent = percent

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")


def use_local_aws(endpoint: str) -> None:
    """Point every boto3 client of this process at the local moto server, with fake credentials."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "POWERTOOLS_METRICS_NAMESPACE": "Emberwatch",
        }
    )
    for noisy in ("POWERTOOLS_DEV", "AWS_PROFILE"):
        os.environ.pop(noisy, None)


def run(span: timedelta, out: Path, start: datetime, quiet: bool = False) -> dict[str, Any]:
    """Run the simulated span and write out/; returns the summary it prints."""
    started = time.monotonic()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    use_local_aws(endpoint)

    import boto3
    from emberwatch.events import scheduled_event
    from moto.server import ThreadedMotoServer

    from sim import motofix
    from sim.alertreceiver import AlertReceiver
    from sim.provision import provision
    from sim.sourceserver import SourceServer
    from sim.traffic import generate

    if out.exists():
        shutil.rmtree(out)
    (out / "alerts").mkdir(parents=True)
    log_file = (out / "lambda.log").open("w")

    motofix.apply()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    # traffic starts a day before the clock: the first scans backfill it (a new deployment looks
    # back 24 hours), so the detector has a baseline from the first run on
    history_start = start - timedelta(days=1)
    # the fire starts mid-afternoon of the day after the clock starts
    fire_at = start.replace(hour=14, minute=0, second=0, microsecond=0) + timedelta(days=1)
    traffic = generate(
        "Acme Widgets",
        start=history_start,
        days=max(3, math.ceil((span + timedelta(days=1)) / timedelta(days=1))),
        fire_at=fire_at,
    )
    sources = SourceServer(traffic).start()
    receiver = AlertReceiver(hmac_key=DEMO_HMAC_KEY).start()  # plays Slack, Teams, PagerDuty, a webhook
    os.environ["REQUESTS_CA_BUNDLE"] = receiver.ca_bundle  # its certificate, verified like any other
    try:
        session = boto3.Session(region_name="us-east-1")
        stack = provision(session, endpoint_url=endpoint, parameters={"SenderEmail": SENDER, "Stage": "dev"})
        session.client("sesv2").create_email_identity(EmailIdentity=SENDER)
        _channel_secrets(session, receiver.base_url)
        config_name = stack.physical["ConfigParameter"]["Ref"]
        session.client("ssm").put_parameter(
            Name=config_name, Value=_config_yaml(sources.base_url), Type="String", Overwrite=True
        )
        sqs = session.client("sqs")
        inbox = sqs.create_queue(QueueName="demo-oncall-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        session.client("sns").subscribe(
            TopicArn=stack.physical["AlertTopic"]["Ref"], Protocol="sqs", Endpoint=inbox_arn
        )

        # the three functions' environments, resolved from the template as CloudFormation would
        for logical in ("ScanFunction", "DetectFunction", "DigestFunction"):
            os.environ.update(stack.function_environment(logical))
        handlers = {name: _load_handler(name) for name in ("scan", "detect", "digest")}
        # handler logs and EMF metrics go to out/lambda.log, as they would go to CloudWatch
        for handler in logging.getLogger("emberwatch").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log_file)
        contexts = {name: LocalContext(function_name=f"emberwatch-local-{name}") for name in handlers}

        stored: dict[str, int] = {"hackernews": 0, "feed": 0}
        alerts: list[dict[str, Any]] = []
        digests: list[Path] = []
        source_errors = 0
        steps = int(span / STEP)
        progress = Progress(steps, stream=io.StringIO() if quiet else sys.stderr)

        def invoke(name: str, event: dict[str, Any]) -> dict[str, Any]:
            with contextlib.redirect_stdout(log_file):
                return handlers[name].lambda_handler(event, contexts[name])

        for step in range(1, steps + 1):
            now = start + step * STEP
            sources.now = now
            for source in ("hackernews", "feed"):
                result = invoke("scan", scheduled_event(source, now))
                for brand in result["brands"].values():
                    stored[source] += brand["stored"]
                    source_errors += len(brand["errors"])
            detect = invoke("detect", scheduled_event(None, now, kind="detect"))
            if detect["notifications"]:
                alerts.extend(_collect_alerts(sqs, inbox, out, now, len(alerts)))
            if now.hour == DIGEST_HOUR and now.minute == 0:
                invoke("digest", scheduled_event(None, now, kind="digest", period="daily"))
            progress.update(
                step, f"{now:%a %d %b %H:%M} UTC · {sum(stored.values())} mentions · {len(alerts)} alerts"
            )
        progress.close()
        digests = _collect_digests(out)
    finally:
        sources.stop()
        receiver.stop()
        moto.stop()
        log_file.close()

    first_alert = next((a for a in alerts if a["kind"] == "opened"), None)
    summary = {
        "simulated": f"{start:%a %d %b %Y %H:%M} to {start + span:%a %d %b %Y %H:%M} UTC",
        "mentions_stored": stored,
        "source_errors": source_errors,
        "incidents": len([a for a in alerts if a["kind"] == "opened"]),
        "alerts": [f"{a['time']:%a %d %b %H:%M} {a['kind']}: {a['file']}" for a in alerts],
        "fire_started": f"{traffic.fire_at:%a %d %b %H:%M} UTC",
        "first_alert": f"{first_alert['time']:%a %d %b %H:%M} UTC" if first_alert else None,
        "alert_delay_minutes": int((first_alert["time"] - traffic.fire_at).total_seconds() // 60)
        if first_alert
        else None,
        "digests": [str(p) for p in digests],
        "channels": _channel_summary(receiver.received),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _collect_alerts(sqs: Any, queue_url: str, out: Path, now: datetime, already: int) -> list[dict[str, Any]]:
    """Read what the alert topic delivered to the on-call inbox queue and write one file per alert."""
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            envelope = json.loads(message["Body"])
            kind = envelope.get("MessageAttributes", {}).get("kind", {}).get("Value", "alert")
            path = out / "alerts" / f"{already + len(found) + 1:02d}-{now:%a-%H%M}-{kind}.txt"
            path.write_text(f"Subject: {envelope.get('Subject', '')}\n\n{envelope['Message']}")
            found.append({"time": now, "kind": kind, "file": str(path)})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


DEMO_HMAC_KEY = b"demo-webhook-signing-key"


def _channel_secrets(session: Any, base_url: str) -> None:
    """The channels' URLs and keys, where a deployment keeps them: Secrets Manager and SSM."""
    secrets = session.client("secretsmanager")
    for name, value in (
        ("slack", {"url": f"{base_url}/slack"}),
        ("teams", {"url": f"{base_url}/teams"}),
        ("pagerduty", {"routing_key": "demo0routing0key", "url": f"{base_url}/pagerduty/v2/enqueue"}),
    ):
        secrets.create_secret(Name=f"emberwatch/dev/channels/{name}", SecretString=json.dumps(value))
    session.client("ssm").put_parameter(
        Name="/emberwatch/dev/channels/webhook",
        Value=json.dumps({"url": f"{base_url}/webhook", "hmac_key": DEMO_HMAC_KEY.decode()}),
        Type="SecureString",
    )


def _channel_summary(received: list[Any]) -> dict[str, str]:
    """Per channel, the notifications it received in order (PagerDuty: trigger / resolve)."""
    words = {"fire": "opened", "blind spot": "opened", "viral post": "opened", "all clear": "resolved"}
    out: dict[str, list[str]] = {}
    for item in received:
        if item.channel == "pagerduty":
            kind = item.body["event_action"]
        elif item.channel == "webhook":
            kind = item.body["kind"] + ("" if item.signature_ok else " (BAD SIGNATURE)")
        else:  # the headline: "FIRE (warning): ...", "ESCALATED (high): ...", "ALL CLEAR: ..."
            card = item.body["attachments"][0]["content"] if item.channel == "teams" else None
            headline = card["body"][0]["text"] if card else item.body["text"]
            word = headline.split(":")[0].split(" (")[0].lower()
            kind = words.get(word, word)
        out.setdefault(item.channel, []).append(kind)
    return {name: ", ".join(kinds) for name, kinds in out.items()}


def _collect_digests(out: Path) -> list[Path]:
    """Read back the emails SES accepted (the moto server runs in this process) as .eml and .html."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    paths = []
    for message in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages:
        raw = getattr(message, "raw_data", None)
        if not raw:
            continue
        parsed = email.message_from_string(raw, policy=policy.default)
        kind, day = str(parsed["X-Emberwatch-Period"]).split()
        base = out / f"digest-{kind}-{day}"
        base.with_suffix(".eml").write_text(raw)
        html_part = parsed.get_body(preferencelist=("html",))
        if html_part is not None:
            base.with_suffix(".html").write_text(html_part.get_content())
        paths.append(base.with_suffix(".html"))
    return paths


def parsedate(value: str) -> datetime:
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(value).astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--hours", type=int, default=44, help="simulated hours (default 44: Tuesday 12:00 to Thursday 08:00)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="where to write what people receive")
    parser.add_argument(
        "--start",
        default="2026-11-17T12:00:00+00:00",
        help="simulated start (UTC); traffic begins a day earlier",
    )
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start).astimezone(UTC)
    span = timedelta(hours=args.hours)
    print(
        f"Emberwatch demo: {args.hours} simulated hours, moto server on loopback, "
        f"recorded sources; writing {args.out}/"
    )
    summary = run(span, args.out, start)
    print()
    print(f"Simulated      {summary['simulated']}")
    print("Stored         " + ", ".join(f"{k}: {v}" for k, v in summary["mentions_stored"].items()))
    print(f"Incidents      {summary['incidents']}")
    print(f"Fire started   {summary['fire_started']}")
    print(
        f"First alert    {summary['first_alert']} "
        f"({summary['alert_delay_minutes']} min after the fire started)"
    )
    print("Channels       (what each received: opened / escalated / resolved)")
    for name, line in summary["channels"].items():
        print(f"  {name:<10} {line}")
    print("Alerts (SNS)")
    for line in summary["alerts"]:
        print(f"  {line}")
    print("Digests")
    for path in summary["digests"]:
        print(f"  {path} (and .eml)")
    print(f"Done in {summary['seconds']} s. Handler logs and metrics: {args.out}/lambda.log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
