"""Footprints: manifest coordinate lists -> RFC 7946 GeoJSON geometries.

Manifests list ``lat,lon`` (S1 ``gml:coordinates``) or ``lat lon`` (S2 ``gml:coordinates``, S3
``gml:posList``) pairs, clockwise or counter-clockwise, closed or not. GeoJSON wants ``[lon, lat]``,
closed rings, counter-clockwise exteriors and, for a shape crossing the antimeridian, a split at ±180
(RFC 7946 §3.1.9): a ring that goes 179.5 -> -179.8 would otherwise be read as wrapping the whole globe.

The reference only flags such polygons ``clockwise`` and lets Elasticsearch split them (§3.5); we split
them ourselves, and also close rings that go once around a pole (long S3 stripes) through that pole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import shapely
from shapely.affinity import translate
from shapely.geometry import (
    LineString,
    MultiLineString,
    MultiPolygon,
    Point,
    Polygon,
    box,
    mapping,
)
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

LatLon = tuple[float, float]
# Output coordinates are snapped to a 1e-9 degree grid (far below any manifest's precision): it removes the
# float noise of the ±360 shifts, and snapping *before* merging keeps pieces that meet on a shared edge valid.
_DECIMALS = 9
_GRID = 10.0**-_DECIMALS


def parse_coordinates(value: str, *, dimension: int = 2) -> list[LatLon]:
    """``"lat,lon lat,lon ..."`` or ``"lat lon lat lon ..."`` -> ``[(lat, lon), ...]``.

    ``dimension`` 3 drops the height of ``lat lon h`` triplets (S2 L0 granules, ``srsDimension="3"``).
    Raises ``ValueError`` on a malformed list.
    """
    if "," in value:
        pairs = [p.split(",") for p in value.split()]
        if any(len(p) not in (2, 3) for p in pairs):
            raise ValueError(f"malformed coordinate pair in {value[:80]!r}")
        numbers = [float(x) for pair in pairs for x in pair[:2]]
    else:
        flat = [float(x) for x in value.split()]
        if len(flat) % dimension:
            raise ValueError(f"{len(flat)} numbers is not a multiple of {dimension}")
        numbers = [x for i, x in enumerate(flat) if i % dimension < 2]
    points = list(zip(numbers[0::2], numbers[1::2], strict=True))
    for lat, lon in points:
        if not (-90.0 <= lat <= 90.0 and -360.0 <= lon <= 360.0) or math.isnan(lat) or math.isnan(lon):
            raise ValueError(f"coordinate out of range: lat={lat} lon={lon}")
    return points


def footprint_from_frames(frames: Sequence[Sequence[LatLon]]) -> dict[str, Any] | None:
    """GeoJSON geometry covering every frame (one per S1 WV vignette, usually just one).

    A frame of 3+ points is a polygon, of 2 a line (S1 WV/RF L0 give two nadir points), of 1 a point.
    Several frames are merged (their union, so never overlapping polygons). ``None`` when there is none.
    """
    parts = [_normalise_frame(f) for f in frames if f]
    geoms = [g for g in parts if not g.is_empty]
    if not geoms:
        return None
    areas = [g for g in geoms if g.area > 0] or geoms
    # A single frame keeps the manifest's vertex order; only several frames need merging.
    merged = areas[0] if len(areas) == 1 else shapely.union_all(areas, grid_size=_GRID)
    return to_geojson(merged)


def footprint_from_latlon(points: Sequence[LatLon]) -> dict[str, Any] | None:
    """GeoJSON geometry of one frame given as ``(lat, lon)`` points."""
    return footprint_from_frames([points])


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """RFC 7946 mapping of a lon/lat geometry: CCW exteriors, CW holes, lists, rounded coordinates."""
    geom = shapely.set_precision(geom, _GRID)
    polys = _polygons(geom)
    if polys:
        oriented = [orient(p, 1.0) for p in polys]
        out: BaseGeometry = oriented[0] if len(oriented) == 1 else MultiPolygon(oriented)
    else:
        lines = _lines(geom)
        out = geom if not lines else lines[0] if len(lines) == 1 else MultiLineString(lines)
    return _listify(mapping(out))


def split_at_antimeridian(geometry: BaseGeometry) -> BaseGeometry:
    """A lon/lat geometry (longitudes in [-180, 180]) read the way footprints are: split at ±180 if it crosses.

    For query geometries (an OData ``geography'...'``). An edge whose longitudes differ by more than 180°
    goes the short way round, across the antimeridian (a geography is drawn along great circles, not
    across the map): such a ring or line is unwrapped, cut at ±180 and wrapped back into a
    (Multi)Polygon or (Multi)LineString. A ring that then goes once around a pole is closed through it,
    as footprints are. A geometry that crosses nowhere comes back as it is (the same object); points
    never cross. An edge of exactly 360° (-180 -> 180, as in a whole-world box) is taken as drawn: the
    short way round it would have no length.

    Raises ValueError (saying why) when a crossing geometry, read the short way round, is not valid or empty.
    """
    parts = list(shapely.get_parts(geometry))
    if not any(_crosses(part) for part in parts):
        return geometry
    polys: list[Polygon] = []
    lines: list[LineString] = []
    for part in parts:
        if isinstance(part, Polygon):
            unwrapped = _unwrapped_polygon(part) if _crosses(part) else part
            if not unwrapped.is_valid:
                raise ValueError(shapely.is_valid_reason(unwrapped))
            polys.extend(_polygons(_split(unwrapped)))
        elif isinstance(part, LineString):
            unwrapped = LineString(_unwrap(part.coords)) if _crosses(part) else part
            lines.extend(_lines(_split(unwrapped)))
    if polys:
        # The parts of a multi-part geometry, each split, can now meet or overlap: their union is valid.
        return shapely.union_all(polys, grid_size=_GRID)
    if lines:
        return MultiLineString(lines) if len(lines) > 1 else lines[0]
    # E.g. a "ring" along one parallel around a pole at 90°: it encloses nothing.
    raise ValueError("it has no area or length")


def _crosses(part: BaseGeometry) -> bool:
    """Whether some edge of a polygon's rings or of a line is the short way round across ±180."""
    rings = [part.exterior, *part.interiors] if isinstance(part, Polygon) else [part]
    return any(
        180.0 < abs(b[0] - a[0]) < 360.0
        for ring in rings
        if isinstance(ring, LineString)
        for a, b in pairwise(ring.coords)
    )


