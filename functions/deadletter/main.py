"""deadletter: the dead-letter sink of every Trigger; keeps each failed event so it can be restarted."""

import flask
import functions_framework

from events import InvalidEvent, parse_http
from shared import ports
from shared.operations.deadletters import DeadLetters
from shared.runtime import error_response
from shared.settings import get_settings


@functions_framework.http
def deadletter(request: flask.Request) -> flask.Response:
    if request.method == "GET" and request.path.rstrip("/") == "/healthz":
        return flask.jsonify({"status": "ok"})
    try:
        event = parse_http(request.headers, request.get_data())
    except InvalidEvent as exc:
        return error_response(400, "InvalidEvent", str(exc))
    DeadLetters(ports.object_store(), get_settings().deadletter_bucket).keep(event)
    return flask.Response(status=202)
