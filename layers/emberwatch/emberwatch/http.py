"""Outbound HTTP for connectors: one pooled session, timeouts, TLS verified, bounded retries."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

USER_AGENT = "Emberwatch/0.1 (+https://github.com/emberwatch/emberwatch; social listening)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0


class SourceError(RuntimeError):
    """A source could not be read now; the run stops this source and keeps what it stored."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def new_session() -> requests.Session:
    """A pooled session with our User-Agent; created once per container."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass
class HttpClient:
    """GET with retries on 429/5xx/timeouts inside a time budget (the run's deadline)."""

    session: requests.Session = field(default_factory=new_session)
    deadline: float = float("inf")  # time.monotonic() value after which no new wait starts
    attempts: int = 4
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    requests_made: int = 0

    def get(
        self, url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        """GET url; return the response for 2xx/3xx/4xx other than 429; raise SourceError otherwise."""
        last_error = "no attempt made"
        for attempt in range(self.attempts):
            wait: float | None = None
            try:
                self.requests_made += 1
                response = self.session.get(
                    url, params=params, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), verify=True
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                status = None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                status = response.status_code
                last_error = f"HTTP {status}"
                wait = retry_after_seconds(response.headers, self.wall())
            backoff = wait if wait is not None else min(30.0, (2**attempt) * 0.5 + random.uniform(0, 0.5))
            if attempt + 1 >= self.attempts or self.monotonic() + backoff > self.deadline:
                raise SourceError(
                    f"{url}: {last_error} after {attempt + 1} attempt(s)", status=status, retry_after=wait
                )
            self.sleep(backoff)
        raise SourceError(f"{url}: {last_error}")


def now_utc() -> datetime:
    return datetime.now(UTC)
