"""SQLite rows of catalog entries: the columns, an entry from a row and rows from entries (with the
footprint's box and valid WKB the spatial search reads), and the exact spatial tests run on rows."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from shared.catalog import model
from shared.catalog.filters import Spatial, spatial_test, spatial_test_many, spatial_test_shapes, valid_shapes
from shared.catalog.grid import WRAPPED_WIDTH, Box, wrapped_box
from shared.catalog.model import (
    CatalogEntry,
    ProductTypeSummary,
    attributes_from_json,
    attributes_to_json,
    canonical_json,
    format_utc,
    parse_geometry,
    parse_utc,
)

log = logging.getLogger(__name__)

# The content columns, the id first (SQLite's key is its integer pk; the id is content here).
CONTENT_COLUMNS = ("id", *model.CONTENT_COLUMNS)
# Derived from footprint (so not compared): the valid WKB the exact spatial test reads, and the
# bounding box the type + time index holds.
DERIVED = ("footprint_wkb", "min_lon", "max_lon", "min_lat", "max_lat")
ALL_COLUMNS = (*CONTENT_COLUMNS, "publication_time", "modification_time", *DERIVED)
# Compared as JSON values when their texts differ: rows written before canonical_json used orjson
# hold other text for the same value (1e-05 for 0.00001, escaped non-ASCII characters).
JSON_CONTENT = frozenset(CONTENT_COLUMNS.index(c) for c in ("footprint", "attributes", "quicklooks"))


def time_text(value: datetime | None) -> str | None:
    return None if value is None else format_utc(value)


def entry_from_row(row: sqlite3.Row) -> CatalogEntry:
    def time(column: str) -> datetime | None:
        text = row[column]
        return None if text is None else parse_utc(text)

    publication_time, modification_time = time("publication_time"), time("modification_time")
    assert publication_time is not None and modification_time is not None  # NOT NULL columns
    # parse_utc gives UTC datetimes, attributes_from_json typed values: already what construction makes.
    return CatalogEntry.from_store(
        id=row["id"],
        name=row["name"],
        mission=row["mission"],
        satellite=row["satellite"],
        product_type=row["product_type"],
        level=row["level"],
        family=row["family"],
        bucket=row["bucket"],
        key=row["object_key"],
        content_length=row["content_length"],
        checksum=row["checksum"],
        content_type=row["content_type"],
        validity_start=time("validity_start"),
        validity_stop=time("validity_stop"),
        footprint_text=row["footprint"],
        attributes=attributes_from_json(row["attributes"]),
        publication_time=publication_time,
        modification_time=modification_time,
        inbox_time=time("inbox_time"),
        ingestion_time=time("ingestion_time"),
        eviction_time=time("eviction_time"),
        online=bool(row["online"]),
        quicklooks=tuple(orjson.loads(row["quicklooks"])),
    )


def part_boxes(geometry: Any) -> list[Box]:
    """The box (see ``Box``) of every part of a (multi-part) shapely geometry."""
    import shapely

    return [(w, e, s, n) for w, s, e, n in shapely.bounds(shapely.get_parts(geometry)).tolist()]


def batch_geometry(entries: list[CatalogEntry], footprints: list[str | None]) -> tuple[list[Box | None], list[Any]]:
    """The bounding box (see ``Box``) and the valid WKB of every entry's footprint (GeoJSON text),
    parsed in one vectorised GEOS call."""
    import shapely

    present = [i for i, text in enumerate(footprints) if text is not None]
    boxes: list[Box | None] = [None] * len(entries)
    wkbs: list[Any] = [None] * len(entries)
    if not present:
        return boxes, wkbs
    try:
        geometries = shapely.from_geojson([footprints[i] for i in present])
        unusable = bool(shapely.is_empty(geometries).any())
    except Exception:
        unusable = True
    if unusable:  # entry by entry: parse_geometry says which footprint is wrong, and how
        import numpy

        # GEOS's GeoJSON reader refuses some that shapely's reads (an open ring).
        shapes = [parse_geometry(e.footprint, f"footprint of {e.name}") for e in entries if e.footprint is not None]
        geometries = numpy.array(shapes, dtype=object)
    valid = valid_shapes(geometries)  # what the exact test reads; its box is the one the prefilters test
    bounds = shapely.bounds(valid).tolist()
    for k, (i, (min_lon, min_lat, max_lon, max_lat)) in enumerate(zip(present, bounds, strict=True)):
        boxes[i] = (min_lon, max_lon, min_lat, max_lat)
        if max_lon - min_lon > WRAPPED_WIDTH:  # perhaps cut at the antimeridian (see ``grid``)
            boxes[i] = wrapped_box(part_boxes(valid[k])) or boxes[i]
    for i, wkb in zip(present, shapely.to_wkb(valid).tolist(), strict=True):
        wkbs[i] = wkb
    return boxes, wkbs


def same_content(stored: Sequence[Any], content: Sequence[Any]) -> bool:
    """Whether a stored row's content columns hold this content (see ``JSON_CONTENT``)."""
    return all(
        old == new or (i in JSON_CONTENT and None not in (old, new) and json.loads(old) == json.loads(new))
        for i, (old, new) in enumerate(zip(stored, content, strict=True))
    )


