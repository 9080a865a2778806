"""DynamoDB storage: the only module that knows item shapes, keys, Decimal and TTL.

Key design (docs/design.md): one table, `pk`/`sk`, one GSI `gsi1` for "mentions of a brand by time".
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .models import (
    Author,
    AuthorProfile,
    CareHour,
    CountBucket,
    Cursor,
    Engagement,
    HourRollup,
    Incident,
    Mention,
    ToneWeek,
    parse_iso,
    utc_iso,
)

TIME_SHARDS = 16
WAIT_SHARDS = 4
WAIT_DAYS = 7  # a negative mention waits in the care queue at most this long
AUTHOR_WEEKS = 12  # an author's tone is kept week by week for this many weeks
# first-response time histogram (seconds, upper bounds) kept per hour, for medians and percentiles
FRT_BINS = (300, 900, 1800, 3600, 4 * 3600, 24 * 3600)
TOP_PER_DAY = 10
VOICE_MIN_FOLLOWERS = 5000  # an author this well followed is kept as a possible new influential voice
VOICE_SLOTS = 4  # well-followed authors kept per hourly rollup, one per slot: the item stays small
MAX_TRANSACTION_ITEMS = 100
MENTIONS_PER_TRANSACTION = 90
MAX_TEXT = 8000
MAX_RAW_BYTES = 16000
_ser = TypeSerializer()
_des = TypeDeserializer()


def _attribute(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB attribute value.

    A direct mapping for the types we store (str, int, float, bool, lists, maps): boto3's
    TypeSerializer does the same with far more checks, and it is most of the CPU per mention.
    """
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int:
        return {"N": str(value)}
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"cannot store the number {value!r}")
        return {"N": str(Decimal(repr(value)))}
    if kind is list or kind is tuple:
        return {"L": [_attribute(v) for v in value]}
    if kind is dict:
        return {"M": {str(k): _attribute(v) for k, v in value.items() if v is not None}}
    return _ser.serialize(value)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _attribute(v) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_des.deserialize(v)) for k, v in item.items()}


def dynamodb_client(session: Any = None) -> Any:
    """The DynamoDB client the store wants: botocore's client-side parameter validation off (DynamoDB
    validates every request anyway, and the check costs a third of the CPU spent per mention), and
    adaptive retries for throttling."""
    import boto3
    from botocore.config import Config

    config = Config(parameter_validation=False, retries={"mode": "adaptive", "max_attempts": 8})
    return (session or boto3).client("dynamodb", config=config)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def bucket_start(moment: datetime, minutes: int = 5) -> datetime:
    """Start of the `minutes`-wide UTC bucket holding `moment`."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0, microsecond=0)


def time_shard(mention_id: str) -> int:
    return zlib.crc32(mention_id.encode()) % TIME_SHARDS


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: int
    duplicates: int
    stored_ids: tuple[str, ...] = ()


def awaits_reply(mention: Mention) -> bool:
    """A customer's negative mention goes into the care queue until the brand replies."""
    return mention.sentiment == "negative" and not mention.own and not mention.noise


def _wait_key(brand: str, mention_id: str, created: datetime) -> dict[str, str]:
    return {
        "pk": f"WAIT#{brand}#{zlib.crc32(mention_id.encode()) % WAIT_SHARDS}",
        "sk": f"{utc_iso(created)}#{mention_id}",
    }


def _conversation_key(brand: str, conversation_id: str, mention_id: str, created: datetime) -> dict[str, str]:
    """A waiting mention filed under its conversation: a reply deeper in the thread finds it there."""
    return {"pk": f"CONV#{brand}#{conversation_id}", "sk": f"{utc_iso(created)}#{mention_id}"}


def _week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the week holding `moment`."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _author_key(brand: str, source: str, handle: str) -> str:
    return f"A#{brand}#{source}#{handle.lower()}"


def _transaction_batches(mentions: list[Mention]) -> Iterator[list[Mention]]:
    """Group mentions so a batch's puts and the counter and top-post items it touches fit one transaction."""
    mentions.sort(key=lambda m: (m.brand, m.source, m.created_at))
    batch: list[Mention] = []
    touched: set[tuple[str, ...]] = set()
    for mention in mentions:
        created = mention.created_at.astimezone(UTC)
        keys = {
            ("5", mention.brand, mention.source, f"{bucket_start(created):%Y-%m-%dT%H:%M}"),
            ("h", mention.brand, mention.source, f"{created:%Y-%m-%dT%H}"),
            ("t", mention.brand, mention.source, f"{created:%Y-%m-%d}"),
            ("r", mention.brand, f"{created:%Y-%m-%dT%H}"),  # the brand's hourly digest rollup
        }
        if awaits_reply(mention):
            keys.add(("w", mention.id))
            if mention.conversation_id:
                keys.add(("c", mention.id))
        if not mention.own:
            author = (mention.brand, mention.source, mention.author.handle.lower())
            keys.add(("a", *author))
            keys.add(("aw", *author, f"{_week_start(created):%Y-%m-%d}"))
        if batch and (
            len(batch) + 1 + len(touched | keys) > MAX_TRANSACTION_ITEMS
            or len(batch) >= MENTIONS_PER_TRANSACTION
        ):
            yield batch
            batch, touched = [], set()
        batch.append(mention)
        touched |= keys
    if batch:
        yield batch


class ConflictError(RuntimeError):
    """An optimistic write lost a race (another run changed the item first)."""


