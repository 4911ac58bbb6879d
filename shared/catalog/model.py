"""What the catalog stores about a product, and how a search is expressed.

Plain frozen dataclasses: the store backends, the query languages (OData, STAC) and the
functions all speak these, and none of them knows which database is behind the store.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import orjson

# Fixed for ever: changing it would give every product a new id (uuid5 of this namespace and the name).
PRODUCT_NAMESPACE: uuid.UUID = uuid.UUID("70bda78e-98ec-561f-bf56-23b736bcebde")


def product_id(name: str) -> str:
    """Deterministic id of a product from its name, so a redelivered event upserts the same row."""
    return str(uuid.uuid5(PRODUCT_NAMESPACE, name))


AttributeValue = str | int | float | bool | datetime

# PRIP attribute value types (OData.CSC.<Type>Attribute), by Python type. bool before int: bool is an int.
_VALUE_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "Boolean"),
    (int, "Integer"),
    (float, "Double"),
    (datetime, "DateTimeOffset"),
    (str, "String"),
)
_EXACT_VALUE_TYPES = dict(_VALUE_TYPES)


def attribute_value_type(value: AttributeValue) -> str:
    """PRIP ValueType of an attribute value: "String", "Integer", "Double", "Boolean" or "DateTimeOffset"."""
    exact = _EXACT_VALUE_TYPES.get(type(value))  # the common case, one lookup (a bulk load asks per attribute)
    if exact is not None:
        return exact
    for python_type, value_type in _VALUE_TYPES:
        if isinstance(value, python_type):
            return value_type
    raise TypeError(f"unsupported attribute value {value!r} ({type(value).__name__})")


def utc(value: datetime, what: str) -> datetime:
    """``value`` converted to UTC; naive datetimes are refused because their instant is unknown."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """Fixed-width ISO 8601 UTC with microseconds (``2023-08-23T12:31:39.000000Z``).

    Fixed width makes text order equal time order; isoformat pads years to 4 digits (strftime does not).
    """
    if value.tzinfo is not UTC:  # entries hold UTC already; anything else is converted first
        value = value.astimezone(UTC)
    # orjson writes it in a third of isoformat's time (seven per entry of a bulk load), but
    # leaves out a zero fraction.
    text = orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()[1:-1]
    return text if value.microsecond else text[:-1] + ".000000Z"


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _normalise_attribute(name: str, value: Any) -> AttributeValue:
    value_type = attribute_value_type(value)
    if value_type == "Double" and not math.isfinite(value):
        # Neither JSON nor PostgreSQL jsonb can hold NaN/Infinity.
        raise ValueError(f"attribute {name!r} is not a finite number: {value!r}")
    if value_type == "DateTimeOffset":
        return utc(value, f"attribute {name!r}")
    return cast(AttributeValue, value)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One cataloged product. Datetimes are normalised to UTC on construction (naive ones are refused)."""

    id: str
    name: str
    mission: str  # "S1" | "S2" | "S3"
    satellite: str | None  # "A".."D"
    product_type: str  # ESA code e.g. "IW_GRDH_1S"
    level: str  # "L0", "L1", "L2", "AUX", ...
    family: str  # reference family name e.g. "L1_SLICE"
    bucket: str
    key: str  # object key, or key prefix ending with "/" for a directory product (SAFE/SEN3)
    content_length: int  # bytes
    checksum: str | None  # MD5 hex
    content_type: str
    validity_start: datetime | None
    validity_stop: datetime | None
    footprint: dict[str, Any] | None  # GeoJSON geometry (RFC 7946), antimeridian-crossing ones split
    attributes: Mapping[str, AttributeValue]  # typed PRIP attributes
    publication_time: datetime
    modification_time: datetime
    inbox_time: datetime | None = None
    ingestion_time: datetime | None = None
    eviction_time: datetime | None = None  # when the stored copy is (to be) removed; None: never
    online: bool = True  # False once evicted: still listed, no longer downloadable
    quicklooks: tuple[str, ...] = ()  # object keys of browse images, in the product's bucket
    # The footprint as its store holds it (JSON text), on an entry read from a store: answers pass it on
    # as it is, and ``footprint`` is decoded from it only when read (a page of wave-mode footprints, each a
    # hundred polygons, spent a third of its answer's time decoding them only to write them again).
    footprint_text: str | None = field(default=None, init=False, compare=False, repr=False)

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute name

        def __getattr__(self, name: str) -> Any:
            # Reached only when a slot is unset: ``footprint`` on a store's entry, before its first read.
            if name != "footprint":
                raise AttributeError(name)
            footprint = orjson.loads(self.footprint_text)
            object.__setattr__(self, "footprint", footprint)
            return footprint

    def __post_init__(self) -> None:
        if not self.id or not self.name:
            raise ValueError("a catalog entry needs an id and a name")
        if self.content_length < 0:
            raise ValueError(f"content_length of {self.name} is negative: {self.content_length}")
        for attr in (
            "validity_start",
            "validity_stop",
            "publication_time",
            "modification_time",
            "inbox_time",
            "ingestion_time",
            "eviction_time",
        ):
            value = getattr(self, attr)
            if value is not None:
                object.__setattr__(self, attr, utc(value, f"{attr} of {self.name}"))
        object.__setattr__(self, "quicklooks", tuple(self.quicklooks))
        attributes = {name: _normalise_attribute(name, v) for name, v in self.attributes.items()}
        object.__setattr__(self, "attributes", attributes)
        if self.footprint is not None:
            # Plain JSON types (lists, not tuples as shapely.mapping gives), so an entry read back
            # from the store compares equal to the one written.
            object.__setattr__(self, "footprint", json.loads(json.dumps(self.footprint, allow_nan=False)))

    @classmethod
    def from_store(cls, footprint_text: str | None, **values: Any) -> CatalogEntry:
        """An entry read back from a store, every field given but the footprint, which is its stored JSON
        text (decoded at its first read). Its values were checked and normalised when it was written
        (UTC datetimes, plain JSON footprint, typed attributes, a tuple of quicklooks), so construction's
        checks and conversions, which cost more than reading the row in a query, are skipped."""
        entry = object.__new__(cls)
        for name in _STORED_FIELDS:
            object.__setattr__(entry, name, values[name])
        object.__setattr__(entry, "footprint_text", footprint_text)
        if footprint_text is None:
            object.__setattr__(entry, "footprint", None)
        return entry


