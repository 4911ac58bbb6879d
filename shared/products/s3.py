"""Sentinel-3: naming convention and what only S3 manifests carry.

``MMM_OL_L_TTTTTT_<start>_<stop>_<creation>_<instance 17>_<centre 3>_<class 8>.SEN3``: the product type is
the 11 characters ``OL_1_EFR___`` (instrument, level, code; ``..AX`` auxiliary, ``..G`` L0 granule);
the instance is ``<duration>_<cycle>_<rel. orbit>_<frame>`` for orbit-based products; the class is
``<platform>_<timeliness>_<baseline>`` (``O_NR_002``).

Differences from the reference regexes (production-common.md §2.4): the satellite is ``A``-``D`` or ``_``
(the reference accepts any word character), and one pattern covers products and auxiliary data (the
reference's two patterns differ only by the ``AX`` look-ahead). A name without ``.SEN3`` is accepted as the
same SEN3 product (manifests list their inputs that way). L0 granules ``..G`` come as ``.ISIP`` folders
described by ``<name>_iif.xml`` (an instrument information file, no XFDU manifest: it lists no data object),
packaging ``ISIP``; ingestion reads the iif as the folder's manifest.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from shared.products.metadata import Draft, is_xfdu, maybe_float, maybe_int, maybe_time, register_step, time_of
from shared.products.naming import (
    NameMismatch,
    NamePattern,
    ProductName,
    fields,
    name_time,
    register,
    satellite_of,
)
from shared.products.xml import first_named, first_text, iter_named, local_name

_T = r"\d{8}T\d{6}"
_RE = re.compile(
    r"S3(?P<satellite>[A-D_])_(?P<type>(?P<instrument>OL|SL|SR|DO|MW|GN|SY|TM|AX)_(?P<lvl>[012_])"
    r"_(?P<code>[0-9A-Z_]{6}))"
    rf"_(?P<start>{_T})_(?P<stop>{_T})_(?P<creation>{_T})"
    r"_(?P<instance>[0-9A-Za-z_]{17})_(?P<centre>[0-9A-Z_]{3})"
    r"_(?P<platform>[A-Z_])_(?P<timeliness>[A-Z_]{2})_(?P<baseline>[0-9A-Z_]{3})"
    r"(?:\.(?P<ext>SEN3|ISIP))?"
)
_INSTANCE = re.compile(r"(?P<duration>\d{4})_(?P<cycle>\d{3})_(?P<relative_orbit>\d{3})_(?P<frame>\d{4}|_{4})")
_TIMELINESS_FAMILY = {"NR": "NRT", "ST": "STC", "NT": "NTC"}


def _family(product_type: str, level: str, timeliness: str) -> tuple[str, str]:
    """(family, level) from the 11-character type, as the S3 family regexes of the reference do."""
    if product_type.endswith("AX"):
        return "S3_AUX", "AUX"
    if level == "0":
        return ("S3_GRANULES" if product_type.endswith("G") else "S3_L0"), "L0"
    if level in ("1", "2"):
        suffix = _TIMELINESS_FAMILY.get(timeliness)
        if suffix is None:
            raise NameMismatch(f"timeliness {timeliness!r} is not NR, ST or NT for a level-{level} product")
        return f"S3_L{level}_{suffix}", f"L{level}"
    raise NameMismatch(f"product type {product_type!r} has no level and is not auxiliary data")


def _build(name: str, m: re.Match[str]) -> ProductName:
    family, level = _family(m["type"], m["lvl"], m["timeliness"])
    start, stop = name_time(m["start"]), name_time(m["stop"])
    name_time(m["creation"])  # validate
    if m["ext"] == "ISIP" and family != "S3_GRANULES":
        raise NameMismatch("only L0 granules (product type ending in G) are ISIP folders")
    instance = _INSTANCE.fullmatch(m["instance"])
    extra = tuple((k, v) for k, v in instance.groupdict().items() if v.strip("_")) if instance else ()
    return ProductName(
        name=name,
        mission="S3",
        satellite=satellite_of(m["satellite"]),
        product_type=m["type"],
        level=level,
        family=family,
        timeliness=None if m["timeliness"] == "__" else m["timeliness"],
        validity_start=start,
        validity_stop=stop,
        packaging=m["ext"] or "SEN3",
        manifest_name=f"{name.removesuffix('.ISIP')}_iif.xml" if m["ext"] == "ISIP" else "xfdumanifest.xml",
        name_fields=fields(m, "instance", "centre", "platform", "baseline", "creation") + extra,
    )


register(NamePattern("s3", "S3", _RE, _build))

# -- manifest content only S3 has ------------------------------------------------------------------


def _s3_manifest(product: ProductName, root: Element, draft: Draft) -> None:
    for key, field in (("cycleNumber", "cycle"), ("relativeOrbitNumber", "relative_orbit")):
        value = product.name_field(field)
        if value and key not in draft.attributes:
            draft.set(key, int(value))
    info = first_named(root, "generalProductInformation")
    if info is not None:
        draft.set("productType", first_text(info, "productType"))
        draft.set("timeliness", first_text(info, "timeliness"))
        draft.set("baselineCollection", first_text(info, "baselineCollection"))
        draft.set("creationDate", maybe_time(first_text(info, "creationTime")))
        draft.set("productSize", maybe_int(first_text(info, "productSize")))
        draft.set("dispositionMode", first_text(info, "dispositionMode"))
        # Auxiliary data have no acquisition period: their validity is here.
        draft.start = time_of(first_text(info, "validityStartTime")) or draft.start
        draft.stop = time_of(first_text(info, "validityStopTime")) or draft.stop
    processing = first_named(root, "processing")
    if processing is not None:
        draft.set("processingLevel", processing.get("outputLevel"))
    # <sentinel3:salineWaterPixels percentage="44.0"/> -> salineWaterCover = 44.0 (PRIP "*Cover").
    for elem in iter_named(root, "classificationSummary"):
        for child in elem:
            tag = local_name(child.tag)
            if tag.endswith("Pixels") and child.get("percentage") is not None:
                draft.set(tag[: -len("Pixels")] + "Cover", maybe_float(child.get("percentage")))


register_step("s3-manifest", lambda p, root: p.mission == "S3" and is_xfdu(p, root), _s3_manifest)


# -- L0 granules: the instrument information file ---------------------------------------------------


def _iif(product: ProductName, root: Element, draft: Draft) -> None:
    coverage = first_named(root, "temporalCoverage")
    if coverage is not None:
        draft.start = time_of(first_text(coverage, "startTime")) or draft.start
        draft.stop = time_of(first_text(coverage, "stopTime")) or draft.stop
    draft.set("qualityStatus", first_text(root, "quality"))
    specific = first_named(root, "specificParameters")
    for feature in iter_named(specific, "feature") if specific is not None else ():
        key, value = feature.get("key"), (feature.text or "").strip()
        if not key or not value or value.startswith("dummy"):  # ESA test data sets write "dummy-text"
            continue
        if key in ("granuleNumber",):
            draft.set(key, maybe_int(value))
        elif key in ("receivingStartTime", "receivingStopTime", "dumpStart"):
            draft.set(key, maybe_time(value))
        else:
            draft.set(key, value)


register_step("s3-iif", lambda p, root: p.mission == "S3" and local_name(root.tag) == "IIF", _iif)
