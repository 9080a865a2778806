"""A speed fix for moto's DynamoDB transactions, applied to the moto server the demo runs.

moto 5 snapshots a table for rollback once per *action* of TransactWriteItems
(`copy.deepcopy(self.tables[name])` inside the loop over actions), so a 40-item transaction
copies the whole table 40 times. The snapshots are all taken before any write, so one copy
per table is the same snapshot: this shim memoises `copy.deepcopy` per table for the
duration of one transaction call and changes nothing else. Without it a simulated week
spends most of its time copying the table.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_state = threading.local()


class _CopyModule:
    """Stands in for the `copy` module inside moto.dynamodb.models only."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        snapshots = getattr(_state, "snapshots", None)
        if snapshots is None or type(value).__name__ != "Table":
            return copy.deepcopy(value, memo)
        key = id(value)
        if key not in snapshots:
            snapshots[key] = copy.deepcopy(value, memo)
        return snapshots[key]


def apply() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    from moto.dynamodb import models

    if getattr(models.DynamoDBBackend.transact_write_items, "_emberwatch_patched", False):
        return
    original = models.DynamoDBBackend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _state.snapshots = {}
        try:
            return original(self, transact_items)
        finally:
            _state.snapshots = None

    transact_write_items._emberwatch_patched = True  # type: ignore[attr-defined]
    models.copy = _CopyModule()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
