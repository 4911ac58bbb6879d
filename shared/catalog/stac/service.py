"""The STAC API 1.0 of the catalog, at ``/stac``, from the same rows and the same SQL as OData.

``GET  /stac``                                      landing page (a Catalog with conformsTo)
``GET  /stac/conformance``                          the conformance classes implemented
``GET  /stac/queryables``                           what filters may name (JSON Schema)
``GET  /stac/collections``                          one collection per mission and per product type
``GET  /stac/collections/{id}``                     (``/queryables`` too)
``GET  /stac/collections/{id}/items``               its items (bbox, datetime, filter, sortby, fields, limit, token)
``GET  /stac/collections/{id}/items/{itemId}``      one item; its id is the product name
``GET|POST /stac/search``                           item search (``search.py``)

Errors are ``{"error": {"code", "message"}}``: 400 for a bad parameter or filter (naming it), 404
for an unknown collection or item, 405, 503 when the catalog database is down.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlencode

import flask
import orjson

from shared.catalog.api import store_failure
from shared.catalog.errors import QueryTooComplex
from shared.catalog.filters import And, Selection, sort_value, total_order
from shared.catalog.paging import encode_token
from shared.catalog.stac import cql2
from shared.catalog.stac.collections import CollectionRef, Collections, collection_json
from shared.catalog.stac.items import item_json
from shared.catalog.stac.search import BadSearch, Search, apply_fields, parse_get, parse_post
from shared.catalog.store import CatalogStore, CatalogUnavailable
from shared.products.stac import BY_STAC_NAME, STAC_VERSION
from shared.responses import error_response

BASE_PATH = "/stac"
CONFORMANCE = (
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#filter",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "https://api.stacspec.org/v1.0.0/item-search#fields",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#filter",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
)
_QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
_GEOJSON = "application/geo+json"


class StacError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class StacService:
    def __init__(self, catalog: Callable[[], CatalogStore], *, odata_url: str | None = None) -> None:
        # odata_url: where the OData API is (assets download through it); None: beside /stac on this host.
        self._catalog = catalog
        self._odata_url = odata_url.rstrip("/") if odata_url else None
        self.collections = Collections(catalog)

    def handle(self, request: flask.Request) -> flask.Response:
        try:
            return self._route(request)
        except StacError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except BadSearch as exc:
            return error_response(400, "BadSearch", str(exc))
        except (QueryTooComplex, CatalogUnavailable) as exc:
            return store_failure(exc, "the filter")

    # -- routing ------------------------------------------------------------------------------

    def _route(self, request: flask.Request) -> flask.Response:
        path = request.path
        if not (path == BASE_PATH or path.startswith(BASE_PATH + "/")):
            raise StacError(404, "NotFound", f"no resource {path!r}; the STAC API is at {BASE_PATH}")
        parts = [unquote(p) for p in path[len(BASE_PATH) :].strip("/").split("/") if p]
        root = request.host_url.rstrip("/") + BASE_PATH
        if parts == ["search"]:
            if request.method == "POST":
                body = request.get_json(silent=True)
                return self._search(request, root, parse_post(body, self.collections.where), None)
            _method(request, "GET", "POST")
            return self._search(request, root, parse_get(request.args, self.collections.where), None)
        _method(request, "GET")
        if not parts:
            return _json(self._landing(root))
        if parts == ["conformance"]:
            return _json({"conformsTo": list(CONFORMANCE)})
        if parts == ["queryables"]:
            return _json(_queryables(f"{root}/queryables"), "application/schema+json")
        if parts == ["collections"]:
            collections = [collection_json(ref, root) for ref in self.collections.all()]
            links = [_link("self", f"{root}/collections"), _link("root", f"{root}/"), _link("parent", f"{root}/")]
            return _json({"collections": collections, "links": links})
        if parts[0] == "collections" and len(parts) >= 2:
            ref = self.collections.get(parts[1])
            if ref is None:
                raise StacError(404, "NotFound", f"no collection {parts[1]!r}; see {root}/collections")
            rest = parts[2:]
            if not rest:
                return _json(collection_json(ref, root))
            if rest == ["queryables"]:
                return _json(_queryables(f"{root}/collections/{ref.id}/queryables"), "application/schema+json")
            if rest == ["items"]:
                # collections and ids too (pystac-client sends collections=<id> here): they narrow it further.
                return self._search(request, root, parse_get(request.args, self.collections.where), ref)
            if len(rest) == 2 and rest[0] == "items":
                return self._item(root, ref, rest[1])
        raise StacError(404, "NotFound", f"no resource {request.path!r}; see {root}")

    # -- resources --------------------------------------------------------------------------------

    def _landing(self, root: str) -> dict[str, Any]:
        links = [
            _link("self", f"{root}/"),
            _link("root", f"{root}/"),
            _link("conformance", f"{root}/conformance"),
            _link("data", f"{root}/collections"),
            {"rel": "search", "href": f"{root}/search", "type": _GEOJSON, "method": "GET"},
            {"rel": "search", "href": f"{root}/search", "type": _GEOJSON, "method": "POST"},
            {"rel": _QUERYABLES_REL, "href": f"{root}/queryables", "type": "application/schema+json"},
        ]
        links += [_link("child", f"{root}/collections/{ref.id}") for ref in self.collections.all()]
        return {
            "type": "Catalog",
            "stac_version": STAC_VERSION,
            "id": "refsys",
            "title": "refsys catalog (STAC API)",
            "description": "The Copernicus products of this reference system, the same ones as its OData API.",
            "conformsTo": list(CONFORMANCE),
            "links": links,
        }

    def _odata(self, request_root: str) -> str:
        return self._odata_url or request_root.removesuffix(BASE_PATH) + "/odata/v1"

    def _item(self, root: str, ref: CollectionRef, item_id: str) -> flask.Response:
        entry = self._catalog().get_by_name(item_id)
        if entry is None or entry.mission != ref.mission or ref.product_type not in (None, entry.product_type):
            raise StacError(404, "NotFound", f"no item {item_id!r} in collection {ref.id}")
        return _json(item_json(entry, root, self._odata(root)), _GEOJSON)

    def _search(self, request: flask.Request, root: str, search: Search, ref: CollectionRef | None) -> flask.Response:
        where = search.where
        if ref is not None:
            where = ref.where() if where is None else And((ref.where(), where))
        selection = Selection(where=where, order=search.order, limit=search.limit + 1, after=search.after)
        entries, matched = self._catalog().find_counted(selection)
        more = len(entries) > search.limit
        entries = entries[: search.limit]
        odata = self._odata(root)
        features = [apply_fields(item_json(e, root, odata), search.fields) for e in entries]
        self_href = request.base_url + (f"?{request.query_string.decode()}" if request.query_string else "")
        links: list[dict[str, Any]] = [_link("root", f"{root}/"), {**_link("self", self_href), "type": _GEOJSON}]
        if ref is not None:
            links.append(_link("collection", f"{root}/collections/{ref.id}"))
        if more:
            last = entries[-1]
            token = encode_token(search.order, tuple(sort_value(last, k.prop) for k in total_order(search.order)))
            links.append(_next_link(request, search, token))
        body = {
            "type": "FeatureCollection",
            "features": features,
            "links": links,
            "numberMatched": matched,
            "numberReturned": len(features),
        }
        return _json(body, _GEOJSON)


def _method(request: flask.Request, *allowed: str) -> None:
    if request.method not in (*allowed, "HEAD"):
        raise StacError(405, "MethodNotAllowed", f"{request.method} is not supported here; use {' or '.join(allowed)}")


def _link(rel: str, href: str) -> dict[str, str]:
    return {"rel": rel, "href": href, "type": "application/json"}


def _next_link(request: flask.Request, search: Search, token: str) -> dict[str, Any]:
    if request.method == "POST":
        body = {**search.parameters, "token": token}
        return {
            "rel": "next",
            "href": request.base_url,
            "type": _GEOJSON,
            "method": "POST",
            "body": body,
            "merge": False,
        }
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
    kept.append(("token", token))
    href = request.base_url + "?" + urlencode(kept, quote_via=quote, safe="")
    return {"rel": "next", "href": href, "type": _GEOJSON, "method": "GET"}


def _queryables(href: str) -> dict[str, Any]:
    """JSON Schema of what a filter may name (types as the items show them)."""
    time = {"type": "string", "format": "date-time"}
    properties: dict[str, Any] = {
        "id": {"description": "Item id: the product name", "type": "string"},
        "collection": {"description": "Collection id (a mission or a product type)", "type": "string"},
        "geometry": {"$ref": "https://geojson.org/schema/Geometry.json"},
        "datetime": {**time, "description": "Validity start"},
        "start_datetime": {**time, "description": "Validity start"},
        "end_datetime": {**time, "description": "Validity stop"},
        "created": {**time, "description": "Publication in the catalog"},
        "updated": {**time, "description": "Last modification in the catalog"},
        "constellation": {"type": "string", "examples": ["sentinel-1"]},
        "platform": {"type": "string", "examples": ["sentinel-1a"]},
    }
    for item in BY_STAC_NAME.values():
        if item.filterable and item.name in cql2.queryable_names():
            properties[item.name] = {"description": f"PRIP attribute {item.attribute}"}
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": href,
        "type": "object",
        "title": "Queryables of the refsys catalog",
        "properties": properties,
        "additionalProperties": False,
    }


# Kept in the order written (flask.jsonify sorts keys); the standard encoder remains for integers beyond 64 bits.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(body: dict[str, Any], mimetype: str = "application/json") -> flask.Response:
    try:
        encoded = orjson.dumps(body)
    except orjson.JSONEncodeError:
        encoded = _ENCODER.encode(body).encode()
    return flask.Response(encoded, mimetype=mimetype)


__all__ = ["BASE_PATH", "CONFORMANCE", "StacService"]
