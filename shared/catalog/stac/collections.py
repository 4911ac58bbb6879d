"""STAC collections of the catalog: one per mission and one per product type of it.

Ids: ``sentinel-1`` for a mission, ``sentinel-1-iw-grdh-1s`` for a product type: the mission's id,
then the ESA product type code in lower case with its underscores as single hyphens (``OL_1_EFR___``
-> ``ol-1-efr``). Lower-case kebab ids are what STAC catalogs use (``sentinel-2-l2a`` elsewhere),
and the ESA code stays recognisable. The codes are not read back from the id: the catalog's own list
of product types (``CatalogStore.product_types``) says which id is which type, so an id names only
types the catalog holds. An item belongs to its product type's collection (its ``collection``);
a mission's collection holds the items of all its types.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.catalog.filters import And, AttributeMatch, Compare, Const, Filter, Or, Prop, collection_of
from shared.catalog.model import ProductTypeSummary
from shared.catalog.store import CatalogStore
from shared.products.stac import STAC_VERSION, iso

# Sentinel data are free and open under the Sentinel data legal notice, which is no SPDX license.
LICENSE_URL = "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice"
_MISSION_ID = re.compile(r"^sentinel-(\d+)$")
REFRESH_SECONDS = 30.0  # how stale the list of product types may be (a new type shows up that late)
MISS_REFRESH_SECONDS = 2.0  # an unknown id re-reads the list, at most this often


def mission_collection_id(mission: str) -> str:
    return f"sentinel-{mission[1:]}"


def type_collection_id(mission: str, product_type: str) -> str:
    return mission_collection_id(mission) + "-" + re.sub(r"_+", "-", product_type.lower()).strip("-")


@dataclass(frozen=True)
class CollectionRef:
    id: str
    mission: str
    product_type: str | None  # None: the mission's collection
    types: tuple[ProductTypeSummary, ...]  # what the catalog holds of it

    def where(self) -> Filter:
        """The products of this collection, as a filter."""
        mission = Compare(Prop.COLLECTION, "eq", collection_of(self.mission))
        if self.product_type is None:
            return mission

        return And((mission, AttributeMatch("productType", Compare(Prop.ATTRIBUTE_VALUE, "eq", self.product_type))))


class Collections:
    """The catalog's collections, from its product types, re-read every REFRESH_SECONDS."""

    def __init__(self, catalog: Callable[[], CatalogStore], clock: Callable[[], float] = time.monotonic) -> None:
        self._catalog = catalog
        self._clock = clock
        self._lock = threading.Lock()
        self._refs: dict[str, CollectionRef] = {}
        self._read_at: float | None = None

    def all(self) -> list[CollectionRef]:
        self._refresh(REFRESH_SECONDS)
        return list(self._refs.values())

    def get(self, collection_id: str) -> CollectionRef | None:
        self._refresh(REFRESH_SECONDS)
        if collection_id not in self._refs:
            self._refresh(MISS_REFRESH_SECONDS)
        return self._refs.get(collection_id)

    def where(self, collection_ids: list[str]) -> Filter:
        """Products of any of the collections (an unknown id holds none)."""
        filters = [ref.where() for ref in (self.get(c) for c in collection_ids) if ref is not None]
        if not filters:
            return Const(False)
        return filters[0] if len(filters) == 1 else Or(tuple(filters))

    def item_collection(self, mission: str, product_type: str) -> str:
        return type_collection_id(mission, product_type)

    def _refresh(self, max_age: float) -> None:
        with self._lock:
            now = self._clock()
            if self._read_at is not None and now - self._read_at < max_age:
                return
            summaries = self._catalog().product_types()
            refs: dict[str, CollectionRef] = {}
            for summary in summaries:
                mission_id = mission_collection_id(summary.mission)
                held = refs.get(mission_id)
                types = (*held.types, summary) if held else (summary,)
                refs[mission_id] = CollectionRef(mission_id, summary.mission, None, types)
                type_id = type_collection_id(summary.mission, summary.product_type)
                refs.setdefault(type_id, CollectionRef(type_id, summary.mission, summary.product_type, (summary,)))
            self._refs = dict(sorted(refs.items()))
            self._read_at = now


def mission_of_id(collection_id: str) -> str | None:
    match = _MISSION_ID.match(collection_id)
    return None if match is None else f"S{match[1]}"


def _bbox(types: tuple[ProductTypeSummary, ...]) -> list[float]:
    boxes = [t.bbox for t in types if t.bbox is not None]
    if not boxes:
        return [-180.0, -90.0, 180.0, 90.0]
    south, north = min(b[1] for b in boxes), max(b[3] for b in boxes)
    if any(b[0] > b[2] for b in boxes):  # one crosses the antimeridian: the whole longitude range holds all
        return [-180.0, south, 180.0, north] if len(boxes) > 1 else list(boxes[0])
    return [min(b[0] for b in boxes), south, max(b[2] for b in boxes), north]


def _interval(types: tuple[ProductTypeSummary, ...]) -> list[str | None]:
    starts = [t.start for t in types if t.start is not None]
    ends = [t.end for t in types if t.end is not None]
    first: datetime | None = min(starts) if starts else None
    last: datetime | None = max(ends) if ends else None
    return [iso(first) if first else None, iso(last) if last else None]


def collection_json(ref: CollectionRef, root: str) -> dict[str, object]:
    """The STAC Collection of ``ref``; ``root`` is the STAC API's URL (no trailing slash)."""
    constellation = mission_collection_id(ref.mission)
    product_types = sorted(t.product_type for t in ref.types)
    if ref.product_type is None:
        title = f"Sentinel-{ref.mission[1:]}"
        description = f"Every Sentinel-{ref.mission[1:]} product of the catalog ({len(product_types)} product types)."
    else:
        title = f"Sentinel-{ref.mission[1:]} {ref.product_type}"
        description = f"Sentinel-{ref.mission[1:]} products of type {ref.product_type}."
    href = f"{root}/collections/{ref.id}"
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": ref.id,
        "title": title,
        "description": description,
        "license": "other",
        "keywords": ["Copernicus", f"Sentinel-{ref.mission[1:]}"],
        "providers": [{"name": "ESA", "roles": ["producer", "licensor"], "url": "https://www.esa.int"}],
        "extent": {"spatial": {"bbox": [_bbox(ref.types)]}, "temporal": {"interval": [_interval(ref.types)]}},
        "summaries": {"constellation": [constellation], "product:type": product_types},
        "links": [
            {"rel": "self", "href": href, "type": "application/json"},
            {"rel": "root", "href": f"{root}/", "type": "application/json"},
            {"rel": "parent", "href": f"{root}/", "type": "application/json"},
            {"rel": "items", "href": f"{href}/items", "type": "application/geo+json"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "href": f"{href}/queryables",
             "type": "application/schema+json"},
            {"rel": "license", "href": LICENSE_URL, "title": "Sentinel data legal notice"},
        ],
        "refsys:count": sum(t.count for t in ref.types),
    }  # fmt: skip
