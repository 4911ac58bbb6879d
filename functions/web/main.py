"""web: the map client (find, look at and download products in a browser) and its /config.json.

The client is built from ``client/`` into ``static/`` (``make web``; committed, so nothing is built at run
time) and talks to the OData and STAC APIs as any client, from the browser.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import flask
import functions_framework

from shared.catalog.api import json_errors
from shared.settings import get_settings
from shared.web.site import Site

STATIC = Path(__file__).resolve().parent / "static"


@lru_cache(maxsize=1)
def _site() -> Site:
    return Site(STATIC, get_settings())


@functions_framework.http
@json_errors
def web(request: flask.Request) -> flask.Response:
    if request.method == "GET" and request.path.rstrip("/") == "/healthz":
        return flask.jsonify({"status": "ok"})
    return _site().handle(request)
