"""A backend-neutral product filter: what a query language (OData, later STAC) asks the store.

The query languages parse user text into these plain nodes; each store backend compiles them to
parameterised SQL (``shared.catalog.sqlfilter``), and ``matches`` evaluates them in Python (the
reference the SQL is tested against, and usable for matching one new product, e.g. subscriptions).

Logic is two-valued: a predicate on a missing value (no footprint, no validity, no such attribute)
is false, and ``Not`` is its complement — SQL's NULL never leaks into results.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from shared.catalog.model import CatalogEntry, attribute_value_type

# "Never evicted" as CDSE writes it (it sent an empty string before 2024-07-31).
NEVER_EVICTED = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


class Prop(enum.Enum):
    """A filterable or sortable product property."""

    ID = "id"
    NAME = "name"
    CONTENT_TYPE = "content_type"
    CONTENT_LENGTH = "content_length"
    PUBLICATION = "publication"
    MODIFICATION = "modification"
    ORIGIN = "origin"  # inbox time, else publication time
    EVICTION = "eviction"  # NEVER_EVICTED when none is set
    START = "start"  # nullable
    END = "end"  # NEVER_EVICTED when open-ended (no validity stop), as OData shows it
    ONLINE = "online"
    COLLECTION = "collection"  # "SENTINEL-1" from mission "S1"
    PRODUCTION_TYPE = "production_type"  # always "systematic_production" (no on-demand production)
    ATTRIBUTE_VALUE = "attribute_value"  # the Value inside an attribute lambda; the literal gives its type

    @property
    def python_type(self) -> type:
        return _PROP_TYPES.get(self, str)


_PROP_TYPES: dict[Prop, type] = {
    Prop.CONTENT_LENGTH: int,
    Prop.PUBLICATION: datetime,
    Prop.MODIFICATION: datetime,
    Prop.ORIGIN: datetime,
    Prop.EVICTION: datetime,
    Prop.START: datetime,
    Prop.END: datetime,
    Prop.ONLINE: bool,
    Prop.ATTRIBUTE_VALUE: object,
}


COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")
TEXT_FUNCTIONS = ("contains", "startswith", "endswith")
SPATIAL_RELATIONS = ("intersects", "within", "disjoint")

Value: TypeAlias = str | int | float | bool | datetime | None


@dataclass(frozen=True)
class Compare:
    prop: Prop
    op: str  # one of COMPARISONS
    value: Value  # None only with eq/ne: "is (not) null"


@dataclass(frozen=True)
class In:
    prop: Prop
    values: tuple[Value, ...]


@dataclass(frozen=True)
class TextMatch:
    prop: Prop
    function: str  # one of TEXT_FUNCTIONS; case-sensitive
    text: str


@dataclass(frozen=True)
class Spatial:
    """The footprint ``relation`` the geometry: intersects it, lies within it, or is disjoint from it."""

    relation: str  # one of SPATIAL_RELATIONS
    wkt: str  # valid, EPSG:4326 lon/lat, compared planar like the stored footprints
    bounds: tuple[tuple[float, float, float, float], ...] = field(
        default=()
    )  # (min_lon, max_lon, min_lat, max_lat) per part


@dataclass(frozen=True)
class AttributeMatch:
    """Some attribute named ``name`` satisfies ``condition`` (leaves on Prop.ATTRIBUTE_VALUE)."""

    name: str
    condition: Filter


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


@dataclass(frozen=True)
class Const:
    value: bool


Filter: TypeAlias = Compare | In | TextMatch | Spatial | AttributeMatch | And | Or | Not | Const


@dataclass(frozen=True)
class SortKey:
    prop: Prop
    descending: bool = False


@dataclass(frozen=True)
class Selection:
    """A page of products: ``where`` (None = all), ordered by ``order`` (made total by the store
    with a final Name key), ``limit`` rows after skipping ``offset``, or after the row whose sort
    key values are ``after`` (keyset paging: the values of ``order`` and then the name)."""

    where: Filter | None = None
    order: tuple[SortKey, ...] = ()
    limit: int = 100
    offset: int = 0
    after: tuple[Any, ...] | None = None


def total_order(order: tuple[SortKey, ...]) -> tuple[SortKey, ...]:
    """``order`` made total: a final Name key (unique) unless Name or Id is already a key."""
    if any(k.prop in (Prop.NAME, Prop.ID) for k in order):
        return order
    return (*order, SortKey(Prop.NAME))


# --- values of an entry, as the store defines them ------------------------------------------------

_COLLECTION = re.compile(r"^SENTINEL-?(\d+)$", re.IGNORECASE)


def collection_of(mission: str) -> str:
    return "SENTINEL-" + mission[1:]


def mission_of_collection(name: str) -> str | None:
    """ "S1" for "SENTINEL-1" (CDSE), "Sentinel1" (DDIP) or any case of those; None otherwise."""
    match = _COLLECTION.match(name)
    return None if match is None else "S" + str(int(match[1]))


def property_value(entry: CatalogEntry, prop: Prop) -> Any:
    getters: dict[Prop, Callable[[CatalogEntry], Any]] = {
        Prop.ID: lambda e: e.id,
        Prop.NAME: lambda e: e.name,
        Prop.CONTENT_TYPE: lambda e: e.content_type,
        Prop.CONTENT_LENGTH: lambda e: e.content_length,
        Prop.PUBLICATION: lambda e: e.publication_time,
        Prop.MODIFICATION: lambda e: e.modification_time,
        Prop.ORIGIN: lambda e: e.inbox_time or e.publication_time,
        Prop.EVICTION: lambda e: e.eviction_time or NEVER_EVICTED,
        Prop.START: lambda e: e.validity_start,
        Prop.END: lambda e: e.validity_stop or NEVER_EVICTED,
        Prop.ONLINE: lambda e: e.online,
        Prop.COLLECTION: lambda e: collection_of(e.mission),
        Prop.PRODUCTION_TYPE: lambda e: "systematic_production",
    }
    return getters[prop](entry)


# --- evaluation in Python -------------------------------------------------------------------------


def literal_kind(value: Value) -> str:
    """The attribute ValueType(s) a literal is compared with: numbers match Integer and Double."""
    if value is None:
        return "Null"
    kind = attribute_value_type(value)
    return "Number" if kind in ("Integer", "Double") else kind


def _kind_of_stored(value: Any) -> str:
    kind = attribute_value_type(value)
    return "Number" if kind in ("Integer", "Double") else kind


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if op == "lt":
        return bool(left < right)
    if op == "le":
        return bool(left <= right)
    if op == "gt":
        return bool(left > right)
    return bool(left >= right)


def _text_match(function: str, value: str, text: str) -> bool:
    if function == "contains":
        return text in value
    if function == "startswith":
        return value.startswith(text)
    return value.endswith(text)


def _leaf_value(entry: CatalogEntry, prop: Prop, attribute: Any) -> Any:
    return attribute if prop is Prop.ATTRIBUTE_VALUE else property_value(entry, prop)


def _comparable(prop: Prop, actual: Any, literal: Value) -> bool:
    """Whether ``actual`` can be compared with ``literal`` (attribute values must be of its kind)."""
    if actual is None:
        return False
    if prop is Prop.ATTRIBUTE_VALUE:
        return _kind_of_stored(actual) == literal_kind(literal)
    return True


def matches(where: Filter | None, entry: CatalogEntry, _attribute: Any = None) -> bool:
    """Whether ``entry`` satisfies ``where`` (the semantics every backend must reproduce)."""
    if where is None:
        return True
    if isinstance(where, Const):
        return where.value
    if isinstance(where, And):
        return all(matches(item, entry, _attribute) for item in where.items)
    if isinstance(where, Or):
        return any(matches(item, entry, _attribute) for item in where.items)
    if isinstance(where, Not):
        return not matches(where.item, entry, _attribute)
    if isinstance(where, Compare):
        actual = _leaf_value(entry, where.prop, _attribute)
        if where.value is None:
            return (actual is None) == (where.op == "eq")
        if where.prop is Prop.COLLECTION and where.op in ("eq", "ne"):
            wanted = mission_of_collection(str(where.value))
            return (entry.mission == wanted) == (where.op == "eq")
        return _comparable(where.prop, actual, where.value) and _compare(actual, where.op, where.value)
    if isinstance(where, In):
        actual = _leaf_value(entry, where.prop, _attribute)
        if where.prop is Prop.COLLECTION:
            return entry.mission in {mission_of_collection(str(v)) for v in where.values}
        return any(_comparable(where.prop, actual, v) and actual == v for v in where.values)
    if isinstance(where, TextMatch):
        actual = _leaf_value(entry, where.prop, _attribute)
        return (
            isinstance(actual, str) and not isinstance(actual, bool) and _text_match(where.function, actual, where.text)
        )
    if isinstance(where, AttributeMatch):
        if where.name not in entry.attributes:
            return False
        return matches(where.condition, entry, entry.attributes[where.name])
    if isinstance(where, Spatial):
        return entry.footprint is not None and spatial_test(where.relation, where.wkt, entry.footprint)
    raise TypeError(f"not a filter node: {where!r}")


def spatial_test(relation: str, wkt: str, footprint: dict[str, Any] | str) -> bool:
    """The exact planar test, as PostGIS makes it (same GEOS predicates; invalid footprints made valid).

    ``footprint`` is GeoJSON, or its text (parsed by GEOS directly: the SQLite filter's hot path).
    """
    import shapely

    geometry = _query_geometry(wkt)
    shape = shapely.from_geojson(footprint) if isinstance(footprint, str) else shapely.geometry.shape(footprint)
    if not shape.is_valid:
        shape = shapely.make_valid(shape)
    if relation == "intersects":
        return bool(shapely.intersects(shape, geometry))
    if relation == "within":
        return bool(shapely.within(shape, geometry))
    return bool(shapely.disjoint(shape, geometry))


_GEOMETRIES: dict[str, Any] = {}


def _query_geometry(wkt: str) -> Any:
    # Parsed and prepared once per distinct query geometry (a search tests it against many rows).
    geometry = _GEOMETRIES.get(wkt)
    if geometry is None:
        import shapely

        geometry = shapely.from_wkt(wkt)
        shapely.prepare(geometry)
        if len(_GEOMETRIES) > 64:
            _GEOMETRIES.clear()
        _GEOMETRIES[wkt] = geometry
    return geometry


def sort_value(entry: CatalogEntry, prop: Prop) -> Any:
    """The value ordered by: nullable times sort as the far future (after every real time)."""
    value = property_value(entry, prop)
    return NEVER_EVICTED if value is None else value


def spatial_test_many(relation: str, wkt: str, footprints: list[str]) -> list[bool]:
    """``spatial_test`` of each GeoJSON text, vectorised (one GEOS call per step for all of them).

    A footprint that cannot be read does not match (as the SQLite filter's per-row test decides).
    """
    import shapely

    if not footprints:
        return []
    try:
        shapes = shapely.from_geojson(footprints)
    except Exception:  # one unreadable footprint: test them one by one, the unreadable ones fail
        return [_spatial_test_or_false(relation, wkt, footprint) for footprint in footprints]
    return spatial_test_shapes(relation, wkt, valid_shapes(shapes))


def valid_shapes(shapes: Any) -> Any:
    """The array of shapely geometries with the invalid ones made valid (as ``spatial_test`` does)."""
    import shapely

    invalid = ~shapely.is_valid(shapes)
    if invalid.any():
        shapes[invalid] = shapely.make_valid(shapes[invalid])
    return shapes


def spatial_test_shapes(relation: str, wkt: str, shapes: Any) -> list[bool]:
    """``spatial_test`` of each (valid) shapely geometry of an array, vectorised."""
    import shapely

    if len(shapes) == 0:
        return []
    geometry = _query_geometry(wkt)
    test = {"intersects": shapely.intersects, "within": shapely.within, "disjoint": shapely.disjoint}[relation]
    return [bool(v) for v in test(shapes, geometry)]


def _spatial_test_or_false(relation: str, wkt: str, footprint: str) -> bool:
    try:
        return spatial_test(relation, wkt, footprint)
    except Exception:
        return False
