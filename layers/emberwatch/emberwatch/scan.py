"""One scan run of one source: every brand's queries, page by page, cursor moved after the store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import AppConfig, Brand
from .enrich import RecentTexts, enrich_mentions
from .enrich.sentiment import tone_analyzer
from .http import HttpClient, SourceError
from .models import Engagement, Mention, utc_iso
from .sources import Credentials, CredentialsError, ScanContext, get_connector
from .store import ConflictError, Store

logger = logging.getLogger(__name__)


@dataclass
class SourceReport:
    """What one (brand, source) scan did; the figures become metrics and the run's record."""

    brand: str
    source: str
    pages: int = 0
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    not_matching: int = 0
    errors: list[str] = field(default_factory=list)
    complete: bool = True
    refreshed: int = 0  # watched posts whose engagement was re-read and had grown
    refresh_errors: int = 0  # failed re-reads: logged and counted, not a failed scan

    def stats(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "fetched": self.fetched,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "not_matching": self.not_matching,
            "refreshed": self.refreshed,
            "refresh_errors": self.refresh_errors,
        }


# texts this container stored lately: a bot repeating itself is flagged as noise
RECENT_TEXTS = RecentTexts()
PAUSE_THRESHOLD = timedelta(minutes=2)  # a rate-limit wait longer than this is kept for later runs


@dataclass
class ScanReport:
    source: str
    now: datetime
    reports: list[SourceReport] = field(default_factory=list)
    paused_until: datetime | None = None

    @property
    def stored(self) -> int:
        return sum(r.stored for r in self.reports)

    @property
    def failed(self) -> list[SourceReport]:
        return [r for r in self.reports if r.errors]


def enrich(
    mentions: list[Mention], brand: Brand, comprehend: Callable[[], Any] | None = None
) -> list[Mention]:
    """Tone, theme, language, noise and story on each mention, with the brand's tone backend."""
    if not mentions:
        return mentions
    client = comprehend() if brand.tone == "comprehend" and comprehend else None
    analyzer = tone_analyzer(brand.tone if client else "vader", comprehend_client=client)
    results = enrich_mentions(mentions, brand_themes=brand.themes, recent=RECENT_TEXTS, analyzer=analyzer)
    return [m.with_enrichment(**e.mention_fields()) for m, e in zip(mentions, results, strict=True)]


def scan_source(
    source: str,
    now: datetime,
    *,
    config: AppConfig,
    store: Store,
    http: HttpClient,
    credentials: Credentials | None = None,
    brand_id: str | None = None,
    comprehend: Callable[[], Any] | None = None,
    stream: str | None = None,
) -> ScanReport:
    """Scan one source for every brand (or one); a failing brand or query never stops the others.

    `stream` (a query key, with `brand_id`) narrows the run to that one stream: a queued scan job.
    """
    report = ScanReport(source=source, now=now)
    settings = config.source(source)
    if not settings.enabled:
        logger.info("source disabled in configuration", extra={"source": source})
        return report
    connector = get_connector(source)
    brands: tuple[Brand, ...] = config.brands if brand_id is None else (config.brand(brand_id),)
    all_specs = {brand.id: connector.specs(brand, settings) for brand in brands}
    specs_by_brand = {
        brand_id: [s for s in specs if stream is None or s.key == stream]
        for brand_id, specs in all_specs.items()
    }
    paused, cursors_by_brand = store.scan_state(
        source, {b: [s.key for s in specs] for b, specs in specs_by_brand.items()}
    )
    if paused and paused > now:
        report.paused_until = paused
        logger.info("source paused by its rate limit", extra={"source": source, "until": paused.isoformat()})
        return report
    ctx = ScanContext(http=http, now=now, settings=settings, credentials=credentials, tokens=store)
    for brand in brands:
        brand_report = SourceReport(brand=brand.id, source=source)
        report.reports.append(brand_report)
        specs = specs_by_brand[brand.id]
        cursors = cursors_by_brand[brand.id]
        for spec in specs:
            if not ctx.time_left():
                brand_report.complete = False
                break
            cursor = cursors[spec.key]
            try:
                for page in connector.pages(brand, spec, cursor, ctx):
                    result = store.store_mentions(enrich(page.mentions, brand, comprehend))
                    brand_report.pages += 1
                    brand_report.fetched += page.fetched
                    brand_report.stored += result.stored
                    brand_report.duplicates += result.duplicates
                    brand_report.skipped += page.skipped
                    brand_report.not_matching += page.not_matching
                    if page.position is not None and page.position != cursor.position:
                        cursor = store.save_cursor(cursor, page.position, now)
                if not ctx.time_left():
                    brand_report.complete = False
            except SourceError as exc:
                brand_report.errors.append(str(exc))
                logger.warning(
                    "source query failed",
                    extra={"brand": brand.id, "source": source, "query": spec.label, "error": str(exc)},
                )
                if exc.retry_after and exc.retry_after > PAUSE_THRESHOLD.total_seconds():
                    # the source's quota is spent: later runs skip it until the reset
                    until = now + timedelta(seconds=exc.retry_after)
                    store.pause(source, until, str(exc))
                    report.paused_until = until
                    break
            except CredentialsError as exc:
                brand_report.errors.append(str(exc))
                logger.error(
                    "source credentials missing",
                    extra={"brand": brand.id, "source": source, "error": str(exc)},
                )
                continue  # another stream (another Page, another account) may have its credentials
            except ConflictError as exc:
                # another run is scanning the same query; it owns the cursor now
                logger.info(
                    "cursor moved by a concurrent run",
                    extra={"brand": brand.id, "source": source, "error": str(exc)},
                )
            except Exception as exc:  # a connector bug or an AWS error: this stream stops, the others go on
                brand_report.errors.append(f"{source}: {type(exc).__name__}: {exc}"[:500])
                logger.exception(
                    "stream failed", extra={"brand": brand.id, "source": source, "query": spec.label}
                )
        # queue mode runs one stream per job: the brand's first stream's job does the re-reads
        # (not when this run's searches spent the quota: the re-read would be refused too)
        first_job = stream is None or (all_specs[brand.id] and all_specs[brand.id][0].key == stream)
        if first_job and report.paused_until is None:
            refresh_watched(connector, brand, now, store, ctx, brand_report)
        store.record_run(
            brand.id, source, now, error="; ".join(brand_report.errors) or None, stats=brand_report.stats()
        )
        logger.info(
            "scanned",
            extra={
                "brand": brand.id,
                "source": source,
                **brand_report.stats(),
                "errors": len(brand_report.errors),
            },
        )
        if report.paused_until:
            break  # the quota is per app: the other brands would be refused too
    return report


