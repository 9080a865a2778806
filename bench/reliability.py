"""`make reliability`: run the reliability suite (tests/reliability) and print what it measured.

Each case records the faults it injected, the faults it survived, and the mentions, alerts and
digests it found lost or duplicated against the ground truth (tests/reliability/ledger.py). This
prints one row per category and, last, `reliability cases=<N> lost=<N> duplicates=<N>`. The exit
status is non-zero when a case failed, lost or duplicated anything, or fewer than 200 cases ran.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIN_CASES = 200


class Collector:
    """A pytest plugin: the outcome and duration of every reliability test."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.durations: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            if report.outcome != "passed" or report.nodeid not in self.outcomes:
                self.outcomes[report.nodeid] = report.outcome
            self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.reliability import ledger

    collector = Collector()
    started = time.monotonic()
    args = [
        "-m",
        "reliability",
        "-q",
        "-p",
        "no:cacheprovider",
        "--show-capture=no",
        "-o",
        "log_level=WARNING",
    ]
    code = pytest.main([*args, *(argv or [str(ROOT / "tests" / "reliability")])], plugins=[collector])
    elapsed = time.monotonic() - started

    failed = {nodeid for nodeid, outcome in collector.outcomes.items() if outcome == "failed"}
    recorded = {entry.nodeid for entry in ledger.RESULTS}
    totals = ledger.totals()
    # a test that failed before it could record still counts: one case, failed
    for nodeid in failed - recorded:
        category = next(
            (c for c in ledger.CATEGORIES if c.split()[0] in nodeid.replace("_", " ")), "unrecorded"
        )
        row = totals.setdefault(
            category, {"cases": 0, "faults": 0, "survived": 0, "lost": 0, "duplicates": 0, "repeats": 0}
        )
        row["cases"] += 1
    failed_by_category: dict[str, int] = {}
    for entry in ledger.RESULTS:
        if entry.nodeid in failed:
            failed_by_category[entry.category] = failed_by_category.get(entry.category, 0) + 1
    seconds: dict[str, float] = {}
    for entry in ledger.RESULTS:
        seconds[entry.category] = seconds.get(entry.category, 0.0) + collector.durations.get(
            entry.nodeid, 0.0
        )

    header = (
        f"{'category':<16} {'cases':>6} {'failed':>6} {'faults':>7} {'survived':>8} "
        f"{'lost':>5} {'dups':>5} {'repeats':>7} {'secs':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for category in [*ledger.CATEGORIES, *sorted(set(totals) - set(ledger.CATEGORIES))]:
        if category not in totals:
            continue
        row = totals[category]
        print(
            f"{category:<16} {row['cases']:>6} {failed_by_category.get(category, 0):>6} {row['faults']:>7} "
            f"{row['survived']:>8} {row['lost']:>5} {row['duplicates']:>5} {row['repeats']:>7} "
            f"{seconds.get(category, 0.0):>6.1f}"
        )
    cases = sum(r["cases"] for r in totals.values())
    lost = sum(r["lost"] for r in totals.values())
    duplicates = sum(r["duplicates"] for r in totals.values())
    repeats = sum(r["repeats"] for r in totals.values())
    print("-" * len(header))
    if repeats:
        print(
            f"repeats: {repeats} crash points in the at-least-once window (SNS or SES accepted the message, "
            "the record not yet written) sent it once more; none was lost (README, Reliability)"
        )
    print(f"{len(collector.outcomes)} tests, {len(failed)} failed, {elapsed:.0f} s")
    ok = code == 0 and not failed and lost == 0 and duplicates == 0 and cases >= MIN_CASES
    if cases < MIN_CASES:
        print(f"only {cases} cases ran; at least {MIN_CASES} are required")
    print(f"reliability cases={cases} lost={lost} duplicates={duplicates}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
