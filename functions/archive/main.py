"""archive: every event of the broker (a Trigger without filter) kept in order in ``archived_events``, for
replays. Clusters only: the embedded platform's broker keeps its own queue as the archive."""

import flask
import functions_framework

from shared import ports
from shared.bus.codec import InvalidEvent, parse_http
from shared.runtime import configure_logging, error_response
from shared.security.senders import refuse_unknown_sender

configure_logging()


@functions_framework.http
def archive(request: flask.Request) -> flask.Response:
    if request.method == "GET" and request.path.rstrip("/") == "/healthz":
        return flask.jsonify({"status": "ok"})
    if (refused := refuse_unknown_sender(request)) is not None:  # events from the broker only
        return refused
    if request.method != "POST":
        return error_response(405, "MethodNotAllowed", "POST the CloudEvent to archive")
    try:
        record = parse_http(dict(request.headers), request.get_data())
    except InvalidEvent as exc:
        return error_response(400, "InvalidEvent", str(exc))
    ports.event_archive().store(record)  # a redelivery finds the first copy and keeps it
    return flask.Response(status=202)
