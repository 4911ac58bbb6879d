"""The one logging setup: one JSON object per line on stderr, so platform logs can be collected as-is.

Every line carries the context it was written in: the function (process-wide), and while an event is
handled its id, type, product and trace (``log_context``), so one product's way through the system is
one query on ``trace_id`` or ``product``. Field names follow the reference's traces where one maps
(``level``, ``message``; ``task``, ``status`` and ``duration_in_seconds`` on a handling's end line).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from shared.observability.tracing import current

# Attributes every LogRecord has; anything else passed through `extra=` is written as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_context: ContextVar[dict[str, Any]] = ContextVar("refsys_log_context", default={})  # noqa: B039 (never mutated)
_process: dict[str, Any] = {}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block (None values are left out)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def set_process_fields(**fields: Any) -> None:
    """Fields on every line this process logs, in any thread (a processing Job: its run and job)."""
    _process.update({k: v for k, v in fields.items() if v is not None})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_process,
            **_context.get(),
        }
        if (trace := current()) is not None:
            entry["trace_id"], entry["span_id"] = trace.trace_id, trace.span_id
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, function: str | None = None) -> None:
    """JSON lines on stderr at ``level``; ``function`` (default: Knative's ``K_SERVICE``) on every line."""
    if function := function or os.environ.get("K_SERVICE") or _process.get("function"):
        _process["function"] = function
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # boto's own debug chatter drowns the pipeline's lines; gunicorn's error log goes through ours.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for server in ("gunicorn.error", "gunicorn.access"):
        logging.getLogger(server).handlers[:] = []
        logging.getLogger(server).propagate = True