def refresh_watched(
    connector: Any, brand: Brand, now: datetime, store: Store, ctx: ScanContext, report: SourceReport
) -> None:
    """Re-read the engagement of the brand's watched posts from this source: the recent top posts the
    viral-post rule follows (`detect.read_engagement`). A search only returns new posts, so without
    this a post that is being reposted is never seen to grow.

    At most once per `refresh_minutes` per brand and source (a claim per interval, so concurrent or
    retried runs do not read twice). The re-read is extra to the scan: whatever fails in it (the
    source, the connector, DynamoDB) is logged and counted in `refresh_errors`, never fails the scan
    whose mentions are already stored, and a later run tries again.
    """
    try:
        _refresh_watched(connector, brand, now, store, ctx, report)
    except Exception:  # an AWS error past the client's retries, or a connector bug
        report.refresh_errors += 1
        logger.exception("engagement re-read failed", extra={"brand": brand.id, "source": ctx.settings.name})


def _refresh_watched(
    connector: Any, brand: Brand, now: datetime, store: Store, ctx: ScanContext, report: SourceReport
) -> None:
    from .detect import VIRAL_LOOKBACK, VIRAL_POSTS

    read = getattr(connector, "engagement", None)
    minutes = ctx.settings.refresh_minutes
    if read is None or not minutes or not ctx.time_left():
        return
    source = ctx.settings.name
    posts = [
        m
        for m in store.top_mentions(brand.id, now - VIRAL_LOOKBACK, now + timedelta(minutes=5), VIRAL_POSTS)
        if m.source == source
    ]
    if not posts:
        return
    interval = minutes * 60
    slot = datetime.fromtimestamp(int(now.timestamp()) // interval * interval, UTC)
    pk, sk = f"REFRESH#{brand.id}#{source}", utc_iso(slot)
    if not store.claim(pk, sk, now, ttl_days=2, lease_seconds=min(interval, 900)):
        return
    try:
        fresh = read(brand, posts, ctx)
    except (SourceError, CredentialsError) as exc:
        store.release(pk, sk)
        report.refresh_errors += 1
        logger.warning(
            "engagement re-read failed", extra={"brand": brand.id, "source": source, "error": str(exc)}
        )
        retry_after = exc.retry_after if isinstance(exc, SourceError) else None
        if retry_after and retry_after > PAUSE_THRESHOLD.total_seconds():
            store.pause(source, now + timedelta(seconds=retry_after), str(exc))  # as a search would
        return
    except Exception:
        store.release(pk, sk)  # a connector bug: give the interval back, then count it (above)
        raise
    updated = [replace(m, engagement=fresh[m.id]) for m in posts if isinstance(fresh.get(m.id), Engagement)]
    report.refreshed += store.refresh_engagement(updated)
    store.complete(pk, sk, {"posts": len(posts), "read": len(updated)})
