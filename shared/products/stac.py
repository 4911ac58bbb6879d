"""STAC items (1.1.0) of products: the same metadata as the PRIP attributes, in STAC vocabulary.

Extensions are declared only where a product has a value for them: ``sat`` (orbits, direction),
``sar`` (S1 mode, polarisations, frequency band), ``eo`` (cloud cover), ``processing`` (level, facility,
software, baseline) and ``view`` (none of our attributes maps to it yet, so it is never declared; it is
listed here so the next attribute that does knows where to go).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shapely.geometry import shape

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

# PRIP attribute -> (extension, STAC property, converter)
_PROPERTIES: tuple[tuple[str, str, str], ...] = (
    ("orbitNumber", "sat", "sat:absolute_orbit"),
    ("relativeOrbitNumber", "sat", "sat:relative_orbit"),
    ("orbitDirection", "sat", "sat:orbit_state"),
    ("operationalMode", "sar", "sar:instrument_mode"),
    ("cloudCover", "eo", "eo:cloud_cover"),
    ("processingCenter", "processing", "processing:facility"),
    ("processingBaseline", "processing", "processing:version"),
)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _json(value: AttributeValue) -> object:
    return _iso(value) if isinstance(value, datetime) else value


def to_stac_item(
    product: ProductName, metadata: ProductMetadata, *, assets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A STAC Item for ``product``. Without a footprint the item has ``geometry: null`` (and no bbox)."""
    a = metadata.attributes
    start, stop = metadata.validity_start, metadata.validity_stop
    properties: dict[str, Any] = {
        "platform": f"sentinel-{product.mission[1:]}{(product.satellite or '').lower()}",
        "constellation": f"sentinel-{product.mission[1:]}",
        "product:type": product.product_type,
    }
    if start is not None and stop is not None and start != stop:
        properties.update(datetime=None, start_datetime=_iso(start), end_datetime=_iso(stop))
    else:
        # STAC requires a datetime: a product without any validity (a DSDB chunk) gets the epoch.
        moment = start or stop
        properties["datetime"] = _iso(moment) if moment else "1970-01-01T00:00:00Z"
    instrument = _S3_INSTRUMENTS.get(product.product_type[:2]) if product.mission == "S3" else None
    instrument = instrument or _INSTRUMENTS.get(product.mission)
    if instrument:
        properties["instruments"] = [instrument]
    used: set[str] = set()
    for attribute, extension, key in _PROPERTIES:
        value = a.get(attribute)
        if value is None:
            continue
        if key == "sat:orbit_state":
            value = str(value).lower()
        properties[key] = value
        used.add(extension)
    if product.mission == "S1" and product.level in ("L0", "L1", "L2"):
        properties["sar:frequency_band"] = "C"
        properties["sar:center_frequency"] = 5.405
        properties.setdefault("sar:instrument_mode", product.product_type[:2])
        channels = a.get("polarisationChannels")
        if channels:
            properties["sar:polarizations"] = str(channels).split(",")
        properties["sar:product_type"] = product.product_type[3:7].rstrip("_")
        used.add("sar")
    if "processorName" in a or "processorVersion" in a:
        properties["processing:software"] = {str(a.get("processorName", "unknown")): str(a.get("processorVersion", ""))}
        used.add("processing")
    if product.level.startswith("L"):
        properties["processing:level"] = product.level
        used.add("processing")
    if "processingDate" in a:
        properties["processing:datetime"] = _json(a["processingDate"])
        used.add("processing")
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXTENSIONS[e] for e in sorted(used)],
        "id": product.name.removesuffix(".zip").removesuffix(".SAFE").removesuffix(".SEN3"),
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
    geometry = shape(footprint)
    minx, miny, maxx, maxy = geometry.bounds
    parts = list(getattr(geometry, "geoms", [geometry]))
    eastern = [p.bounds for p in parts if p.bounds[2] >= 180.0]
    western = [p.bounds for p in parts if p.bounds[0] <= -180.0]
    if eastern and western and len(eastern) + len(western) == len(parts):
        return [min(b[0] for b in eastern), miny, max(b[2] for b in western), maxy]
    return [minx, miny, maxx, maxy]
