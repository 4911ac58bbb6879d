"""Query geometries -> ``filters.Spatial`` nodes, for any query language (the STAC API's ``bbox``,
``intersects`` and CQL2 spatial functions use it; OData's geography literals have their own reading).

A STAC query geometry is GeoJSON (RFC 7946) or CQL2 WKT, in lon/lat degrees, taken as drawn: planar,
as the stored footprints are compared. Across the antimeridian it is split as RFC 7946 asks (a bbox
whose west is greater than its east is the two boxes either side of ±180). OData's geography
literals differ: their edges go the short way round (shared/catalog/odata/filter.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.catalog.filters import Spatial

MAX_VERTICES = 10_000  # of one geometry (as OData's geography literals)
MAX_PARTS = 500  # each part is a box of the index prefilter
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


class BadGeometry(ValueError):
    """A query geometry the catalog cannot search with (the message says why)."""


def spatial_filter(relation: str, geometry: Any) -> Spatial:
    """The node testing footprints against a checked shapely geometry (see ``checked``)."""
    import shapely

    bounds = []
    for part in shapely.get_parts(geometry):
        min_lon, min_lat, max_lon, max_lat = part.bounds
        bounds.append((min_lon, max_lon, min_lat, max_lat))
    return Spatial(relation, shapely.to_wkt(geometry, rounding_precision=-1), tuple(bounds))


def from_geojson(geojson: Mapping[str, Any], what: str) -> Any:
    """A checked shapely geometry from a GeoJSON geometry object; BadGeometry saying what is wrong."""
    import shapely.geometry
    from shapely.errors import GEOSException

    if not isinstance(geojson, Mapping) or geojson.get("type") not in GEOMETRY_TYPES:
        kind = geojson.get("type") if isinstance(geojson, Mapping) else type(geojson).__name__
        raise BadGeometry(f"{what}: {kind!r} is not supported; use a GeoJSON {', '.join(GEOMETRY_TYPES)}")
    try:
        geometry = shapely.geometry.shape(geojson)
    except (GEOSException, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise BadGeometry(f"{what} is not a valid GeoJSON geometry: {exc}") from None
    return checked(geometry, what)


def from_bbox(values: Sequence[float], what: str) -> Any:
    """The geometry of a STAC bbox (4 numbers, or 6 with heights): west, south, east, north."""
    import shapely.geometry

    if len(values) not in (4, 6) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise BadGeometry(f"{what} is 4 numbers west,south,east,north (or 6 with heights)")
    west, south, east, north = (values[0], values[1], values[3], values[4]) if len(values) == 6 else values
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise BadGeometry(
            f"{what} {list(values)} is out of range: longitudes in [-180, 180], latitudes in [-90, 90], south <= north"
        )
    if west <= east:
        return checked(shapely.geometry.box(west, south, east, north), what)
    # Across the antimeridian (RFC 7946 §5.2): the boxes either side of it.
    return checked(
        shapely.geometry.MultiPolygon(
            [shapely.geometry.box(west, south, 180, north), shapely.geometry.box(-180, south, east, north)]
        ),
        what,
    )


def checked(geometry: Any, what: str) -> Any:
    """``geometry`` made 2D after checking its type, size, coordinate range and validity."""
    import shapely

    if geometry is None or geometry.is_empty:
        raise BadGeometry(f"{what} is empty")
    if geometry.geom_type not in GEOMETRY_TYPES:
        raise BadGeometry(f"{what}: {geometry.geom_type} is not supported; use {', '.join(GEOMETRY_TYPES)}")
    vertices = int(shapely.get_num_coordinates(geometry))
    if vertices > MAX_VERTICES:
        raise BadGeometry(f"{what} has {vertices} vertices; at most {MAX_VERTICES} are accepted (simplify it)")
    parts = int(shapely.get_num_geometries(geometry))
    if parts > MAX_PARTS:
        raise BadGeometry(f"{what} has {parts} parts; at most {MAX_PARTS} are accepted")
    if shapely.has_z(geometry):
        geometry = shapely.force_2d(geometry)
    for lon, lat in shapely.get_coordinates(geometry).tolist():
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise BadGeometry(
                f"{what}: coordinates are lon in [-180, 180] and lat in [-90, 90] (lon first); ({lon:g} {lat:g}) is not"
            )
    if not geometry.is_valid:
        raise BadGeometry(f"{what} is not a valid geometry: {shapely.is_valid_reason(geometry)}")
    return geometry
