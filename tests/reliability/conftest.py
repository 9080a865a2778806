"""Fixtures of the reliability suite (run by `make reliability`, not by `make test`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sim import motofix
from tests.reliability import ledger

motofix.apply()  # moto's DynamoDB answers faster (the same answers): the suite runs thousands of scans


@pytest.fixture(autouse=True)
def _ledger_case(request: pytest.FixtureRequest) -> Iterator[None]:
    ledger.CURRENT["nodeid"] = request.node.nodeid
    yield
    ledger.CURRENT["nodeid"] = "?"


class VirtualClock:
    """Monotonic time that a sleep advances instantly: Retry-After and backoff cost no wall time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