def _unwrapped_polygon(polygon: Polygon) -> BaseGeometry:
    shell = _unwrap(polygon.exterior.coords)
    if not polygon.interiors:
        return _ring_polygon(shell)
    if abs(shell[-1][0] - shell[0][0]) >= 180:
        raise ValueError("a polygon around a pole cannot have holes")
    middle = (min(x for x, _ in shell) + max(x for x, _ in shell)) / 2
    holes = []
    for interior in polygon.interiors:
        ring = _unwrap(interior.coords)
        # A hole lies inside its shell: whole turns of longitude bring it there.
        turns = round((middle - ring[0][0]) / 360.0)
        holes.append([(x + 360.0 * turns, y) for x, y in ring])
    return Polygon(shell, holes)


def _normalise_frame(points: Sequence[LatLon]) -> BaseGeometry:
    lonlat = _dedupe([(lon, lat) for lat, lon in points])
    if len(lonlat) == 1:
        lon, lat = lonlat[0]
        return Point(_wrap(lon), lat)
    closed = len(lonlat) > 2 and lonlat[0] == lonlat[-1]
    ring = lonlat[:-1] if closed else lonlat
    if len(ring) < 3:
        return _split(LineString(_unwrap(ring)))
    poly = _ring_polygon(_unwrap([*ring, ring[0]]))
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
    return _split(poly)


def _ring_polygon(unwrapped: list[tuple[float, float]]) -> BaseGeometry:
    """The polygon of an unwrapped closed ring: plain, or closed via a pole when it goes once around it."""
    shift = unwrapped[-1][0] - unwrapped[0][0]
    return Polygon(unwrapped) if abs(shift) < 180 else _around_pole(unwrapped)


def _around_pole(unwrapped: list[tuple[float, float]]) -> BaseGeometry:
    """A ring whose longitudes end 360° from where they started encloses a pole: close it via that pole.

    Which pole is not written anywhere; of the two closures we keep the valid one covering less area
    (a footprint is less than a hemisphere).
    """
    start_x = unwrapped[0][0]
    end_x = unwrapped[-1][0]
    candidates = []
    for pole in (90.0, -90.0):
        poly = Polygon([*unwrapped, (end_x, pole), (start_x, pole)])
        candidates.append(poly if poly.is_valid else shapely.make_valid(poly))
    return min(candidates, key=lambda g: g.area)


def _split(geom: BaseGeometry) -> BaseGeometry:
    """Cut an unwrapped geometry (longitudes possibly beyond ±180) at every ±180 and shift the pieces back."""
    minx, _, maxx, _ = geom.bounds
    if minx >= -180 and maxx <= 180:
        return geom
    pieces = []
    for k in range(math.floor((minx + 180) / 360), math.floor((maxx + 180) / 360) + 1):
        window = box(-180 + 360 * k, -90, 180 + 360 * k, 90)
        piece = geom.intersection(window)
        if not piece.is_empty:
            pieces.append(translate(piece, xoff=-360 * k))
    polys = [p for piece in pieces for p in _polygons(piece)]
    if polys:
        # Pieces can overlap or share an edge (a ring closed through a pole, a stripe longer than 360°):
        # their union is the valid (Multi)Polygon.
        return shapely.union_all(polys, grid_size=_GRID)
    lines = [ln for piece in pieces for ln in _lines(piece)]
    return MultiLineString(lines) if len(lines) > 1 else lines[0]


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom] if geom.area > 0 else []
    return [p for part in getattr(geom, "geoms", ()) for p in _polygons(part)]


def _lines(geom: BaseGeometry) -> list[LineString]:
    if isinstance(geom, LineString):
        return [geom] if geom.length > 0 else []
    return [ln for part in getattr(geom, "geoms", ()) for ln in _lines(part)]


def _dedupe(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for p in points:
        if not out or out[-1] != p:
            out.append(p)
    return out


def _unwrap(lonlat: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Shift longitudes by multiples of 360 so that no step is longer than 180° (the short way round)."""
    out = [(_wrap(lonlat[0][0]), lonlat[0][1])]
    for lon, lat in lonlat[1:]:
        prev = out[-1][0]
        out.append((lon + 360.0 * round((prev - lon) / 360.0), lat))
    return out


def _wrap(lon: float) -> float:
    """Longitude into [-180, 180]."""
    return lon if -180.0 <= lon <= 180.0 else (lon + 180.0) % 360.0 - 180.0


def _listify(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _listify(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_listify(v) for v in obj]
    if isinstance(obj, float):
        value = round(obj, _DECIMALS)
        return 0.0 if value == 0 else value  # no "-0.0" in the output
    return obj
