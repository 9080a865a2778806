"""`emberwatch detect`: CSV in, `timestamp,score,alert` out for every row, streaming, causal."""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from emberwatch.config import Detection
from emberwatch.detect import StreamDetector
from emberwatch.detect_cli import add_arguments, rules_from, run

ROOT = Path(__file__).resolve().parents[2]
RULES = Detection()
START = datetime(2024, 5, 6, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def normal_then_burst(days: int = 2, burst: int = 40) -> list[tuple[str, int]]:
    """Four mentions an hour (one every 15 minutes) for `days` days, then `burst` in ten minutes."""
    rows = [(stamp(START + timedelta(minutes=15 * i)), 1) for i in range(days * 96)]
    fire = START + timedelta(days=days, minutes=1)
    rows += [(stamp(fire + timedelta(seconds=15 * i)), 1) for i in range(burst)]
    return rows


def csv_text(rows, header: str = "timestamp,value") -> str:
    return header + "\n" + "".join(f"{t},{v}\n" for t, v in rows)


def score(text: str, rules: Detection = RULES) -> tuple[int, list[list[str]], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(io.StringIO(text), out, rules, stderr=err)
    return code, list(csv.reader(io.StringIO(out.getvalue()))), err.getvalue()


def test_every_row_gets_a_score_and_an_alert_in_order():
    rows = normal_then_burst()
    code, out, err = score(csv_text(rows))
    assert code == 0 and err == ""
    assert out[0] == ["timestamp", "score", "alert"]
    assert [r[0] for r in out[1:]] == [t for t, _ in rows]
    assert all(0.0 <= float(r[1]) <= 1.0 for r in out[1:])
    assert {r[2] for r in out[1:]} <= {"0", "1"}


def test_the_burst_alerts_and_the_normal_days_do_not():
    rows = normal_then_burst()
    _, out, _ = score(csv_text(rows))
    alerts = [int(r[2]) for r in out[1:]]
    normal, burst = alerts[: 2 * 96], alerts[2 * 96 :]
    assert not any(normal)
    assert burst[-1] == 1
    first = burst.index(1)
    assert first < 20  # rows 15 seconds apart: within the burst's first five minutes
    assert float(out[1 + 2 * 96 + first][1]) > 1 - RULES.p_value


def test_scores_are_the_stream_detectors():
    rows = normal_then_burst(days=1, burst=20)
    _, out, _ = score(csv_text(rows))
    detector = StreamDetector(RULES)
    expected = [detector.update(datetime.fromisoformat(t), v) for t, v in rows]
    assert [float(r[1]) for r in out[1:]] == [pytest.approx(s.score, abs=1e-6) for s in expected]
    assert [int(r[2]) for r in out[1:]] == [int(s.triggered) for s in expected]


def test_thresholds_from_the_options_apply():
    rows = normal_then_burst(burst=10)
    _, default, _ = score(csv_text(rows))
    _, lenient, _ = score(csv_text(rows), Detection(min_mentions=5))
    assert not any(int(r[2]) for r in default[1:])  # 10 is under the floor of 12
    assert any(int(r[2]) for r in lenient[1:])


def test_arbitrary_spacing_offsets_and_blank_lines_are_fine():
    text = (
        "timestamp,value\n"
        "2024-05-06T00:00:00Z,3\n"
        "\n"
        "2024-05-06T02:00:00+02:00,1\n"  # the same instant as the first row
        "2024-05-06T05:17:41.250+00:00,0\n"
        "2024-05-06T05:17:41.250Z,2.0\n"
        "2024-05-09,7\n"
    )
    code, out, err = score(text)
    assert code == 0, err
    assert [r[0] for r in out[1:]] == [
        "2024-05-06T00:00:00Z",
        "2024-05-06T02:00:00+02:00",
        "2024-05-06T05:17:41.250+00:00",
        "2024-05-06T05:17:41.250Z",
        "2024-05-09",
    ]


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("2024-05-06T03:00:00Z,lots", "line 4: value 'lots' is not a number"),
        ("yesterday,3", "line 4: bad timestamp 'yesterday'"),
        (
            "2024-05-06T00:30:00Z,3",
            "line 4: timestamp 2024-05-06T00:30:00Z is earlier than the row before it",
        ),
        ("2024-05-06T03:00:00Z,-2", "line 4: value '-2' is not a count"),
        ("2024-05-06T03:00:00Z,nan", "line 4: value 'nan' is not a count"),
        ("2024-05-06T03:00:00Z,3,extra", "line 4: expected 2 fields (timestamp,value), got 3"),
    ],
)
def test_a_bad_row_stops_with_its_line_number_after_the_rows_before_it(bad_row, message):
    text = "timestamp,value\n2024-05-06T00:00:00Z,1\n2024-05-06T01:00:00Z,2\n" + bad_row + "\n"
    text += "2024-05-06T04:00:00Z,1\n"
    code, out, err = score(text)
    assert code == 2
    assert err.startswith("emberwatch detect: ") and message in err
    assert [r[0] for r in out] == ["timestamp", "2024-05-06T00:00:00Z", "2024-05-06T01:00:00Z"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: no input"),
        ("time,count\n2024-05-06T00:00:00Z,1\n", "line 1: expected the header timestamp,value"),
        ("2024-05-06T00:00:00Z,1\n", "line 1: expected the header timestamp,value"),
    ],
)
def test_a_missing_or_wrong_header_is_a_usage_error(text, message):
    code, out, err = score(text)
    assert code == 2 and message in err and out == []


