"""`make scale`: queue mode at scale on this machine: 100 brands x 8 sources in one 5-minute period.

A moto server on loopback plays AWS with the resources of infra/template.yaml (the scan jobs'
FIFO queue and its dead-letter queue included). The dispatcher handler runs once; then worker
threads play Lambda's SQS poller: each receives up to 10 jobs from the moto queue, hands them to
the scan function's `queue_handler` as Lambda's SQS event, deletes what succeeded and returns the
reported `batchItemFailures` to the queue. SQS itself bounds each source's concurrency through the
message groups. The sources are served on loopback in their APIs' real formats: Hacker News and
Google Alerts from the generated traffic (sim/sourceserver.py), Stack Exchange, Mastodon, X,
Reddit, Bluesky and YouTube from the recorded responses in tests/fixtures.

Last line: `scale jobs=<N> scanned=<N> failed=<N> mentions=<N> wall_s=<s>`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sim.demo import _free_port, use_local_aws

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
# the recorded responses were captured around this time; the period is set just after it
NOW = datetime(2024, 5, 13, 14, 30, tzinfo=UTC)
PERIOD_SECONDS = 300
SOURCES = ("hackernews", "feed", "stackexchange", "mastodon", "x", "reddit", "bluesky", "youtube")
CREDENTIALS = {
    "x": {"bearer_token": "scale-run-bearer"},
    "reddit": {
        "client_id": "scale-run-client",
        "client_secret": "scale-run-secret",
        "user_agent": "python:emberwatch-scale:0.1 (by /u/emberwatch)",
    },
    "bluesky": {"identifier": "scale.bsky.social", "app_password": "scale-run-app-password"},
    "youtube": {"api_key": "scale-run-key"},
}


# ---------------------------------------------------------------------- recorded sources


def _fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


def _jwt(exp: int, scope: str) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part({'scope': scope, 'exp': exp})}.c2ln"


class RecordedSources:
    """Serves each API's recorded first page (its pagination marker removed, so a job reads one page).

    Paths: /se/2.3, /mastodon, /x/2, /reddit, /bsky, /yt/youtube/v3, as the sources' `base_url`.
    `fail_next(n)` answers the next n searches with HTTP 400 (not retried by the HTTP client).
    """

    def __init__(self) -> None:
        x_page = _fixture("x/search_page1.json")
        x_page["meta"].pop("next_token", None)
        se_page = {**_fixture("stackexchange/search_page1.json"), "has_more": False}
        bsky_page = _fixture("bluesky/search_page1.json")
        bsky_page.pop("cursor", None)
        reddit_page = _fixture("reddit/search_page1.json")
        reddit_page["data"]["after"] = None
        yt_page = _fixture("youtube/search_page1.json")
        yt_page.pop("nextPageToken", None)
        exp = int(time.time()) + 7200
        self.routes: dict[tuple[str, str], Any] = {
            ("GET", "/se/2.3/search/advanced"): se_page,
            ("GET", "/x/2/tweets/search/recent"): x_page,
            ("GET", "/bsky/xrpc/app.bsky.feed.searchPosts"): bsky_page,
            ("POST", "/bsky/xrpc/com.atproto.server.createSession"): {
                "accessJwt": _jwt(exp, "com.atproto.access"),
                "refreshJwt": _jwt(exp + 86400, "com.atproto.refresh"),
                "did": "did:plc:scalerun",
                "handle": "scale.bsky.social",
                "active": True,
            },
            ("POST", "/reddit/api/v1/access_token"): _fixture("reddit/token.json"),
            ("GET", "/reddit/search"): reddit_page,
            ("GET", "/yt/youtube/v3/search"): yt_page,
            ("GET", "/yt/youtube/v3/videos"): _fixture("youtube/videos.json"),
            # the watched posts' re-reads (scan.refresh_watched) are answered with the same items
            ("GET", "/reddit/api/info"): reddit_page,
            ("GET", "/x/2/tweets"): {k: v for k, v in x_page.items() if k in ("data", "includes")},
            ("GET", "/bsky/xrpc/app.bsky.feed.getPosts"): {"posts": bsky_page["posts"]},
        }
        self.se_page = se_page
        self.mastodon_tag = _fixture("mastodon/tag_page1.json")
        self.requests: Counter[str] = Counter()
        self._failures = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._failures += n

    def answer(self, method: str, path: str, query: str = "") -> tuple[int, Any]:
        with self._lock:
            self.requests[path.split("/")[1]] += 1
            failing = self._failures > 0 and method == "GET"
            if failing:
                self._failures -= 1
        if failing:
            return 400, {"error": "simulated failure", "status": 400}
        if method == "GET" and path.startswith("/mastodon/api/v1/timelines/tag/"):
            # the next page (max_id below the recorded page) is empty: the pass is complete
            return 200, [] if "max_id=" in query else self.mastodon_tag
        if method == "GET" and path.startswith("/mastodon/api/v1/statuses/"):
            wanted = path.rsplit("/", 1)[1]
            found = [s for s in self.mastodon_tag if str(s.get("id")) == wanted]
            return (200, found[0]) if found else (404, {"error": "Record not found"})
        if method == "GET" and path.startswith("/se/2.3/questions/"):
            return 200, self.se_page
        body = self.routes.get((method, path))
        return (200, body) if body is not None else (404, {"error": f"no such endpoint: {path}"})

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> RecordedSources:
        sources = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _respond(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                target = urlsplit(self.path)
                status, payload = sources.answer(method, target.path, target.query)
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._respond("GET")

            def do_POST(self) -> None:
                self._respond("POST")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: thousands of requests."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def config_yaml(brands: int, hn_url: str, recorded_url: str) -> str:
    """`brands` brands watching the same terms (each stores its own copy), 8 sources on loopback."""
    lines = ["brands:"]
    for i in range(brands):
        lines += [
            f"  - id: brand-{i:03d}",
            f"    name: Brand {i:03d}",
            "    queries:",
            "      - '\"acme widgets\" OR acmewidgets'",
            "    feeds:",
            f"      - {hn_url}/alerts/feeds/00651117406639347610/11001411275176557724",
            "    hashtags: [acme]",
        ]
    lines += [
        "sources:",
        f"  hackernews: {{base_url: {hn_url}/hn/api/v1}}",
        "  feed: {}",
        f"  stackexchange: {{base_url: {recorded_url}/se/2.3}}",
        f"  mastodon: {{base_url: {recorded_url}/mastodon}}",
        f"  x: {{enabled: true, base_url: {recorded_url}/x/2}}",
        f"  reddit: {{enabled: true, base_url: {recorded_url}/reddit}}",
        f"  bluesky: {{enabled: true, base_url: {recorded_url}/bsky}}",
        f"  youtube: {{enabled: true, base_url: {recorded_url}/yt/youtube/v3}}",
        "  facebook: {enabled: false}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- Lambda's SQS poller


@dataclass
class LocalContext:
    function_name: str
    timeout_ms: int = 90_000
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int(self.timeout_ms - (time.monotonic() - self.started) * 1000)


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping sends for received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
            for m in messages
        ]
    }


@dataclass
class PollerStats:
    invocations: int = 0
    records: int = 0
    scanned: int = 0
    failures: int = 0
    errors: int = 0  # invocations that raised: their whole batch went back to the queue
    billed_ms: float = 0.0
    max_concurrent_by_source: Counter[str] = field(default_factory=Counter)


def poll(
    sqs: Any,
    queue_url: str,
    queue_arn: str,
    invoke: Any,
    *,
    workers: int,
    stop_when: Any,
    timeout_s: float = 600,
) -> PollerStats:
    """Play Lambda's poller with `workers` concurrent containers until `stop_when()` is true.

    Successes are deleted, `batchItemFailures` go back to the queue at once (the visibility
    timeout compressed to 0 s, as if it had passed); SQS's redrive moves a job received 3 times.
    """
    stats = PollerStats()
    lock = threading.Lock()
    running: Counter[str] = Counter()
    deadline = time.monotonic() + timeout_s

    def worker(index: int) -> None:
        while not stop_when() and time.monotonic() < deadline:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=540,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                time.sleep(0.25)  # Lambda long-polls; here an idle container waits a moment
                continue
            sources = Counter({json.loads(m["Body"]).get("source", "?"): 1 for m in messages})
            with lock:
                running.update(sources)
                for source in sources:
                    stats.max_concurrent_by_source[source] = max(
                        stats.max_concurrent_by_source[source], running[source]
                    )
            started = time.monotonic()
            try:
                response = invoke(index, lambda_sqs_event(messages, queue_arn))
            except Exception:
                # the function failed (Powertools raises when every record failed): the whole batch returns
                response = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
                with lock:
                    stats.errors += 1
            elapsed = time.monotonic() - started
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            with lock:
                running.subtract(sources)
                stats.invocations += 1
                stats.records += len(messages)
                stats.scanned += len(done)
                stats.failures += len(failed)
                stats.billed_ms += elapsed * 1000

    threads = [threading.Thread(target=worker, args=(i,), name=f"lambda-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats


def _load(name: str, function: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"scale_{name}_app", ROOT / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def item_bytes(item: Any) -> int:
    """An item's size as DynamoDB bills it, approximately: attribute names plus values (DynamoDB JSON)."""
    if not isinstance(item, dict):
        return 0

    def value(v: dict[str, Any]) -> int:
        ((kind, data),) = v.items()
        if kind in ("S", "B"):
            return len(data.encode() if isinstance(data, str) else data)
        if kind == "N":
            return len(data) // 2 + 1
        if kind in ("L",):
            return 3 + sum(1 + value(x) for x in data)
        if kind == "M":
            return 3 + sum(len(k.encode()) + 1 + value(x) for k, x in data.items())
        if kind in ("SS", "NS", "BS"):
            return sum(len(str(x)) for x in data)
        return 1

    return sum(
        len(name.encode()) + value(v) for name, v in item.items() if isinstance(v, dict) and len(v) == 1
    )


