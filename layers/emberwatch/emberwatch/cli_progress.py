"""A small progress line on stderr for the CLI's long commands (no dependency, never imported by Lambda).

On a terminal it redraws one line in place; otherwise (a pipe, a log file, CI) it writes a plain line at
most every `every` seconds and one at the end, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`Progress("backfill", total=1.0)`, then `update(done, note)` and `close()`; total None: a counter."""

    def __init__(
        self, label: str, total: float | None = None, *, stream: TextIO | None = None, every: float = 5.0
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every
        self.done: float = 0
        self.note = ""
        self.started = time.monotonic()
        self._shown = 0.0
        self._closed = False

    def render(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.total:
            share = max(0.0, min(1.0, self.done / self.total))
            bar = "#" * int(share * 24)
            head = f"{self.label} [{bar:<24}] {share * 100:5.1f}%"
        else:
            head = f"{self.label}: {self.done:g}"
        return f"{head}  {self.note}  {elapsed:.0f}s".rstrip()

    def update(self, done: float, note: str = "") -> None:
        self.done, self.note = done, note or self.note
        now = time.monotonic()
        if self.tty:
            if now - self._shown >= 0.1:
                self.stream.write("\r\033[K" + self.render())
                self.stream.flush()
                self._shown = now
        elif now - self._shown >= self.every:
            self.stream.write(self.render() + "\n")
            self.stream.flush()
            self._shown = now

    def close(self, note: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        if note:
            self.note = note
        self.stream.write(("\r\033[K" if self.tty else "") + self.render() + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
