"""A one-line progress bar on stderr (a terminal redraws it; a log gets a line every 5 s)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30
_LOG_INTERVAL = 5.0


class Progress:
    def __init__(self, label: str, *, stream: TextIO | None = None) -> None:
        self.label = label
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._last_log = float("-inf")
        self._started = time.monotonic()

    def update(self, fraction: float, status: str) -> None:
        fraction = min(1.0, max(0.0, fraction))
        filled = round(fraction * _WIDTH)
        elapsed = time.monotonic() - self._started
        line = (
            f"{self.label} [{'#' * filled}{'.' * (_WIDTH - filled)}] "
            f"{fraction * 100:3.0f}% {elapsed:5.0f}s {status}"
        )
        if self._tty:
            self._write("\r\x1b[2K" + line)
        elif time.monotonic() - self._last_log >= _LOG_INTERVAL:
            self._last_log = time.monotonic()
            self._write(line + "\n")

    def done(self, status: str) -> None:
        self._last_log = float("-inf")  # always log the final state
        self.update(1.0, status)
        if self._tty:
            self._write("\n")

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
