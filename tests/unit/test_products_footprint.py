"""Footprints: lat/lon lists -> RFC 7946 geometries, split at the antimeridian, closed through poles."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from shapely.geometry import shape

from shared.products.footprint import footprint_from_frames, footprint_from_latlon, parse_coordinates


def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"][0]]
    return [poly[0] for poly in geometry["coordinates"]]


def _assert_rfc7946(geometry: dict[str, Any]) -> None:
    g = shape(geometry)
    assert g.is_valid
    minx, miny, maxx, maxy = g.bounds
    assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    for ring in _rings(geometry):
        assert ring[0] == ring[-1]  # closed
        area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring))
        assert area2 > 0  # counter-clockwise exterior


def test_parse_coordinates_forms() -> None:
    assert parse_coordinates("12.5,48.25 12.75,50.5") == [(12.5, 48.25), (12.75, 50.5)]
    assert parse_coordinates("12.5 48.25 12.75 50.5") == [(12.5, 48.25), (12.75, 50.5)]
    assert parse_coordinates("  12.5 48.25\n 12.75 50.5 ") == [(12.5, 48.25), (12.75, 50.5)]
    assert parse_coordinates("1 2 100 3 4 200", dimension=3) == [(1, 2), (3, 4)]


@pytest.mark.parametrize("value", ["1 2 3", "1,2,3,4 5,6", "a b", "95 10 96 11", "1,2 3"])
def test_parse_coordinates_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_coordinates(value)


def test_simple_polygon_becomes_closed_ccw_lon_lat() -> None:
    # Clockwise, unclosed, lat/lon order (as S1 L1 manifests write it).
    points = [(12.378114, 48.27924), (12.829241, 50.603844), (11.081389, 50.958828), (10.625828, 48.64994)]
    geometry = footprint_from_latlon(points)
    assert geometry is not None and geometry["type"] == "Polygon"
    _assert_rfc7946(geometry)
    ring = geometry["coordinates"][0]
    assert len(ring) == 5
    assert {tuple(p) for p in ring} == {(lon, lat) for lat, lon in points}


def test_antimeridian_crossing_is_split_into_a_multipolygon() -> None:
    points = [(10.0, 179.5), (10.0, -179.8), (11.0, -179.8), (11.0, 179.5)]  # 179.5 -> -179.8: crosses
    geometry = footprint_from_latlon(points)
    assert geometry is not None and geometry["type"] == "MultiPolygon"
    _assert_rfc7946(geometry)
    east, west = sorted((shape({"type": "Polygon", "coordinates": p}) for p in geometry["coordinates"]),
                        key=lambda g: -g.bounds[0])  # fmt: skip
    assert east.bounds == pytest.approx((179.5, 10.0, 180.0, 11.0))
    assert west.bounds == pytest.approx((-180.0, 10.0, -179.8, 11.0))
    # Never the 359.3° wide band the naive polygon would describe.
    assert shape(geometry).area == pytest.approx(0.7)


def test_crossing_in_the_other_direction_and_closed_ring() -> None:
    points = [(-16.26, 180.0), (-16.26, -179.7), (-17.25, -179.7), (-17.25, 179.2), (-16.25, 179.26), (-16.26, 180.0)]
    geometry = footprint_from_latlon(points)
    assert geometry is not None
    _assert_rfc7946(geometry)
    assert shape(geometry).bounds[2] - shape(geometry).bounds[0] == pytest.approx(360.0)
    assert shape(geometry).area < 2


def test_ring_around_the_pole_is_closed_through_it() -> None:
    # The outline of a swath covering the North pole: once around at 80-82°N, longitudes ending 360° from
    # where they started (real S3 OL_2_WFR / SL_2_WST footprints look like this).
    outline = [(80.0 + (lon % 60) / 30, float(lon)) for lon in range(-170, 190, 20)]
    geometry = footprint_from_latlon(outline)
    assert geometry is not None
    _assert_rfc7946(geometry)
    g = shape(geometry)
    lowest = min(lat for lat, _ in outline)
    assert g.bounds == pytest.approx((-180.0, lowest, 180.0, 90.0))  # the cap up to the pole, not the rest
    assert 360 * 8 < g.area < 360 * 10


def test_two_points_are_a_line_and_lines_are_split_too() -> None:
    line = footprint_from_latlon([(31.7206, -71.7765), (31.6998, -71.7821)])
    assert line == {"type": "LineString", "coordinates": [[-71.7765, 31.7206], [-71.7821, 31.6998]]}
    crossing = footprint_from_latlon([(0.0, 179.0), (1.0, -179.0)])
    assert crossing is not None and crossing["type"] == "MultiLineString"
    assert shape(crossing).length == pytest.approx(5**0.5)  # 179 -> 181 (= -179), not 358 degrees


def test_single_point_and_nothing() -> None:
    assert footprint_from_latlon([(1.0, 2.0), (1.0, 2.0)]) == {"type": "Point", "coordinates": [2.0, 1.0]}
    assert footprint_from_frames([]) is None
    assert footprint_from_frames([[]]) is None


def test_several_frames_are_merged() -> None:
    a = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)]
    b = [(5.0, 5.0), (5.0, 6.0), (6.0, 6.0), (6.0, 5.0)]
    overlapping = [(0.5, 0.5), (0.5, 1.5), (1.5, 1.5), (1.5, 0.5)]
    two = footprint_from_frames([a, b])
    assert two is not None and two["type"] == "MultiPolygon" and len(two["coordinates"]) == 2
    _assert_rfc7946(two)
    merged = footprint_from_frames([a, overlapping])
    assert merged is not None and merged["type"] == "Polygon"
    assert shape(merged).area == pytest.approx(1.75)


def test_self_intersecting_ring_is_made_valid() -> None:
    bow_tie = [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0)]
    geometry = footprint_from_latlon(bow_tie)
    assert geometry is not None
    _assert_rfc7946(geometry)
