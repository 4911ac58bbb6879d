"""Sentinel-2: naming conventions and what only S2 manifests carry.

- user products (compact names) ``S2A_MSIL1C_<sensing>_N<baseline>_R<rel. orbit>_T<tile>_<generation>.SAFE``,
  product type ``S2MSI1C`` / ``S2MSI2A`` (the PRODUCT_TYPE of their MTD file). The reference has no
  family for them; they are one tile each, so they go to the tile family (``S2_L1C_TL`` / ``S2_L2A_TL``);
- PDGS product data items ``S2A_OPER_MSI_L1C_TL_<site>_<creation>[_S<sensing>][_A<orbit>][_T<tile>]
  [_D<detector>][_N<baseline>]`` (folders, or ``.jp2`` for true-colour images ``TC``), product type
  ``MSI_L1C_TL``; housekeeping ``PRD_HKTM__``;
- unconsolidated L0 items ``MSI_L0U_GR`` / ``MSI_L0U_DS``: folders without ``manifest.safe``, described by
  their ``S2B_OPER_MTD_L0U_DS_<site>_<creation>_S<sensing>[_D<detector>].xml`` (packaging ``FOLDER``). The
  reference has no family for them; they are L0 granules/datastrips before consolidation, so they go to
  ``S2_L0_GR`` / ``S2_L0_DS``;
- auxiliary data and GIPPs ``S2B_OPER_GIP_DATATI_MPC__<creation>_V<start>_<stop>[_B00]``: Earth Explorer
  folders (packaging ``EEF``) holding ``<name>.HDR`` (the header, read as the folder's manifest: it names the
  data block ``<name>.DBL``, without size or checksum) and ``<name>.DBL``; satellite ancillary data
  ``AUX_SADATA`` (family ``S2_SAD``) are folders described by ``Inventory_Metadata.xml`` (packaging ``FOLDER``).
  Ingestion handles them as directories: it waits for the describing file, then for what it names.

Differences from the reference regexes (production-common.md §2.4): the satellite is ``A``-``D``
(reference ``A|B|_``); the optional PDI fields are matched one by one instead of ``(.*)``, so a name
with trailing garbage is not accepted.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from shared.products.families import FAMILIES
from shared.products.metadata import Draft, is_xfdu, register_step
from shared.products.naming import (
    NameMismatch,
    NamePattern,
    ProductName,
    fields,
    name_time,
    register,
    satellite_of,
)
from shared.products.xml import first_named, first_text

MANIFEST = "manifest.safe"
_T = r"\d{8}T\d{6}"

# -- user products (compact naming) ------------------------------------------------------------------

_COMPACT_RE = re.compile(
    rf"S2(?P<satellite>[A-D])_MSI(?P<msi_level>L1C|L2A)_(?P<start>{_T})_N(?P<baseline>\d{{4}})"
    rf"_R(?P<relative_orbit>\d{{3}})_T(?P<tile>\d{{2}}[A-Z]{{3}})_(?P<generation>{_T})(?:\.(?P<ext>SAFE))?"
)


def _build_compact(name: str, m: re.Match[str]) -> ProductName:
    msi_level = m["msi_level"]  # L1C / L2A
    sensing = name_time(m["start"])
    name_time(m["generation"])  # validate
    return ProductName(
        name=name,
        mission="S2",
        satellite=m["satellite"],
        product_type=f"S2MSI{msi_level[1:]}",
        level=msi_level[:2],
        family=f"S2_{msi_level}_TL",
        timeliness=None,
        # A user product has one datatake sensing time: its MTD gives PRODUCT_START_TIME == STOP_TIME.
        validity_start=sensing,
        validity_stop=sensing,
        packaging="SAFE",
        manifest_name=MANIFEST,
        name_fields=fields(m, "baseline", "relative_orbit", "tile", "generation"),
    )


register(NamePattern("s2-user-product", "S2", _COMPACT_RE, _build_compact))

# -- PDGS product data items ------------------------------------------------------------------------

_PDI_RE = re.compile(
    r"S2(?P<satellite>[A-D_])_(?P<file_class>[A-Z0-9]{4})"
    r"_(?P<type>MSI_(?P<msi_level>L0_|L0U|L1A|L1B|L1C|L2A)_(?P<unit>GR|DS|TL|TC))"
    rf"_(?P<site>[A-Z0-9_]{{4}})_(?P<creation>{_T})"
    rf"(?:_S(?P<sensing>{_T}))?(?:_A(?P<absolute_orbit>\d{{6}}))?(?:_T(?P<tile>\d{{2}}[A-Z]{{3}}))?"
    r"(?:_D(?P<detector>\d{2}))?(?:_N(?P<baseline>\d{2}\.\d{2}))?"
    r"(?:\.(?P<ext>SAFE|jp2|JP2))?"
)


def _build_pdi(name: str, m: re.Match[str]) -> ProductName:
    level = m["msi_level"].rstrip("_")  # L0 / L0U / L1A / L1B / L1C / L2A
    unconsolidated = level == "L0U"
    family = f"S2_{'L0' if unconsolidated else level}_{m['unit']}"
    if family not in FAMILIES:
        raise NameMismatch(f"there is no {m['unit']} item at level {level}")
    name_time(m["creation"])  # validate
    single_file = (m["ext"] or "").lower() == "jp2"
    packaging, manifest = ("JP2", None) if single_file else ("SAFE", MANIFEST)
    if unconsolidated:
        if m["ext"] or not m["sensing"]:
            raise NameMismatch("an L0U item is a folder with a sensing time")
        packaging, manifest = "FOLDER", pdi_metadata_name(name)
    return ProductName(
        name=name,
        mission="S2",
        satellite=satellite_of(m["satellite"]),
        product_type=m["type"],
        level=level[:2],
        family=family,
        timeliness=None,
        validity_start=name_time(m["sensing"]) if m["sensing"] else None,
        validity_stop=None,
        packaging=packaging,
        manifest_name=manifest,
        name_fields=fields(
            m, "file_class", "unit", "site", "creation", "sensing", "absolute_orbit", "tile", "detector", "baseline"
        ),
    )


def pdi_metadata_name(name: str) -> str:
    """The metadata file of an L0/L0U item: ``S2B_OPER_MSI_L0U_DS_REFS_<c>_S<s>_N00.00`` ->
    ``S2B_OPER_MTD_L0U_DS_REFS_<c>_S<s>.xml`` (no baseline)."""
    return re.sub(r"_N\d{2}\.\d{2}$", "", name.replace("_MSI_", "_MTD_", 1)) + ".xml"


register(NamePattern("s2-pdi", "S2", _PDI_RE, _build_pdi))

# -- auxiliary data, GIPPs, satellite ancillary data ----------------------------------------------------

_AUX_RE = re.compile(
    r"S2(?P<satellite>[A-D_])_(?P<file_class>OPER|TEST)_(?P<type>(?:AUX|GIP)_[0-9A-Z_]{6})"
    rf"_(?P<site>[0-9A-Z_]{{4}})_(?P<creation>{_T})_V(?P<start>{_T})_(?P<stop>{_T})"
    r"(?:_A(?P<absolute_orbit>\d{6}))?(?P<suffix>(?:_[0-9A-Z]+)*)"
)
SAD_METADATA = "Inventory_Metadata.xml"


def _build_aux(name: str, m: re.Match[str]) -> ProductName:
    start, stop = name_time(m["start"]), name_time(m["stop"])
    name_time(m["creation"])  # validate
    if stop < start:
        raise NameMismatch("validity stop before validity start")
    sad = m["type"] == "AUX_SADATA"
    return ProductName(
        name=name,
        mission="S2",
        satellite=satellite_of(m["satellite"]),
        product_type=m["type"],
        level="AUX",
        family="S2_SAD" if sad else "S2_AUX",
        timeliness=None,
        validity_start=start,
        validity_stop=stop,
        packaging="FOLDER" if sad else "EEF",
        manifest_name=SAD_METADATA if sad else f"{name}.HDR",
        name_fields=fields(m, "file_class", "site", "creation", "absolute_orbit")
        + ((("suffix", m["suffix"].lstrip("_")),) if m["suffix"] else ()),
    )


register(NamePattern("s2-aux", "S2", _AUX_RE, _build_aux))

_HKTM_RE = re.compile(
    rf"S2(?P<satellite>[A-D_])_(?P<file_class>[A-Z0-9]{{4}})_PRD_HKTM___(?P<start>{_T})_(?P<stop>{_T})"
    r"_(?P<version>\d{4})(?:\.(?P<ext>SAFE))?"
)


def _build_hktm(name: str, m: re.Match[str]) -> ProductName:
    return ProductName(
        name=name,
        mission="S2",
        satellite=satellite_of(m["satellite"]),
        product_type="PRD_HKTM__",
        level="L0",
        family="S2_HKTM",
        timeliness=None,
        validity_start=name_time(m["start"]),
        validity_stop=name_time(m["stop"]),
        packaging="SAFE",
        manifest_name=MANIFEST,
        name_fields=fields(m, "file_class", "version"),
    )


register(NamePattern("s2-hktm", "S2", _HKTM_RE, _build_hktm))

# -- manifest content only S2 has ------------------------------------------------------------------


def _s2_manifest(product: ProductName, root: Element, draft: Draft) -> None:
    period = first_named(root, "acquisitionPeriod")
    if product.product_type.startswith("S2MSI") and period is not None and first_text(period, "stopTime") is None:
        draft.stop = draft.start  # user product manifests have no stopTime; the MTD repeats the start
    draft.set("instrumentShortName", "MSI" if product.product_type != "PRD_HKTM__" else None)
    draft.set("tileId", product.name_field("tile"))
    baseline = product.name_field("baseline")
    if baseline:
        draft.set("processingBaseline", baseline if "." in baseline else f"{baseline[:2]}.{baseline[2:]}")
    relative = product.name_field("relative_orbit")
    if relative and "relativeOrbitNumber" not in draft.attributes:
        draft.set("relativeOrbitNumber", int(relative))


register_step("s2-manifest", lambda p, root: p.mission == "S2" and is_xfdu(p, root), _s2_manifest)
