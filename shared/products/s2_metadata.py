"""Sentinel-2 metadata files: user product ``MTD_MSIL1C/2A.xml``, tile ``MTD_TL.xml`` (or PDI ``metadata.xml``),
datastrip ``MTD_DS.xml``, L0/L0U granule and datastrip ``S2A_OPER_MTD_L0*.xml`` and ``Inventory_Metadata.xml``.

One handler per document kind, chosen by the root element (the PSD schemas name their roots
``Level-1C_Tile_ID``, ``Level-0_Granule_ID``, ...). A handler applies when the document is the one
given to :func:`~shared.products.metadata.extract_metadata` (a PDI folder without ``manifest.safe``), and
the ``s2-documents`` step applies the same handlers to the product's other metadata files when a reader
is given (the files a manifest lists, else the usual names, see :func:`s2_documents`), as the
reference merges "all ``*.xml`` in the product prefix" (production-common.md §3.1).

Times of a document only set the validity of the product it describes (a tile's SENSING_TIME is not the
validity of the user product that contains the tile).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from xml.etree.ElementTree import Element

from shared.products.footprint import parse_coordinates
from shared.products.metadata import Draft, maybe_float, maybe_int, maybe_time, register_step, time_of
from shared.products.naming import ProductName
from shared.products.s2 import SAD_METADATA, pdi_metadata_name
from shared.products.xml import children_named, first_named, first_text, iter_named, local_name

Handler = Callable[[ProductName, Element, Draft], None]


def _platform(root: Element, draft: Draft) -> None:
    name = re.fullmatch(r"(?i)sentinel-?2([A-D])", first_text(root, "SPACECRAFT_NAME") or "")
    if name:
        draft.set("platformShortName", "SENTINEL-2")
        draft.set("platformSerialIdentifier", name[1].upper())


def _footprint(root: Element, draft: Draft, *, dimension: int = 2) -> None:
    if draft.frames:  # the manifest's footprint is the same polygon
        return
    value = first_text(root, "EXT_POS_LIST")
    if value:
        with contextlib.suppress(ValueError):  # as the reference: no footprint rather than no product
            draft.frames.append(parse_coordinates(value, dimension=dimension))


def _baseline(root: Element, draft: Draft) -> None:
    draft.set("processingBaseline", first_text(root, "PROCESSING_BASELINE"))


def _user_product(product: ProductName, root: Element, draft: Draft) -> None:
    if product.product_type.startswith("S2MSI"):
        draft.start = time_of(first_text(root, "PRODUCT_START_TIME")) or draft.start
        draft.stop = time_of(first_text(root, "PRODUCT_STOP_TIME")) or draft.stop
    _platform(root, draft)
    _baseline(root, draft)
    draft.set("processingLevel", first_text(root, "PROCESSING_LEVEL"))
    draft.set("processingDate", maybe_time(first_text(root, "GENERATION_TIME")))
    draft.set("relativeOrbitNumber", maybe_int(first_text(root, "SENSING_ORBIT_NUMBER")))
    direction = first_text(root, "SENSING_ORBIT_DIRECTION")
    draft.set("orbitDirection", direction.upper() if direction else None)
    datatake = first_named(root, "Datatake")
    if datatake is not None:
        draft.set("productGroupId", datatake.get("datatakeIdentifier"))
    draft.set("cloudCover", maybe_float(first_text(root, "Cloud_Coverage_Assessment")))
    draft.set("instrumentShortName", "MSI")
    _footprint(root, draft)


def _tile(product: ProductName, root: Element, draft: Draft) -> None:
    tile_id = first_text(root, "TILE_ID")
    if tile_id:
        draft.set("granuleIdentifier", tile_id)
        tile = re.search(r"_T(\d{2}[A-Z]{3})(?:_|$)", tile_id)
        draft.set("tileId", tile[1] if tile else None)
    # L1A/L1B granules (same handler) name themselves GRANULE_ID and carry their DETECTOR_ID.
    if not tile_id:
        draft.set("granuleIdentifier", first_text(root, "GRANULE_ID"))
    draft.set("detectorId", first_text(root, "DETECTOR_ID"))
    draft.set("datastripId", first_text(root, "DATASTRIP_ID"))
    if product.product_type.endswith("_TL"):
        sensing = time_of(first_text(root, "SENSING_TIME"))
        draft.start = sensing or draft.start
        draft.stop = sensing or draft.stop
    if "cloudCover" not in draft.attributes:
        draft.set("cloudCover", maybe_float(first_text(root, "CLOUDY_PIXEL_PERCENTAGE")))
    draft.set("instrumentShortName", "MSI")


def _datastrip(product: ProductName, root: Element, draft: Draft) -> None:
    draft.set("datastripId", first_text(root, "DATASTRIP_ID"))
    if product.product_type.endswith("_DS"):
        draft.start = time_of(first_text(root, "DATASTRIP_SENSING_START")) or draft.start
        draft.stop = time_of(first_text(root, "DATASTRIP_SENSING_STOP")) or draft.stop
    _platform(root, draft)
    _baseline(root, draft)
    draft.set("relativeOrbitNumber", maybe_int(first_text(root, "SENSING_ORBIT_NUMBER")))
    draft.set("orbitNumber", maybe_int(first_text(root, "DOWNLINK_ORBIT_NUMBER")))
    draft.set("instrumentShortName", "MSI")
    _footprint(root, draft)


def _granule(product: ProductName, root: Element, draft: Draft) -> None:
    draft.set("granuleIdentifier", first_text(root, "GRANULE_ID"))
    draft.set("datastripId", first_text(root, "DATASTRIP_ID"))
    draft.set("detectorId", first_text(root, "DETECTOR_ID"))
    if product.product_type.endswith("_GR"):
        draft.start = time_of(first_text(root, "SENSING_TIME")) or draft.start
    draft.set("cloudCover", maybe_float(first_text(root, "CLOUDY_PIXEL_PERCENTAGE")))
    draft.set("instrumentShortName", "MSI")
    _footprint(root, draft, dimension=3)  # L0 granules write "lat lon height" triplets (reference §3.4)


def _inventory(product: ProductName, root: Element, draft: Draft) -> None:
    draft.start = time_of(first_text(root, "Validity_Start")) or draft.start
    draft.stop = time_of(first_text(root, "Validity_Stop")) or draft.stop
    draft.set("processingDate", maybe_time(first_text(root, "Generation_Time")))
    draft.set("orbitNumber", maybe_int(first_text(root, "Start_Orbit_Number")))
    draft.set("lastOrbitNumber", maybe_int(first_text(root, "Stop_Orbit_Number")))
    draft.set("productGroupId", first_text(root, "Group_ID"))
    draft.set("processingCenter", first_text(root, "Processing_Station"))
    draft.set("cloudCover", maybe_float(first_text(root, "CloudPercentage")))
    satellite = re.fullmatch(r"S2([A-D])", first_text(root, "Satellite_Code") or "")
    if satellite:
        draft.set("platformSerialIdentifier", satellite[1])
    ascending = (first_text(root, "Ascending_Flag") or "").lower()
    if ascending in ("true", "false"):
        draft.set("orbitDirection", "ASCENDING" if ascending == "true" else "DESCENDING")
    points = []
    for point in iter_named(root, "Geo_Pnt"):
        lat, lon = maybe_float(first_text(point, "LATITUDE")), maybe_float(first_text(point, "LONGITUDE"))
        if lat is not None and lon is not None and -90 <= lat <= 90 and -360 <= lon <= 360:
            points.append((lat, lon))
    if points and not draft.frames:
        draft.frames.append(points)


_HANDLERS: dict[str, Handler] = {
    "Level-1C_User_Product": _user_product,
    "Level-2A_User_Product": _user_product,
    "Level-1C_Tile_ID": _tile,
    "Level-2A_Tile_ID": _tile,
    "Level-1B_Granule_ID": _tile,
    "Level-1A_Granule_ID": _tile,
    "Level-0_Granule_ID": _granule,
    "DIMAP_Level-0-unconsolidated_Granule": _granule,
    "Level-0_DataStrip_ID": _datastrip,
    "Level-1A_DataStrip_ID": _datastrip,
    "Level-1B_DataStrip_ID": _datastrip,
    "Level-1C_DataStrip_ID": _datastrip,
    "Level-2A_DataStrip_ID": _datastrip,
    "DIMAP_Level-0-unconsolidated_DataStrip": _datastrip,
    "Inventory_Metadata": _inventory,
}


def _handler(root: Element) -> Handler | None:
    return _HANDLERS.get(local_name(root.tag))


def _applies(product: ProductName, root: Element) -> bool:
    return product.mission == "S2" and _handler(root) is not None


def _apply(product: ProductName, root: Element, draft: Draft) -> None:
    handler = _handler(root)
    if handler is not None:
        handler(product, root, draft)


register_step("s2-metadata-file", _applies, _apply)

# -- the other metadata files of a product -----------------------------------------------------------

_METADATA_FILE = re.compile(
    r"(?:^|/)(?:MTD_[A-Z0-9]+\.xml|metadata\.xml|Inventory_Metadata\.xml|S2._OPER_MTD_\w+\.xml)$"
)


def s2_documents(product: ProductName) -> list[str]:
    """Where the metadata of an S2 product without (or besides) a manifest usually is."""
    if product.product_type.startswith("S2MSI"):
        return [f"MTD_MSI{product.product_type[5:]}.xml"]
    if product.family == "S2_SAD":
        return [SAD_METADATA]
    names = ["metadata.xml", "Inventory_Metadata.xml"]
    if product.product_type.startswith("MSI_L0"):
        names.append(pdi_metadata_name(product.name))
    return [n for n in names if n != product.manifest_name]


def _listed(root: Element) -> list[str]:
    """Metadata files a manifest lists (``dataObject/byteStream/fileLocation@href``)."""
    hrefs = []
    for section in children_named(root, "dataObjectSection"):
        for location in iter_named(section, "fileLocation"):
            href = (location.get("href") or "").strip().removeprefix("./")
            if _METADATA_FILE.search(href):
                hrefs.append(href)
    return hrefs


def _other_documents(product: ProductName, root: Element, draft: Draft) -> None:
    paths = _listed(root) if local_name(root.tag) == "XFDU" else []
    # Datastrip and tile files first, the product-level file last: its values are the product's own.
    ordered = sorted(dict.fromkeys([*paths, *s2_documents(product)]), key=lambda p: "MTD_MSI" in p)
    for path in ordered:
        document = draft.document(path)
        if document is not None:
            _apply(product, document, draft)


register_step("s2-documents", lambda p, _: p.mission == "S2", _other_documents)
