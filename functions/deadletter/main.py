"""deadletter: the dead-letter sink of every Trigger; keeps each failed event, even a malformed one, and
schedules its restart when a restart rule says so (the operations function's tick restarts it)."""

import flask
import functions_framework

from shared import ports
from shared.operations.deadletters_api import letters
from shared.runtime import configure_logging, error_response
from shared.security.senders import refuse_unknown_sender

configure_logging()


@functions_framework.http
def deadletter(request: flask.Request) -> flask.Response:
    if request.method == "GET" and request.path.rstrip("/") == "/healthz":
        return flask.jsonify({"status": "ok"})
    if (refused := refuse_unknown_sender(request)) is not None:  # events from the broker only
        return refused
    if request.method != "POST":
        return error_response(405, "MethodNotAllowed", f"POST a dead letter to this function, not {request.method}")
    # Never 400: the sink is the last stop, a letter refused here would be lost.
    letter = letters().keep_request(request.headers, request.get_data())
    if letter.event is not None and ports.event_archive().writable:  # a cluster's archive: the outcome Knative reports
        outcome = {"state": "dead-lettered", "destination": letter.attribute("knativeerrordest"),
                   "status": letter.error_code, "letter": letter.id}  # fmt: skip
        ports.event_archive().add_outcome(str(letter.event["source"]), str(letter.event["id"]), outcome)
    return flask.Response(status=202)
