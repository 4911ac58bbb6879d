"""stac: the STAC API 1.0 of the catalog at /stac (collections, items, item search), viewer role when OIDC is on."""

from __future__ import annotations

from functools import lru_cache

import flask
import functions_framework

from shared import ports
from shared.catalog.api import json_errors
from shared.catalog.stac.service import StacService
from shared.security.access import VIEWER, access_policy
from shared.settings import get_settings
from shared.web.cors import cors


@lru_cache(maxsize=1)
def _service() -> StacService:
    return StacService(ports.catalog, odata_url=get_settings().stac_odata_url)


@functions_framework.http
@cors  # outermost: preflights before the access policy, headers on every answer
@json_errors
def stac(request: flask.Request) -> flask.Response:
    if request.method == "GET" and request.path.rstrip("/") == "/healthz":
        return flask.jsonify({"status": "ok"})
    if (refused := access_policy().refuse(request, VIEWER)) is not None:
        return refused
    return _service().handle(request)
