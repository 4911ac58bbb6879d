"""What the operations API's routes share: JSON answers, errors that say what was wrong, operator access."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flask

from shared.runtime import error_response

Route = Callable[[flask.Request, str], flask.Response]


class ApiError(Exception):
    """A refused request: its HTTP status, a code and a message for the operator."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> flask.Response:
        return error_response(self.status, self.code, self.message)


def json_body(request: flask.Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); 400 for anything else."""
    if not request.get_data():
        return {}
    try:
        body = request.get_json(force=True, silent=False)
    except Exception as exc:  # werkzeug raises BadRequest subclasses with HTML descriptions
        raise ApiError(400, "InvalidJson", f"the body is not JSON: {getattr(exc, 'description', exc)}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidJson", "the body must be a JSON object")
    return body


def answer(payload: Any, status: int = 200) -> flask.Response:
    response = flask.jsonify(payload)
    response.status_code = status
    return response


def operator_api(
    request: flask.Request, routes: Mapping[str, Route], on_tick: Callable[[flask.Request], flask.Response]
) -> flask.Response:
    """An operators' function: ``/healthz``, ``/tick`` (its PingSource), ``GET /`` lists the routes, and each
    route (its first path segment) answered by its handler, for the operator role only."""
    from shared.security.access import OPERATOR, access_policy

    path = request.path.rstrip("/")
    if request.method == "GET" and path == "/healthz":
        return flask.jsonify({"status": "ok"})
    if path == "/tick":
        return on_tick(request)
    if path in ("", "/"):
        if request.method != "GET":
            return error_response(405, "MethodNotAllowed", f"GET lists the routes: {', '.join(routes)}")
        return answer({"routes": [f"/{name}" for name in routes]})
    route = routes.get(path.split("/")[1])
    if route is None:
        return error_response(404, "NotFound", f"no route {path}; the routes: {', '.join(routes)}")
    if (refused := access_policy().refuse(request, OPERATOR)) is not None:
        return refused
    try:
        return route(request, path)
    except ApiError as exc:
        return exc.response()
