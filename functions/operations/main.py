"""operations: the operators' HTTP API — dead letters (/deadletters), the event archive (/archive),
replays (/replays) and reprocessing (/reprocessings); POST /tick (a PingSource) restarts the dead letters
the restart rules scheduled and applies the archive's retention. Operator role needed when OIDC is on."""

from __future__ import annotations

from collections.abc import Callable

import flask
import functions_framework

from shared.operations import deadletters_api, replay_api
from shared.operations.http import ApiError, answer
from shared.runtime import configure_logging, error_response, tick_endpoint
from shared.security.access import OPERATOR, access_policy

configure_logging()
ROUTES: dict[str, Callable[[flask.Request, str], flask.Response]] = {
    "deadletters": deadletters_api.handle,
    "archive": replay_api.handle,
    "replays": replay_api.handle,
    "reprocessings": replay_api.handle,
}


def _tick() -> dict[str, int]:
    return {**deadletters_api.on_tick(), **replay_api.on_tick()}


_on_tick = tick_endpoint("operations", _tick)


@functions_framework.http
def operations(request: flask.Request) -> flask.Response:
    path = request.path.rstrip("/")
    if request.method == "GET" and path == "/healthz":
        return flask.jsonify({"status": "ok"})
    if path == "/tick":
        return _on_tick(request)
    if path in ("", "/"):
        if request.method != "GET":
            return error_response(405, "MethodNotAllowed", f"GET lists the routes: {', '.join(ROUTES)}")
        return answer({"routes": [f"/{name}" for name in ROUTES]})
    route = ROUTES.get(path.split("/")[1])
    if route is None:
        return error_response(404, "NotFound", f"no route {path}; the routes: {', '.join(ROUTES)}")
    if (refused := access_policy().refuse(request, OPERATOR)) is not None:
        return refused
    try:
        return route(request, path)
    except ApiError as exc:
        return exc.response()
