"""The notification adapter: one request from an object store -> object.created events on the sink.

It answers 2xx only after the sink accepted every event, so a store that retries (SeaweedFS, MinIO
with a queue_dir, SQS) keeps the notification until the events are safely on the broker.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import flask

from events import InvalidEvent, make_event, parse_http
from events.http import EventTooLarge, check_json
from events.naming import storage_source
from shared import ports
from shared.bus.publisher import SinkUnavailable
from shared.ingestion.notifications import UnknownNotification, object_events
from shared.runtime import error_response, invalid_event, request_body

log = logging.getLogger(__name__)


def publish_notifications(request: flask.Request) -> flask.Response:
    if request.method == "GET" and request.path.rstrip("/") == "/healthz":
        return flask.jsonify({"status": "ok"})
    if request.method != "POST":
        return error_response(405, "MethodNotAllowed", "POST object-store notifications here")
    try:
        events = object_events(_notification_body(request))
    except EventTooLarge as exc:
        return invalid_event(exc)
    except (ValueError, InvalidEvent) as exc:  # UnknownNotification is a ValueError too
        return error_response(400, type(exc).__name__, str(exc))
    if not events:  # a delete, a directory, the store's own files: nothing to announce
        return flask.Response(status=202)
    try:
        for event in events:
            ports.sink().publish(make_event(event, source=storage_source(event.store, event.bucket)))
    except SinkUnavailable as exc:
        log.warning("sink refused: %s", exc)
        return error_response(503, "SinkUnavailable", str(exc))
    log.info("published %d object events", len(events))
    return flask.Response(status=202)


def _notification_body(request: flask.Request) -> Any:
    """The notification JSON, whether posted raw or inside a CloudEvent (e.g. from an SQS source)."""
    content_type = request.headers.get("Content-Type", "")
    body = request_body(request)
    if "ce-type" in request.headers or content_type.startswith("application/cloudevents"):
        data = parse_http(request.headers, body).data
        if not isinstance(data, bytes | str):
            return data
        body = data.encode() if isinstance(data, str) else data
    check_json(body, "the notification")  # before the parser recurses into a 100k-deep body
    try:
        return json.loads(body or b"")
    except (ValueError, RecursionError) as exc:
        raise UnknownNotification(f"body is not JSON: {exc}") from exc