class Store:
    """Reads and writes Emberwatch's DynamoDB table."""

    def __init__(self, table_name: str, client: Any = None, *, retention_days: int = 90) -> None:
        self.table = table_name
        if client is None:
            client = dynamodb_client()
        self.client = client
        self.retention = timedelta(days=retention_days)
        self.items_read = 0  # items returned by reads: lets benchmarks and tests see read cost
        # top-posts lists this Store wrote last, with their versions: a run storing page after page
        # does not re-read them; a concurrent writer makes the conditional put fail and they are re-read
        self._tops: dict[tuple[str, str], tuple[list[list[Any]], int]] = {}

    # ------------------------------------------------------------------ mentions

    def _mention_item(self, mention: Mention) -> dict[str, Any]:
        created = mention.created_at.astimezone(UTC)
        raw = mention.raw
        if raw and len(json.dumps(raw, default=str)) > MAX_RAW_BYTES:
            raw = {"truncated": True}
        return {
            "pk": f"M#{mention.brand}#{mention.id}",
            "sk": "M",
            "gsi1pk": f"T#{mention.brand}#{created:%Y-%m-%dT%H}#{time_shard(mention.id)}",
            "gsi1sk": f"{utc_iso(created)}#{mention.id}",
            "type": "mention",
            "id": mention.id,
            "source": mention.source,
            "native_id": mention.native_id,
            "brand": mention.brand,
            "query": mention.query,
            "author_handle": mention.author.handle,
            "author_name": mention.author.display_name,
            "author_followers": mention.author.followers,
            "text": mention.text[:MAX_TEXT],
            "title": mention.title,
            "created_at": utc_iso(created),
            "url": mention.url,
            "language": mention.language,
            "reposts": mention.engagement.reposts,
            "likes": mention.engagement.likes,
            "replies": mention.engagement.replies,
            "score": mention.engagement.score,
            "eng": mention.engagement.total,  # a re-read replaces the counts only when this grew
            "parent_id": mention.parent_id,
            "conversation_id": mention.conversation_id,
            "sentiment": mention.sentiment,
            "sentiment_score": mention.sentiment_score,
            "theme": mention.theme,
            "story": mention.story,
            "noise": list(mention.noise) or None,
            "own": mention.own or None,
            "raw": json.dumps(raw, default=str, separators=(",", ":")) if raw else None,
            "expires_at": _epoch(created + self.retention),
        }

    @staticmethod
    def _mention_from(item: dict[str, Any]) -> Mention:
        return Mention(
            source=item["source"],
            native_id=item["native_id"],
            brand=item["brand"],
            query=item.get("query", ""),
            author=Author(
                item.get("author_handle", ""), item.get("author_name"), item.get("author_followers")
            ),
            text=item.get("text", ""),
            created_at=parse_iso(item["created_at"]),
            url=item.get("url", ""),
            title=item.get("title"),
            language=item.get("language"),
            engagement=Engagement(
                reposts=item.get("reposts", 0),
                likes=item.get("likes", 0),
                replies=item.get("replies", 0),
                score=item.get("score", 0),
            ),
            parent_id=item.get("parent_id"),
            conversation_id=item.get("conversation_id"),
            sentiment=item.get("sentiment"),
            sentiment_score=item.get("sentiment_score"),
            theme=item.get("theme"),
            story=item.get("story"),
            noise=tuple(item.get("noise") or ()),
            own=bool(item.get("own")),
            raw=json.loads(item["raw"]) if item.get("raw") else {},
        )

    def store_mentions(self, mentions: Iterable[Mention]) -> StoreResult:
        """Store new mentions with their counts, atomically per batch; existing ones are skipped.

        Each batch is one TransactWriteItems: conditional puts of the mentions plus the counter
        and top-post updates they cause. A mention already stored fails its condition; it is
        dropped from the batch and the rest is written again, so nothing is counted twice.
        """
        unique: dict[str, Mention] = {}
        for mention in mentions:
            unique.setdefault(mention.id, mention)
        stored: list[str] = []
        duplicates = 0
        for batch in _transaction_batches(list(unique.values())):
            written, dupes = self._store_batch(batch)
            stored.extend(written)
            duplicates += dupes
        # replies are linked after the store and again on every replay (linking is idempotent), so a
        # crash between the two, or a parent stored later in the same page, still gets its link
        for reply in sorted(unique.values(), key=lambda m: m.created_at):
            if reply.own and (reply.parent_id or reply.conversation_id):
                self.link_reply(reply)
        new = set(stored)
        self.record_ambassadors(
            [m for m in unique.values() if m.id in new and m.sentiment == "positive" and not m.own]
        )
        return StoreResult(stored=len(stored), duplicates=duplicates, stored_ids=tuple(stored))

    def _mention_item_by_id(self, brand: str, mention_id: str) -> dict[str, Any] | None:
        key = serialize({"pk": f"M#{brand}#{mention_id}", "sk": "M"})
        item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return deserialize(item) if item else None

    def link_reply(self, reply: Mention) -> bool:
        """Record the brand's reply on the customer's mention it answers: first-response time, queue exit.

        The mention answered is the reply's parent when that is a stored customer mention; otherwise
        (the brand replied deeper in a thread, or under its own post) the earliest mention of the same
        conversation still waiting for a reply, from the author the reply answers when the source says.
        A reply answers at most one mention (`answers` on the reply) and a mention is answered once
        (`first_response_at`), both conditions of one transaction: replays and retries count nothing
        twice. True when this call recorded the first response.
        """
        own = self._mention_item_by_id(reply.brand, reply.id)
        if not own or own.get("answers"):
            return False  # not stored (nothing to mark), or already linked by an earlier run
        parent = self._mention_item_by_id(reply.brand, reply.parent_id) if reply.parent_id else None
        if parent and not parent.get("own"):
            if parent.get("first_response_at"):
                return False  # a second reply to an answered mention
        else:
            parent = self._waiting_in_conversation(reply, parent_is_own=parent is not None)
            if parent is None:
                return False
        created = parse_iso(parent["created_at"])
        seconds = max(0, int((reply.created_at - created).total_seconds()))
        hour = created.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        bins = [f"frt_le_{limit}" for limit in FRT_BINS if seconds <= limit] or ["frt_over"]
        adds = ["answered :one", "frt_sum :secs", f"{bins[0]} :one"]
        if parent.get("sentiment") == "negative" and not parent.get("noise"):
            adds.append("answered_neg :one")  # the digest's "negative mentions still unanswered"
        key = {"pk": parent["pk"], "sk": "M"}
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize({"pk": f"M#{reply.brand}#{reply.id}", "sk": "M"}),
                    "UpdateExpression": "SET answers = :id",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(answers)",
                    "ExpressionAttributeValues": serialize({":id": parent["id"]}),
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(key),
                    "UpdateExpression": "SET first_response_at = :at, first_response_id = :by, "
                    "first_response_seconds = :secs",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(first_response_at)",
                    "ExpressionAttributeValues": serialize(
                        {":at": utc_iso(reply.created_at), ":by": reply.id, ":secs": seconds}
                    ),
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize({"pk": f"CARE#{reply.brand}#{hour:%Y-%m}", "sk": f"{hour:%dT%H}"}),
                    "UpdateExpression": f"ADD {', '.join(adds)} SET bucket_at = :bucket, expires_at = :ttl",
                    "ExpressionAttributeValues": serialize(
                        {
                            ":one": 1,
                            ":secs": seconds,
                            ":bucket": utc_iso(hour),
                            ":ttl": _epoch(hour + timedelta(days=400)),
                        }
                    ),
                }
            },
            # the same histogram in the hour's digest rollup: a digest then reads one item per hour
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize({"pk": f"R#{reply.brand}#{hour:%Y-%m}", "sk": f"{hour:%dT%H}"}),
                    "UpdateExpression": f"ADD {', '.join(adds)} SET bucket_at = :bucket",
                    "ExpressionAttributeValues": serialize(
                        {":one": 1, ":secs": seconds, ":bucket": utc_iso(hour)}
                    ),
                }
            },
        ]
        if parent.get("author_handle"):
            author_key = f"A#{reply.brand}#{parent['source']}#{parent['author_handle'].lower()}"
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": serialize({"pk": author_key, "sk": "A"}),
                        "UpdateExpression": "SET answered_at = if_not_exists(answered_at, :at)",
                        "ExpressionAttributeValues": serialize({":at": utc_iso(reply.created_at)}),
                    }
                }
            )
        if parent.get("sentiment") == "negative":
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": serialize(_wait_key(reply.brand, parent["id"], created)),
                    }
                }
            )
            if parent.get("conversation_id"):
                actions.append(
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": serialize(
                                _conversation_key(
                                    reply.brand, parent["conversation_id"], parent["id"], created
                                )
                            ),
                        }
                    }
                )
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False  # answered meanwhile by a concurrent run
            raise
        return True

    def _waiting_in_conversation(self, reply: Mention, *, parent_is_own: bool) -> dict[str, Any] | None:
        """The earliest mention of the reply's conversation still waiting, created before the reply.

        When the source names the author answered (`reply_to`), only that author's mentions qualify;
        a reply under the brand's own post names the brand itself, which says nothing.
        """
        if not reply.conversation_id:
            return None
        answered = None if parent_is_own else (reply.reply_to or "").lower().lstrip("@") or None
        if answered is not None and answered in (
            reply.author.handle.lower().lstrip("@"),
            str(reply.raw.get("author_id") or "").lower(),
        ):
            answered = None
        pk = _conversation_key(reply.brand, reply.conversation_id, "", reply.created_at)["pk"]
        for item in self._query(
            KeyConditionExpression="pk = :pk AND sk < :before",
            ExpressionAttributeValues=serialize({":pk": pk, ":before": utc_iso(reply.created_at)}),
            ConsistentRead=True,
        ):
            if item.get("expires_at", 0) <= reply.created_at.timestamp():  # moto never applies TTL
                continue
            if answered is not None and answered not in (item.get("author"), item.get("author_id")):
                continue
            mention = self._mention_item_by_id(reply.brand, item["id"])
            if mention and not mention.get("first_response_at"):
                return mention
        return None

    def author(
        self, brand: str, source: str, handle: str, now: datetime | None = None
    ) -> AuthorProfile | None:
        """One author's counts, reach and tone week by week (the last AUTHOR_WEEKS weeks before `now`)."""
        now = now or datetime.now(UTC)
        oldest = _week_start(now) - timedelta(weeks=AUTHOR_WEEKS - 1)
        main: dict[str, Any] | None = None
        weeks: list[ToneWeek] = []
        followers_seen: list[int] = []
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=serialize({":pk": _author_key(brand, source, handle)}),
        ):
            if item["sk"] == "A":
                main = item
                continue
            start = parse_iso(f"{item['sk'][2:]}T00:00:00Z")
            if not oldest <= start <= now:
                continue  # older than the weeks kept (moto never applies TTL)
            rated = item.get("rated", 0)
            weeks.append(
                ToneWeek(
                    start=start,
                    mentions=item.get("mentions", 0),
                    positive=item.get("positive", 0),
                    neutral=item.get("neutral", 0),
                    negative=item.get("negative", 0),
                    mean_score=round(item.get("score_sum", 0) / rated, 4) if rated else None,
                    engagement=item.get("engagement", 0),
                )
            )
            if isinstance(item.get("followers"), int):
                followers_seen.append(item["followers"])
        if main is None:
            return None
        if isinstance(main.get("followers"), int):
            followers_seen.append(main["followers"])

        def when(name: str) -> datetime | None:
            return parse_iso(main[name]) if main.get(name) else None

        return AuthorProfile(
            brand=brand,
            source=source,
            handle=main.get("handle", handle),
            display_name=main.get("display_name"),
            mentions=main.get("mentions", 0),
            positive=main.get("positive", 0),
            negative=main.get("negative", 0),
            engagement=main.get("engagement", 0),
            followers=main.get("followers"),
            followers_max=max(followers_seen, default=None),
            first_seen=when("first_seen"),
            last_seen=when("last_seen"),
            first_negative_at=when("first_negative_at"),
            answered_at=when("answered_at"),
            ambassador_at=when("ambassador_at"),
            weeks=tuple(sorted(weeks, key=lambda w: w.start)),
        )

    def record_ambassadors(self, positives: list[Mention]) -> list[str]:
        """Authors who were negative, got the brand's reply, then turned positive: critics become ambassadors.

        Recorded once per author (a conditional update plus the record, in one transaction).
        """
        if not positives:
            return []
        keys = [
            serialize({"pk": f"A#{b}#{s}#{h}", "sk": "A"})
            for b, s, h in sorted({(m.brand, m.source, m.author.handle.lower()) for m in positives})
        ]
        authors: dict[tuple[str, str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), 100):  # BatchGetItem takes at most 100 keys
            request: dict[str, Any] = {self.table: {"Keys": keys[start : start + 100]}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.table, []):
                    item = deserialize(raw)
                    _, brand, source, handle = item["pk"].split("#", 3)
                    authors[(brand, source, handle)] = item
                request = response.get("UnprocessedKeys") or {}
        recorded = []
        for m in sorted(positives, key=lambda m: m.created_at):
            author = authors.get((m.brand, m.source, m.author.handle.lower()))
            when = utc_iso(m.created_at)
            if (
                not author
                or author.get("ambassador_at")
                or not author.get("answered_at")
                or not author.get("first_negative_at")
                or not author["first_negative_at"] < author["answered_at"] < when
            ):
                continue
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self.table,
                                "Key": serialize({"pk": author["pk"], "sk": "A"}),
                                "UpdateExpression": "SET ambassador_at = :at, ambassador_mention = :id",
                                "ConditionExpression": "attribute_not_exists(ambassador_at) "
                                "AND first_negative_at < answered_at AND answered_at < :at",
                                "ExpressionAttributeValues": serialize({":at": when, ":id": m.id}),
                            }
                        },
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": serialize(
                                    {
                                        "pk": f"AMB#{m.brand}#{m.created_at.astimezone(UTC):%Y-%m}",
                                        "sk": f"{when}#{m.source}#{m.author.handle.lower()}",
                                        "type": "ambassador",
                                        "source": m.source,
                                        "handle": m.author.handle,
                                        "first_negative_at": author["first_negative_at"],
                                        "answered_at": author["answered_at"],
                                        "positive_at": when,
                                        "mention_id": m.id,
                                        "url": m.url,
                                        "text": m.shown[:300],
                                        "expires_at": _epoch(m.created_at + timedelta(days=400)),
                                    }
                                ),
                            }
                        },
                    ]
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "TransactionCanceledException":
                    continue  # recorded meanwhile, or no longer a critic's turn
                raise
            author["ambassador_at"] = when
            recorded.append(m.author.handle)
        return recorded

    def ambassadors(
        self, brand: str, start: datetime, end: datetime, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Critics turned ambassadors whose positive mention falls in [start, end) (the first `limit`)."""
        out: list[dict[str, Any]] = []
        month = start.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        while month < end and (limit is None or len(out) < limit):
            found = self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues=serialize(
                    {":pk": f"AMB#{brand}#{month:%Y-%m}", ":low": utc_iso(start), ":high": utc_iso(end)}
                ),
                **({"Limit": limit - len(out)} if limit is not None else {}),
            )
            # islice stops before the next page is asked for: a limited read stays one page
            out.extend(found if limit is None else islice(found, limit - len(out)))
            month = (month + timedelta(days=32)).replace(day=1)
        return out

    def waiting(self, brand: str, older_than: datetime, now: datetime) -> list[dict[str, Any]]:
        """Negative customer mentions still without a reply, created before `older_than` (oldest first)."""
        out: list[dict[str, Any]] = []
        for shard in range(WAIT_SHARDS):
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk < :before",
                ExpressionAttributeValues=serialize(
                    {":pk": f"WAIT#{brand}#{shard}", ":before": utc_iso(older_than)}
                ),
            ):
                if item.get("expires_at", 0) > now.timestamp():  # moto never applies TTL
                    out.append(item)
        out.sort(key=lambda i: i["sk"])
        return out

    def _store_batch(self, batch: list[Mention]) -> tuple[list[str], int]:
        duplicates = 0
        attempt = 0
        while batch:
            tops = self._read_tops(batch)
            actions, count = self._batch_actions(batch, tops)
            try:
                self.client.transact_write_items(TransactItems=actions)
                for action in actions[count:]:
                    item = action.get("Put", {}).get("Item")
                    if item and item["type"]["S"] == "top":
                        written = deserialize(item)
                        self._tops[(written["pk"], written["sk"])] = (written["top"], written["version"])
                return [m.id for m in batch], duplicates
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                failed = {
                    i for i, r in enumerate(reasons[:count]) if r.get("Code") == "ConditionalCheckFailed"
                }
                if failed:
                    duplicates += len(failed)
                    self.refresh_engagement([m for i, m in enumerate(batch) if i in failed])
                    batch = [m for i, m in enumerate(batch) if i not in failed]
                    continue
                # a top-posts item moved under us, a concurrent transaction, or throttling: re-read, retry
                self._tops.clear()
                attempt += 1
                if attempt >= 6:
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt))
        return [], duplicates

    def _read_tops(self, batch: list[Mention]) -> dict[tuple[str, str], tuple[list[list[Any]], int]]:
        """Current top-posts lists (and versions) of the (brand-day, source) pairs a batch touches."""
        keys = {(f"TOP#{m.brand}#{m.created_at.astimezone(UTC):%Y-%m-%d}", m.source) for m in batch}
        found = {k: self._tops[k] for k in keys if k in self._tops}
        keys -= set(found)
        if not keys:
            return found
        found.update({k: ([], 0) for k in keys})
        request: dict[str, Any] = {
            self.table: {
                "Keys": [serialize({"pk": pk, "sk": sk}) for pk, sk in sorted(keys)],
                "ConsistentRead": True,
            }
        }
        while request:
            response = self.client.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(self.table, []):
                item = deserialize(raw)
                found[(item["pk"], item["sk"])] = (item.get("top", []), item.get("version", 0))
            request = response.get("UnprocessedKeys") or {}
        return found

    def _batch_actions(
        self, batch: list[Mention], tops: dict[tuple[str, str], tuple[list[list[Any]], int]]
    ) -> tuple[list[dict[str, Any]], int]:
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": serialize(self._mention_item(m)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for m in batch
        ]
        five: dict[tuple[str, str, datetime], list[Mention]] = defaultdict(list)
        hourly: dict[tuple[str, str, datetime], list[Mention]] = defaultdict(list)
        for m in batch:
            if m.own:
                continue  # the brand's own posts are replies, not mentions: volume and alerts leave them out
            created = m.created_at.astimezone(UTC)
            five[(m.brand, m.source, bucket_start(created))].append(m)
            hourly[(m.brand, m.source, created.replace(minute=0, second=0, microsecond=0))].append(m)
        for (brand, source, start), group in five.items():
            actions.append(
                self._counter_update(
                    f"C#{brand}#{start:%Y-%m-%d}", f"{start:%H:%M}#{source}", group, start, 35
                )
            )
        for (brand, source, start), group in hourly.items():
            actions.append(
                self._counter_update(f"H#{brand}#{start:%Y-%m}", f"{start:%dT%H}#{source}", group, start, 400)
            )
        actions.extend(self._rollup_updates(batch))
        authors: dict[tuple[str, str, str], list[Mention]] = defaultdict(list)
        for m in batch:
            if not m.own:
                authors[(m.brand, m.source, m.author.handle.lower())].append(m)
        for key, group in authors.items():
            actions.append(self._author_update(*key, group))
            weeks: dict[datetime, list[Mention]] = defaultdict(list)
            for m in group:
                weeks[_week_start(m.created_at)].append(m)
            actions.extend(self._author_week_update(*key, start, members) for start, members in weeks.items())
        for m in batch:
            if awaits_reply(m):
                actions.append(
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": serialize(
                                {
                                    **_wait_key(m.brand, m.id, m.created_at),
                                    "type": "waiting",
                                    "id": m.id,
                                    "source": m.source,
                                    "author": m.author.handle,
                                    "url": m.url,
                                    "text": m.shown[:500],
                                    "created_at": utc_iso(m.created_at),
                                    "expires_at": _epoch(m.created_at + timedelta(days=WAIT_DAYS)),
                                }
                            ),
                        }
                    }
                )
                if m.conversation_id:
                    actions.append(
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": serialize(
                                    {
                                        **_conversation_key(m.brand, m.conversation_id, m.id, m.created_at),
                                        "type": "conversation",
                                        "id": m.id,
                                        "author": m.author.handle.lower().lstrip("@"),
                                        "author_id": str(m.raw["author_id"]).lower()
                                        if m.raw.get("author_id")
                                        else None,
                                        "expires_at": _epoch(m.created_at + timedelta(days=WAIT_DAYS)),
                                    }
                                ),
                            }
                        }
                    )
        for (pk, source), (entries, version) in tops.items():
            day = pk.rsplit("#", 1)[1]
            merged = {entry[2]: entry for entry in entries}
            for m in batch:
                # noise (bots, giveaways, repeats) never makes the top posts
                if (
                    m.source == source
                    and not m.noise
                    and not m.own
                    and f"{m.created_at.astimezone(UTC):%Y-%m-%d}" == day
                ):
                    merged[m.id] = [m.engagement.total, utc_iso(m.created_at), m.id, m.story or m.id]
            top = sorted(merged.values(), key=lambda e: (e[0], e[1]), reverse=True)[:TOP_PER_DAY]
            if top == entries:
                continue
            actions.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": serialize(
                            {
                                "pk": pk,
                                "sk": source,
                                "type": "top",
                                "top": top,
                                "version": version + 1,
                                "expires_at": _epoch(parse_iso(f"{day}T00:00:00Z") + self.retention),
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk) OR #v = :v",
                        "ExpressionAttributeNames": {"#v": "version"},
                        "ExpressionAttributeValues": serialize({":v": version}),
                    }
                }
            )
        if len(actions) > MAX_TRANSACTION_ITEMS:
            raise ValueError("batch spans too many time buckets for one transaction")
        return actions, len(batch)

    def _author_update(self, brand: str, source: str, handle: str, group: list[Mention]) -> dict[str, Any]:
        """Per author: how many mentions, of which tone, how much reach, when first and last seen."""
        stamps = sorted(utc_iso(m.created_at) for m in group)
        negatives = sorted(utc_iso(m.created_at) for m in group if m.sentiment == "negative")
        followers = _latest_followers(group)
        values: dict[str, Any] = {
            ":n": len(group),
            ":neg": len(negatives),
            ":pos": sum(1 for m in group if m.sentiment == "positive"),
            ":eng": sum(m.engagement.total for m in group),
            ":first": stamps[0],
            ":last": stamps[-1],
            ":handle": group[0].author.handle,
            ":name": group[0].author.display_name or group[0].author.handle,
            ":ttl": _epoch(group[-1].created_at + timedelta(days=400)),
        }
        sets = [
            "handle = :handle",
            "display_name = :name",
            "first_seen = if_not_exists(first_seen, :first)",
            "last_seen = :last",
            "expires_at = :ttl",
        ]
        if negatives:
            values[":firstneg"] = negatives[0]
            sets.append("first_negative_at = if_not_exists(first_negative_at, :firstneg)")
        if followers is not None:
            values[":followers"] = followers
            sets.append("followers = :followers")
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize({"pk": f"A#{brand}#{source}#{handle}", "sk": "A"}),
                "UpdateExpression": "ADD mentions :n, negative :neg, positive :pos, engagement :eng "
                f"SET {', '.join(sets)}",
                "ExpressionAttributeValues": serialize(values),
            }
        }

    def _author_week_update(
        self, brand: str, source: str, handle: str, start: datetime, group: list[Mention]
    ) -> dict[str, Any]:
        """One author's week: mentions by tone, the sum of tone scores, engagement, the latest followers.

        Kept AUTHOR_WEEKS weeks (TTL); written in the mentions' transaction, so a replay adds nothing.
        """
        scored = [m.sentiment_score for m in group if m.sentiment_score is not None]
        values: dict[str, Any] = {
            ":n": len(group),
            ":pos": sum(1 for m in group if m.sentiment == "positive"),
            ":neu": sum(1 for m in group if m.sentiment == "neutral"),
            ":neg": sum(1 for m in group if m.sentiment == "negative"),
            ":rated": len(scored),
            ":score": round(float(sum(scored)), 6),
            ":eng": sum(m.engagement.total for m in group),
            ":ttl": _epoch(start + timedelta(weeks=AUTHOR_WEEKS + 1)),
        }
        sets = ["expires_at = :ttl"]
        followers = _latest_followers(group)
        if followers is not None:
            values[":followers"] = followers
            sets.append("followers = :followers")
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize({"pk": _author_key(brand, source, handle), "sk": f"W#{start:%Y-%m-%d}"}),
                "UpdateExpression": "ADD mentions :n, positive :pos, neutral :neu, negative :neg, "
                f"rated :rated, score_sum :score, engagement :eng SET {', '.join(sets)}",
                "ExpressionAttributeValues": serialize(values),
            }
        }

    def _counter_update(
        self, pk: str, sk: str, group: list[Mention], start: datetime, ttl_days: int
    ) -> dict[str, Any]:
        negative = sum(1 for m in group if m.sentiment == "negative")
        rated = sum(1 for m in group if m.sentiment is not None)
        engagement = sum(m.engagement.total for m in group)
        values: dict[str, Any] = {
            ":n": len(group),
            ":neg": negative,
            ":rated": rated,
            ":eng": engagement,
            ":bucket": utc_iso(start),
            ":ttl": _epoch(start + timedelta(days=ttl_days)),
        }
        adds = ["mentions :n", "negative :neg", "rated :rated", "engagement :eng"]
        themes: dict[str, int] = defaultdict(int)
        for m in group:
            if m.theme:
                themes[m.theme] += 1
        for index, (theme, count) in enumerate(sorted(themes.items())):
            if theme.isidentifier():
                adds.append(f"t_{theme} :t{index}")
                values[f":t{index}"] = count
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize({"pk": pk, "sk": sk}),
                "UpdateExpression": f"ADD {', '.join(adds)} SET bucket_at = :bucket, "
                "expires_at = if_not_exists(expires_at, :ttl)",
                "ExpressionAttributeValues": serialize(values),
            }
        }

    def get_mentions(self, brand: str, ids: Iterable[str]) -> list[Mention]:
        """Fetch stored mentions by id (order not kept; missing ids are left out)."""
        keys = [{"pk": f"M#{brand}#{i}", "sk": "M"} for i in dict.fromkeys(ids)]
        found: list[Mention] = []
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table: {"Keys": [serialize(k) for k in keys[start : start + 100]]}
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                items = response.get("Responses", {}).get(self.table, [])
                self.items_read += len(items)
                found.extend(self._mention_from(deserialize(i)) for i in items)
                request = response.get("UnprocessedKeys") or {}
        return found

    def top_mentions(self, brand: str, start: datetime, end: datetime, limit: int) -> list[Mention]:
        """The most engaged mentions created in [start, end), from the per-day top-posts items."""
        candidates: list[list[Any]] = []
        day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        low, high = utc_iso(start), utc_iso(end)
        while day < end:
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=serialize({":pk": f"TOP#{brand}#{day:%Y-%m-%d}"}),
            ):
                candidates.extend(e for e in item.get("top", []) if low <= e[1] < high)
            day += timedelta(days=1)
        chosen: list[str] = []
        stories: set[str] = set()
        for entry in sorted(candidates, key=lambda e: (e[0], e[1]), reverse=True):
            story = entry[3] if len(entry) > 3 else entry[2]
            if story in stories:
                continue  # a story shows once, by its most engaged post
            stories.add(story)
            chosen.append(entry[2])
            if len(chosen) == limit:
                break
        found = {m.id: m for m in self.get_mentions(brand, chosen)}
        return [found[i] for i in chosen if i in found]

    def mentions_between(self, brand: str, start: datetime, end: datetime) -> Iterator[Mention]:
        """Mentions of a brand created in [start, end), hour by hour, through the sharded time index."""
        hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        low, high = utc_iso(start), utc_iso(end)
        while hour < end:
            for shard in range(TIME_SHARDS):
                for item in self._query(
                    IndexName="gsi1",
                    KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high",
                    ExpressionAttributeValues=serialize(
                        {":pk": f"T#{brand}#{hour:%Y-%m-%dT%H}#{shard}", ":low": low, ":high": high + "~"}
                    ),
                ):
                    mention = self._mention_from(item)
                    if start <= mention.created_at < end:
                        yield mention
            hour += timedelta(hours=1)

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs["TableName"] = self.table
        while True:
            response = self.client.query(**kwargs)
            items = response.get("Items", [])
            self.items_read += len(items)
            for item in items:
                yield deserialize(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # ------------------------------------------------------------------ counts

    def counts(self, brand: str, start: datetime, end: datetime) -> list[CountBucket]:
        """5-minute counts per source for buckets starting in [start, end)."""
        return self._buckets(brand, start, end, hourly=False)

    def hourly_counts(self, brand: str, start: datetime, end: datetime) -> list[CountBucket]:
        """Hourly counts per source for hours starting in [start, end)."""
        return self._buckets(brand, start, end, hourly=True)

    def _buckets(self, brand: str, start: datetime, end: datetime, *, hourly: bool) -> list[CountBucket]:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        # (partition, lowest sort key, highest sort key): only the buckets in range are read
        partitions: list[tuple[str, str, str]] = []
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if hourly:
            day = day.replace(day=1)
        sort_key = "%dT%H" if hourly else "%H:%M"
        while day < end:
            following = (day + timedelta(days=32)).replace(day=1) if hourly else day + timedelta(days=1)
            low = start.strftime(sort_key) if start > day else ""
            high = (end - timedelta(seconds=1)).strftime(sort_key) + "~" if end < following else "~"
            partitions.append(
                (f"H#{brand}#{day:%Y-%m}" if hourly else f"C#{brand}#{day:%Y-%m-%d}", low, high)
            )
            day = following
        out: list[CountBucket] = []
        for pk, low, high in partitions:
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues=serialize({":pk": pk, ":low": low or " ", ":high": high}),
            ):
                if "bucket_at" not in item:
                    continue
                moment = parse_iso(item["bucket_at"])
                if start <= moment < end:
                    out.append(
                        CountBucket(
                            brand=brand,
                            source=item["sk"].split("#", 1)[1],
                            start=moment,
                            mentions=item.get("mentions", 0),
                            negative=item.get("negative", 0),
                            rated=item.get("rated", 0),
                            themes={k[2:]: v for k, v in item.items() if k.startswith("t_")},
                        )
                    )
        out.sort(key=lambda b: (b.start, b.source))
        return out

    # ------------------------------------------------------------------ cursors

    def scan_state(
        self, source: str, query_keys: dict[str, list[str]]
    ) -> tuple[datetime | None, dict[str, dict[str, Cursor]]]:
        """What a scan of `source` starts from, in one consistent batch read: the source's pause, if any,
        and the cursor of every (brand, query key); fresh cursors (version 0) where none is stored."""
        cursors = {
            brand: {k: Cursor(brand=brand, source=source, query_key=k) for k in keys}
            for brand, keys in query_keys.items()
        }
        keys = [serialize({"pk": "PAUSE", "sk": source})] + [
            serialize({"pk": f"CUR#{brand}#{source}", "sk": k})
            for brand, brand_keys in query_keys.items()
            for k in dict.fromkeys(brand_keys)
        ]
        paused: datetime | None = None
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table: {"Keys": keys[start : start + 100], "ConsistentRead": True}
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.table, []):
                    self.items_read += 1
                    data = deserialize(raw)
                    if data["pk"] == "PAUSE":
                        paused = parse_iso(data["until"])
                        continue
                    brand = data["pk"].split("#", 2)[1]
                    cursors[brand][data["sk"]] = Cursor(
                        brand=brand,
                        source=source,
                        query_key=data["sk"],
                        position=json.loads(data.get("position", "{}")),
                        updated_at=parse_iso(data["updated_at"]) if data.get("updated_at") else None,
                        version=data.get("version", 0),
                    )
                request = response.get("UnprocessedKeys") or {}
        return paused, cursors

    def get_cursors(self, brand: str, source: str, query_keys: list[str]) -> dict[str, Cursor]:
        """Cursors of one brand's queries of a source (fresh ones where none is stored)."""
        return self.scan_state(source, {brand: query_keys})[1][brand]

    def get_cursor(self, brand: str, source: str, query_key: str) -> Cursor:
        """The stored cursor of one query, or a fresh one (version 0) when it was never scanned."""
        return self.get_cursors(brand, source, [query_key])[query_key]

    def save_cursor(self, cursor: Cursor, position: dict[str, Any], now: datetime) -> Cursor:
        """Move a cursor, only if nobody moved it since it was read (optimistic version check)."""
        new = Cursor(cursor.brand, cursor.source, cursor.query_key, position, now, cursor.version + 1)
        try:
            self.client.put_item(
                TableName=self.table,
                Item=serialize(
                    {
                        "pk": f"CUR#{cursor.brand}#{cursor.source}",
                        "sk": cursor.query_key,
                        "type": "cursor",
                        "position": json.dumps(position, sort_keys=True),
                        "updated_at": utc_iso(now),
                        "version": new.version,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR #v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues=serialize({":v": cursor.version}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConflictError(
                    f"cursor {cursor.brand}/{cursor.source}/{cursor.query_key} moved by another run"
                ) from exc
            raise
        return new

    # ------------------------------------------------------------------ incidents

    def _incident_item(self, incident: Incident) -> dict[str, Any]:
        return {
            "pk": f"INC#{incident.brand}",
            "sk": f"{utc_iso(incident.opened_at)}#{incident.scope}#{incident.rule}",
            "type": "incident",
            "brand": incident.brand,
            "scope": incident.scope,
            "rule": incident.rule,
            "opened_at": utc_iso(incident.opened_at),
            "status": incident.status,
            "severity": incident.severity,
            "observed": incident.observed,
            "expected": incident.expected,
            "peak": incident.peak,
            "notified_level": incident.notified_level,
            "last_seen_at": utc_iso(incident.last_seen_at),
            "resolved_at": utc_iso(incident.resolved_at) if incident.resolved_at else None,
            "quiet_runs": incident.quiet_runs,
            "notifications": incident.notifications,
            "sample_ids": list(incident.sample_ids),
            "pending_kind": incident.pending_kind,
            "pending_level": incident.pending_level,
            "version": incident.version,
            "notified_at": utc_iso(incident.notified_at) if incident.notified_at else None,
            "expires_at": _epoch(incident.opened_at + timedelta(days=400)),
        }

    @staticmethod
    def _incident_from(item: dict[str, Any]) -> Incident:
        return Incident(
            brand=item["brand"],
            scope=item["scope"],
            rule=item["rule"],
            opened_at=parse_iso(item["opened_at"]),
            status=item["status"],
            severity=item["severity"],
            observed=item["observed"],
            expected=float(item["expected"]),
            peak=item["peak"],
            notified_level=item["notified_level"],
            last_seen_at=parse_iso(item["last_seen_at"]),
            resolved_at=parse_iso(item["resolved_at"]) if item.get("resolved_at") else None,
            quiet_runs=item.get("quiet_runs", 0),
            notifications=item.get("notifications", 0),
            sample_ids=list(item.get("sample_ids", [])),
            pending_kind=item.get("pending_kind"),
            pending_level=item.get("pending_level", 0),
            version=item.get("version", 0),
            notified_at=parse_iso(item["notified_at"]) if item.get("notified_at") else None,
        )

    def active_pointers(self, brand: str) -> dict[str, str]:
        """Every open incident of a brand in one query: '<scope>#<rule>' -> the incident's sort key."""
        return {
            item["sk"]: item["incident_sk"]
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=serialize({":pk": f"ACT#{brand}"}),
                ConsistentRead=True,
            )
        }

    def active_incident(
        self, brand: str, scope: str, rule: str, *, pointers: dict[str, str] | None = None
    ) -> Incident | None:
        """The open incident for (brand, scope, rule), if any; `pointers` (active_pointers) saves a read."""
        if pointers is not None:
            key = pointers.get(f"{scope}#{rule}")
            if key is None:
                return None
        else:
            pointer = self.client.get_item(
                TableName=self.table,
                Key=serialize({"pk": f"ACT#{brand}", "sk": f"{scope}#{rule}"}),
                ConsistentRead=True,
            ).get("Item")
            if not pointer:
                return None
            self.items_read += 1
            key = deserialize(pointer)["incident_sk"]
        item = self.client.get_item(
            TableName=self.table, Key=serialize({"pk": f"INC#{brand}", "sk": key}), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        self.items_read += 1
        return self._incident_from(deserialize(item))

    def open_incident(self, incident: Incident) -> Incident:
        """Record a new incident and its active pointer; ConflictError if one is already open."""
        item = self._incident_item(incident)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": serialize(
                                {
                                    "pk": f"ACT#{incident.brand}",
                                    "sk": f"{incident.scope}#{incident.rule}",
                                    "incident_sk": item["sk"],
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": serialize(item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise ConflictError(
                    f"an incident for {incident.brand}/{incident.scope}/{incident.rule} is already open"
                ) from exc
            raise
        return incident

    def save_incident(self, incident: Incident) -> Incident:
        """Write an incident's new state if its version is unchanged; drop the pointer once resolved."""
        expected_version = incident.version
        incident.version += 1
        put = {
            "Put": {
                "TableName": self.table,
                "Item": serialize(self._incident_item(incident)),
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": serialize({":v": expected_version}),
            }
        }
        actions = [put]
        if incident.status == "resolved" and not incident.pending_kind:
            # the pointer stays until the all-clear is delivered, so a failed send is retried
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": serialize(
                            {"pk": f"ACT#{incident.brand}", "sk": f"{incident.scope}#{incident.rule}"}
                        ),
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            incident.version = expected_version
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise ConflictError(f"incident {incident.key} changed by another run") from exc
            raise
        return incident

    def incidents_between(self, brand: str, start: datetime, end: datetime) -> list[Incident]:
        """Incidents opened before `end` that were still open or resolved after `start`."""
        out = []
        for item in self._query(
            KeyConditionExpression="pk = :pk AND sk < :end",
            ExpressionAttributeValues=serialize({":pk": f"INC#{brand}", ":end": utc_iso(end)}),
        ):
            incident = self._incident_from(item)
            if incident.resolved_at is None or incident.resolved_at >= start:
                out.append(incident)
        return out

    # ------------------------------------------------------------------ once-only records

    def claim(self, pk: str, sk: str, now: datetime, *, ttl_days: int, lease_seconds: int = 600) -> bool:
        """Claim the right to perform a one-off action (send an alert, a digest).

        True when this caller holds the claim: nobody claimed it, or an earlier claim was never
        completed and its lease has expired (a crashed run). False once it has been completed.
        """
        try:
            self.client.put_item(
                TableName=self.table,
                Item=serialize(
                    {
                        "pk": pk,
                        "sk": sk,
                        "type": "claim",
                        "state": "in_progress",
                        "lease_until": _epoch(now) + lease_seconds,
                        "expires_at": _epoch(now + timedelta(days=ttl_days)),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR (#s = :progress AND lease_until < :now)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=serialize({":progress": "in_progress", ":now": _epoch(now)}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def complete(self, pk: str, sk: str, detail: dict[str, Any] | None = None) -> None:
        """Mark a claimed action as done, so no later run performs it again."""
        values: dict[str, Any] = {":done": "done"}
        expression = "SET #s = :done"
        if detail:
            values[":detail"] = json.dumps(detail, default=str)
            expression += ", detail = :detail"
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"pk": pk, "sk": sk}),
            UpdateExpression=expression,
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=serialize(values),
        )

    def claim_done(self, pk: str, sk: str) -> bool:
        """Whether a claimed action was completed (False: free, or in progress in another run)."""
        item = self.client.get_item(
            TableName=self.table, Key=serialize({"pk": pk, "sk": sk}), ConsistentRead=True
        ).get("Item")
        return bool(item) and deserialize(item).get("state") == "done"

    # ------------------------------------------------------------------ engagement (viral posts)

    def refresh_engagement(self, mentions: Iterable[Mention]) -> int:
        """A post fetched again: keep its newer engagement on the stored item; returns how many grew.

        Conditional on the new total being higher, so an older copy never takes it back.
        """
        grown = 0
        for mention in mentions:
            eng = mention.engagement
            if not eng.total:
                continue
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=serialize({"pk": f"M#{mention.brand}#{mention.id}", "sk": "M"}),
                    UpdateExpression="SET reposts = :r, likes = :l, replies = :p, score = :s, eng = :e",
                    ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(eng) OR eng < :e)",
                    ExpressionAttributeValues=serialize(
                        {
                            ":r": eng.reposts,
                            ":l": eng.likes,
                            ":p": eng.replies,
                            ":s": eng.score,
                            ":e": eng.total,
                        }
                    ),
                )
                grown += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        return grown

    def engagement_readings(self, brand: str) -> dict[str, list[tuple[datetime, int, int]]]:
        """Each watched post's engagement readings: mention id -> [(read at, reposts, replies)]."""
        out = {}
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=serialize({":pk": f"ENG#{brand}"}),
        ):
            out[item["sk"]] = [(parse_iso(t), int(r), int(p)) for t, r, p in item.get("reads", [])]
        return out

    def record_engagement(
        self, brand: str, mention_id: str, reads: list[tuple[datetime, int, int]], *, expires: datetime
    ) -> None:
        """Replace one post's readings (the caller trims them to the window it needs)."""
        self.client.put_item(
            TableName=self.table,
            Item=serialize(
                {
                    "pk": f"ENG#{brand}",
                    "sk": mention_id,
                    "type": "engagement",
                    "reads": [[utc_iso(t), r, p] for t, r, p in reads],
                    "expires_at": _epoch(expires),
                }
            ),
        )

    def release(self, pk: str, sk: str) -> None:
        """Give a claim back after a failed attempt so the next run may try again at once."""
        self.client.delete_item(
            TableName=self.table,
            Key=serialize({"pk": pk, "sk": sk}),
            ConditionExpression="#s = :progress",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=serialize({":progress": "in_progress"}),
        )

    # ------------------------------------------------------------------ source health

    def record_run(
        self, brand: str, source: str, now: datetime, *, error: str | None, stats: dict[str, int]
    ) -> None:
        """Remember the outcome of a (brand, source) scan, for blind-spot checks and `status`."""
        values: dict[str, Any] = {":now": utc_iso(now), ":stats": json.dumps(stats, sort_keys=True)}
        if error is None:
            expression = (
                "SET last_run_at = :now, last_success_at = :now, last_stats = :stats, failures = :zero"
            )
            values[":zero"] = 0
        else:
            expression = (
                "SET last_run_at = :now, last_error_at = :now, last_error = :error, last_stats = :stats "
                "ADD failures :one"
            )
            values.update({":error": error[:1000], ":one": 1})
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"pk": f"RUN#{brand}", "sk": source}),
            UpdateExpression=expression,
            ExpressionAttributeValues=serialize(values),
        )

    def source_runs(self, brand: str) -> dict[str, dict[str, Any]]:
        """Last scan outcome per source for a brand."""
        return {
            item["sk"]: item
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=serialize({":pk": f"RUN#{brand}"}),
            )
        }

    # ------------------------------------------------------------------ tokens and pauses

    def get_token(self, source: str, account: str) -> dict[str, Any] | None:
        """A stored session token, unless expired (moto never applies TTL, so the expiry is checked here)."""
        item = self.client.get_item(
            TableName=self.table, Key=serialize({"pk": f"TOKEN#{source}", "sk": account}), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        data = deserialize(item)
        if data.get("expires_at", 0) <= time.time():
            return None
        return json.loads(data["token"])

    def put_token(self, source: str, account: str, token: dict[str, Any], expires_at: datetime) -> None:
        """Keep a session token for later runs until `expires_at`."""
        self.client.put_item(
            TableName=self.table,
            Item=serialize(
                {
                    "pk": f"TOKEN#{source}",
                    "sk": account,
                    "type": "token",
                    "token": json.dumps(token),
                    "expires_at": _epoch(expires_at),
                }
            ),
        )

    def paused_until(self, source: str) -> datetime | None:
        """When a source asked us to stay away until (a rate-limit reset beyond one run), if it did."""
        item = self.client.get_item(TableName=self.table, Key=serialize({"pk": "PAUSE", "sk": source})).get(
            "Item"
        )
        return parse_iso(deserialize(item)["until"]) if item else None

    def pause(self, source: str, until: datetime, reason: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=serialize(
                {
                    "pk": "PAUSE",
                    "sk": source,
                    "type": "pause",
                    "until": utc_iso(until),
                    "reason": reason[:500],
                    "expires_at": _epoch(until + timedelta(days=1)),
                }
            ),
        )

    # ------------------------------------------------------------------ digest rollups
    # One item per brand and UTC hour (`R#<brand>#<YYYY-MM>` / `<DD>T<HH>`), updated in the same transaction
    # as the mentions it counts: the digest reads these, never the mentions, so a week costs 168 items
    # however many mentions it had. Each also keeps one example post per theme (the most engaging of the
    # first batch that had one) and up to VOICE_SLOTS well-followed authors (an author's slot is a hash
    # of its handle; the first to reach a slot keeps it): bounded however many scans write the hour, and
    # written once per mention because the transaction is. Post summaries are stored as one JSON string
    # each, not as maps: nothing queries inside them, and the digest parses 168 items' worth of them.

    def _rollup_updates(self, batch: list[Mention]) -> list[dict[str, Any]]:
        groups: dict[tuple[str, datetime], list[Mention]] = defaultdict(list)
        for m in batch:
            hour = m.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            groups[(m.brand, hour)].append(m)
        return [self._rollup_update(brand, hour, group) for (brand, hour), group in groups.items()]

    def _rollup_update(self, brand: str, hour: datetime, group: list[Mention]) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":n": len(group),
            ":neg": sum(1 for m in group if m.sentiment == "negative"),
            ":rated": sum(1 for m in group if m.sentiment is not None),
            ":eng": sum(m.engagement.total for m in group),
            ":reach": sum(m.author.followers or 0 for m in group),
            ":cust": sum(1 for m in group if not m.own),
            ":wait": sum(1 for m in group if awaits_reply(m)),
            ":bucket": utc_iso(hour),
            ":ttl": _epoch(hour + timedelta(days=400)),
        }
        adds = [
            "mentions :n",
            "negative :neg",
            "rated :rated",
            "engagement :eng",
            "reach :reach",
            "customer :cust",
            "awaiting :wait",
        ]
        sets = ["bucket_at = :bucket", "expires_at = if_not_exists(expires_at, :ttl)"]
        names: dict[str, str] = {}
        counts: dict[str, int] = defaultdict(int)
        for m in group:
            counts[f"s_{m.source}"] += 1
            if m.theme and m.theme.isidentifier():
                counts[f"t_{m.theme}"] += 1
        for index, (name, count) in enumerate(sorted(counts.items())):
            adds.append(f"#c{index} :c{index}")
            names[f"#c{index}"], values[f":c{index}"] = name, count
        visible = [m for m in group if not m.own and not m.noise]
        examples: dict[str, Mention] = {}
        for m in sorted(visible, key=lambda m: (-m.engagement.total, m.id)):
            if m.theme and m.theme.isidentifier():
                examples.setdefault(m.theme, m)
        for index, (theme, m) in enumerate(sorted(examples.items())):
            names[f"#x{index}"], values[f":x{index}"] = f"x_{theme}", _post_summary(m, {})
            sets.append(f"#x{index} = if_not_exists(#x{index}, :x{index})")
        voices: dict[int, Mention] = {}
        for m in sorted(visible, key=lambda m: (-(m.author.followers or 0), m.id)):
            if (m.author.followers or 0) >= VOICE_MIN_FOLLOWERS:
                voices.setdefault(voice_slot(m.source, m.author.handle), m)
        for slot, m in sorted(voices.items()):
            names[f"#v{slot}"] = f"v#{slot}"
            values[f":v{slot}"] = _post_summary(
                m, {"followers": m.author.followers, "name": m.author.display_name}
            )
            sets.append(f"#v{slot} = if_not_exists(#v{slot}, :v{slot})")
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize({"pk": f"R#{brand}#{hour:%Y-%m}", "sk": f"{hour:%dT%H}"}),
            "UpdateExpression": f"ADD {', '.join(adds)} SET {', '.join(sets)}",
            "ExpressionAttributeValues": serialize(values),
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}

    def _hour_items(
        self, prefix: str, brand: str, start: datetime, end: datetime
    ) -> Iterator[dict[str, Any]]:
        """Items keyed `<prefix>#<brand>#<YYYY-MM>` / `<DD>T<HH>` whose hour starts in [start, end)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        while month < end:
            following = (month + timedelta(days=32)).replace(day=1)
            low = start.strftime("%dT%H") if start > month else " "
            high = (end - timedelta(seconds=1)).strftime("%dT%H") if end < following else "~"
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues=serialize(
                    {":pk": f"{prefix}#{brand}#{month:%Y-%m}", ":low": low, ":high": high}
                ),
            ):
                if "bucket_at" in item and start <= parse_iso(item["bucket_at"]) < end:
                    yield item
            month = following

    def rollups(self, brand: str, start: datetime, end: datetime) -> list[HourRollup]:
        """The brand's hourly rollups (all sources) for hours starting in [start, end)."""
        out = []
        for item in self._hour_items("R", brand, start, end):
            out.append(
                HourRollup(
                    brand=brand,
                    start=parse_iso(item["bucket_at"]),
                    mentions=item.get("mentions", 0),
                    negative=item.get("negative", 0),
                    rated=item.get("rated", 0),
                    engagement=item.get("engagement", 0),
                    reach=item.get("reach", 0),
                    customer=item.get("customer", 0),
                    awaiting=item.get("awaiting", 0),
                    sources={k[2:]: v for k, v in item.items() if k.startswith("s_")},
                    themes={k[2:]: v for k, v in item.items() if k.startswith("t_")},
                    # a damaged summary reads as {} and is left out rather than shown as an empty post
                    examples={k[2:]: p for k, v in item.items() if k.startswith("x_") and (p := _summary(v))},
                    voices=[p for k, v in item.items() if k.startswith("v#") and (p := _summary(v))],
                    care=_care_hour(brand, item) if item.get("answered") else None,
                )
            )
        return sorted(out, key=lambda r: r.start)

    def care_hours(self, brand: str, start: datetime, end: datetime) -> list[CareHour]:
        """First-response histograms of the customer mentions created in hours starting in [start, end)."""
        return sorted(
            (_care_hour(brand, item) for item in self._hour_items("CARE", brand, start, end)),
            key=lambda c: c.start,
        )

    def oldest_waiting(
        self, brand: str, start: datetime, end: datetime, now: datetime, limit: int = 3
    ) -> list[dict[str, Any]]:
        """The `limit` oldest negative mentions created in [start, end) still waiting for a reply.

        At most `limit` items per queue shard are read, however long the queue is.
        """
        out: list[dict[str, Any]] = []
        low = utc_iso(max(start, now - timedelta(days=WAIT_DAYS)))
        for shard in range(WAIT_SHARDS):
            response = self.client.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues=serialize(
                    {":pk": f"WAIT#{brand}#{shard}", ":low": low, ":high": utc_iso(end)}
                ),
                Limit=limit,
            )
            items = response.get("Items", [])
            self.items_read += len(items)
            out.extend(i for i in map(deserialize, items) if i.get("expires_at", 0) > now.timestamp())
        out.sort(key=lambda i: i["sk"])
        return out[:limit]

    def first_seen(self, brand: str, authors: Iterable[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        """When each (source, handle) was first seen mentioning the brand (one batch read)."""
        keys = [
            serialize({"pk": f"A#{brand}#{source}#{handle.lower()}", "sk": "A"})
            for source, handle in dict.fromkeys(authors)
        ]
        found: dict[tuple[str, str], datetime] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {self.table: {"Keys": keys[start : start + 100]}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                items = response.get("Responses", {}).get(self.table, [])
                self.items_read += len(items)
                for raw in items:
                    item = deserialize(raw)
                    _, _, source, handle = item["pk"].split("#", 3)
                    if item.get("first_seen"):
                        found[(source, handle)] = parse_iso(item["first_seen"])
                request = response.get("UnprocessedKeys") or {}
        return found

    # ------------------------------------------------------------------ configuration, status, forget

    def last_good_config(self) -> str | None:
        """The last configuration text a function found valid (lastgood.py), if any."""
        item = self.client.get_item(
            TableName=self.table, Key=serialize({"pk": "CONFIG", "sk": "LASTGOOD"}), ConsistentRead=True
        ).get("Item")
        return deserialize(item)["text"] if item else None

    def save_last_good_config(self, text: str, sha256: str, now: datetime | None = None) -> bool:
        """Keep a valid configuration text as the fallback; a no-op when it is already the one kept."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=serialize(
                    {
                        "pk": "CONFIG",
                        "sk": "LASTGOOD",
                        "type": "config",
                        "text": text,
                        "sha256": sha256,
                        "saved_at": utc_iso(now or datetime.now(UTC)),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR sha256 <> :sha",
                ExpressionAttributeValues=serialize({":sha": sha256}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def cursor_ages(self, brand: str, source: str) -> list[datetime]:
        """When each stored cursor of a (brand, source) last moved."""
        return [
            parse_iso(item["updated_at"])
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=serialize({":pk": f"CUR#{brand}#{source}"}),
            )
            if item.get("updated_at")
        ]

    def open_incidents(self, brand: str) -> list[Incident]:
        """The brand's open incidents (those with an active pointer)."""
        found = []
        pointers = self.active_pointers(brand)
        for scope_rule in pointers:
            scope, rule = scope_rule.rsplit("#", 1)
            incident = self.active_incident(brand, scope, rule, pointers=pointers)
            if incident is not None:
                found.append(incident)
        return found

    def forget_author(
        self,
        source: str,
        handle: str,
        now: datetime,
        *,
        brand: str | None = None,
        progress: Any = None,
    ) -> dict[str, int]:
        """Delete what the table holds of one author on one source (platform deletion rules, privacy
        requests): their mentions, their author record, care-queue and ambassador entries, and their
        mentions in the top-posts lists. Counters (numbers without names) stay. Idempotent; an audit
        record with the counts and a hash of the handle (not the handle, not any text) is written.

        There is no index by author, so this scans the table once (filtered server-side); `progress`
        is called with the number of items examined so far.
        """
        wanted = handle.lower().lstrip("@")
        names = {"#t": "type", "#src": "source"}
        values: dict[str, Any] = {
            ":src": source,
            ":m": "mention",
            ":w": "waiting",
            ":amb": "ambassador",
            ":top": "top",
            ":suffix": f"#{source}#{wanted}",
            ":r": "R#",
        }
        condition = (
            "(#src = :src AND #t IN (:m, :w, :amb)) OR (#t = :top AND sk = :src) OR contains(pk, :suffix) "
            "OR begins_with(pk, :r)"
        )
        prefixes = ("M#", "A#", "WAIT#", "AMB#", "TOP#", "R#")
        if brand:
            condition = f"({condition}) AND ({' OR '.join(f'begins_with(pk, :p{i})' for i in range(6))})"
            values.update({f":p{i}": f"{p}{brand}#" for i, p in enumerate(prefixes)})
        doomed: list[dict[str, str]] = []
        tops: list[dict[str, Any]] = []
        rollups: list[dict[str, Any]] = []
        mention_ids: set[str] = set()
        counts = {
            "mentions": 0,
            "author_items": 0,
            "waiting": 0,
            "ambassadors": 0,
            "top_entries": 0,
            "rollup_entries": 0,
        }
        examined = 0
        request: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
            "ConsistentRead": True,
        }
        while True:
            response = self.client.scan(**request)
            examined += response.get("ScannedCount", 0)
            for raw in response.get("Items", []):
                item = deserialize(raw)
                kind, key = item.get("type"), {"pk": item["pk"], "sk": item["sk"]}
                if kind == "top":
                    tops.append(item)
                elif item["pk"].startswith("R#"):
                    rollups.append(item)
                elif kind == "mention" and item.get("author_handle", "").lower().lstrip("@") == wanted:
                    doomed.append(key)
                    mention_ids.add(item["id"])
                    counts["mentions"] += 1
                elif kind == "waiting" and item.get("author", "").lower().lstrip("@") == wanted:
                    doomed.append(key)
                    counts["waiting"] += 1
                elif kind == "ambassador" and item.get("handle", "").lower().lstrip("@") == wanted:
                    doomed.append(key)
                    counts["ambassadors"] += 1
                elif item["pk"].startswith("A#") and item["pk"].endswith(f"#{source}#{wanted}"):
                    doomed.append(key)
                    counts["author_items"] += 1
            if progress:
                progress(examined)
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        for start in range(0, len(doomed), 25):
            deletes = [{"DeleteRequest": {"Key": serialize(k)}} for k in doomed[start : start + 25]]
            batch: dict[str, Any] = {self.table: deletes}
            while batch:
                batch = self.client.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
        for top in tops:
            counts["top_entries"] += self._drop_from_top(top, mention_ids)
        for rollup in rollups:
            counts["rollup_entries"] += self._drop_from_rollup(rollup, source, wanted, mention_ids)
        digest = hashlib.sha256(f"{source}:{wanted}".encode()).hexdigest()
        self.client.put_item(
            TableName=self.table,
            Item=serialize(
                {
                    "pk": "AUDIT#forget",
                    "sk": f"{utc_iso(now)}#{digest[:16]}",
                    "type": "audit",
                    "action": "forget_author",
                    "source": source,
                    "brand": brand,
                    "author_sha256": digest,
                    "at": utc_iso(now),
                    **{f"deleted_{name}": count for name, count in counts.items()},
                }
            ),
        )
        return counts

    def _drop_from_rollup(self, item: dict[str, Any], source: str, handle: str, mention_ids: set[str]) -> int:
        """Remove the author's entries (influential voice, theme example) from an hourly digest rollup."""
        doomed = []
        for name, value in item.items():
            if not name.startswith(("x_", "v#")):
                continue
            post = _summary(value)
            if post.get("id") in mention_ids or (
                post.get("source") == source and str(post.get("author", "")).lower() == handle
            ):
                doomed.append(name)
        if not doomed:
            return 0
        names = {f"#d{i}": name for i, name in enumerate(doomed)}
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"pk": item["pk"], "sk": item["sk"]}),
            UpdateExpression="REMOVE " + ", ".join(names),
            ExpressionAttributeNames=names,
        )
        return len(doomed)

    def _drop_from_top(self, top: dict[str, Any], mention_ids: set[str]) -> int:
        """Remove the forgotten mentions from a top-posts list (version-checked; re-read on a race)."""
        for _ in range(5):
            kept = [entry for entry in top.get("top", []) if entry[2] not in mention_ids]
            dropped = len(top.get("top", [])) - len(kept)
            if not dropped:
                return 0
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=serialize({**top, "top": kept, "version": top.get("version", 0) + 1}),
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues=serialize({":v": top.get("version", 0)}),
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                fresh = self.client.get_item(
                    TableName=self.table,
                    Key=serialize({"pk": top["pk"], "sk": top["sk"]}),
                    ConsistentRead=True,
                ).get("Item")
                if not fresh:
                    return 0
                top = deserialize(fresh)
                continue
            self._tops.pop((top["pk"], top["sk"]), None)
            return dropped
        raise ConflictError(f"top posts {top['pk']}/{top['sk']} kept changing")