def _units(size: int, unit: int) -> int:
    return max(1, -(-size // unit))


class CapacityMeter:
    """Counts a boto3 client's requests per service.operation, and estimates DynamoDB capacity units.

    Write units: 1 per KB of each item written (an UpdateItem counts its key and new values, a lower
    bound), doubled inside TransactWriteItems, plus one more write for a put that lands in the gsi1
    index. Read units: one per key read (items here are under 4 KB), a query 1 per 4 KB returned.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.units: Counter[str] = Counter()  # wru, wru_mentions (transactions that put mentions), rru
        self.lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.*.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)
        return client

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        wru, mentions = 0, False
        if service == "dynamodb":
            if model.name == "PutItem":
                wru = self._put(params["Item"])
            elif model.name == "UpdateItem":
                wru = _units(
                    item_bytes(params["Key"]) + item_bytes(params.get("ExpressionAttributeValues")), 1024
                )
            elif model.name == "DeleteItem":
                wru = 1
            elif model.name in ("GetItem", "BatchGetItem"):
                # a key read costs at least one unit, found or not (these items are all under 4 KB)
                tables = params.get("RequestItems", {}).values()
                keys = 1 if model.name == "GetItem" else sum(len(t["Keys"]) for t in tables)
                with self.lock:
                    self.units["rru"] += keys
            elif model.name == "TransactWriteItems":
                for action in params["TransactItems"]:
                    ((kind, body),) = action.items()
                    if kind == "Put":
                        wru += 2 * _units(item_bytes(body["Item"]), 1024)
                        wru += self._gsi(body["Item"])
                        if body["Item"].get("pk", {}).get("S", "").startswith("M#"):
                            mentions = True
                            with self.lock:
                                self.units["mention_items"] += 1
                                self.units["mention_bytes"] += item_bytes(body["Item"])
                    elif kind == "Update":
                        size = item_bytes(body["Key"]) + item_bytes(body.get("ExpressionAttributeValues"))
                        wru += 2 * _units(size, 1024)
                    else:
                        wru += 2
        with self.lock:
            self.calls[f"{service}.{model.name}"] += 1
            self.units["wru_mentions" if mentions else "wru"] += wru

    def _put(self, item: dict[str, Any]) -> int:
        return _units(item_bytes(item), 1024) + self._gsi(item)

    @staticmethod
    def _gsi(item: dict[str, Any]) -> int:
        return _units(item_bytes(item), 1024) if "gsi1pk" in item else 0

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        rru = 0.0
        if model.name == "Query":
            rru = _units(sum(item_bytes(i) for i in parsed.get("Items", [])), 4096)
        with self.lock:
            self.units["rru"] += rru


# ---------------------------------------------------------------------- the run


def run(brands: int = 100, workers: int = 8, fail: int = 3, log_path: Path | None = None) -> dict[str, Any]:
    """Dispatch once and scan every job; returns the summary (printed by main)."""
    started = time.monotonic()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    use_local_aws(endpoint)

    import boto3
    from emberwatch.events import scheduled_event
    from emberwatch.runtime import Runtime
    from moto.server import ThreadedMotoServer

    from sim import motofix
    from sim.provision import provision
    from sim.sourceserver import SourceServer
    from sim.traffic import generate

    motofix.apply()
    motofix.skip_update_checks()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    # two hours of Hacker News and Google Alerts traffic before the period (the fire is not reached)
    start = NOW - timedelta(hours=2)
    traffic = generate("Acme Widgets", start=start, days=1, fire_at=start + timedelta(hours=20))
    generated = SourceServer(traffic)
    generated.now = NOW
    generated.start()
    recorded = RecordedSources().start()
    log = io.StringIO()
    meter = CapacityMeter()
    try:
        session = boto3.Session(region_name="us-east-1")
        stack = provision(
            session,
            endpoint_url=endpoint,
            parameters={"SenderEmail": "digest@scale.example", "Stage": "dev", "ScanMode": "queue"},
        )
        session.client("ssm").put_parameter(
            Name=stack.physical["ConfigParameter"]["Ref"],
            Value=config_yaml(brands, generated.base_url, recorded.base_url),
            Type="String",
            Overwrite=True,
        )
        session.client("secretsmanager").put_secret_value(
            SecretId=stack.physical["SourceCredentialsSecret"]["Ref"], SecretString=json.dumps(CREDENTIALS)
        )
        for logical in ("ScanWorkerFunction", "DispatchFunction"):
            os.environ.update(stack.function_environment(logical))
        queue_url = stack.physical["ScanQueue"]["Ref"]
        queue_arn = stack.physical["ScanQueue"]["Arn"]
        dlq_url = stack.physical["ScanDeadLetterQueue"]["Ref"]
        dispatch_app, scan_app = _load("dispatch", "DispatchFunction"), _load("scan", "ScanWorkerFunction")
        for handler in logging.getLogger("emberwatch").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log)

        def runtime() -> Runtime:
            rt = Runtime.from_env()
            for service in ("dynamodb", "sqs"):
                meter.attach(rt.client(service))
            return rt

        # the dispatcher, as EventBridge Scheduler invokes it
        dispatcher = runtime()
        event = scheduled_event(None, NOW, kind="dispatch", every_minutes={"youtube": 5, "stackexchange": 5})
        dispatch_started = time.monotonic()
        with contextlib.redirect_stdout(log):
            dispatched = dispatch_app.lambda_handler(event, LocalContext("dispatch"), runtime=dispatcher)
        dispatch_s = time.monotonic() - dispatch_started
        dispatch_calls, dispatch_units = Counter(meter.calls), Counter(meter.units)

        recorded.fail_next(fail)  # a few jobs fail their first attempt: SQS redelivers them
        containers = [runtime() for _ in range(workers)]
        sqs = session.client("sqs")

        def invoke(index: int, sqs_event: dict[str, Any]) -> dict[str, Any]:
            return scan_app.queue_handler(sqs_event, LocalContext("scan-worker"), runtime=containers[index])

        def finished() -> bool:
            attributes = sqs.get_queue_attributes(
                QueueUrl=queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            return all(int(v) == 0 for v in attributes.values())

        scan_started, scan_cpu = time.monotonic(), time.process_time()
        # EMF metrics and the batch processor's tracebacks, as they would go to CloudWatch Logs
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            stats = poll(sqs, queue_url, queue_arn, invoke, workers=workers, stop_when=finished)
        scan_s, scan_cpu = time.monotonic() - scan_started, time.process_time() - scan_cpu
        dead = int(
            sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        table = stack.physical["MentionsTable"]["Ref"]
        per_brand = _mentions_per_brand(session.client("dynamodb"), table)
        mentions = sum(per_brand.values())
    finally:
        recorded.stop()
        generated.stop()
        moto.stop()
        log_bytes = len(log.getvalue().encode())
        if log_path:
            log_path.write_text(log.getvalue())

    wall = time.monotonic() - started
    scan_calls, scan_units = meter.calls - dispatch_calls, meter.units - dispatch_units
    summary = {
        "brands": brands,
        "sources": len(SOURCES),
        "period": NOW.isoformat(),
        "jobs": dispatched["sent"],
        "jobs_per_source": dispatched["per_source"],
        "send_batch_calls": dispatched["calls"],
        "scanned": stats.scanned,
        "failed_attempts": stats.failures,
        "dead_lettered": dead,
        "invocations": stats.invocations,
        "invocation_errors": stats.errors,
        "workers": workers,
        "max_concurrent_jobs_by_source": dict(stats.max_concurrent_by_source),
        "mentions": mentions,
        # every brand watches the same terms on the same traffic: a lost or doubled job shows here
        "mentions_per_brand": sorted(set(per_brand.values())),
        "http_requests": dict(recorded.requests) | {"generated": len(generated.requests)},
        "aws_calls_dispatch": dict(dispatch_calls),
        "aws_calls_scan": dict(scan_calls),
        "ddb_units_dispatch": {k: round(v, 1) for k, v in dispatch_units.items()},
        "ddb_units_scan": {k: round(v, 1) for k, v in scan_units.items()},
        "log_bytes": log_bytes,
        "dispatch_s": round(dispatch_s, 2),
        "scan_s": round(scan_s, 2),
        "lambda_billed_s": round(stats.billed_ms / 1000, 1),
        # this process's CPU while scanning: the workers, and moto and the source servers serving them
        "scan_cpu_s": round(scan_cpu, 1),
        "wall_s": round(wall, 1),
        "simulated": f"one {PERIOD_SECONDS // 60}-minute period from {NOW:%Y-%m-%d %H:%M} UTC",
    }
    return summary


def _mentions_per_brand(dynamodb: Any, table: str) -> Counter[str]:
    """Stored mentions per brand, read back from the table (keys `M#<brand>#<id>`)."""
    found: Counter[str] = Counter()
    kwargs: dict[str, Any] = {}
    while True:
        page = dynamodb.scan(
            TableName=table,
            ProjectionExpression="pk",
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": "M#"}},
            **kwargs,
        )
        found.update(item["pk"]["S"].split("#")[1] for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return found
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--brands", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8, help="concurrent Lambda containers (threads)")
    parser.add_argument("--fail", type=int, default=3, help="source requests answered with HTTP 400")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--log", type=Path, help="write the handlers' logs and EMF metrics here")
    args = parser.parse_args(argv)
    print(
        f"Emberwatch scale run: {args.brands} brands x {len(SOURCES)} sources, queue mode, moto on loopback"
    )
    summary = run(args.brands, args.workers, args.fail, args.log)
    for key, value in summary.items():
        print(f"  {key:<30} {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    ok = (
        summary["scanned"] + summary["dead_lettered"] == summary["jobs"]
        and summary["dead_lettered"] == 0
        and len(summary["mentions_per_brand"]) == 1
        and summary["wall_s"] < PERIOD_SECONDS
    )
    print(
        f"scale jobs={summary['jobs']} scanned={summary['scanned']} failed={summary['failed_attempts']} "
        f"mentions={summary['mentions']} wall_s={summary['wall_s']}"
    )
    if not ok:
        print("error: not every job was scanned within one 5-minute period", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
