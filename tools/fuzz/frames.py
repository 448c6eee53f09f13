"""One WebSocket input: what is sent, how (text, binary or raw text bytes), and why."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FrameKind(StrEnum):
    TEXT = "text"  # a str, sent as a text frame
    BINARY = "binary"  # bytes, sent as a binary frame
    RAW_TEXT = "raw_text"  # bytes sent as a text frame as they are (may be invalid UTF-8)


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    data: str | bytes
    label: str  # the mutation that made it, e.g. "type_confusion:set_role.target"
    request_id: str | None = None  # the id the reply should echo, when the frame kept one
    recipe: str | None = None  # a short Python expression that builds `data`, for big frames

    @property
    def size(self) -> int:
        return len(self.data.encode()) if isinstance(self.data, str) else len(self.data)

    def reproducer(self, limit: int = 400) -> str:
        """The frame as a Python expression, shortened in the middle when long."""
        text = self.recipe or repr(self.data)
        if len(text) > limit:
            half = limit // 2
            text = f"{text[:half]} ... ({self.size} bytes) ... {text[-half:]}"
        return f"{self.kind.value} frame: {text}"

    def exact(self) -> str:
        """The whole frame as a Python expression (for the JSON report)."""
        return self.recipe or repr(self.data)
