"""CORS for the query APIs (OData, STAC): the map client is served from another origin (another port on a
laptop, another host on Knative), and so is any other browser client.

One decorator, outermost on a function: a preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) is answered here, before the access policy, since browsers never send a
token with it; every other answer gets the allow and expose headers. Origins come from
``REFSYS_CORS_ORIGINS`` (``*``, or a comma-separated list; empty: no CORS headers at all). Bearer tokens are
headers, not cookies: no ``Allow-Credentials``, so ``*`` stays safe.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flask

from shared.settings import get_settings

ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
# Authorization is never covered by a wildcard: named, with what downloads and subscriptions send.
ALLOW_HEADERS = "Authorization, Content-Type, Accept, Range, If-Range, If-None-Match, If-Match, Prefer"
EXPOSE_HEADERS = "Content-Length, Content-Range, Content-Disposition, Accept-Ranges, ETag, Location, WWW-Authenticate"
MAX_AGE_SECONDS = 600

View = Callable[[flask.Request], flask.Response]


@functools.cache
def allowed_origins(setting: str) -> frozenset[str] | None:
    """None: any origin; else the set (an empty set: CORS off)."""
    origins = {origin.strip().rstrip("/") for origin in setting.split(",") if origin.strip()}
    return None if "*" in origins else frozenset(origins)


def allow_origin(origin: str | None, setting: str) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, None for none."""
    if not origin:
        return None
    origins = allowed_origins(setting)
    if origins is None:
        return "*"
    return origin if origin in origins else None


def cors(view: View) -> View:
    @functools.wraps(view)
    def wrapped(request: flask.Request) -> flask.Response:
        setting = get_settings().cors_origins
        origin = request.headers.get("Origin")
        allowed = allow_origin(origin, setting)
        if request.method == "OPTIONS" and origin and request.headers.get("Access-Control-Request-Method"):
            response = flask.Response(status=204)
            if allowed:
                response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
                response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
        else:
            response = view(request)
            if allowed:
                response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = allowed
        if allowed and allowed != "*":
            response.headers.add("Vary", "Origin")  # the answer depends on who asks: caches must know
        return response

    return wrapped
