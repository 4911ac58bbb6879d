"""Sentinel-1: naming conventions and what only S1 manifests carry.

Level products and segments: ``S1A_IW_GRDH_1SDV_<start>_<stop>_<orbit>_<datatake>_<crc>.SAFE``
(product type ``IW_GRDH_1S`` = mode, kind+resolution, level+class). Auxiliary files:
``S1A_AUX_CAL_V<validity>_G<generation>.SAFE`` and Earth Explorer ``S1A_OPER_AUX_POEORB_OPOD_..._V<start>_<stop>.EOF``.

Differences from the reference regexes (production-common.md §2.4), on purpose:
- the satellite is ``A``-``D`` (the reference accepts ``A|B`` only and so rejects S1C/S1D products);
- times, datatake and CRC are matched as written (the reference's ``[0-9a-z]{15}`` only works because it
  is applied case-insensitively);
- ``ETA`` (ETAD, ``IW_ETA__AX``) is a level-product kind; ``AUX_TEC``, ``AUX_TRO``, ``AUX_ECE`` and
  ``AUX_RESATT`` are auxiliary types (missing from the reference list although its own sample names use them);
- a name without ``.SAFE`` (how products are often stored) is accepted as the same SAFE product.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from xml.etree.ElementTree import Element

from shared.products.metadata import (
    AttributeValue,
    Draft,
    is_xfdu,
    maybe_bool,
    maybe_float,
    maybe_int,
    maybe_time,
    register_step,
    time_of,
)
from shared.products.naming import (
    NameMismatch,
    NamePattern,
    ProductName,
    fields,
    name_time,
    register,
    satellite_of,
)
from shared.products.xml import children_named, first_named, first_text, text

MANIFEST = "manifest.safe"

# -- level products and segments ----------------------------------------------------------------------

_MODES = r"S[1-6]|IW|EW|WV|RF|GP|HK|N[1-6]|EN|IM|Z[1-6]|ZE|ZI|ZW"
_SEGMENT_ONLY_MODES = re.compile(r"Z[1-6]|ZE|ZI|ZW|GP|HK")
_LEVEL_RE = re.compile(
    r"S1(?P<satellite>[A-D])_(?P<mode>" + _MODES + r")_(?P<kind>RAW|SLC|GRD|OCN|ETA)(?P<resolution>[FHM_])"
    r"_(?P<level>[012A])(?P<product_class>[SACNX_])(?P<polarisation>SH|SV|DH|DV|HH|HV|VV|VH|__)"
    r"_(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_(?P<absolute_orbit>\d{6})"
    r"_(?P<datatake_id>[0-9A-F]{6})_(?P<crc>[0-9A-F]{4})(?:\.(?P<ext>SAFE))?"
)

# kind -> (level character, allowed resolutions, allowed classes, level)
_KINDS = {
    "RAW": ("0", "_", "SACN_", "L0"),
    "SLC": ("1", "_", "SA", "L1"),
    "GRD": ("1", "FHM", "SA", "L1"),
    "OCN": ("2", "_", "SA", "L2"),
    "ETA": ("A", "_", "X", "L1"),
}

# CDSE's S1 product type groups: a productType query for 'RAW' "covers all Level-0 product types" (CDSE
# docs, APIs/On-Demand Production API), and so do GRD, SLC and OCN for their kind (eodag's S1_SAR_GRD / _SLC /
# _RAW / _OCN search them). The stored productType stays the ESA code (IW_GRDH_1S), as CDSE stores it; a
# group matches every code holding its marker.
PRODUCT_TYPE_GROUPS = {"RAW": "_RAW_", "GRD": "_GRD", "SLC": "_SLC_", "OCN": "_OCN_"}


def product_type_group(value: str) -> str | None:
    """The marker every S1 product type of the group ``value`` holds (``GRD`` -> ``_GRD``); None: no group."""
    return PRODUCT_TYPE_GROUPS.get(value)


def _level_family(kind: str, product_class: str, mode: str, polarisation: str) -> str:
    if kind == "ETA":
        return "L1_ETAD"
    if kind == "RAW":
        # Segments and slices of the ordinary modes share one name shape: the producer's family (task
        # table output) decides. From the name alone only some shapes are certainly segments.
        if _SEGMENT_ONLY_MODES.fullmatch(mode) or polarisation == "__" or product_class == "_":
            return "L0_SEGMENT"
        return "L0_SLICE" if product_class == "S" else "L0_ACN"
    level = "L1" if kind in ("SLC", "GRD") else "L2"
    return f"{level}_SLICE" if product_class == "S" else f"{level}_ACN"


def _build_level(name: str, m: re.Match[str]) -> ProductName:
    kind, resolution, level_char, product_class = m["kind"], m["resolution"], m["level"], m["product_class"]
    expected_level, resolutions, classes, level = _KINDS[kind]
    if level_char != expected_level:
        raise NameMismatch(f"{kind} products are level {expected_level}, not {level_char}")
    if resolution not in resolutions:
        raise NameMismatch(f"resolution {resolution!r} is not valid for {kind}")
    if product_class not in classes:
        raise NameMismatch(f"product class {product_class!r} is not valid for {kind}")
    start, stop = name_time(m["start"]), name_time(m["stop"])
    if stop < start:
        raise NameMismatch("stop time before start time")
    return ProductName(
        name=name,
        mission="S1",
        satellite=m["satellite"],
        product_type=f"{m['mode']}_{kind}{resolution}_{level_char}{product_class}",
        level=level,
        family=_level_family(kind, product_class, m["mode"], m["polarisation"]),
        timeliness=None,
        validity_start=start,
        validity_stop=stop,
        packaging="SAFE",
        manifest_name=MANIFEST,
        name_fields=fields(
            m, "mode", "kind", "resolution", "product_class", "polarisation",
            "absolute_orbit", "datatake_id", "crc",
        ),
    )  # fmt: skip


register(NamePattern("s1-level", "S1", _LEVEL_RE, _build_level))

# -- auxiliary files -----------------------------------------------------------------------------------

_AUX_TYPES = (
    "AMH_ERRMAT", "AMV_ERRMAT", "AM__ERRMAT", "AUX_CAL", "AUX_ECE", "AUX_ICE", "AUX_INS", "AUX_ITC",
    "AUX_OBMEMC", "AUX_PP1", "AUX_PP2", "AUX_POEORB", "AUX_PREORB", "AUX_RESATT", "AUX_RESORB", "AUX_SCF",
    "AUX_SCS", "AUX_TEC", "AUX_TRO", "AUX_WAV", "AUX_WND", "MPL_ORBPRE", "MPL_ORBRES", "MPL_ORBSCT",
    "MSK_EW_SLC", "MSK__LAND_", "MSK_OCEAN_", "MSK_OVRPAS",
)  # fmt: skip
_AUX_RE = re.compile(
    r"S1(?P<satellite>[A-D_])_(?:(?P<file_class>OPER|TEST)_)?(?P<type>" + "|".join(_AUX_TYPES) + r")"
    r"_(?P<rest>[0-9A-Za-z_]+?)\.(?P<ext>(?i:SAFE|EOF|XML))"
)
_T = r"\d{8}T\d{6}"
# The validity is written in several ways; first match wins.
_AUX_VALIDITY = (
    re.compile(rf"(?:^|_)V(?P<start>{_T})_(?P<stop>{_T})(?:_|$)"),  # EOF orbits; AUX_TEC/AUX_TRO SAFE
    re.compile(rf"(?:^|_)V(?P<start>{_T})(?:_|$)"),  # AUX_CAL... SAFE, masks: V<start>_G<generation>
    re.compile(rf"^(?P<start>{_T})_(?P<stop>{_T})_\d{{4}}$"),  # MPL_ORBPRE: <start>_<stop>_<version>
    re.compile(rf"(?:^|_)(?P<start>{_T})$"),  # AUX_OBMEMC: <site>_<validity start>
)
_OPEN_END = "99999999T999999"
_AUX_PACKAGING = {"SAFE": ("SAFE", MANIFEST), "EOF": ("EOF", None), "XML": ("XML", None)}


def _build_aux(name: str, m: re.Match[str]) -> ProductName:
    rest = m["rest"]
    start = stop = None
    for pattern in _AUX_VALIDITY:
        v = pattern.search(rest)
        if v is not None:
            start = name_time(v["start"])
            stop_text = v["stop"] if "stop" in v.groupdict() else None
            # 99999999T999999: open-ended (real MPL_ORBSCT names)
            stop = name_time(stop_text) if stop_text and stop_text != _OPEN_END else None
            break
    extra: list[tuple[str, str]] = []
    generation = re.search(rf"(?:^|_)G({_T})(?:_|$)", rest)
    if generation:
        extra.append(("generation", generation[1]))
    packaging, manifest = _AUX_PACKAGING[m["ext"].upper()]
    return ProductName(
        name=name,
        mission="S1",
        satellite=satellite_of(m["satellite"]),
        product_type=m["type"],
        level="AUX",
        family="AUXILIARY_FILE",
        timeliness=None,
        validity_start=start,
        validity_stop=stop,
        packaging=packaging,
        manifest_name=manifest,
        name_fields=fields(m, "file_class") + tuple(extra),
    )


register(NamePattern("s1-aux", "S1", _AUX_RE, _build_aux))

# -- plans and reports -------------------------------------------------------------------------------
# The reference lists ~60 prefixes (REP_MP_MP__PDMC_, MPL_SP...., REP_QC...., ...); they all share the
# Earth Explorer shape ``S1A_OPER_<REP_|MPL_ type of 10>_<rest>``, so one pattern covers them. The three
# orbit files among them (MPL_ORBPRE/ORBRES/ORBSCT) are auxiliary files (reference aux list).
_PLAN_RE = re.compile(
    r"S1(?P<satellite>[A-D_])_(?P<file_class>OPER|TEST)_(?P<type>(?!MPL_ORB(?:PRE|RES|SCT))(?:REP|MPL)_[0-9A-Z_]{6})"
    r"_(?P<rest>[0-9A-Za-z_]+?)\.(?P<ext>(?i:EOF|XML))"
)


def _build_plan(name: str, m: re.Match[str]) -> ProductName:
    return replace(_build_aux(name, m), family="PLAN_AND_REPORT")


register(NamePattern("s1-plan-report", "S1", _PLAN_RE, _build_plan))

# -- manifest content only S1 has ------------------------------------------------------------------

_POLARISATIONS = {"SH": "HH", "SV": "VV", "DH": "HH,HV", "DV": "VV,VH"}

# standAloneProductInformation element -> (PRIP attribute, converter)
_PRODUCT_INFORMATION: tuple[tuple[str, str, Callable[[str], AttributeValue | None]], ...] = (
    ("productClass", "productClass", str),
    ("productComposition", "productComposition", str),
    ("productConsolidation", "productConsolidation", str),
    ("productSensingConsolidation", "productSensingConsolidation", str),  # segment chains: BEGIN/CONTINUE/END
    ("instrumentConfigurationID", "instrumentConfigurationID", maybe_int),
    ("instrumentConfigurationId", "instrumentConfigurationID", maybe_int),  # aux SAFE spelling
    ("missionDataTakeID", "missionDatatakeID", maybe_int),
    ("sliceProductFlag", "sliceProductFlag", maybe_bool),
    ("sliceNumber", "sliceNumber", maybe_int),
    ("totalSlices", "totalSlices", maybe_int),
    ("segmentStartTime", "segmentStartTime", maybe_time),
    ("productTimelinessCategory", "timeliness", str),
)


def _s1_manifest(product: ProductName, root: Element, draft: Draft) -> None:
    # What the name tells first; the manifest overrides it below.
    draft.set("productClass", product.name_field("product_class"))
    polarisation = product.name_field("polarisation") or ""
    draft.set("polarisationChannels", _POLARISATIONS.get(polarisation, polarisation.strip("_")))
    info = first_named(root, "standAloneProductInformation")
    if info is not None:
        for tag, attribute, convert in _PRODUCT_INFORMATION:
            value = first_text(info, tag)
            if value is not None:
                draft.set(attribute, convert(value))
        channels = [text(e) for e in children_named(info, "transmitterReceiverPolarisation")]
        draft.set("polarisationChannels", ",".join(c for c in channels if c))
        validity = time_of(first_text(info, "validity"))  # aux SAFE: validity start, open-ended
        if validity is not None:
            draft.start = validity
        if "processingDate" not in draft.attributes:  # aux SAFE: no processing start, a generation time
            draft.set("processingDate", maybe_time(first_text(info, "generation")))
    mode = first_named(root, "instrumentMode")
    if mode is not None:
        draft.set("operationalMode", first_text(mode, "mode"))
        swaths = [text(e) for e in children_named(mode, "swath")]
        draft.set("swathIdentifier", ",".join(s for s in swaths if s))
    draft.set("startTimeFromAscendingNode", maybe_float(first_text(root, "startTimeANX")))
    draft.set("completionTimeFromAscendingNode", maybe_float(first_text(root, "stopTimeANX")))
    draft.set("instrumentShortName", draft.attributes.get("instrumentShortName") or "SAR")


register_step("s1-manifest", lambda p, root: p.mission == "S1" and is_xfdu(p, root), _s1_manifest)
