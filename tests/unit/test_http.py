"""HttpClient: bounded retries on 429/5xx/timeouts within the run's deadline; fake session and clock."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests
from emberwatch.http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    USER_AGENT,
    HttpClient,
    SourceError,
    new_session,
    retry_after_seconds,
)

URL = "https://hn.example/api/v1/search_by_date"
WALL_START = datetime(2024, 5, 13, 14, 0, tzinfo=UTC).timestamp()


def response(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update(headers or {})
    r._content = body
    r.url = URL
    return r


class FakeSession:
    """A `requests.Session` stand-in: answers from a script of responses or exceptions, recording calls.

    It offers both `get` and `request`, so the client may use either.
    """

    def __init__(self, *outcomes: requests.Response | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, dict]] = []
        self.methods: list[str] = []

    def request(self, method: str, url: str, **kwargs):
        self.methods.append(method.upper())
        self.calls.append((url, kwargs))
        if not self.outcomes:
            raise AssertionError(f"unexpected extra request to {url}")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)


class Clock:
    """A monotonic clock and wall clock that only move when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_START + (self.now - 1000.0)


def client(session: FakeSession, clock: Clock, **kwargs) -> HttpClient:
    return HttpClient(
        session=session,  # type: ignore[arg-type]
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        wall=clock.wall,
        **kwargs,
    )


# ---------------------------------------------------------------- success and non-retried statuses


def test_success_is_returned_after_one_request_without_sleeping():
    session, clock = FakeSession(response(200, body=b"{}")), Clock()
    http = client(session, clock)

    result = http.get(URL, params={"query": "acme"}, headers={"Accept": "application/json"})

    assert result.status_code == 200
    assert session.methods == ["GET"]
    assert clock.sleeps == []
    assert http.requests_made == 1
    url, kwargs = session.calls[0]
    assert url == URL
    assert kwargs["params"] == {"query": "acme"}
    assert kwargs["headers"] == {"Accept": "application/json"}


@pytest.mark.parametrize("status", [301, 304, 400, 401, 403, 404, 410, 422])
def test_statuses_other_than_429_and_5xx_are_returned_without_retry(status):
    session, clock = FakeSession(response(status)), Clock()
    http = client(session, clock)

    assert http.get(URL).status_code == status
    assert len(session.calls) == 1
    assert clock.sleeps == []


def test_every_request_sends_a_timeout_and_verifies_tls():
    session = FakeSession(
        response(503), requests.Timeout("read timed out"), requests.ConnectionError("reset"), response(200)
    )
    clock = Clock()
    client(session, clock).get(URL)

    assert len(session.calls) == 4
    for _, kwargs in session.calls:
        assert kwargs["timeout"] == (CONNECT_TIMEOUT, READ_TIMEOUT)
        assert all(t is not None and t > 0 for t in kwargs["timeout"])
        assert kwargs["verify"] is True


# ---------------------------------------------------------------- 429 and Retry-After


def test_429_waits_for_retry_after_seconds_then_retries():
    session = FakeSession(response(429, {"Retry-After": "7"}), response(200))
    clock = Clock()
    http = client(session, clock)

    assert http.get(URL).status_code == 200
    assert clock.sleeps == [7.0]
    assert http.requests_made == 2


def test_429_waits_until_the_retry_after_http_date():
    # Given Retry-After as an HTTP date 42 seconds after the (fake) wall clock
    when = datetime.fromtimestamp(WALL_START + 42, UTC)
    session = FakeSession(response(429, {"Retry-After": format_datetime(when, usegmt=True)}), response(200))
    clock = Clock()

    client(session, clock).get(URL)

    assert clock.sleeps == [pytest.approx(42.0)]


def test_429_retry_after_in_the_past_retries_at_once():
    when = datetime.fromtimestamp(WALL_START - 60, UTC)
    session = FakeSession(response(429, {"Retry-After": format_datetime(when, usegmt=True)}), response(200))
    clock = Clock()

    client(session, clock).get(URL)

    assert clock.sleeps == [0.0]


def test_429_without_retry_after_uses_backoff():
    session, clock = FakeSession(response(429), response(200)), Clock()
    client(session, clock).get(URL)
    assert len(clock.sleeps) == 1
    assert 0.5 <= clock.sleeps[0] <= 1.0


def test_429_whose_wait_passes_the_deadline_raises_with_status_and_retry_after():
    # Given 20 s left in the run and a server that asks for 60 s
    session, clock = FakeSession(response(429, {"Retry-After": "60"}), response(200)), Clock()
    http = client(session, clock, deadline=clock.now + 20)

    with pytest.raises(SourceError) as info:
        http.get(URL)

    # Then the client does not sleep past the deadline, and says why it stopped
    assert clock.sleeps == []
    assert len(session.calls) == 1
    assert info.value.status == 429
    assert info.value.retry_after == 60.0
    assert "HTTP 429" in str(info.value)
    assert "hn.example/api/v1/search_by_date" in str(info.value)


def test_wait_that_ends_exactly_at_the_deadline_is_allowed():
    session, clock = FakeSession(response(429, {"Retry-After": "20"}), response(200)), Clock()
    http = client(session, clock, deadline=clock.now + 20)
    assert http.get(URL).status_code == 200
    assert clock.sleeps == [20.0]


