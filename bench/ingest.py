"""Ingest benchmark: 10,000 Hacker News hits through parse -> match -> store, against moto.

The bodies are Algolia `search_by_date` pages in the real format; each page goes through the
connector's own parser, the local query re-check and `Store.store_mentions`, then the cursor is
saved, as `scan_source` does. CPU time inside AWS calls (moto's, in this process) is measured
through botocore's before/after-call events and left out.

Last line: `ingest ms_per_mention=<CPU ms per mention> ddb_requests_per_1000=<requests per 1,000 mentions>`
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = [
    *("support", "outage", "billing", "invoice", "refund", "login", "dashboard", "api", "latency"),
    *("export", "scanner", "firmware", "update", "pricing", "contract", "onboarding", "widget"),
    *("integration", "webhook", "slow", "broken", "great", "love", "hate", "waiting"),
]


def make_pages(total: int, per_page: int, start: int, seed: int = 11) -> list[bytes]:
    """Algolia pages, newest first, half stories and half comments, with HTML in comments."""
    rng = random.Random(seed)
    hits = []
    for i in range(total):
        created = start + i * 3
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
        if i % 2:
            hits.append(
                {
                    "_tags": ["comment", f"author_user{i % 997}", "story_4000000"],
                    "author": f"user{i % 997}",
                    "comment_text": f"<p>Acme Widgets {words} &amp; more</p><p>{words}</p>",
                    "created_at": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "created_at_i": created,
                    "objectID": str(50_000_000 + i),
                    "parent_id": 4_000_000,
                    "story_id": 4_000_000,
                    "story_title": "Ask HN: Acme Widgets experiences?",
                    "story_url": None,
                }
            )
        else:
            hits.append(
                {
                    "_tags": ["story", f"author_user{i % 997}", f"story_{50_000_000 + i}"],
                    "author": f"user{i % 997}",
                    "children": [],
                    "created_at": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "created_at_i": created,
                    "num_comments": rng.randint(0, 50),
                    "objectID": str(50_000_000 + i),
                    "points": rng.randint(1, 500),
                    "story_id": 50_000_000 + i,
                    "title": f"Acme Widgets {words[:60]}",
                    "url": f"https://example.com/{i}",
                }
            )
    hits.reverse()  # newest first, as search_by_date answers
    pages = []
    for number in range(0, total, per_page):
        chunk = hits[number : number + per_page]
        pages.append(
            json.dumps(
                {
                    "hits": chunk,
                    "hitsPerPage": per_page,
                    "nbHits": total,
                    "nbPages": (total + per_page - 1) // per_page,
                    "page": number // per_page,
                    "query": '"acme widgets"',
                    "params": "",
                    "processingTimeMS": 1,
                }
            ).encode()
        )
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mentions", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_ENDPOINT_URL", None)

    import boto3
    from emberwatch.config import Brand
    from emberwatch.query import parse_query
    from emberwatch.sources import select
    from emberwatch.sources.hackernews import CONNECTOR
    from emberwatch.store import Store, dynamodb_client
    from moto import mock_aws

    from sim import motofix
    from sim.provision import provision

    motofix.apply()  # moto snapshots the table once per transaction action; once per table is equivalent

    start = int(datetime(2026, 11, 18, 14, 0, tzinfo=UTC).timestamp())
    pages = make_pages(args.mentions, args.page_size, start)
    brand = Brand(id="acme", name="Acme Widgets", queries=('"acme widgets"',))
    query = parse_query(brand.queries[0])

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        stack = provision(session, parameters={"SenderEmail": "bench@acme.example"})
        client = dynamodb_client(session)  # the client the functions use
        requests_by_op: Counter[str] = Counter()
        aws_cpu = [0.0]
        started: list[float] = []

        def before(**_: object) -> None:
            started.append(time.process_time())

        def after(model: object, **_: object) -> None:
            aws_cpu[0] += time.process_time() - started.pop()
            requests_by_op[model.name] += 1  # type: ignore[attr-defined]

        client.meta.events.register("before-call.dynamodb", before)
        client.meta.events.register("after-call.dynamodb", after)
        store = Store(stack.physical["MentionsTable"]["Ref"], client)
        cursor = store.get_cursor("acme", "hackernews", "bench")
        requests_by_op.clear()
        aws_cpu[0] = 0.0

        stored = 0
        cpu_start = time.process_time()
        wall_start = time.perf_counter()
        for number, body in enumerate(pages):
            parsed = CONNECTOR.parse(body, brand, query.text)
            page = select(parsed, len(parsed.mentions), [query], source="hackernews", brand="acme")
            stored += store.store_mentions(page.mentions).stored
            cursor = store.save_cursor(cursor, {"since": start, "page": number}, datetime.now(UTC))
        cpu_total = time.process_time() - cpu_start
        wall_total = time.perf_counter() - wall_start

    requests = sum(requests_by_op.values())
    ours = cpu_total - aws_cpu[0]
    print(f"mentions stored        {stored} of {args.mentions} ({len(pages)} pages of {args.page_size})")
    print(f"wall time              {wall_total:.1f} s (moto in-process included)")
    print(f"CPU total / in AWS     {cpu_total:.2f} s / {aws_cpu[0]:.2f} s")
    print("DynamoDB requests      " + ", ".join(f"{op} {n}" for op, n in requests_by_op.most_common()))
    if stored != args.mentions:
        print(f"error: stored {stored}, expected {args.mentions}", file=sys.stderr)
        return 1
    per_mention, per_1000 = 1000 * ours / stored, 1000 * requests / stored
    print(f"ingest ms_per_mention={per_mention:.3f} ddb_requests_per_1000={per_1000:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
