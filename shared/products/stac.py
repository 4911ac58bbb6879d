"""STAC items (1.1.0) of products: the same metadata as the PRIP attributes, in STAC vocabulary.

``MAPPING`` is the one table PRIP attribute <-> STAC property (and the extension the property
belongs to). Items are built from it here (``stac_properties``: for ``refsys describe --stac`` and
for the catalog's STAC API, ``shared.catalog.stac.items``), and the STAC API's CQL2 filters are
translated through it (``shared.catalog.stac.cql2``), so what an item shows is what a filter on it
finds. docs/stac.md lists it.

Extensions are declared only where a product has a value for them: ``sat`` (orbits, direction),
``sar`` (S1 only: mode, polarisations, frequency band), ``eo`` (cloud cover) and ``processing``
(level, facility, software, baseline). ``view``: none of our attributes maps to it yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # metadata reads footprints with shapely: the STAC API's item pages never need it
    from shared.products.metadata import AttributeValue, ProductMetadata
    from shared.products.naming import ProductName

STAC_VERSION = "1.1.0"
EXTENSIONS = {
    "sat": "https://stac-extensions.github.io/sat/v1.1.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.2.0/schema.json",
    "eo": "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
    "processing": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
}
_INSTRUMENTS = {"S1": "c-sar", "S2": "msi"}
_S3_INSTRUMENTS = {"OL": "olci", "SL": "slstr", "SR": "sral", "MW": "mwr", "SY": "synergy", "DO": "doris"}
_ORBIT_STATES = ("ascending", "descending", "geostationary")  # the sat extension's enum


def _same(value: Any) -> Any:
    return value


def _orbit_state(value: AttributeValue) -> str | None:
    # PRIP writes ASCENDING; sat allows three lower-case states (S2 datastrips say UNKNOWN: not shown).
    state = str(value).lower()
    return state if state in _ORBIT_STATES else None


def _orbit_direction(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


_POLARIZATIONS = ("HH", "VV", "HV", "VH", "LH", "LV", "RH", "RV", "CH", "CV")  # the sar extension's enum


def _channels(value: AttributeValue) -> list[str] | None:
    channels = [c.strip() for c in str(value).split(",") if c.strip() in _POLARIZATIONS]
    return channels or None


@dataclass(frozen=True)
class StacProperty:
    """A PRIP attribute shown as a STAC property.

    ``to_stac`` converts the attribute's value (None: not shown); ``to_attribute`` converts a filter's
    literal back. ``missions``: the only missions it means something for (empty: all of them);
    ``filterable``: False for values a comparison cannot express (lists).
    """

    attribute: str
    name: str
    extension: str | None
    missions: tuple[str, ...] = ()
    to_stac: Callable[[AttributeValue], Any] = _same
    to_attribute: Callable[[Any], Any] = _same
    filterable: bool = True

    def applies_to(self, mission: str) -> bool:
        return not self.missions or mission in self.missions


MAPPING: tuple[StacProperty, ...] = (
    StacProperty("productType", "product:type", None),
    StacProperty("orbitNumber", "sat:absolute_orbit", "sat"),
    StacProperty("relativeOrbitNumber", "sat:relative_orbit", "sat"),
    StacProperty("cycleNumber", "sat:orbit_cycle", "sat"),
    StacProperty("orbitDirection", "sat:orbit_state", "sat", to_stac=_orbit_state, to_attribute=_orbit_direction),
    # operationalMode is also written for S2 (INS-NOBS) and S3 (EO): a SAR mode only for S1. The
    # reference-era item builder declared sar with "EO" for OLCI and SLSTR.
    StacProperty("operationalMode", "sar:instrument_mode", "sar", missions=("S1",)),
    StacProperty("polarisationChannels", "sar:polarizations", "sar", ("S1",), to_stac=_channels, filterable=False),
    StacProperty("cloudCover", "eo:cloud_cover", "eo"),
    StacProperty("processingCenter", "processing:facility", "processing"),
    StacProperty("processingBaseline", "processing:version", "processing"),
    StacProperty("processingDate", "processing:datetime", "processing"),
)
BY_STAC_NAME: dict[str, StacProperty] = {p.name: p for p in MAPPING}


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def platform(mission: str, satellite: str | None) -> str:
    return f"sentinel-{mission[1:]}{(satellite or '').lower()}"


def stac_properties(
    *,
    mission: str,
    satellite: str | None,
    product_type: str,
    level: str,
    attributes: Mapping[str, AttributeValue],
    start: datetime | None,
    stop: datetime | None,
) -> tuple[dict[str, Any], set[str]]:
    """The properties of a product's item and the extensions (keys of EXTENSIONS) they use."""
    properties: dict[str, Any] = {
        "platform": platform(mission, satellite),
        "constellation": f"sentinel-{mission[1:]}",
        "product:type": product_type,
    }
    if start is not None and stop is not None and start != stop:
        properties.update(datetime=None, start_datetime=iso(start), end_datetime=iso(stop))
    else:
        # STAC requires a datetime: a product without any validity (a DSDB chunk) gets the epoch.
        moment = start or stop
        properties["datetime"] = iso(moment) if moment else "1970-01-01T00:00:00Z"
    instrument = _S3_INSTRUMENTS.get(product_type[:2]) if mission == "S3" else None
    instrument = instrument or _INSTRUMENTS.get(mission)
    if instrument:
        properties["instruments"] = [instrument]
    used: set[str] = set()
    for item in MAPPING:
        value = attributes.get(item.attribute)
        if value is None or not item.applies_to(mission):
            continue
        shown = item.to_stac(value)
        if shown is None:
            continue
        properties[item.name] = iso(shown) if isinstance(shown, datetime) else shown
        if item.extension is not None:
            used.add(item.extension)
    if "sar:instrument_mode" in properties:
        # Constants of the C-SAR instrument (the sar extension needs a band with the mode).
        properties["sar:frequency_band"] = "C"
        properties["sar:center_frequency"] = 5.405
        if level in ("L0", "L1", "L2"):
            properties["sar:product_type"] = product_type[3:7].rstrip("_")
    if "processorName" in attributes or "processorVersion" in attributes:
        name, version = attributes.get("processorName", "unknown"), attributes.get("processorVersion", "")
        properties["processing:software"] = {str(name): str(version)}
        used.add("processing")
    if level.startswith("L"):
        properties["processing:level"] = level
        used.add("processing")
    return properties, used


