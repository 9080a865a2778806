"""What each reliability case measured: the runner (bench/reliability.py) prints it as a table.

A test calls `record(...)` with figures it MEASURED (stored ids and counters compared with the
ground truth, messages read back from moto), then asserts on them; the ledger only collects.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

CATEGORIES = (
    "source faults",
    "aws faults",
    "crash points",
    "load",
    "bad input",
    "least privilege",
)


@dataclass
class Entry:
    nodeid: str
    category: str
    cases: int = 1
    faults: int = 0  # faults injected
    survived: int = 0  # faults after which the work still completed exactly once
    lost: int = 0
    duplicates: int = 0
    figures: dict[str, object] = field(default_factory=dict)


RESULTS: list[Entry] = []
CURRENT: dict[str, str] = {"nodeid": "?"}


def record(
    category: str,
    *,
    cases: int = 1,
    faults: int = 0,
    survived: int | None = None,
    lost: int = 0,
    duplicates: int = 0,
    **figures: object,
) -> Entry:
    """Add one measured result (call it before asserting, so a failing case still shows its figures)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown reliability category {category!r}")
    entry = Entry(
        CURRENT["nodeid"],
        category,
        cases,
        faults,
        faults if survived is None else survived,
        lost,
        duplicates,
        dict(figures),
    )
    RESULTS.append(entry)
    return entry


def totals() -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(
        lambda: {"cases": 0, "faults": 0, "survived": 0, "lost": 0, "duplicates": 0, "repeats": 0}
    )
    for entry in RESULTS:
        row = table[entry.category]
        row["cases"] += entry.cases
        row["faults"] += entry.faults
        row["survived"] += entry.survived
        row["lost"] += entry.lost
        row["duplicates"] += entry.duplicates
        # a documented at-least-once repeat (SNS/SES accepted, the record not yet written): shown apart
        row["repeats"] += int(entry.figures.get("repeats", 0))  # type: ignore[call-overload]
    return table
