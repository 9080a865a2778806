"""`emberwatch detect`: score a time series with the detector's own code, to tune thresholds on history.

Reads CSV from stdin: a `timestamp,value` header, then one row per observation in time order
(ISO 8601 timestamps, any spacing; `value` is a count of events at that time). Writes
`timestamp,score,alert` for every row, in order, as soon as the row is read: `score` is 1 - the
tail p-value of the window ending at that row (in [0, 1]) and `alert` is 1 when the volume rule
fires there, with the thresholds the Lambda uses (an incident opens at the first 1). Causal: a row's
verdict only depends on the rows before it. A bad row stops the run with its line number on stderr
and exit code 2; the rows before it have already been written.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from typing import TextIO

from .config import Detection

DEFAULTS = Detection()


class InputError(ValueError):
    """A row of the input cannot be used; the message names its line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options; each defaults to the configuration's `detection` default."""
    parser.add_argument(
        "--min-count",
        type=int,
        metavar="N",
        help="fewest events in a window that may alert "
        f"(detection.min_mentions, default {DEFAULTS.min_mentions})",
    )
    parser.add_argument(
        "--p-value",
        type=float,
        metavar="P",
        help="alert when the count is this improbable or more "
        f"(detection.p_value, default {DEFAULTS.p_value:g})",
    )
    parser.add_argument(
        "--ratio",
        type=float,
        metavar="X",
        help=f"and at least X times the expected count (detection.min_ratio, default {DEFAULTS.min_ratio:g})",
    )
    parser.add_argument(
        "--window-minutes",
        type=int,
        metavar="M",
        help="the window compared with the baseline, a multiple of 5 "
        f"(detection.window_minutes, default {DEFAULTS.window_minutes})",
    )
    parser.add_argument(
        "--baseline-days",
        type=int,
        metavar="D",
        help=f"days of history the baseline uses (detection.baseline_days, default {DEFAULTS.baseline_days})",
    )


def rules_from(args: argparse.Namespace) -> Detection:
    """Detection settings from the options; ValueError names the option that is out of range."""

    def pick(name: str, default: float) -> float:
        value = getattr(args, name, None)
        return default if value is None else value

    rules = Detection(
        window_minutes=int(pick("window_minutes", DEFAULTS.window_minutes)),
        baseline_days=int(pick("baseline_days", DEFAULTS.baseline_days)),
        min_mentions=int(pick("min_count", DEFAULTS.min_mentions)),
        min_ratio=float(pick("ratio", DEFAULTS.min_ratio)),
        p_value=float(pick("p_value", DEFAULTS.p_value)),
        escalate_factor=DEFAULTS.escalate_factor,
        resolve_after_quiet_runs=DEFAULTS.resolve_after_quiet_runs,
    )
    if not 5 <= rules.window_minutes <= 360 or rules.window_minutes % 5:
        raise ValueError("--window-minutes must be a multiple of 5 between 5 and 360")
    if not 1 <= rules.baseline_days <= 28:
        raise ValueError("--baseline-days must be between 1 and 28")
    if rules.min_mentions < 1:
        raise ValueError("--min-count must be at least 1")
    if not (math.isfinite(rules.min_ratio) and rules.min_ratio >= 1):
        raise ValueError("--ratio must be at least 1")
    if not 0 < rules.p_value <= 0.5:
        raise ValueError("--p-value must be above 0 and at most 0.5")
    return rules


def run(stdin: TextIO, stdout: TextIO, rules: Detection, stderr: TextIO | None = None) -> int:
    """Score every row of stdin onto stdout, streaming; 0 when all rows were read, 2 at a bad row."""
    try:
        _score(stdin, stdout, rules)
    except InputError as exc:
        print(f"emberwatch detect: {exc}", file=stderr or sys.stderr)
        return 2
    return 0


def _score(stdin: TextIO, stdout: TextIO, rules: Detection) -> None:
    from .detect import StreamDetector
    from .models import parse_iso

    reader = csv.reader(stdin)
    writer = csv.writer(stdout, lineterminator="\n")
    try:
        header = next(reader, None)
        if header is None:
            raise InputError("line 1: no input (expected the header timestamp,value)")
        names = [cell.strip().lstrip("\ufeff").lower() for cell in header]
        if names != ["timestamp", "value"]:
            raise InputError(f"line 1: expected the header timestamp,value, got {','.join(header)!r}")
        writer.writerow(["timestamp", "score", "alert"])
        detector = StreamDetector(rules)
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines, e.g. a trailing one
            if len(row) != 2:
                raise InputError(f"line {line}: expected 2 fields (timestamp,value), got {len(row)}")
            stamp, raw = row[0].strip(), row[1].strip()
            try:
                moment = parse_iso(stamp)
            except ValueError:
                raise InputError(
                    f"line {line}: bad timestamp {stamp!r} (expected ISO 8601, e.g. 2024-05-13T12:05:00Z)"
                ) from None
            try:
                value = float(raw)
            except ValueError:
                raise InputError(f"line {line}: value {raw!r} is not a number") from None
            if not math.isfinite(value) or value < 0:
                raise InputError(f"line {line}: value {raw!r} is not a count (a number >= 0)")
            if detector.last is not None and moment < detector.last:
                raise InputError(
                    f"line {line}: timestamp {stamp} is earlier than the row before it "
                    "(rows must be in time order)"
                )
            signal = detector.update(moment, value)
            writer.writerow([stamp, f"{signal.score:.6f}", int(signal.triggered)])
            stdout.flush()  # streaming: a reader downstream sees each verdict as it is made
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: unreadable CSV ({exc})") from None


def main(args: argparse.Namespace) -> int:
    """The `emberwatch detect` command (wired into cli.py)."""
    try:
        rules = rules_from(args)
    except ValueError as exc:
        print(f"emberwatch detect: {exc}", file=sys.stderr)
        return 2
    try:
        return run(sys.stdin, sys.stdout, rules)
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours
        # point stdout at /dev/null so the interpreter's final flush does not complain again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="emberwatch detect", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
