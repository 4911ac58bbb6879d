"""STAC items of catalog entries: the properties of ``shared.products.stac`` (one mapping table with
the CQL2 filters), assets that download through the OData API, and the links of the STAC API.

Assets: ``product`` is the OData ``Products(<Id>)/$value`` of the product (one access path for
downloads: the same roles, checks and redirects as OData), ``thumbnail`` each quicklook's
``Quicklooks('<Image>')/$value``. ``created``/``updated`` are the publication and modification
times, which ``created``/``updated`` filters and sorts compare.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.catalog.model import CatalogEntry
from shared.catalog.odata.entities import quicklook_name
from shared.catalog.stac.collections import type_collection_id
from shared.products.stac import EXTENSIONS, STAC_VERSION, iso, stac_bbox, stac_id, stac_properties

_IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "jp2": "image/jp2", "tif": "image/tiff"}


def item_json(entry: CatalogEntry, root: str, odata: str) -> dict[str, Any]:
    """The item of ``entry``; ``root`` is the STAC API's URL and ``odata`` the OData service's (no trailing /)."""
    properties, used = stac_properties(
        mission=entry.mission,
        satellite=entry.satellite,
        product_type=entry.product_type,
        level=entry.level,
        attributes=entry.attributes,
        start=entry.validity_start,
        stop=entry.validity_stop,
    )
    properties["created"] = iso(entry.publication_time)
    properties["updated"] = iso(entry.modification_time)
    collection = type_collection_id(entry.mission, entry.product_type)
    item_id = stac_id(entry.name)
    collection_href = f"{root}/collections/{collection}"
    product = f"{odata}/Products({entry.id})"
    assets: dict[str, Any] = {
        "product": {
            "href": f"{product}/$value",
            "type": entry.content_type,
            "title": entry.name,
            "roles": ["data"],
        }
    }
    for index, key in enumerate(entry.quicklooks):
        image = quicklook_name(key)
        extension = image.rsplit(".", 1)[-1].lower()
        asset: dict[str, Any] = {
            "href": f"{product}/Quicklooks('{quote(image.replace(chr(39), chr(39) * 2), safe='')}')/$value",
            "title": image,
            "roles": ["thumbnail", "overview"],
        }
        if extension in _IMAGE_TYPES:
            asset["type"] = _IMAGE_TYPES[extension]
        assets["thumbnail" if index == 0 else f"thumbnail-{index + 1}"] = asset
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXTENSIONS[e] for e in sorted(used)],
        "id": item_id,
        "geometry": entry.footprint,
        "properties": properties,
        "links": [
            {
                "rel": "self",
                "href": f"{collection_href}/items/{quote(item_id, safe='')}",
                "type": "application/geo+json",
            },
            {"rel": "parent", "href": collection_href, "type": "application/json"},
            {"rel": "collection", "href": collection_href, "type": "application/json"},
            {"rel": "root", "href": f"{root}/", "type": "application/json"},
        ],
        "assets": assets,
        "collection": collection,
    }
    if entry.footprint is not None:
        item["bbox"] = stac_bbox(entry.footprint)
    return item
