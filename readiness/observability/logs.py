"""Structured logs: one JSON object per line, UTC timestamps, the request or task id on every line.

A log collector (Loki, CloudWatch, journald) indexes these fields without parsing prose; ``LOG_FORMAT=text``
gives the same fields as readable lines for a terminal.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime

import orjson

from readiness.observability.context import request_id_var, task_var

# Defence in depth: our code never logs a token, but a third-party library logging a header or a URL
# might. Anything shaped like a project token is masked before the line leaves the process.
TOKEN_RE = re.compile(r"rdy_[A-Za-z0-9_-]{8,}")
REDACTED = "rdy_[redacted]"


def redact(text: str) -> str:
    return TOKEN_RE.sub(REDACTED, text) if "rdy_" in text else text


class RequestContextFilter(logging.Filter):
    """Puts the current request id and task on the record, for both formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        task = task_var.get()
        record.task_id, record.task_name = task if task is not None else (None, None)
        return True


def utc_timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id"?, "task_id"?, "task"?, "exc"?}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        task_id = getattr(record, "task_id", None)
        if task_id:
            entry["task_id"] = task_id
            entry["task"] = getattr(record, "task_name", None)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        return orjson.dumps(entry).decode()


class TextFormatter(logging.Formatter):
    """The same fields as readable lines, timestamps in UTC."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)sZ %(levelname)s %(name)s [%(context)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.context = getattr(record, "request_id", None) or getattr(record, "task_id", None) or "-"
        return redact(super().format(record))