_STORED_FIELDS = tuple(f for f in CatalogEntry.__dataclass_fields__ if f not in ("footprint", "footprint_text"))


@dataclass(frozen=True)
class ProductQuery:
    """A catalog search; every filter given must hold (AND). Empty ``names`` means no name filter.

    ``start``/``stop``: the validity interval overlaps the closed interval [start, stop]; either
    side may be open. A product without validity (or without the compared bound) does not match a
    time filter. ``name_contains`` is a case-sensitive substring (OData ``contains``).
    ``intersects``: GeoJSON geometry, in lon/lat degrees compared planar (as the footprints are
    split at the antimeridian, so is the query geometry when it crosses it).
    Results: newest publication first, then name, so paging is stable.
    """

    names: Sequence[str] = ()
    name_contains: str | None = None
    mission: str | None = None
    product_type: str | None = None
    family: str | None = None
    start: datetime | None = None
    stop: datetime | None = None
    intersects: dict[str, Any] | None = None
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.names, str):
            # A lone string is a Sequence[str] of its characters: certainly not what was meant.
            raise TypeError("ProductQuery.names must be a sequence of names, not a string")
        if self.limit < 0 or self.offset < 0:
            raise ValueError(f"limit and offset must not be negative (limit={self.limit}, offset={self.offset})")
        if self.start is not None:
            object.__setattr__(self, "start", utc(self.start, "query start"))
        if self.stop is not None:
            object.__setattr__(self, "stop", utc(self.stop, "query stop"))
        if self.start is not None and self.stop is not None and self.start > self.stop:
            raise ValueError(f"query start {self.start.isoformat()} is after stop {self.stop.isoformat()}")


@dataclass(frozen=True)
class ProductTypeSummary:
    """What the catalog holds of one product type: a STAC collection's item count and extents."""

    mission: str
    product_type: str
    count: int
    start: datetime | None  # earliest validity start
    end: datetime | None  # latest validity stop
    bbox: tuple[float, float, float, float] | None  # west, south, east, north of the footprints


# --- Stored representation, shared by the backends -------------------------------------------------

# The columns of an entry's content, in both backends' tables (``key`` is ``object_key``: KEY is reserved):
# compared to decide whether an upsert changes anything, so the bookkeeping times are not among them.
CONTENT_COLUMNS = (
    "name",
    "mission",
    "satellite",
    "product_type",
    "level",
    "family",
    "bucket",
    "object_key",
    "content_length",
    "checksum",
    "content_type",
    "validity_start",
    "validity_stop",
    "footprint",
    "attributes",
    "inbox_time",
    "ingestion_time",
    "eviction_time",
    "online",
    "quicklooks",
)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal text, so stores can compare rows as text.

    orjson writes it (a footprint and the attributes took half of a bulk load's Python time with the
    standard encoder). The standard encoder writes what orjson cannot write as it would: integers
    beyond 64 bits (an error in orjson), and any text holding null, as orjson writes NaN and
    infinity as null where the standard encoder refuses them. Which encoder writes a value depends
    on the value alone, so the text stays canonical.
    """
    try:
        # Passthrough: a datetime or dataclass is refused as the standard encoder refuses it.
        encoded = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _CANONICAL.encode(value)
    if b"null" in encoded:
        return _CANONICAL.encode(value)
    return encoded.decode()


def attributes_to_json(attributes: Mapping[str, AttributeValue]) -> str:
    """Attributes tagged with their PRIP value type: ``{"orbitNumber": {"type": "Integer", "value": 1}}``.

    JSON alone loses types: datetimes become strings, and PostgreSQL jsonb prints the float 1e20
    as ``100000000000000000000``, which reads back as an int. The tag restores the exact type.
    """
    encoded: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        value_type = attribute_value_type(value)
        stored = format_utc(value) if isinstance(value, datetime) else value
        encoded[name] = {"type": value_type, "value": stored}
    return canonical_json(encoded)


_DECODERS: dict[str, Any] = {
    "String": str,
    "Integer": int,
    "Double": float,
    "Boolean": bool,
    "DateTimeOffset": parse_utc,
}


def attributes_from_json(encoded: str | Mapping[str, Any]) -> dict[str, AttributeValue]:
    tagged = json.loads(encoded) if isinstance(encoded, str) else encoded
    return {name: _DECODERS[item["type"]](item["value"]) for name, item in tagged.items()}


def parse_geometry(geojson: Mapping[str, Any], what: str) -> Any:
    """A shapely geometry from GeoJSON, or ValueError saying what is wrong with it."""
    # Imported here: shapely costs import time and only spatial paths need it.
    import shapely.geometry
    from shapely.errors import GEOSException

    try:
        geometry = shapely.geometry.shape(geojson)
    except (GEOSException, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValueError(f"{what} is not a valid GeoJSON geometry: {exc}") from exc
    if geometry.is_empty:
        raise ValueError(f"{what} is an empty geometry")
    return geometry
