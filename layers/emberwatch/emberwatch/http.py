"""Outbound HTTP for connectors: one pooled session, timeouts, TLS verified, bounded retries.

Rate limits are honoured the same way for every source: `Retry-After`, or else the source's
reset header (`x-rate-limit-reset`, `X-Ratelimit-Reset`, `RateLimit-Reset`, as epoch seconds,
seconds to wait, or an ISO 8601 time). A response that says no requests remain blocks its host
until the reset, so the next request waits (within the run's budget) instead of being refused.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

USER_AGENT = "python:emberwatch:0.1 (social listening; +https://github.com/emberwatch/emberwatch)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0
RESET_HEADERS = ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset")
REMAINING_HEADERS = ("x-rate-limit-remaining", "x-ratelimit-remaining", "ratelimit-remaining")
_SECRET_PARAM = re.compile(r"(?i)\b(access_token|key|token|client_secret|password|secret|sig)=[^&\s'\"]+")


def redact(text: str) -> str:
    """Hide credential-bearing query parameters in a message or URL."""
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)


class SourceError(RuntimeError):
    """A source could not be read now; the run stops this stream and keeps what it stored."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(redact(message))
        self.status = status
        self.retry_after = retry_after


def _seconds_until(value: str, now: float) -> float | None:
    """A reset header value as seconds from `now`: epoch seconds, a delay, an HTTP date or ISO 8601."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, number - now) if number > 1e9 else max(0.0, number)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait: `Retry-After` (delay or HTTP date), else the source's rate-limit reset header."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("retry-after"):
        return _seconds_until(lowered["retry-after"], now)
    for name in RESET_HEADERS:
        if lowered.get(name):
            return _seconds_until(lowered[name], now)
    return None


def quota_exhausted(headers: Mapping[str, str]) -> bool:
    """True when a rate-limit header says no requests remain in the window."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in REMAINING_HEADERS:
        if name in lowered:
            try:
                return float(lowered[name]) <= 0
            except ValueError:
                return False
    return False


def new_session() -> requests.Session:
    """A pooled session with our User-Agent; created once per container."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass
class HttpClient:
    """HTTP with retries on 429/5xx/timeouts inside a time budget (the run's deadline)."""

    session: requests.Session = field(default_factory=new_session)
    deadline: float = float("inf")  # time.monotonic() value after which no new wait starts
    attempts: int = 4
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    requests_made: int = 0
    blocked_until: dict[str, float] = field(default_factory=dict)  # host -> wall time

    def block(self, url: str, seconds: float) -> None:
        """Keep away from this URL's host for `seconds` (the source asked for a pause, e.g. backoff)."""
        host = urlsplit(url).netloc
        self.blocked_until[host] = max(self.blocked_until.get(host, 0.0), self.wall() + seconds)

    def _wait_for_host(self, url: str) -> None:
        until = self.blocked_until.get(urlsplit(url).netloc)
        if until is None:
            return
        wait = until - self.wall()
        if wait <= 0:
            return
        if self.monotonic() + wait > self.deadline:
            raise SourceError(
                f"{urlsplit(url).netloc}: rate limited for {wait:.0f} s more", status=429, retry_after=wait
            )
        self.sleep(wait)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send a request; retry 429, 5xx and network errors, then raise SourceError; else the response."""
        last_error = "no attempt made"
        status: int | None = None
        for attempt in range(self.attempts):
            self._wait_for_host(url)
            wait: float | None = None
            try:
                self.requests_made += 1
                response = self.session.request(
                    method,
                    url,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                    verify=True,
                    allow_redirects=True,
                    **kwargs,
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                last_error = type(exc).__name__
                status = None
            else:
                if quota_exhausted(response.headers):
                    reset = retry_after_seconds(response.headers, self.wall())
                    if reset:
                        self.block(url, reset)
                if response.status_code not in RETRY_STATUSES:
                    return response
                status = response.status_code
                last_error = f"HTTP {status}"
                wait = retry_after_seconds(response.headers, self.wall())
            backoff = wait if wait is not None else min(30.0, (2**attempt) * 0.5 + random.uniform(0, 0.5))
            if attempt + 1 >= self.attempts or self.monotonic() + backoff > self.deadline:
                where = urlsplit(url)
                raise SourceError(
                    f"{where.netloc}{where.path}: {last_error} after {attempt + 1} attempt(s)",
                    status=status,
                    retry_after=wait,
                )
            self.sleep(backoff)
        raise SourceError(f"{urlsplit(url).netloc}: {last_error}", status=status)


def decode_json(response: requests.Response, source: str) -> Any:
    """The JSON body of a response, or SourceError naming what came instead (an HTML error page...)."""
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "unknown content type").split(";")[0]
        raise SourceError(
            f"{source}: HTTP {response.status_code} answered {kind}, not JSON", status=response.status_code
        ) from None
