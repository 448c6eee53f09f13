"""Problems the server wrote to its log: tracebacks and "internal error" records.

Read incrementally, so a problem can be tied to the inputs sent since the last read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# "internal error" is what the session logs when a request raised something unexpected
# (it also answers the client with code "internal"); any traceback or ERROR/CRITICAL
# record (an exception the event loop caught, say) counts as well.
_MARKER = re.compile(
    r"Traceback \(most recent call last\)|internal error| (ERROR|CRITICAL) ", re.IGNORECASE
)
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \S+ ")
_TRACEBACK_PARTS = ("Traceback", "During handling", "The above exception", " ", "\t")


@dataclass(frozen=True, slots=True)
class LogProblem:
    signature: str  # the log line's source and the exception, without numbers
    excerpt: str  # the record and its traceback


class ServerLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new_problems(self, *, final: bool = False) -> list[LogProblem]:
        """Each problem written since the last call, once per record; `final` once the
        server has stopped writing (a record at the very end is then complete)."""
        try:
            with self.path.open("rb") as log:
                log.seek(self._offset)
                chunk = log.read()
        except FileNotFoundError:
            return []
        # Only whole records: one still being written (a traceback in progress) is read
        # next time. A record ends where a line starts that is not part of a traceback.
        text = chunk.decode(errors="replace")
        lines = text.split("\n")
        problems, index, consumed = [], 0, 0
        while index < len(lines) - 1:
            if not _MARKER.search(lines[index]):
                consumed += len(lines[index].encode(errors="replace")) + 1
                index += 1
                continue
            end = _record_end(lines, index)
            if end >= len(lines) - 1 and not final:
                break  # maybe incomplete
            record = lines[index:end]
            problems.append(LogProblem(_signature(record), "\n".join(record)))
            consumed += sum(len(line.encode(errors="replace")) + 1 for line in record)
            index = end
        self._offset += consumed
        return problems


def _record_end(lines: list[str], start: int) -> int:
    """One past the last line of the record at `start`, its traceback included."""
    index, in_traceback = start + 1, lines[start].startswith("Traceback")
    while index < len(lines) - 1:
        line = lines[index]
        if line.startswith(_TRACEBACK_PARTS) or line == "":
            in_traceback = in_traceback or line.startswith("Traceback")
            index += 1
        elif in_traceback:
            return index + 1  # the exception line that ends a traceback
        else:
            return index
    return index


def _signature(record: list[str]) -> str:
    """The record's message, the innermost frame and the exception (numbers in the
    exception's text hidden), so repeats of one defect group together."""
    head = _TIMESTAMP.sub("", record[0])[:100]
    frames = [line.strip() for line in record if line.strip().startswith("File ")]
    ours = [f for f in frames if "/sfu/" in f or "/signaling/" in f]  # where to fix it
    frames = ours or frames
    exception = next(
        (line for line in reversed(record) if line and not line.startswith(_TRACEBACK_PARTS)), ""
    )
    parts = [head, frames[-1] if frames else "", re.sub(r"\d+", "N", exception[:120])]
    return " | ".join(dict.fromkeys(p for p in parts if p))
