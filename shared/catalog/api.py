"""The catalog's plain HTTP query API (the PRIP OData and STAC APIs are built beside it).

``GET /products`` filters by ``name``, ``contains``, ``mission``, ``productType``, ``family``,
``start``/``stop`` (validity overlap, ISO 8601), ``bbox`` (``west,south,east,north``), ``limit``
(default 100, at most 1000) and ``offset`` (at most 2^63 - 1, the databases' integers); ``GET /products/<id>``
answers one product. Errors are ``{"error": {"code", "message"}}``: 400 for a bad parameter, 503 when
the catalog database is down, and a JSON 500 for our own faults (see :func:`json_errors`).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from shared.catalog.errors import QueryTooComplex
from shared.catalog.model import CatalogEntry, ProductQuery
from shared.catalog.store import CatalogStore, CatalogUnavailable
from shared.responses import error_response

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
MAX_OFFSET = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,30}")  # int() would also take "²", "٣", "1_000" and " +5 "


def json_errors(view: Callable[[flask.Request], flask.Response]) -> Callable[[flask.Request], flask.Response]:
    """A query view whose unexpected exceptions answer a JSON 500 (the traceback goes to the log).

    The functions framework's own handler answers them with the exception's text, and its
    ``errorhandler`` hook is not yet bound when a function's module is imported: hence a wrapper.
    """

    @functools.wraps(view)
    def wrapped(request: flask.Request) -> flask.Response:
        try:
            return view(request)
        except HTTPException as exc:  # Flask's own 4xx (a body too large, a malformed form)
            return error_response(exc.code or 500, type(exc).__name__, exc.description or exc.name)
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.path)
            return error_response(500, "InternalError", "an unexpected error on our side; it has been logged")

    return wrapped


def store_failure(exc: QueryTooComplex | CatalogUnavailable, simplify: str = "the query") -> flask.Response:
    """What a query API answers when the catalog database fails it: a query too complex for it can never
    succeed (400, not a 503 that asks the client to retry); an unavailable database is a 503 to retry."""
    if isinstance(exc, QueryTooComplex):
        return error_response(400, "QueryTooComplex", f"{exc}; simplify {simplify}")
    response = error_response(503, "CatalogUnavailable", f"the catalog database is unavailable: {exc}")
    response.headers["Retry-After"] = "5"
    return response


class BadQuery(ValueError):
    pass


def handle_query(request: flask.Request, catalog: CatalogStore) -> flask.Response:
    if request.method != "GET":
        return error_response(405, "MethodNotAllowed", "the catalog answers GET queries")
    path = request.path.rstrip("/")
    try:
        if path in ("", "/products"):
            query = parse_query(request.args)
            entries = catalog.search(query)
            total = catalog.count(query)
            return flask.jsonify({"count": total, "products": [entry_json(e) for e in entries]})
        if path.startswith("/products/"):
            entry = catalog.get(path.removeprefix("/products/"))
            if entry is None:
                return error_response(404, "NotFound", f"no product with id {path.removeprefix('/products/')!r}")
            return flask.jsonify(entry_json(entry))
    except BadQuery as exc:
        return error_response(400, "BadQuery", str(exc))
    except (QueryTooComplex, CatalogUnavailable) as exc:
        return store_failure(exc)
    return error_response(404, "NotFound", f"no resource {request.path!r}; query /products")


def parse_query(args: Any) -> ProductQuery:
    known = {"name", "contains", "mission", "productType", "family", "start", "stop", "bbox", "limit", "offset"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise BadQuery(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return ProductQuery(
            names=tuple(args.getlist("name")),
            name_contains=args.get("contains") or None,
            mission=args.get("mission") or None,
            product_type=args.get("productType") or None,
            family=args.get("family") or None,
            start=_time(args, "start"),
            stop=_time(args, "stop"),
            intersects=_bbox(args.get("bbox")),
            limit=_int(args, "limit", 100, 1, MAX_LIMIT),
            offset=_int(args, "offset", 0, 0, MAX_OFFSET),
        )
    except BadQuery:
        raise
    except ValueError as exc:  # what the query checks itself, e.g. start after stop
        raise BadQuery(str(exc)) from None


def _time(args: Any, name: str) -> datetime | None:
    value = args.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadQuery(f"{name}={value!r} is not an ISO 8601 time such as 2024-01-31T12:00:00Z") from exc
    try:  # stored and compared in UTC: 0001-01-01T00:00:00+01:00 is before year 1
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise BadQuery(f"{name}={value!r} is out of range (years 0001 to 9999) once converted to UTC") from None


def _int(args: Any, name: str, default: int, low: int, high: int) -> int:
    value = args.get(name)
    if value is None or value == "":
        return default
    if _DIGITS.fullmatch(value) is None:
        raise BadQuery(f"{name}={value[:40]!r} is not a non-negative integer (ASCII digits)")
    number = int(value)
    if not low <= number <= high:
        raise BadQuery(f"{name}={number} is out of range [{low}, {high}]")
    return number


def _bbox(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        west, south, east, north = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise BadQuery(f"bbox={value!r} must be four numbers: west,south,east,north") from exc
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise BadQuery(f"bbox={value!r} is outside WGS84 longitude/latitude bounds")
    boxes = [(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]  # crosses the antimeridian
    polygons = [[[[w, south], [e, south], [e, north], [w, north], [w, south]]] for w, e in boxes]
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def entry_json(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "name": entry.name,
        "mission": entry.mission,
        "satellite": entry.satellite,
        "productType": entry.product_type,
        "level": entry.level,
        "family": entry.family,
        "bucket": entry.bucket,
        "key": entry.key,
        "contentLength": entry.content_length,
        "checksum": entry.checksum,
        "contentType": entry.content_type,
        "validityStart": _iso(entry.validity_start),
        "validityStop": _iso(entry.validity_stop),
        "footprint": entry.footprint,
        "attributes": {k: _iso(v) if isinstance(v, datetime) else v for k, v in entry.attributes.items()},
        "publicationTime": _iso(entry.publication_time),
        "modificationTime": _iso(entry.modification_time),
        "inboxTime": _iso(entry.inbox_time),
        "ingestionTime": _iso(entry.ingestion_time),
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
