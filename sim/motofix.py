"""Two speed fixes for moto's DynamoDB, applied to the moto server the demo and benchmarks run.

Both change how fast moto answers, not what it answers.

1. moto 5 snapshots a table for rollback once per *action* of TransactWriteItems
(`copy.deepcopy(self.tables[name])` inside the loop over actions), so a 40-item transaction
copies the whole table 40 times. The snapshots are all taken before any write, so one copy
per table is the same snapshot: this shim memoises `copy.deepcopy` per table for the
duration of one transaction call and changes nothing else. Without it a simulated week
spends most of its time copying the table.
2. A base-table Query filters every item of the table for the hash key (see
   `_query_one_partition`); it now reads the hash key's own group.
3. For concurrent clients (`make scale`'s worker threads): moto's backends are not thread-safe,
   so DynamoDB requests are served one at a time, and a transaction's rollback snapshot holds
   only the items the transaction names (restored in place on failure) instead of a copy of the
   whole table, which grew with the table and raced with other threads' writes. UpdateItem's
   expression validation builds each processor's node-type map once, not once per AST node.
4. SQS counts a queue's visible messages on every send with two clock reads per message; one
   clock read per count gives the same answer.
"""

from __future__ import annotations

import copy
import functools
import inspect
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
        if snapshots == "items":
            return value  # the touched items are saved and restored by transact_write_items
        key = id(value)
        if key not in snapshots:
            snapshots[key] = copy.deepcopy(value, memo)
        return snapshots[key]


def _query_one_partition(original: Any) -> Any:
    """moto answers a base-table Query by filtering every item of the table for the hash key, though
    it keeps them grouped by hash key; hand it that group only. Index queries are left alone."""

    signature = inspect.signature(original)

    @functools.wraps(original)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = signature.bind(self, hash_key, *args, **kwargs).arguments.get("index_name")
        if index_name or not self.range_key_attr or hash_key is None:
            return original(self, hash_key, *args, **kwargs)
        group = self.items.get(hash_key) or {}
        self.all_items = lambda: list(group.values())  # shadows the method for this call only
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    return query


_DYNAMODB_LOCK = threading.RLock()


def _processing(traverser: Any) -> tuple[dict[type, Any], tuple[type, ...]]:
    """A traverser's node-type -> processor map, built once per traverser instead of once per node."""
    cached = traverser.__dict__.get("_emberwatch_map")
    if cached is None:
        mapping = traverser._processing_map()
        cached = traverser.__dict__["_emberwatch_map"] = (mapping, tuple(mapping))
    return cached


def _process(self: Any, node: Any) -> Any:
    for node_type, processor in _processing(self)[0].items():
        if isinstance(node, node_type):
            return processor(node)
    return None


def _touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]] | None:
    """(table, hash key, range key, a copy of the item or None) for each item a transaction names;
    None when a table has no range key or a key cannot be read (moto's own full snapshot then)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved = []
    for action in transact_items:
        ((kind, body),) = action.items()
        table = backend.tables.get(body.get("TableName"))
        key = body.get("Item") if kind == "Put" else body.get("Key")
        if table is None or not table.range_key_attr or not isinstance(key, dict):
            return None
        try:
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr])
        except (KeyError, TypeError):
            return None
        item = table.items.get(hash_key, {}).get(range_key)
        saved.append((table, hash_key, range_key, copy.deepcopy(item)))
    return saved


def apply() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    if getattr(models.DynamoDBBackend.transact_write_items, "_emberwatch_patched", False):
        return
    Table.query = _query_one_partition(Table.query)  # type: ignore[method-assign]
    original = models.DynamoDBBackend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _touched_items(self, transact_items)
        _state.snapshots = {} if saved is None else "items"
        try:
            return original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in reversed(saved or []):
                group = table.items[hash_key]
                if item is None:
                    group.pop(range_key, None)
                else:
                    group[range_key] = item
            raise
        finally:
            _state.snapshots = None

    transact_write_items._emberwatch_patched = True  # type: ignore[attr-defined]
    from moto.dynamodb.responses import DynamoHandler

    call_action = DynamoHandler.call_action

    @functools.wraps(call_action)
    def one_at_a_time(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return call_action(self)

    DynamoHandler.call_action = one_at_a_time  # type: ignore[method-assign]
    # UpdateItem expressions: moto rebuilds each processor's type map for every AST node it visits
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    DepthFirstTraverser.nodes_to_be_processed = lambda self: _processing(self)[1]  # type: ignore[method-assign]
    DepthFirstTraverser.process = _process  # type: ignore[method-assign]
    # SQS: every SendMessage reads the queue's attributes, which count its visible messages with two
    # clock reads per message; one read per call gives the same list (1,400 FIFO sends took minutes)
    from moto.core.utils import unix_time_millis
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue

    # ... and converts each attribute's name anew on every read
    sqs_models.camelcase_to_underscores = functools.lru_cache(maxsize=256)(
        sqs_models.camelcase_to_underscores
    )  # type: ignore[attr-defined]

    def visible_messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    Queue.messages = property(visible_messages)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_delayed = property(delayed)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_not_visible = property(not_visible)  # type: ignore[assignment,method-assign]
    models.copy = _CopyModule()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# moto's processors that only reject invalid update expressions; the others compute the update
_CHECK_ONLY = frozenset(
    {
        "ActionCountValidator",
        "OverlappingPathsValidator",
        "UpdateHashRangeKeyValidator",
        "TypeMismatchValidator",
        "EmptyStringKeyValueValidator",
    }
)


def skip_update_checks() -> None:
    """For `make scale` only: UpdateItem skips moto's checks that only reject invalid expressions.

    Valid requests get the same answers, about half as fast again; the tests (plain moto) still run
    every check, so an invalid expression in the code is caught there.
    """
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    original = UpdateExpressionValidator.get_ast_processors
    if getattr(original, "_emberwatch_patched", False):
        return

    def processors(self: Any) -> list[Any]:
        return [p for p in original(self) if type(p).__name__ not in _CHECK_ONLY]

    processors._emberwatch_patched = True  # type: ignore[attr-defined]
    UpdateExpressionValidator.get_ast_processors = processors  # type: ignore[method-assign]