def test_header_is_case_and_space_insensitive_and_a_bom_is_ignored():
    code, out, _ = score("\ufeffTimestamp , Value\n2024-05-06T00:00:00Z,1\n")
    assert code == 0 and len(out) == 2


class LazyLines:
    """stdin that checks, before each line is handed out, that the previous ones were answered."""

    def __init__(self, lines: list[str], out: io.StringIO) -> None:
        self.lines, self.out, self.given = lines, out, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        answered = self.out.getvalue().count("\n")
        # the header line and every data row handed out so far have their output line already
        assert answered >= self.given, f"line {self.given} not answered before reading more"
        if self.given == len(self.lines):
            raise StopIteration
        self.given += 1
        return self.lines[self.given - 1]


def test_output_streams_row_by_row():
    rows = normal_then_burst(days=1, burst=5)
    out = io.StringIO()
    lines = csv_text(rows).splitlines(keepends=True)
    assert run(LazyLines(lines, out), out, RULES, stderr=io.StringIO()) == 0
    assert out.getvalue().count("\n") == len(lines)


def test_options_default_to_the_configuration_defaults_and_are_validated():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert rules_from(parser.parse_args([])) == Detection()
    custom = rules_from(
        parser.parse_args(["--min-count", "5", "--p-value", "0.01", "--ratio", "2", "--window-minutes", "60"])
    )
    assert (custom.min_mentions, custom.p_value, custom.min_ratio, custom.window_minutes) == (
        5,
        0.01,
        2.0,
        60,
    )
    for bad, name in [
        (["--window-minutes", "7"], "--window-minutes"),
        (["--min-count", "0"], "--min-count"),
        (["--p-value", "0"], "--p-value"),
        (["--ratio", "0.5"], "--ratio"),
        (["--baseline-days", "40"], "--baseline-days"),
    ]:
        with pytest.raises(ValueError, match=name):
            rules_from(parser.parse_args(bad))


def test_the_command_over_stdin_and_stdout():
    rows = normal_then_burst()
    done = subprocess.run(
        [sys.executable, "-m", "emberwatch.detect_cli", "--min-count", "10"],
        input=csv_text(rows) + "2024-05-01T00:00:00Z,1\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"line {len(rows) + 2}: timestamp 2024-05-01T00:00:00Z is earlier" in done.stderr
    out = list(csv.reader(io.StringIO(done.stdout)))
    assert len(out) == len(rows) + 1 and out[-1][2] == "1"
