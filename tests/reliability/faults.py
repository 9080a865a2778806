"""Faults injected under the connectors, whatever serves them (the local source server or `responses`).

`SourceFaults` wraps `requests.adapters.HTTPAdapter.send`: with a seeded RNG it fails a share of
requests with one of the fault kinds real APIs show, and otherwise passes the request on.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

FAULT_KINDS = (
    "429_retry_after",
    "500",
    "503",
    "timeout",
    "truncated_json",
    "html_error_page",
    "connection_reset",
)

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><hr><center>cloudflare</center></body></html>"
)


def _response(request: requests.PreparedRequest, status: int, body: bytes, headers: dict[str, str]) -> Any:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers = CaseInsensitiveDict(headers)
    response.url = request.url or ""
    response.request = request
    response.reason = {
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }.get(status, "Bad Gateway")
    response.encoding = "utf-8"
    return response


class SourceFaults:
    """Fail `rate` of the requests (seeded) with a random fault kind until `active` is set False."""

    def __init__(
        self,
        rate: float = 0.30,
        seed: int = 8,
        kinds: tuple[str, ...] = FAULT_KINDS,
        html_statuses: tuple[int, ...] = (200, 502),
    ) -> None:
        self.rate = rate
        self.html_statuses = html_statuses
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.active = True
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.unsafe: list[str] = []  # requests sent without a timeout or with TLS verification off
        self._original: Any = None

    def __enter__(self) -> SourceFaults:
        self._original = HTTPAdapter.send
        faults = self
        original = self._original

        def send(adapter: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
            faults.requests += 1
            timeout, verify = kwargs.get("timeout"), kwargs.get("verify", True)
            if timeout is None or (isinstance(timeout, tuple) and None in timeout) or verify is False:
                faults.unsafe.append(f"{request.method} {request.url} timeout={timeout} verify={verify}")
            if not faults.active or faults.rng.random() >= faults.rate:
                return original(adapter, request, *args, **kwargs)
            kind = faults.rng.choice(faults.kinds)
            faults.injected[kind] += 1
            return faults.inject(kind, adapter, request, original, *args, **kwargs)

        HTTPAdapter.send = send  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        HTTPAdapter.send = self._original  # type: ignore[method-assign]

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def inject(
        self, kind: str, adapter: HTTPAdapter, request: Any, original: Any, *args: Any, **kw: Any
    ) -> Any:
        if kind == "429_retry_after":
            headers = {"Retry-After": str(self.rng.randint(1, 30)), "Content-Type": "application/json"}
            return _response(request, 429, b'{"error": "Too Many Requests"}', headers)
        if kind in ("500", "503"):
            return _response(
                request, int(kind), b'{"error": "upstream failure"}', {"Content-Type": "application/json"}
            )
        if kind == "timeout":
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=10.0)", request=request)
        if kind == "connection_reset":
            raise requests.exceptions.ConnectionError(
                ConnectionResetError(104, "Connection reset by peer"), request=request
            )
        if kind == "html_error_page":
            status = self.rng.choice(self.html_statuses)  # a CDN or a proxy answering for the API
            return _response(request, status, HTML_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        if kind == "truncated_json":
            # the real answer, cut mid-body (a dropped connection the server did not report)
            real = original(adapter, request, *args, **kw)
            body = real.content
            real._content = body[: max(1, len(body) // 2)]
            return real
        raise ValueError(kind)
