"""Source connectors: each turns one API's pages into `Mention`s and a cursor position.

A connector is imported only when its source is scanned, so a scan of Hacker News does not
pay for the feed parser's import and vice versa.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..config import Brand, SourceSettings
from ..http import HttpClient
from ..models import Cursor, Mention

CONNECTOR_MODULES = {
    "hackernews": "emberwatch.sources.hackernews",
    "feed": "emberwatch.sources.feed",
}

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """One incremental stream within a source for a brand: its own cursor."""

    key: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Page:
    """A page of normalised mentions and the cursor position that is safe once they are stored."""

    mentions: list[Mention]
    position: dict[str, Any] | None
    fetched: int = 0
    skipped: int = 0
    not_matching: int = 0


@dataclass
class ScanContext:
    """What a connector needs from the run: HTTP, the clock, the deadline and its settings."""

    http: HttpClient
    now: datetime
    settings: SourceSettings

    def time_left(self) -> bool:
        return self.http.monotonic() < self.http.deadline


class Connector(Protocol):
    name: str

    def specs(self, brand: Brand, settings: SourceSettings) -> list[QuerySpec]: ...

    def pages(self, brand: Brand, spec: QuerySpec, cursor: Cursor, ctx: ScanContext) -> Iterator[Page]: ...


def stable_key(prefix: str, text: str) -> str:
    """A short stable key for a query or URL, used as the cursor's sort key."""
    return f"{prefix}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def get_connector(source: str) -> Connector:
    """The connector for a source name; ValueError names the known ones."""
    try:
        module = importlib.import_module(CONNECTOR_MODULES[source])
    except KeyError:
        raise ValueError(
            f"no connector for source {source!r} (available: {', '.join(CONNECTOR_MODULES)})"
        ) from None
    return module.CONNECTOR
