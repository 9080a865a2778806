"""What a scan run writes for CloudWatch: EMF metrics per source with the stage, JSON logs with the run's
correlation id and the brand and source keys."""

from __future__ import annotations

import io
import json

import pytest
import responses
from emberwatch.events import scheduled_event

from tests.integration.test_scan_handler import NOW, hn_page, serve_hn


@pytest.fixture
def emf(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@responses.activate
def test_a_scan_emits_per_source_metrics_and_logs_with_the_runs_keys(
    stack, store, handler, lambda_context, emf, capsys
):
    serve_hn({'"acme widgets"': [hn_page()]}, [])
    app = handler("scan")
    capsys.readouterr()

    event = scheduled_event("hackernews", NOW)
    # the Logger's handler holds the stream it was created with (maybe before capsys): hand it a buffer
    from emberwatch.observability import logger, metrics

    metrics.clear_metrics()  # earlier tests ran with metrics disabled: nothing flushed what they added
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    try:
        app.lambda_handler(event, lambda_context)
    finally:
        logger.registered_handler.setStream(previous)

    lines = json_lines(capsys.readouterr().out) + json_lines(buffer.getvalue())
    (document,) = [line for line in lines if "_aws" in line and "MentionsStored" in line]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Emberwatch"
    assert sorted(directive["Dimensions"][0]) == ["service", "source", "stage"]
    assert (document["service"], document["source"], document["stage"]) == ("emberwatch", "hackernews", "dev")
    names = {metric["Name"] for metric in directive["Metrics"]}
    assert {"MentionsFetched", "MentionsStored", "MentionsSkipped", "SourceErrors", "ScanSucceeded"} <= names
    assert document["MentionsStored"] in (2, 2.0, [2.0]) and document["ScanSucceeded"] in (1, 1.0, [1.0])

    logs = [line for line in lines if "level" in line]
    scanned = next(line for line in logs if line["message"] == "scanned")
    # one correlation id per run (the schedule's execution id), the source on every line, brand where known
    assert {line.get("correlation_id") for line in logs} == {event["id"]}
    assert all(line.get("source") == "hackernews" for line in logs)
    assert scanned["brand"] == "acme" and scanned["stored"] == 2


def test_no_handler_imports_the_tracer():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("functions/*/app.py"), *root.glob("layers/emberwatch/emberwatch/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "import Tracer" not in text and "Tracer(" not in text, path