def _care_hour(brand: str, item: dict[str, Any]) -> CareHour:
    bins: dict[int | None, int] = {limit: item.get(f"frt_le_{limit}", 0) for limit in FRT_BINS}
    bins[None] = item.get("frt_over", 0)
    return CareHour(
        brand=brand,
        start=parse_iso(item["bucket_at"]),
        answered=item.get("answered", 0),
        answered_negative=item.get("answered_neg", 0),
        seconds_total=item.get("frt_sum", 0),
        bins=bins,
    )


def voice_slot(source: str, handle: str) -> int:
    """The rollup slot an author's voice goes to: stable across runs, so a replayed page finds it taken."""
    return zlib.crc32(f"{source}#{handle.lower()}".encode()) % VOICE_SLOTS


def _post_summary(mention: Mention, extra: dict[str, Any]) -> str:
    """What a digest shows of a post it does not read again (bounded text, the link, who and when), as
    one compact JSON string."""
    summary = {
        "id": mention.id,
        "source": mention.source,
        "author": mention.author.handle,
        "url": mention.url,
        "text": mention.shown[:400],
        "created_at": utc_iso(mention.created_at),
        "engagement": mention.engagement.total,
        "sentiment": mention.sentiment,
        **extra,
    }
    return json.dumps(summary, ensure_ascii=False, separators=(",", ":"))


def _summary(value: Any) -> dict[str, Any]:
    """A stored post summary: a JSON string (or a map, as rollups written before it were)."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return value if isinstance(value, dict) else {}


def _latest_followers(group: list[Mention]) -> int | None:
    """The follower count of the newest mention in `group` that has one."""
    counted = [m for m in group if m.author.followers is not None]
    return max(counted, key=lambda m: m.created_at).author.followers if counted else None
