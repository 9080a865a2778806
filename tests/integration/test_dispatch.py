"""Queue mode: the dispatcher's jobs on the template's FIFO queue, the scan worker's partial responses."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import emberwatch.scan as scan_module
import pytest
import responses
from emberwatch.dispatch import SOURCE_CONCURRENCY, Job, JobError, period_start
from emberwatch.events import scheduled_event
from emberwatch.runtime import due

from sim.scale import lambda_sqs_event, poll
from tests.conftest import ROOT, push_config
from tests.integration.test_scan_handler import HN_URL, empty_page, hn_page

NOW = datetime(2024, 5, 13, 14, 31, 7, tzinfo=UTC)
BRANDS = 5
QUERY_STREAMS = 2  # '"acme widgets" OR acmewidgets': Algolia has no OR, so two searches


def config(brands: int = BRANDS, extra: str = "") -> str:
    lines = ["brands:"]
    for i in range(brands):
        lines += [
            f"  - id: b{i}",
            f"    name: Brand {i}",
            "    queries: ['\"acme widgets\" OR acmewidgets']",
            f"    feeds: [https://alerts.example/feeds/{i}]",
        ]
    lines += [
        "sources:",
        "  hackernews: {base_url: https://hn.example/api/v1}",
        "  feed: {}",
        "  mastodon: {enabled: false}",
        extra or "  stackexchange: {enabled: false}",
    ]
    return "\n".join(lines) + "\n"


def load(name: str, logical: str, stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in stack.function_environment(logical).items():
        monkeypatch.setenv(key, value)
    module_name = f"emberwatch_{name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message on the queue (received and left in flight)."""
    found = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", []):
        found += batch
    return found


@pytest.fixture
def queue(stack: Any, aws: Any) -> tuple[Any, str, str]:
    return aws.client("sqs"), stack.physical["ScanQueue"]["Ref"], stack.physical["ScanQueue"]["Arn"]


def test_template_queue_is_fifo_with_a_redrive_to_its_dead_letter_queue(stack, queue):
    sqs, url, _ = queue
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true"
    assert attributes["VisibilityTimeout"] == "540"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": stack.physical["ScanDeadLetterQueue"]["Arn"],
        "maxReceiveCount": 3,
    }


def test_dispatcher_enqueues_one_job_per_stream_and_a_retried_dispatcher_adds_none(
    stack, aws, queue, monkeypatch, lambda_context
):
    # Given 5 brands with Hacker News (two streams each) and one feed each
    push_config(aws, stack, config())
    app = load("dispatch", "DispatchFunction", stack, monkeypatch)
    sqs, url, _ = queue

    # When the schedule runs the dispatcher, then retries it within the period
    first = app.lambda_handler(scheduled_event(None, NOW, kind="dispatch"), lambda_context)
    second = app.lambda_handler(
        scheduled_event(None, NOW + timedelta(seconds=40), kind="dispatch"), lambda_context
    )

    # Then the queue holds each (brand, source, stream) once, in its source's message groups
    expected = BRANDS * (QUERY_STREAMS + 1)
    assert first["jobs"] == second["jobs"] == expected
    assert first["per_source"] == {"hackernews": BRANDS * QUERY_STREAMS, "feed": BRANDS}
    assert first["calls"] == -(-expected // 10)  # SendMessageBatch, 10 per call
    messages = drain(sqs, url)
    jobs = [Job.parse(m["Body"]) for m in messages]
    assert len(jobs) == expected
    assert len({(j.brand, j.source, j.stream) for j in jobs}) == expected
    assert {j.time for j in jobs} == {period_start(NOW)} == {datetime(2024, 5, 13, 14, 30, tzinfo=UTC)}
    for message, job in zip(messages, jobs, strict=True):
        assert message["Attributes"]["MessageDeduplicationId"] == job.id
        group = message["Attributes"]["MessageGroupId"]
        source, slot = group.rsplit("-", 1)
        assert source == job.source and 0 <= int(slot) < SOURCE_CONCURRENCY[source]


def test_paused_and_not_due_sources_are_not_dispatched(stack, aws, store, queue, monkeypatch, lambda_context):
    # Given Hacker News paused by its rate limit until after the period, and Stack Exchange every 15 minutes
    push_config(aws, stack, config(extra="  stackexchange: {base_url: https://se.example/2.3}"))
    store.pause("hackernews", NOW + timedelta(minutes=20), "HTTP 429")
    app = load("dispatch", "DispatchFunction", stack, monkeypatch)

    def dispatch(at: datetime) -> dict[str, Any]:
        event = scheduled_event(None, at, kind="dispatch", every_minutes={"stackexchange": 15})
        return app.lambda_handler(event, lambda_context)

    # When the dispatcher runs at 14:31 (the 14:30 period: due for a 15-minute source) and at 14:36
    at_1430, at_1435 = dispatch(NOW), dispatch(NOW + timedelta(minutes=5))

    # Then Hacker News is skipped in both, Stack Exchange enqueued only in the first of its interval
    assert at_1430["paused"] == ["hackernews"] and "hackernews" not in at_1430["per_source"]
    assert at_1430["per_source"] == {"feed": BRANDS, "stackexchange": BRANDS * QUERY_STREAMS}
    assert at_1435["per_source"] == {"feed": BRANDS}
    assert due(datetime(2024, 5, 13, 14, 45, tzinfo=UTC), 15)
    assert not due(datetime(2024, 5, 13, 14, 50, tzinfo=UTC), 15)


def test_bad_job_body_is_a_batch_item_failure_naming_the_field(stack, aws, monkeypatch, lambda_context):
    push_config(aws, stack, config(1))
    app = load("scan", "ScanWorkerFunction", stack, monkeypatch)
    good = Job("b0", "feed", "nonexistent-stream", period_start(NOW))
    event = lambda_sqs_event(
        [
            _message(
                "m-bad",
                json.dumps({"brand": "b0", "source": "myspace", "stream": "s", "time": "x"}),
                "feed-0",
            ),
            _message("m-good", good.body(), "feed-1"),
        ],
        "arn:aws:sqs:us-east-1:123456789012:q.fifo",
    )
    # a stream the configuration no longer has is done (nothing to scan); the bad body is reported
    assert app.queue_handler(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    with pytest.raises(JobError, match="'source' must be one of"):
        Job.parse(event["Records"][0]["body"])


def _message(message_id: str, body: str, group: str) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": body,
        "MD5OfBody": "0" * 32,
        "Attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": group, "SentTimestamp": "0"},
    }


