"""How every function meets Knative: one adapter from HTTP to a typed handler and back.

The convention (see README "Function runtime"):

- A handler takes the typed payload of one event and returns the next event's payload, or None.
  Returned payload -> **200 with that CloudEvent** (binary mode): the Knative reply, which the
  broker publishes back and routes by the Triggers. None -> **202, empty body**: done, nothing follows.
- A step that produces several events, or events from non-event input (the notification adapter),
  posts them to the sink Knative injects as ``K_SINK`` and answers 202 only after the sink accepted.
- ``RetryLater`` -> 503: the broker retries with the Trigger's backoff, then dead-letters.
  ``Reject`` or a payload that does not fit its model -> 422: dead-lettered at once (poison).
  An envelope that is not a CloudEvent -> 400. Never 200 with a plain body: brokers count that as a failure.
- A bad *product* is not a delivery failure: the handler quarantines it and replies with a rejection event.
- What an event causes inherits its ``replay`` and ``reprocessing`` extensions (:func:`consequence`): the work a
  replay or a reprocessing does again is done under its name, with ids of its own.
- Settings come from the environment through ``shared.settings``; nothing deeper reads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import flask
from cloudevents.http import CloudEvent
from werkzeug.exceptions import RequestEntityTooLarge

from events import EventData, InvalidEvent, InvalidPayload, make_event, parse_data, parse_http, to_http
from events.http import MAX_EVENT_BYTES, EventTooLarge
from events.naming import REPLAY, REPROCESSING, TYPE_PREFIX, derived_id, function_source
from shared.bus.idempotency import ProcessedEvents
from shared.logs import log_context
from shared.observability import otel, tracing
from shared.observability.metrics import observe
from shared.responses import error_response
from shared.security.senders import refuse_unknown_sender

log = logging.getLogger(__name__)

# The event a handler is working on (each request runs in its own context).
_handled: ContextVar[CloudEvent | None] = ContextVar("refsys_handled_event", default=None)


class RetryLater(Exception):
    """A transient failure (a store down, a product still arriving): deliver again later."""


class Reject(Exception):
    """This event can never be processed by this function: dead-letter it now."""


def event_endpoint(
    function: str,
    handler: Callable[[Any], EventData | None],
    accepts: tuple[type[EventData], ...],
    processed: Callable[[], ProcessedEvents] | None = None,
) -> Callable[[flask.Request], flask.Response]:
    """Turn ``handler(payload) -> reply | None`` into a Knative-correct HTTP view.

    With ``processed``, an event that already produced a reply is answered with that same reply
    without running the handler again (a replay has ids of its own, so it is not one of those). An event
    that produced nothing (e.g. a product still arriving) may be looked at again.
    """
    accepted = {model.TYPE for model in accepts}
    configure_logging()

    def view(request: flask.Request) -> flask.Response:
        if request.method == "GET" and request.path.rstrip("/") == "/healthz":
            return flask.jsonify({"status": "ok"})
        if (refused := refuse_unknown_sender(request)) is not None:  # events only from the platform's senders
            return refused
        if request.method != "POST":
            return error_response(405, "MethodNotAllowed", f"POST a CloudEvent to this function, not {request.method}")
        try:
            event = parse_http(request.headers, request_body(request))
        except InvalidEvent as exc:
            return invalid_event(exc)
        started = time.perf_counter()
        parent = tracing.parse(event.get(tracing.TRACEPARENT)) or tracing.root_for(event.get("subject"))
        attributes = {"cloudevents.event_id": event["id"], "cloudevents.event_type": event["type"]}
        with (
            otel.span(f"{function} {event['type']}", parent, attributes) as span,
            tracing.active(span),
            log_context(function=function, event_id=event["id"], event_type=event["type"], **_about(event)),
        ):
            outcome, response, reply = handle(event)
            seconds = time.perf_counter() - started
            observe(function, event, outcome, reply, seconds)
            end = f"{outcome} {reply['type']}" if reply is not None else outcome
            log.log(logging.WARNING if outcome in ("rejected", "failed") else logging.INFO, "handled: %s", end,
                    extra={"task": function, "status": "NOK" if outcome in ("rejected", "failed") else "OK",
                           "duration_in_seconds": round(seconds, 6)})  # fmt: skip
            return response

    def handle(event: CloudEvent) -> tuple[str, flask.Response, CloudEvent | None]:
        """How the event was handled (the outcome counted in metrics), the answer, and the reply if any."""
        if event["type"] not in accepted:
            message = f"{function} accepts {', '.join(sorted(accepted))}; got {event['type']}"
            log.warning(message)
            return "rejected", error_response(422, "UnexpectedEventType", message), None
        if processed is not None:
            done = processed().lookup(function, event["source"], event["id"])
            if done is not None and done.reply is not None:
                return "duplicate", _reply_response(done.reply), done.reply
        handled = _handled.set(event)
        try:
            reply = handler(parse_data(event))
        except InvalidPayload as exc:
            log.warning("rejected payload: %s", exc)
            return "rejected", error_response(422, "InvalidPayload", str(exc)), None
        except Reject as exc:
            log.warning("rejected: %s", exc)
            return "rejected", error_response(422, "Rejected", str(exc)), None
        except RetryLater as exc:
            log.info("retry later: %s", exc)
            response = error_response(503, "RetryLater", str(exc))
            response.headers["Retry-After"] = "1"
            return "retry", response, None
        except Exception as exc:  # an unexpected failure is retried, and logged with its trace
            log.exception("handler failed")
            return "failed", error_response(500, "InternalError", f"{type(exc).__name__}: {exc}"), None
        finally:
            _handled.reset(handled)
        if reply is None:
            return "done", flask.Response(status=202), None
        reply_event = consequence(reply, function, cause=event)
        if processed is not None:
            processed().record(function, event["source"], event["id"], reply_event)
        return "reply", _reply_response(reply_event), reply_event

    return view


def _about(event: CloudEvent) -> dict[str, str | None]:
    """What a log line says an event is about: its subject, and for product and object events the product."""
    subject = event.get("subject")
    is_product = str(event["type"]).startswith((f"{TYPE_PREFIX}.product.", f"{TYPE_PREFIX}.storage."))
    return {"subject": subject, "product": tracing.product_of(subject) if is_product else None}


def consequence(data: EventData, function: str, cause: CloudEvent | None = None) -> CloudEvent:
    """The event ``function`` makes of ``data`` while handling ``cause`` (default: the event it is handling).

    It carries the cause's ``replay`` and ``reprocessing`` extensions; under a reprocessing its id is derived
    from that one's too, so the work done again is not mistaken for the original (same payload, same id).
    """
    cause = cause if cause is not None else _handled.get()
    inherited = {name: str(cause[name]) for name in (REPLAY, REPROCESSING) if cause is not None and cause.get(name)}
    event = make_event(data, source=function_source(function), extensions=inherited or None)
    if generation := inherited.get(REPROCESSING):
        event["id"] = derived_id(event["id"], generation)
    return tracing.stamp(event)


def reprocessing() -> str | None:
    """The replay or reprocessing the event being handled belongs to, if any."""
    event = _handled.get()
    value = None if event is None else event.get(REPROCESSING)
    return str(value) if value else None


def tick_endpoint(function: str, work: Callable[[], object]) -> Callable[[flask.Request], flask.Response]:
    """A view for scheduled work: a POST with a CloudEvent (a PingSource tick) or nothing runs ``work``.

    What the work produces goes to K_SINK inside ``work``; a sink that refuses gives 503 (tick again).
    """
    from shared.bus.publisher import SinkUnavailable

    configure_logging()

    def view(request: flask.Request) -> flask.Response:
        if request.method == "GET" and request.path.rstrip("/") == "/healthz":
            return flask.jsonify({"status": "ok"})
        if (refused := refuse_unknown_sender(request)) is not None:  # events only from the platform's senders
            return refused
        if request.method != "POST":
            return error_response(405, "MethodNotAllowed", "POST a CloudEvent (e.g. a PingSource tick) to run")
        try:
            if body := request_body(request):
                parse_http(request.headers, body)
        except InvalidEvent as exc:
            return invalid_event(exc, "a tick is a CloudEvent or an empty POST: ")
        # No trace of its own: what a tick finds (an object the scan finds) starts its product's trace.
        with log_context(function=function):
            try:
                outcome = work()
            except SinkUnavailable as exc:
                return error_response(503, "SinkUnavailable", str(exc))
            log.info("tick done: %s", outcome)
        return flask.Response(status=202)

    return view


def request_body(request: flask.Request) -> bytes:
    """The body, read no further than any event may be (:class:`EventTooLarge` beyond)."""
    # Flask refuses a longer body while reading it, with or without a Content-Length.
    request.max_content_length = MAX_EVENT_BYTES
    try:
        return request.get_data()
    except RequestEntityTooLarge as exc:
        raise EventTooLarge(f"a CloudEvent is at most {MAX_EVENT_BYTES} bytes") from exc


def invalid_event(exc: InvalidEvent, prefix: str = "") -> flask.Response:
    """400 for what is not a CloudEvent, 413 for what is too large to be one."""
    if isinstance(exc, EventTooLarge):
        return error_response(413, "EventTooLarge", prefix + str(exc))
    return error_response(400, "InvalidEvent", prefix + str(exc))


def configure_logging() -> None:
    """A function process logs JSON lines at the configured level (the framework would drop INFO)."""
    from shared.logs import configure_logging as configure
    from shared.settings import get_settings

    configure(get_settings().log_level)


def _reply_response(reply: CloudEvent) -> flask.Response:
    headers, body = to_http(reply)
    return flask.Response(body, status=200, headers=headers)
