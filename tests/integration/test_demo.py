"""End to end: `make demo`'s run, shortened, in a fresh process (it starts its own moto server)."""

from __future__ import annotations

import email
import json
import subprocess
import sys
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_detects_the_fire_once_and_writes_what_people_receive(tmp_path: Path) -> None:
    # Given the default simulated span, Tuesday 12:00 to Thursday 08:00 (the fire starts Wednesday 14:00)
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "sim.demo", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())

    # Then both sources stored mentions, without source errors
    assert summary["mentions_stored"]["hackernews"] > 100
    assert summary["mentions_stored"]["feed"] > 10
    assert summary["source_errors"] == 0
    # one incident, alerted once, within an hour of the fire starting, then escalated and resolved
    assert summary["incidents"] == 1
    kinds = [line.split()[4].rstrip(":") for line in summary["alerts"]]
    assert kinds[0] == "opened" and kinds[-1] == "resolved" and kinds.count("opened") == 1
    assert 0 <= summary["alert_delay_minutes"] <= 10
    # every chat channel and the signed webhook got the fire once, its escalations, and one all-clear;
    # PagerDuty (routed from severity high) triggers under one dedup key and resolves once
    channels = {name: line.split(", ") for name, line in summary["channels"].items()}
    for name in ("slack", "teams", "webhook"):
        assert channels[name][0] == "opened" and channels[name].count("opened") == 1, channels
        assert channels[name][-1] == "resolved" and channels[name].count("resolved") == 1, channels
        assert set(channels[name][1:-1]) <= {"escalated"}, channels
    assert channels["slack"] == channels["teams"] == channels["webhook"] == kinds  # as the SNS topic
    assert channels["pagerduty"][-1] == "resolve" and channels["pagerduty"].count("resolve") == 1
    assert set(channels["pagerduty"][:-1]) == {"trigger"}
    alerts = sorted((out / "alerts").iterdir())
    assert len(alerts) == len(summary["alerts"])
    first = alerts[0].read_text()
    assert first.startswith("Subject: ") and "Acme Widgets" in first
    assert "news.ycombinator.com/item?id=" in first

    # and the daily digests SES accepted are readable as .eml and .html
    emls = sorted(out.glob("digest-daily-*.eml"))
    assert [p.stem for p in emls] == ["digest-daily-2026-11-17", "digest-daily-2026-11-18"]
    message = email.message_from_string(emls[-1].read_text(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert "Acme Widgets" in message["Subject"]
    html = emls[-1].with_suffix(".html").read_text()
    assert "<table" in html and "Acme Widgets" in html
    # the printed summary names the fire and the first alert
    assert "Fire started" in run.stdout and "First alert" in run.stdout
