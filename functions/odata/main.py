"""odata: the PRIP OData v4 API of the catalog at /odata/v1 (queries and downloads over HTTP)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import flask
import functions_framework

from shared import ports
from shared.catalog.api import json_errors
from shared.catalog.odata.service import ODataService
from shared.security.access import access_policy
from shared.settings import get_settings
from shared.web.cors import cors

if TYPE_CHECKING:
    from shared.processing.lineage import LineageStore


@lru_cache(maxsize=1)
def _service() -> ODataService:
    settings = get_settings()
    return ODataService(
        ports.catalog,
        ports.object_store,
        access=access_policy(),
        download_expiry_seconds=settings.odata_download_url_expiry_seconds,
        lineage=_lineage,
    )


@lru_cache(maxsize=1)
def _lineage() -> LineageStore:
    from shared.processing.lineage import LineageStore

    return LineageStore(get_settings().catalog_url)


@functions_framework.http
@cors  # outermost: preflights before the access policy, headers on every answer
@json_errors
def odata(request: flask.Request) -> flask.Response:
    if request.method == "GET" and request.path.rstrip("/") == "/healthz":
        return flask.jsonify({"status": "ok"})
    return _service().handle(request)