def stac_id(name: str) -> str:
    """An item's id is its product's name, as the catalog stores it (with .SAFE/.SEN3): unique,
    and the same text OData's Name filter and the STAC ``ids``/``id`` filters compare."""
    return name


def to_stac_item(
    product: ProductName, metadata: ProductMetadata, *, assets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A STAC Item for ``product``. Without a footprint the item has ``geometry: null`` (and no bbox)."""
    properties, used = stac_properties(
        mission=product.mission,
        satellite=product.satellite,
        product_type=product.product_type,
        level=product.level,
        attributes=metadata.attributes,
        start=metadata.validity_start,
        stop=metadata.validity_stop,
    )
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXTENSIONS[e] for e in sorted(used)],
        "id": stac_id(product.name),
        "geometry": metadata.footprint,
        "properties": properties,
        "links": [],
        "assets": assets or {},
    }
    if metadata.footprint is not None:
        item["bbox"] = stac_bbox(metadata.footprint)
    return item


def stac_bbox(footprint: dict[str, Any]) -> list[float]:
    """The bbox STAC asks for: across the antimeridian west is greater than east, not a globe-wide box."""
    # Read from the coordinates: a shapely geometry per item was half the time of a page of 1000 items.
    parts = [_bounds(part) for part in _parts(footprint)]
    minx, miny = min(b[0] for b in parts), min(b[1] for b in parts)
    maxx, maxy = max(b[2] for b in parts), max(b[3] for b in parts)
    eastern = [b for b in parts if b[2] >= 180.0]
    western = [b for b in parts if b[0] <= -180.0]
    if eastern and western and len(eastern) + len(western) == len(parts):
        return [min(b[0] for b in eastern), miny, max(b[2] for b in western), maxy]
    return [minx, miny, maxx, maxy]


def _parts(geojson: dict[str, Any]) -> list[Any]:
    """The coordinates of each part of a GeoJSON geometry (a Multi* or collection has several)."""
    kind = geojson["type"]
    if kind == "GeometryCollection":
        return [part for geometry in geojson["geometries"] for part in _parts(geometry)]
    if kind.startswith("Multi"):
        return list(geojson["coordinates"])
    return [geojson["coordinates"]]


def _bounds(coordinates: Any) -> tuple[float, float, float, float]:
    positions: list[Any] = []
    pending = [coordinates]
    while pending:
        current = pending.pop()
        if current and isinstance(current[0], int | float):
            positions.append(current)
        else:
            pending.extend(current)
    xs, ys = [float(p[0]) for p in positions], [float(p[1]) for p in positions]
    return min(xs), min(ys), max(xs), max(ys)