# An entry ready to write, and its row (values in ALL_COLUMNS order).
Prepared = tuple[CatalogEntry, tuple[Any, ...]]
NO_BOX = (None, None, None, None)  # the box columns without footprint


def prepare_rows(batch: list[CatalogEntry]) -> list[Prepared]:
    """Each entry's row (built as a tuple straight away: this is most of a bulk load's Python time)."""
    footprints = [None if e.footprint is None else canonical_json(e.footprint) for e in batch]
    boxes, wkbs = batch_geometry(batch, footprints)
    prepared = []
    for e, footprint, wkb, box in zip(batch, footprints, wkbs, boxes, strict=True):
        row = (
            e.id,
            e.name,
            e.mission,
            e.satellite,
            e.product_type,
            e.level,
            e.family,
            e.bucket,
            e.key,
            e.content_length,
            e.checksum,
            e.content_type,
            time_text(e.validity_start),
            time_text(e.validity_stop),
            footprint,
            attributes_to_json(e.attributes),
            time_text(e.inbox_time),
            time_text(e.ingestion_time),
            time_text(e.eviction_time),
            int(e.online),
            canonical_json(list(e.quicklooks)) if e.quicklooks else "[]",
            time_text(e.publication_time),
            time_text(e.modification_time),
            wkb,
            *(box or NO_BOX),
        )
        prepared.append((e, row))
    return prepared


class ExactIntersects:
    """The exact test after the grid prefilter (planar, lon/lat degrees, like PostGIS geometry)."""

    def __init__(self, geojson: dict[str, Any]) -> None:
        import shapely

        geometry = parse_geometry(geojson, "intersects geometry")
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        shapely.prepare(geometry)
        self.geometry = geometry

    def __call__(self, row: sqlite3.Row) -> bool:
        import shapely

        footprint = parse_geometry(json.loads(row["footprint"]), f"footprint of {row['name']}")
        if not footprint.is_valid:
            # A self-intersecting footprint (the reference's S3 L0 case) would make GEOS raise.
            footprint = shapely.make_valid(footprint)
        return bool(self.geometry.intersects(footprint))


def exact_verdicts(tests: tuple[Spatial, ...], rows: Sequence[Any]) -> list[bool]:
    """Whether each row (a mapping) passes every exact spatial test (vectorised): on its ``footprint_wkb``
    (valid already), or on its GeoJSON ``footprint`` when it has none (written before migration 0003)."""
    import numpy
    import shapely

    passed = [False] * len(rows)
    stored = [i for i, row in enumerate(rows) if row["footprint_wkb"] is not None]
    legacy = [i for i, row in enumerate(rows) if row["footprint_wkb"] is None and row["footprint"] is not None]
    if stored:
        shapes = shapely.from_wkb([rows[i]["footprint_wkb"] for i in stored])
        verdicts = numpy.ones(len(stored), dtype=bool)
        for test in tests:
            verdicts &= numpy.array(spatial_test_shapes(test.relation, test.wkt, shapes), dtype=bool)
        for i, ok in zip(stored, verdicts.tolist(), strict=True):
            passed[i] = ok
    if legacy:
        texts = [rows[i]["footprint"] for i in legacy]
        results = [spatial_test_many(test.relation, test.wkt, texts) for test in tests]
        for j, i in enumerate(legacy):
            passed[i] = all(result[j] for result in results)
    return passed


def spatial_udf(relation: str, footprint: str | None, wkt: str) -> int:
    # Called by SQLite for each candidate row; an exception here would surface as an opaque
    # OperationalError, so a footprint that cannot be read simply does not match.
    if footprint is None:
        return 0
    try:
        return int(spatial_test(relation, wkt, footprint))
    except Exception:
        log.warning("footprint %.80s could not be tested", footprint, exc_info=True)
        return 0


def product_type_summary(
    mission: str,
    product_type: str,
    count: int,
    start: str | None,
    end: str | None,
    west: float | None,
    south: float | None,
    east: float | None,
    north: float | None,
) -> ProductTypeSummary:
    """A summary from its aggregated row: a wrapped box (east beyond 180, see ``grid``) becomes a STAC
    box across the antimeridian (west greater than east), or the whole longitude range when that
    would not hold every footprint."""
    bbox = None
    if west is not None and south is not None and east is not None and north is not None:
        if east > 180:
            west, east = (west, east - 360) if east - 360 < west else (-180.0, 180.0)
        bbox = (west, south, east, north)
    return ProductTypeSummary(
        mission,
        product_type,
        count,
        None if start is None else parse_utc(start),
        None if end is None else parse_utc(end),
        bbox,
    )
