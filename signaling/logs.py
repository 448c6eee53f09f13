"""Structured logs: one JSON object per line (``server.log_format = "json"``).

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``;
lines about a room or a participant also carry ``room`` and ``participant``,
passed by the caller as ``extra={"room": ..., "participant": ...}`` so the
ids can be filtered on without parsing the message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["CONTEXT_FIELDS", "JsonFormatter", "json_handler"]

CONTEXT_FIELDS = ("room", "participant")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, object] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def json_handler() -> logging.Handler:
    """A stderr handler writing `JsonFormatter` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler
