"""Read back what a run left in DynamoDB and compare it with the ground truth: lost, duplicates, counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emberwatch.store import Store, bucket_start, deserialize


def table_items(store: Store) -> list[dict[str, Any]]:
    """Every item of the store's table (a full Scan: tests only)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": store.table}
    while True:
        page = store.client.scan(**kwargs)
        items.extend(deserialize(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class Snapshot:
    """The mentions and counters a table holds, keyed the way the ground truth is."""

    ids: set[str] = field(default_factory=set)
    five: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, bucket iso) -> mentions
    hourly: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, hour iso) -> mentions
    created: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def of(cls, store: Store, brand: str = "acme") -> Snapshot:
        snap = cls()
        for item in table_items(store):
            pk = item["pk"]
            if item.get("type") == "mention" and item.get("brand") == brand:
                snap.ids.add(item["id"])
                snap.created[item["id"]] = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
            elif pk.startswith(f"C#{brand}#"):
                day = pk.rsplit("#", 1)[1]
                hhmm, source = item["sk"].split("#", 1)
                snap.five[(source, f"{day}T{hhmm}")] += int(item.get("mentions", 0))
            elif pk.startswith(f"H#{brand}#"):
                month = pk.rsplit("#", 1)[1]
                dd_hh, source = item["sk"].split("#", 1)
                snap.hourly[(source, f"{month}-{dd_hh}")] += int(item.get("mentions", 0))
        return snap

    def expected_counters(self) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
        """The 5-minute and hourly counts the stored mentions imply (each mention once)."""
        five: Counter[tuple[str, str]] = Counter()
        hourly: Counter[tuple[str, str]] = Counter()
        for mention_id, created in self.created.items():
            source = mention_id.split(":", 1)[0]
            start = bucket_start(created.astimezone(UTC))
            five[(source, f"{start:%Y-%m-%dT%H:%M}")] += 1
            hourly[(source, f"{created.astimezone(UTC):%Y-%m-%dT%H}")] += 1
        return five, hourly


@dataclass
class Comparison:
    lost: set[str]
    extra: set[str]
    overcounted: int  # counter increments beyond one per mention: a mention counted twice
    undercounted: int
    buckets_wrong: int

    @property
    def duplicates(self) -> int:
        return self.overcounted


def compare(
    truth: Snapshot | set[str], got: Snapshot, truth_created: dict[str, datetime] | None = None
) -> Comparison:
    """Lost and extra ids, and counters checked bucket by bucket against one count per true mention."""
    if isinstance(truth, Snapshot):
        ids, created = truth.ids, truth.created
    else:
        ids, created = truth, truth_created or {}
    expect = Snapshot(
        ids=set(ids),
        created={i: created.get(i) or got.created[i] for i in ids if i in created or i in got.created},
    )
    five, hourly = expect.expected_counters()
    over = under = wrong = 0
    for want, have in ((five, got.five), (hourly, got.hourly)):
        for key in set(want) | set(have):
            diff = have.get(key, 0) - want.get(key, 0)
            if diff:
                wrong += 1
                over += max(0, diff)
                under += max(0, -diff)
    return Comparison(
        lost=set(ids) - got.ids,
        extra=got.ids - set(ids),
        overcounted=over,
        undercounted=under,
        buckets_wrong=wrong,
    )


def clone_store(store: Store, suffix: str) -> Store:
    """A second, empty table with the same keys and indexes (a fault-free baseline run writes there)."""
    client = store.client
    desc = client.describe_table(TableName=store.table)["Table"]
    name = f"{store.table}-{suffix}"
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": desc["KeySchema"],
        "AttributeDefinitions": desc["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if desc.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in desc["GlobalSecondaryIndexes"]
        ]
    client.create_table(**kwargs)
    return Store(name, client, retention_days=int(store.retention.days))
