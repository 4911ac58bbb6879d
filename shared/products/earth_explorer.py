"""Earth Explorer files: the header every auxiliary file, plan and report of the ground segment shares.

``<Earth_Explorer_File><Earth_Explorer_Header><Fixed_Header>`` (S1 orbit files ``.EOF``, masks, reports,
``AUX_OBMEMC``) or a bare ``<Earth_Explorer_Header>`` (the ``.HDR`` of S2 GIPP / AUX folders) carries
the file type, mission, validity period and creation. Times are written ``UTC=2017-12-13T10:27:37``.
Orbit files also give the absolute orbits they cover (first and last state vector).
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from shared.products.metadata import Draft, maybe_int, maybe_time, register_step, time_of
from shared.products.naming import ProductName
from shared.products.xml import first_named, first_text, iter_named, local_name, text

_ROOTS = frozenset({"Earth_Explorer_File", "Earth_Explorer_Header"})


def _is_earth_explorer(_: ProductName, root: Element) -> bool:
    return local_name(root.tag) in _ROOTS


def _header(product: ProductName, root: Element, draft: Draft) -> None:
    fixed = first_named(root, "Fixed_Header")
    if fixed is None:
        return
    draft.start = time_of(first_text(fixed, "Validity_Start")) or draft.start
    stop = first_text(fixed, "Validity_Stop")
    if stop is not None and stop.removeprefix("UTC=").startswith("9999-"):
        stop = None  # "UTC=9999-99-99T99:99:99": open-ended (MPL_ORBSCT)
    draft.stop = time_of(stop) or draft.stop
    # "Sentinel-1A"; S2/S1 files for both units write "Sentinel-2" / "Sentinel1" (then the name decides).
    mission = re.fullmatch(r"(?i)sentinel-?([123])([A-D])?", first_text(fixed, "Mission") or "")
    if mission:
        draft.set("platformShortName", f"SENTINEL-{mission[1]}")
        draft.set("platformSerialIdentifier", mission[2])
    draft.set("fileClass", first_text(fixed, "File_Class"))
    draft.set("fileType", first_text(fixed, "File_Type"))
    draft.set("fileVersion", first_text(fixed, "File_Version"))
    draft.set("fileDescription", first_text(fixed, "File_Description"))
    source = first_named(fixed, "Source")
    if source is not None:
        draft.set("processingCenter", first_text(source, "System"))
        draft.set("processorName", first_text(source, "Creator"))
        draft.set("processorVersion", first_text(source, "Creator_Version"))
        draft.set("processingDate", maybe_time(first_text(source, "Creation_Date")))
    orbits = [o for o in (maybe_int(text(e)) for e in iter_named(root, "Absolute_Orbit")) if o is not None]
    if orbits:
        draft.set("orbitNumber", min(orbits))
        draft.set("lastOrbitNumber", max(orbits))


register_step("earth-explorer-header", _is_earth_explorer, _header)
