"""How entries are written in OData: the ICD's Footprint WKT and millisecond times."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import shapely
import shapely.geometry
from hypothesis import given
from hypothesis import strategies as st

from shared.catalog.model import CatalogEntry, canonical_json
from shared.catalog.odata.entities import _time, footprint_wkt, wkt, wkt_of_json
from tests.fixtures.catalog import entry

SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
HOLE = [[0.25, 0.25], [0.5, 0.25], [0.5, 0.5], [0.25, 0.25]]


GEOMETRIES = [
    {"type": "Point", "coordinates": [1.5, -2]},
    {"type": "LineString", "coordinates": [[1, 2], [3.25, 4]]},
    {"type": "Polygon", "coordinates": [SQUARE, HOLE]},
    {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]},
    {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]},
    {"type": "MultiPolygon", "coordinates": [[SQUARE], [[[5, 5], [6, 5], [6, 6], [5, 5]]]]},
    {
        "type": "GeometryCollection",
        "geometries": [{"type": "Point", "coordinates": [1, 2]}, {"type": "Polygon", "coordinates": [SQUARE]}],
    },
]


@pytest.mark.parametrize("geojson", GEOMETRIES)
def test_wkt_is_what_geos_writes_for_short_numbers(geojson: dict[str, Any]) -> None:
    assert wkt(geojson) == shapely.geometry.shape(geojson).wkt


coordinate = st.floats(min_value=-180, max_value=180, allow_nan=False)


@given(st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=12))
def test_wkt_reads_back_exactly(points: list[tuple[float, float]]) -> None:
    ring = [list(p) for p in points] + [list(points[0])]
    geojson = {"type": "Polygon", "coordinates": [ring]}
    assert shapely.from_wkt(wkt(geojson)).equals_exact(shapely.geometry.shape(geojson), tolerance=0)


def jsonb_text(geojson: dict[str, Any]) -> str:
    """What PostgreSQL's jsonb gives back, spaces taken out as the store takes them: shorter keys first."""
    return canonical_json(dict(sorted(geojson.items(), key=lambda item: (len(item[0]), item[0])))).replace(" ", "")


@pytest.mark.parametrize("geojson", [*GEOMETRIES, {"type": "Polygon", "coordinates": []}])
def test_wkt_of_stored_text_is_the_wkt_of_its_geometry(geojson: dict[str, Any]) -> None:
    assert wkt_of_json(canonical_json(geojson)) == wkt(geojson)
    assert wkt_of_json(jsonb_text(geojson)) == wkt(geojson)


@given(st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=12), st.integers(1, 3))
def test_wkt_of_stored_text_reads_back_exactly(points: list[tuple[float, float]], parts: int) -> None:
    ring = [list(p) for p in points] + [list(points[0])]
    geojson = {"type": "MultiPolygon", "coordinates": [[ring]] * parts}
    for text in (canonical_json(geojson), jsonb_text(geojson)):
        assert shapely.from_wkt(wkt_of_json(text)).equals_exact(shapely.geometry.shape(geojson), tolerance=0)


def stored(written: CatalogEntry) -> CatalogEntry:
    """``written`` as a store reads it back: every field, and the footprint as its text."""
    fields = {name: getattr(written, name) for name in CatalogEntry.__dataclass_fields__}
    fields.pop("footprint_text")
    footprint = fields.pop("footprint")
    return CatalogEntry.from_store(footprint_text=None if footprint is None else canonical_json(footprint), **fields)


def test_footprint_is_a_geography_literal() -> None:
    point = entry("S1A_POINT", footprint={"type": "Point", "coordinates": [10, 20]})
    assert footprint_wkt(point) == "geography'SRID=4326;POINT (10 20)'"
    assert footprint_wkt(stored(point)) == "geography'SRID=4326;POINT (10 20)'"
    assert footprint_wkt(entry("S1A_NONE", footprint=None)) is None
    assert footprint_wkt(stored(entry("S1A_NONE", footprint=None))) is None


def test_a_stored_entry_decodes_its_footprint_when_read() -> None:
    written = entry("S1A_STORED")
    read = stored(written)
    assert read.footprint_text == canonical_json(written.footprint)
    assert read == written and read.footprint == written.footprint
    assert dataclasses.replace(read, footprint=None).footprint_text is None  # no text of another footprint
    with pytest.raises(AttributeError):
        read.no_such_field  # type: ignore[attr-defined]  # noqa: B018


def test_times_are_utc_milliseconds_whatever_the_zone() -> None:
    instant = datetime(2024, 2, 29, 23, 59, 59, 987654, tzinfo=UTC)
    assert _time(instant) == "2024-02-29T23:59:59.987Z"
    assert _time(instant.astimezone(timezone(timedelta(hours=5, minutes=30)))) == "2024-02-29T23:59:59.987Z"
    assert _time(None) is None
