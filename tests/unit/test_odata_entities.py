"""How entries are written in OData: the ICD's Footprint WKT and millisecond times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import shapely
import shapely.geometry
from hypothesis import given
from hypothesis import strategies as st

from shared.catalog.odata.entities import _time, footprint_wkt, wkt

SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
HOLE = [[0.25, 0.25], [0.5, 0.25], [0.5, 0.5], [0.25, 0.25]]


@pytest.mark.parametrize(
    "geojson",
    [
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
    ],
)
def test_wkt_is_what_geos_writes_for_short_numbers(geojson: dict[str, Any]) -> None:
    assert wkt(geojson) == shapely.geometry.shape(geojson).wkt


coordinate = st.floats(min_value=-180, max_value=180, allow_nan=False)


@given(st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=12))
def test_wkt_reads_back_exactly(points: list[tuple[float, float]]) -> None:
    ring = [list(p) for p in points] + [list(points[0])]
    geojson = {"type": "Polygon", "coordinates": [ring]}
    assert shapely.from_wkt(wkt(geojson)).equals_exact(shapely.geometry.shape(geojson), tolerance=0)


def test_footprint_is_a_geography_literal() -> None:
    assert footprint_wkt({"type": "Point", "coordinates": [10, 20]}) == "geography'SRID=4326;POINT (10 20)'"
    assert footprint_wkt(None) is None


def test_times_are_utc_milliseconds_whatever_the_zone() -> None:
    instant = datetime(2024, 2, 29, 23, 59, 59, 987654, tzinfo=UTC)
    assert _time(instant) == "2024-02-29T23:59:59.987Z"
    assert _time(instant.astimezone(timezone(timedelta(hours=5, minutes=30)))) == "2024-02-29T23:59:59.987Z"
    assert _time(None) is None
