"""Care alerts: a customer's negative mention waiting longer than the brand's reply target.

Only brands that list their `own_accounts` get care alerts: their replies are what closes a wait.

Each overdue mention is alerted once (a claim per mention); one message per brand and run lists
them all, so a fire of angry posts is one care alert, not a storm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .config import AppConfig, Brand
from .models import SOURCE_LABELS, parse_iso
from .store import Store

logger = logging.getLogger(__name__)

MAX_LISTED = 20

CareNotifier = Callable[[Brand, list[dict[str, Any]], datetime], None]


@dataclass
class CareReport:
    alerted: list[str] = field(default_factory=list)
    waiting: int = 0
    failures: list[str] = field(default_factory=list)


def overdue(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A waiting item as the care alert shows it."""
    created = parse_iso(item["created_at"])
    return {
        "id": item["id"],
        "source_label": SOURCE_LABELS.get(item.get("source", ""), item.get("source", "")),
        "author": item.get("author", ""),
        "created_at": created,
        "waiting_minutes": int((now - created).total_seconds() // 60),
        "text": item.get("text", ""),
        "url": item.get("url", ""),
    }


def check_care(now: datetime, *, config: AppConfig, store: Store, notify: CareNotifier) -> CareReport:
    """Alert on-call, once per mention, about negative mentions past their brand's reply target."""
    report = CareReport()
    for brand in config.brands:
        if not brand.own_accounts:
            # without the brand's own accounts no reply can be seen: every mention would look unanswered
            continue
        try:
            items = store.waiting(brand.id, now - timedelta(minutes=brand.reply_target_minutes), now)
            report.waiting += len(items)
            claim = f"N#care#{brand.id}"
            fresh = [i for i in items if store.claim(claim, i["id"], now, ttl_days=30, lease_seconds=120)]
            if not fresh:
                continue
            try:
                notify(brand, [overdue(i, now) for i in fresh], now)
            except Exception as exc:
                for item in fresh:
                    store.release(f"N#care#{brand.id}", item["id"])
                report.failures.append(f"{brand.id}: {exc}")
                logger.exception("care alert not sent; the next run retries", extra={"brand": brand.id})
                continue
            for item in fresh:
                store.complete(f"N#care#{brand.id}", item["id"])
            report.alerted.extend(i["id"] for i in fresh)
        except Exception as exc:  # one brand's failure does not stop the others
            report.failures.append(f"{brand.id}: {exc}")
            logger.exception("care check failed", extra={"brand": brand.id})
    return report
