"""OpenTelemetry spans over OTLP, when an exporter endpoint is configured; nothing otherwise.

The standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns it on, and the
SDK reads the rest of its configuration (headers, ``OTEL_SERVICE_NAME``...) from the environment itself.
Without it the SDK is not even imported: a function's cold start does not pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from shared.observability.tracing import TraceContext

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@lru_cache(maxsize=1)
def _tracer() -> Any:
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME") or os.environ.get("K_SERVICE") or "refsys"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer("refsys")


@contextmanager
def span(name: str, parent: TraceContext, attributes: dict[str, str]) -> Iterator[TraceContext]:
    """The span of one piece of work under ``parent`` (the sender's span): exported when configured."""
    tracer = _tracer()
    if tracer is None:
        yield parent.child()
        return
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    remote = SpanContext(
        int(parent.trace_id, 16), int(parent.span_id, 16), is_remote=True, trace_flags=TraceFlags(int(parent.sampled))
    )
    context = trace.set_span_in_context(NonRecordingSpan(remote))
    with tracer.start_as_current_span(name, context=context, attributes=attributes) as current:
        ids = current.get_span_context()
        yield TraceContext(format(ids.trace_id, "032x"), format(ids.span_id, "016x"), parent.sampled)
