"""Digest benchmark: a week of 10,000 and a week of 200,000 mentions stored through `Store.store_mentions`
(the scanner's path: one transaction per batch with the counters, rollups, top posts, authors and care
queue), then the weekly digest built and rendered for each, against moto in this process.

Items read are counted from every DynamoDB response (Query/Scan `Items`, GetItem `Item`, BatchGetItem
`Responses`) through botocore's after-call event, so nothing the digest reads escapes the count.

Last line: `digest build_s=<s, larger week> items_read=<larger week> items_read_small=<smaller week>
mentions=<mentions in the larger week>`
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SOURCES = ("x", "reddit", "hackernews", "mastodon", "bluesky", "youtube", "stackexchange", "feed")
THEMES = ("issue", "solution_wanted", "time_cost", "feedback", "question", "other", None)
WORDS = [
    "scanner",
    "firmware",
    "update",
    "support",
    "refund",
    "invoice",
    "login",
    "outage",
    "slow",
    "broken",
    "great",
    "love",
    "waiting",
]
CONFIG = """
brands:
  - id: acme
    name: Acme Widgets
    queries: ['"acme widgets"']
    own_accounts: {x: [acmesupport]}
recipients:
  - {email: lead@acme.example, cadence: weekly, weekday: mon}
"""


def week_of_mentions(start: datetime, total: int, seed: int, first_id: int) -> list:
    """`total` mentions spread over the 7 days from `start` (busier in the daytime), with tone, themes,
    followers and engagement; about 1 % are the brand's replies to negative mentions."""
    from emberwatch.models import Author, Engagement, Mention

    rng = random.Random(seed)
    out: list[Mention] = []
    negatives: list[Mention] = []
    for i in range(total):
        hour = rng.choices(range(24), weights=[1 + (8 <= h <= 20) * 3 for h in range(24)])[0]
        created = start + timedelta(days=rng.randrange(7), hours=hour, seconds=rng.randrange(3600))
        source = rng.choice(SOURCES)
        if negatives and rng.random() < 0.01:
            parent = negatives.pop(rng.randrange(len(negatives)))
            out.append(
                Mention(
                    source=parent.source,
                    native_id=f"r{first_id + i}",
                    brand="acme",
                    query="acme",
                    author=Author("acmesupport", "Acme Support", 12_000),
                    text="Sorry about that, we are on it: please DM us your order number.",
                    created_at=parent.created_at + timedelta(minutes=rng.choice((4, 12, 25, 50, 130, 600))),
                    url=f"https://example.com/r/{first_id + i}",
                    own=True,
                    parent_id=parent.id,
                    sentiment="neutral",
                )
            )
            continue
        sentiment = rng.choices(("negative", "neutral", "positive", None), weights=(20, 45, 30, 5))[0]
        followers = int(rng.lognormvariate(5, 2))
        mention = Mention(
            source=source,
            native_id=str(first_id + i),
            brand="acme",
            query="acme",
            author=Author(f"user{rng.randrange(total // 3 + 1)}", None, followers),
            text="Acme Widgets " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))),
            created_at=created,
            url=f"https://example.com/{source}/{first_id + i}",
            engagement=Engagement(likes=int(rng.paretovariate(1.2)) - 1, replies=rng.randrange(5)),
            sentiment=sentiment,
            theme=rng.choice(THEMES),
            story=f"s{rng.randrange(total // 5 + 1)}",
        )
        out.append(mention)
        if sentiment == "negative":
            negatives.append(mention)
    return out


def ingest(store, mentions: list, page: int) -> float:
    started = time.perf_counter()
    mentions.sort(key=lambda m: m.created_at)  # pages arrive in time order, as scans deliver them
    for offset in range(0, len(mentions), page):
        store.store_mentions(mentions[offset : offset + page])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000, help="mentions in the smaller week")
    parser.add_argument("--large", type=int, default=200_000, help="mentions in the larger week")
    parser.add_argument("--page", type=int, default=1000, help="mentions per store_mentions call")
    args = parser.parse_args()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        os.environ[key] = value
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)

    import boto3
    from emberwatch.config import parse_config
    from emberwatch.digest import DigestService, compose_email, period_ending
    from emberwatch.store import Store, dynamodb_client
    from moto import mock_aws

    from sim import motofix
    from sim.provision import provision

    motofix.apply()
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        stack = provision(session, parameters={"SenderEmail": "digest@acme.example", "Stage": "dev"})
        client = dynamodb_client(session)
        reads = {"items": 0}

        def count(http_response, parsed, model, **_):
            name = model.name
            if name in ("Query", "Scan"):
                reads["items"] += len(parsed.get("Items", ())) or parsed.get("Count", 0)
            elif name == "GetItem":
                reads["items"] += 1 if parsed.get("Item") else 0
            elif name == "BatchGetItem":
                reads["items"] += sum(len(items) for items in parsed.get("Responses", {}).values())
            elif name == "TransactGetItems":
                reads["items"] += sum(1 for r in parsed.get("Responses", ()) if r.get("Item"))

        client.meta.events.register("after-call.dynamodb", count)
        store = Store(stack.physical["MentionsTable"]["Ref"], client)
        config = parse_config(CONFIG)
        (recipient,) = config.recipients
        service = DigestService(config=config, store=store, sender="digest@acme.example", ses=object())
        brand = config.brand("acme")
        # two weeks apart, so each week's previous week is equally empty
        weeks = {
            "small": (datetime(2024, 4, 1, tzinfo=UTC), args.small, 0),
            "large": (datetime(2024, 4, 15, tzinfo=UTC), args.large, 10_000_000),
        }
        figures: dict[str, dict[str, float]] = {}
        for name, (start, total, first_id) in weeks.items():
            mentions = week_of_mentions(start, total, seed=len(name), first_id=first_id)
            ingest_s = ingest(store, mentions, args.page)
            now = start + timedelta(days=7, hours=8)
            period = period_ending(now, "weekly", "UTC")
            # the median of three builds: one build's wall time on a shared machine swings with its load
            timings = []
            for _ in range(3):
                reads["items"] = 0
                began = time.perf_counter()
                context = service.context_for(brand, period, now, recipient.email, recipient.sections)
                message = compose_email(context, sender="digest@acme.example", recipient=recipient, now=now)
                timings.append(time.perf_counter() - began)
            build_s = sorted(timings)[1]
            size = len(message.as_bytes())
            figures[name] = {
                "mentions": context["totals"]["mentions"],
                "items": reads["items"],
                "build_s": build_s,
            }
            print(
                f"{name}: {total:,} generated, {context['totals']['mentions']:,} in the digest week, "
                f"ingest {ingest_s:.0f} s ({ingest_s / total * 1000:.2f} ms/mention); "
                f"digest build {build_s:.2f} s, {reads['items']:,} items read, email {size / 1024:.0f} KiB",
                flush=True,
            )
    large, small = figures["large"], figures["small"]
    print(
        f"digest build_s={large['build_s']:.2f} items_read={large['items']} "
        f"items_read_small={small['items']} mentions={large['mentions']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
