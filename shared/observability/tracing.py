"""W3C trace context on every event (the CloudEvents ``traceparent`` extension).

A product's trace starts where it is first seen: the event about its first object gets a trace id derived
from the product's name (its key's first path segment), so every object of a product, and a redelivered or
rescanned notification, share one trace. Every event a function publishes while handling another carries
that event's trace, with the handling's own span id as parent (``stamp``). A processing Job gets the trace
of its ``job.ready`` in ``TRACEPARENT``, tags its uploaded outputs with it (object metadata), and ingestion
continues that trace for the outputs, so one trace id runs from an upload to the last product made from it.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) set, each handling is also an OpenTelemetry
span exported over OTLP (see ``otel``); without it nothing is exported and the SDK is never imported.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

TRACEPARENT = "traceparent"  # CloudEvents distributed-tracing extension, and the Job's environment variable
OBJECT_METADATA = "traceparent"  # S3 user metadata (x-amz-meta-traceparent) on a Job's outputs
_HEADER = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 lower-case hex digits, not all zero
    span_id: str  # 16 lower-case hex digits, not all zero: the span that sent or handles the event
    sampled: bool = True

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceContext:
        """A new span of the same trace (the handling of an event whose traceparent is this)."""
        return TraceContext(self.trace_id, _span_id(), self.sampled)


def parse(value: Any) -> TraceContext | None:
    """The context of a ``traceparent`` value, or None for anything that is not a valid version-00 one."""
    match = _HEADER.match(str(value).strip().lower()) if value else None
    if match is None or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
        return None
    return TraceContext(match[1], match[2], bool(int(match[3], 16) & 1))


def product_trace(name: str) -> TraceContext:
    """The root context of a product first seen by ``name``: the same trace id for all its objects."""
    return TraceContext(hashlib.sha256(b"refsys-trace\x1f" + name.encode()).hexdigest()[:32], _span_id())


def product_of(subject: str | None) -> str | None:
    """The product an event's subject is about: a product name, or the first path segment of an object key."""
    return (subject or "").lstrip("/").split("/", 1)[0] or None


def root_for(subject: str | None) -> TraceContext:
    """A new trace for an event that has none: its product's (see ``product_of``), or a random one."""
    name = product_of(subject)
    return product_trace(name) if name else TraceContext(secrets.token_hex(16), _span_id())


_current: ContextVar[TraceContext | None] = ContextVar("refsys_trace", default=None)
_process: list[TraceContext] = []  # the trace of a process that does one piece of work (a processing run)


def current() -> TraceContext | None:
    """The span of the work being done now (an event being handled, a Job being run), if any."""
    return _current.get() or (_process[0] if _process else None)


def run_process_in(context: TraceContext) -> None:
    """Make ``context`` the trace of everything this process does, in any thread (a processing Job)."""
    _process[:] = [context]


@contextmanager
def active(context: TraceContext) -> Iterator[TraceContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def adopt(header: str | None) -> None:
    """Continue, for the rest of this handling, the trace ``header`` names (a Job's outputs carry their run's)."""
    if (context := parse(header)) is not None and _current.get() is not None:
        _current.set(context.child())  # undone with the handling's own context (``active``)


def stamp(event: Any) -> Any:
    """``event`` (a CloudEvent) with a ``traceparent``: kept if it has one, else the current span's,
    else a new root trace for its subject."""
    if parse(event.get(TRACEPARENT)) is None:
        context = _current.get() or root_for(event.get("subject"))
        event[TRACEPARENT] = context.header()
    return event


def from_environment() -> TraceContext | None:
    """The trace a process was started in (a processing Job: ``TRACEPARENT``)."""
    return parse(os.environ.get(TRACEPARENT.upper()))


def _span_id() -> str:
    return secrets.token_hex(8)