# ---------------------------------------------------------------- 5xx and timeouts


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_growing_backoff(status):
    session = FakeSession(response(status), response(status), response(status), response(200))
    clock = Clock()

    assert client(session, clock).get(URL).status_code == 200

    # backoff is 0.5 * 2**attempt plus up to 0.5 s of jitter
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps):
        base = 0.5 * 2**attempt
        assert base <= slept <= base + 0.5
    assert clock.sleeps == sorted(clock.sleeps)


def test_backoff_is_exactly_exponential_without_jitter(monkeypatch):
    monkeypatch.setattr("emberwatch.http.random.uniform", lambda low, high: 0.0)
    session = FakeSession(response(502), response(502), response(502), response(200))
    clock = Clock()
    client(session, clock).get(URL)
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_backoff_is_capped_at_30_seconds(monkeypatch):
    monkeypatch.setattr("emberwatch.http.random.uniform", lambda low, high: 0.0)
    session = FakeSession(*[response(500)] * 9, response(200))
    clock = Clock()
    client(session, clock, attempts=10).get(URL)
    assert max(clock.sleeps) == 30.0
    assert clock.sleeps[-1] == 30.0


@pytest.mark.parametrize("error", [requests.Timeout("read timed out"), requests.ConnectionError("refused")])
def test_timeouts_and_connection_errors_are_retried(error):
    session, clock = FakeSession(error, response(200)), Clock()
    http = client(session, clock)

    assert http.get(URL).status_code == 200
    assert len(clock.sleeps) == 1
    assert http.requests_made == 2


def test_attempts_exhausted_on_5xx_raises_with_the_last_status():
    session = FakeSession(*[response(503)] * 4)
    clock = Clock()

    with pytest.raises(SourceError) as info:
        client(session, clock).get(URL)

    assert len(session.calls) == 4
    assert len(clock.sleeps) == 3  # no pointless sleep after the last attempt
    assert info.value.status == 503
    assert info.value.retry_after is None
    assert "after 4 attempt(s)" in str(info.value)


def test_attempts_exhausted_on_timeouts_raises_without_status():
    session = FakeSession(*[requests.Timeout("read timed out")] * 4)
    clock = Clock()

    with pytest.raises(SourceError) as info:
        client(session, clock).get(URL)

    assert info.value.status is None
    assert "Timeout" in str(info.value)
    assert len(session.calls) == 4


def test_backoff_that_would_pass_the_deadline_stops_early():
    # Given 1.2 s left: the first backoff (0.5-1.0 s) fits, the second (1.0-1.5 s, from t+0.5..1.0) does not
    session = FakeSession(response(500), response(500), response(200))
    clock = Clock()
    http = client(session, clock, deadline=clock.now + 1.2)

    with pytest.raises(SourceError) as info:
        http.get(URL)

    assert len(clock.sleeps) == 1
    assert len(session.calls) == 2
    assert info.value.status == 500
    assert clock.now <= http.deadline


def test_no_time_left_means_one_request_and_no_sleep():
    session, clock = FakeSession(requests.Timeout("slow")), Clock()
    http = client(session, clock, deadline=clock.now)
    with pytest.raises(SourceError):
        http.get(URL)
    assert clock.sleeps == []
    assert http.requests_made == 1


def test_other_request_exceptions_are_not_swallowed():
    session, clock = FakeSession(requests.exceptions.InvalidURL("bad")), Clock()
    with pytest.raises(requests.exceptions.InvalidURL):
        client(session, clock).get(URL)
    assert clock.sleeps == []


# ---------------------------------------------------------------- exhausted quota blocks the host


def test_exhausted_quota_makes_the_next_request_to_that_host_wait_for_the_reset():
    # Given a successful answer that says no requests remain until 30 s from now
    exhausted = response(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"})
    session, clock = FakeSession(exhausted, response(200)), Clock()
    http = client(session, clock)

    assert http.get(URL).status_code == 200
    assert clock.sleeps == []  # the answer itself is used at once
    http.get(URL + "?page=1")

    # Then the next request waits for the reset first
    assert clock.sleeps == [pytest.approx(30.0)]
    assert len(session.calls) == 2


def test_host_blocked_beyond_the_deadline_raises_without_requesting():
    exhausted = response(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "300"})
    session, clock = FakeSession(exhausted), Clock()
    http = client(session, clock, deadline=clock.now + 60)
    http.get(URL)

    with pytest.raises(SourceError) as info:
        http.get(URL)

    assert len(session.calls) == 1
    assert clock.sleeps == []
    assert info.value.status == 429
    assert info.value.retry_after == pytest.approx(300.0)


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": " 5 "}, 5.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "Mon, 13 May 2024 14:01:30 GMT"}, 90.0),
        ({"Retry-After": "Mon, 13 May 2024 13:00:00 GMT"}, 0.0),
    ],
)
def test_retry_after_seconds(headers, expected):
    assert retry_after_seconds(headers, WALL_START) == expected


def test_new_session_sends_the_user_agent():
    session = new_session()
    try:
        assert session.headers["User-Agent"] == USER_AGENT
    finally:
        session.close()
