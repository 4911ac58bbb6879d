"""The HTTP side of the inbox scan: a POST with a CloudEvent (a PingSource tick) or nothing runs one scan."""

from __future__ import annotations

import logging

import flask

from events import InvalidEvent, parse_http
from shared import ports
from shared.bus.publisher import SinkUnavailable
from shared.ingestion.inbox import Inbox
from shared.ingestion.scan import InboxScan
from shared.runtime import error_response
from shared.settings import get_settings

log = logging.getLogger(__name__)


def scan_inbox(request: flask.Request) -> flask.Response:
    if request.method == "GET" and request.path.rstrip("/") == "/healthz":
        return flask.jsonify({"status": "ok"})
    if request.method != "POST":
        return error_response(405, "MethodNotAllowed", "POST a CloudEvent (e.g. a PingSource tick) to run a scan")
    if request.get_data():
        try:
            parse_http(request.headers, request.get_data())
        except InvalidEvent as exc:
            return error_response(400, "InvalidEvent", f"a scan is started by a CloudEvent or an empty POST: {exc}")
    scan = InboxScan(Inbox(ports.object_store(), get_settings()), ports.processed_events(), ports.sink().publish)
    try:
        report = scan.run()
    except SinkUnavailable as exc:
        return error_response(503, "SinkUnavailable", str(exc))
    log.info("scan done", extra={"listed": report.listed, "raised": report.raised, "settled": report.settled})
    return flask.Response(status=202)
