"""Structured JSON logs. Only fields named here are written: never payloads, bodies or personal data."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# Attributes a log call may add with ``extra=``; anything else is dropped.
SAFE_FIELDS = (
    "peer",
    "code",
    "envelope_hash",
    "message_id",
    "message_type",
    "method",
    "path",
    "status",
    "duration_ms",
    "user",
    "role",
    "rows",
    "job",
    "delivered",
    "retried",
    "failed",
    "size",
    "node_id",
)


class JsonFormatter(logging.Formatter):
    def __init__(self, node_id: str = "") -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.node_id:
            entry["node"] = self.node_id
        for name in SAFE_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__  # the type only: messages may carry data
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", node_id: str = "") -> None:
    """Send JSON lines to stderr for the ``palermo`` loggers (idempotent)."""
    logger = logging.getLogger("palermo")
    logger.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter(node_id))
        logger.addHandler(handler)
    logger.propagate = False