EMPTY_FEED = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<id>tag:alerts.example,2024:feed</id><title>Alerts</title><updated>2024-05-13T14:00:00Z</updated></feed>"
)


@responses.activate
def test_every_job_is_scanned_once_and_a_failed_job_is_retried_without_duplicates(
    stack, aws, store, queue, monkeypatch, lambda_context
):
    # Given 5 brands on Hacker News and feeds; the first `acmewidgets` search fails with HTTP 400
    push_config(aws, stack, config())
    failing = {"left": 1}

    def hn(request):
        query = parse_qs(urlsplit(request.url).query).get("query", [""])[0]  # a re-read has none
        if query == "acmewidgets" and failing["left"]:
            failing["left"] -= 1
            return 400, {"Content-Type": "application/json"}, json.dumps({"message": "bad", "status": 400})
        body = hn_page() if query == '"acme widgets"' else empty_page()
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    responses.add_callback(responses.GET, HN_URL, callback=hn)
    for i in range(BRANDS):
        responses.add(
            responses.GET,
            f"https://alerts.example/feeds/{i}",
            body=EMPTY_FEED,
            content_type="application/atom+xml",
        )
    dispatcher = load("dispatch", "DispatchFunction", stack, monkeypatch)
    worker = load("scan", "ScanWorkerFunction", stack, monkeypatch)
    scans: list[tuple[str, str, str]] = []
    real_scan = scan_module.scan_source

    def counting_scan(source, now, **kwargs):
        scans.append((kwargs["brand_id"], source, kwargs["stream"]))
        return real_scan(source, now, **kwargs)

    monkeypatch.setattr(scan_module, "scan_source", counting_scan)
    sqs, url, arn = queue

    # When the dispatcher runs and Lambda's poller feeds the worker until the queue is empty
    dispatched = dispatcher.lambda_handler(scheduled_event(None, NOW, kind="dispatch"), lambda_context)
    seen: list[dict[str, Any]] = []

    def invoke(_: int, event: dict[str, Any]) -> dict[str, Any]:
        seen.append(worker.queue_handler(event, lambda_context))
        return seen[-1]

    def empty() -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(v == "0" for v in attributes.values())

    stats = poll(sqs, url, arn, invoke, workers=1, stop_when=empty, timeout_s=60)

    # Then the failed job came back in the partial batch response format and was retried
    failures = [f for r in seen for f in r["batchItemFailures"]]
    assert failures and all(set(f) == {"itemIdentifier"} and f["itemIdentifier"] for f in failures)
    assert stats.failures == len(failures)
    # every job was scanned to success once: the failed stream twice in all (its first attempt failed);
    # its group-mates behind it were handed back unstarted (FIFO order), so they were scanned once
    jobs = BRANDS * (QUERY_STREAMS + 1)
    assert stats.scanned == dispatched["jobs"] == jobs
    per_stream = {s: scans.count(s) for s in scans}
    assert len(per_stream) == jobs
    assert sorted(per_stream.values()) == [1] * (jobs - 1) + [2]
    assert drain(sqs, stack.physical["ScanDeadLetterQueue"]["Ref"]) == []
    # and each brand holds the two Hacker News mentions once, counted once: the retry stored nothing twice
    start = datetime(2024, 5, 13, tzinfo=UTC)
    for i in range(BRANDS):
        assert len(list(store.mentions_between(f"b{i}", start, NOW))) == 2
        assert sum(b.mentions for b in store.counts(f"b{i}", start, NOW)) == 2


def test_scale_run_5_brands_x_8_sources_scans_every_job_once_within_the_period(tmp_path):
    # Given sim.scale's setup (moto server, template resources, 8 sources in their real formats)
    # with 5 brands, 3 source requests answered with HTTP 400
    out = tmp_path / "scale.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.scale",
            "--brands",
            "5",
            "--workers",
            "4",
            "--fail",
            "3",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads(out.read_text())
    # Then every enabled source got jobs, each job was scanned to success once and nothing was dead-lettered
    assert set(summary["jobs_per_source"]) == {
        "hackernews", "feed", "stackexchange", "mastodon", "x", "reddit", "bluesky", "youtube"
    }  # fmt: skip
    assert summary["scanned"] == summary["jobs"] == 5 * 14
    assert summary["failed_attempts"] >= 3 and summary["dead_lettered"] == 0
    # the retried jobs stored nothing twice: every brand (same terms, same traffic) holds the same mentions
    assert (
        len(summary["mentions_per_brand"]) == 1
        and summary["mentions"] == 5 * summary["mentions_per_brand"][0]
    )
    assert all(n <= 4 for n in summary["max_concurrent_jobs_by_source"].values())
    assert run.stdout.splitlines()[-1].startswith(f"scale jobs={summary['jobs']} scanned={summary['jobs']} ")
