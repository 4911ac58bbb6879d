"""The JSON error answer of every HTTP function, in a module of its own: the query functions use it without
loading the event runtime (``shared.runtime``: the pydantic event models and the CloudEvents SDK)."""

from __future__ import annotations

import flask


def error_response(status: int, code: str, message: str) -> flask.Response:
    """Errors are JSON with a message that says what was wrong (the body reaches knativeerrordata)."""
    response = flask.jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response
