"""The catalog's plain HTTP query API (the PRIP OData and STAC APIs are built beside it).

``GET /products`` filters by ``name``, ``contains``, ``mission``, ``productType``, ``family``,
``start``/``stop`` (validity overlap, ISO 8601), ``bbox`` (``west,south,east,north``), ``limit``
(default 100, at most 1000) and ``offset``; ``GET /products/<id>`` answers one product.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask

from shared.catalog.model import CatalogEntry, ProductQuery
from shared.catalog.store import CatalogStore, CatalogUnavailable
from shared.runtime import error_response

MAX_LIMIT = 1000


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
    except CatalogUnavailable as exc:
        return error_response(503, "CatalogUnavailable", f"the catalog database is unavailable: {exc}")
    return error_response(404, "NotFound", f"no resource {request.path!r}; query /products")


def parse_query(args: Any) -> ProductQuery:
    known = {"name", "contains", "mission", "productType", "family", "start", "stop", "bbox", "limit", "offset"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise BadQuery(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
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
        offset=_int(args, "offset", 0, 0, None),
    )


def _time(args: Any, name: str) -> datetime | None:
    value = args.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadQuery(f"{name}={value!r} is not an ISO 8601 time such as 2024-01-31T12:00:00Z") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(args: Any, name: str, default: int, low: int, high: int | None) -> int:
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise BadQuery(f"{name}={value!r} is not an integer") from exc
    if number < low or (high is not None and number > high):
        raise BadQuery(f"{name}={number} is out of range [{low}, {high if high is not None else '∞'}]")
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
