"""Catalogue metadata of a product: validity, footprint and PRIP attributes, from its name and manifest.

Extraction is a list of registered *steps*: each step says which products/documents it applies to and
fills a :class:`Draft`. The generic step here reads the vocabulary every Sentinel SAFE/XFDU manifest shares
(acquisition period, platform, orbit reference, processing, frame set); the per-mission modules register
steps for what only their manifests carry. Supporting another format (e.g. S1 EOF orbit files) is
registering a step, never a branch here.

Some products spread their metadata over several files (an S2 user product: ``manifest.safe`` plus
``MTD_MSIL1C.xml``, ``MTD_TL.xml``, ``MTD_DS.xml``). Steps reach them through ``Draft.document(path)``,
backed by the optional ``read(path) -> bytes | None`` callable given to :func:`extract_metadata` (paths
relative to the product root; ``None`` when the file is absent). Without it, only the one document given
is read, so ``extract_metadata(product, manifest_bytes)`` keeps working (the catalog reads only the manifest).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from shared.products.footprint import LatLon, footprint_from_frames, parse_coordinates
from shared.products.manifest import ManifestError
from shared.products.naming import ProductName, ensure_registered, parse_utc
from shared.products.xml import (
    XmlError,
    children_named,
    first_named,
    first_text,
    iter_named,
    local_name,
    parse_xml,
    text,
)

AttributeValue = str | int | float | bool | datetime
Reader = Callable[[str], bytes | None]


@dataclass(frozen=True)
class ProductMetadata:
    """``footprint`` is a GeoJSON geometry (RFC 7946); ``attributes`` use PRIP attribute names."""

    validity_start: datetime | None
    validity_stop: datetime | None
    footprint: dict[str, Any] | None
    attributes: dict[str, AttributeValue]


@dataclass
class Draft:
    """What the steps fill in; starts from what the product name tells."""

    start: datetime | None
    stop: datetime | None
    frames: list[list[LatLon]] = field(default_factory=list)
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    read: Reader | None = None
    documents: list[str] = field(default_factory=list)  # files read besides the main document

    def document(self, path: str) -> Element | None:
        """Another file of the product, parsed safely; ``None`` when there is no reader or no such file.

        A file that is there but not well-formed (or hostile) is a :class:`ManifestError` naming it.
        """
        if self.read is None:
            return None
        data = self.read(path)
        if data is None:
            return None
        try:
            root = parse_xml(data, what=path)
        except XmlError as exc:
            raise ManifestError(str(exc)) from exc
        self.documents.append(path)
        return root

    def set(self, key: str, value: AttributeValue | None) -> None:
        """Set an attribute unless the value is missing (so later steps only override with real data)."""
        if value is not None and value != "":
            self.attributes[key] = value


Applies = Callable[[ProductName, Element], bool]
Step = Callable[[ProductName, Element, Draft], None]
_STEPS: list[tuple[str, Applies, Step]] = []


def register_step(key: str, applies: Applies, step: Step) -> None:
    """Add (or replace, by key) an extraction step. Steps run in registration order."""
    for i, (k, _, _) in enumerate(_STEPS):
        if k == key:
            _STEPS[i] = (key, applies, step)
            return
    _STEPS.append((key, applies, step))


def extract_metadata(
    product: ProductName, manifest: bytes, read: Reader | None = None, *, document_name: str | None = None
) -> ProductMetadata:
    """Metadata of ``product`` from its manifest (for a zip: the manifest inside it; for a product that is
    one XML file, such as an EOF or a DSIB, the file itself).

    ``read(path)`` gives other files of the product (see the module docstring); ``document_name`` names the
    document in error messages (default: the manifest name, else the product name).
    Raises :class:`~shared.products.manifest.ManifestError` naming the file when a document is not
    well-formed or is refused as unsafe. A document no step understands yields the name-derived metadata only.
    """
    ensure_registered()
    what = document_name or product.manifest_name or product.name
    try:
        root = parse_xml(manifest, what=what)
    except XmlError as exc:
        raise ManifestError(str(exc)) from exc
    draft = Draft(product.validity_start, product.validity_stop, read=read)
    _from_name(product, draft)
    for _, applies, step in _STEPS:
        if applies(product, root):
            step(product, root, draft)
    return _finish(draft)


def metadata_from_name(product: ProductName) -> ProductMetadata:
    """What the name alone tells (products without a readable document: DSDB chunks, JP2 images)."""
    ensure_registered()
    draft = Draft(product.validity_start, product.validity_stop)
    _from_name(product, draft)
    return _finish(draft)


def _finish(draft: Draft) -> ProductMetadata:
    draft.set("beginningDateTime", draft.start)
    draft.set("endingDateTime", draft.stop)
    footprint = footprint_from_frames(draft.frames)
    return ProductMetadata(draft.start, draft.stop, footprint, draft.attributes)


def _from_name(product: ProductName, draft: Draft) -> None:
    draft.set("productType", product.product_type)
    draft.set("platformShortName", f"SENTINEL-{product.mission[1:]}")
    draft.set("platformSerialIdentifier", product.satellite)
    draft.set("timeliness", product.timeliness)


# -- generic SAFE / XFDU vocabulary ----------------------------------------------------------------


def is_xfdu(_: ProductName, root: Element) -> bool:
    return local_name(root.tag) == "XFDU"


def metadata_object(root: Element, ident: str) -> Element | None:
    """``metadataSection/metadataObject[@ID=ident]``."""
    for section in children_named(root, "metadataSection"):
        for obj in children_named(section, "metadataObject"):
            if obj.get("ID") == ident:
                return obj
    return None


def time_of(value: str | None) -> datetime | None:
    """A time that matters (validity): a malformed one is a :class:`ManifestError`."""
    if value is None:
        return None
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise ManifestError(f"manifest time {value!r}: {exc}") from exc


# Secondary attributes are converted leniently: a malformed value is left out rather than failing the
# whole extraction (the reference likewise indexes a product without the field it cannot parse).


def maybe_time(value: str | None) -> datetime | None:
    try:
        return None if value is None else parse_utc(value)
    except ValueError:
        return None


def maybe_int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def maybe_float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def maybe_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    return True if lowered in ("true", "1", "yes") else False if lowered in ("false", "0", "no") else None


def _xfdu_common(product: ProductName, root: Element, draft: Draft) -> None:
    _acquisition_period(root, draft)
    _platform(product, root, draft)
    _orbit_reference(root, draft)
    _processing(root, draft)
    _frames(root, draft)


def _acquisition_period(root: Element, draft: Draft) -> None:
    period = first_named(root, "acquisitionPeriod")
    if period is None:
        return
    # S1/S3 write child elements; S2 PDI manifests write attributes (<acquisitionPeriod startTime=.../>).
    start = first_text(period, "startTime") or period.get("startTime")
    stop = first_text(period, "stopTime") or period.get("stopTime")
    draft.start = time_of(start) or draft.start
    draft.stop = time_of(stop) or draft.stop


def _platform(product: ProductName, root: Element, draft: Draft) -> None:
    platform = first_named(root, "platform")
    if platform is None:
        return
    family = text(next(iter(children_named(platform, "familyName")), None))
    number = text(next(iter(children_named(platform, "number")), None))
    # S1 "SENTINEL-1" + "A"; S3 "Sentinel-3" + "A"; S2 "SENTINEL" (or "Sentinel") + "2A". ESA test data sets
    # write placeholders ("dummy-text"): anything else keeps what the product name says.
    m = re.fullmatch(r"(?i)(sentinel)(?:-(\d))?", family or "")
    n = re.fullmatch(r"(\d?)([A-Z])", number or "")
    if m and n and (m[2] or n[1]):
        draft.set("platformShortName", f"SENTINEL-{m[2] or n[1]}")
        draft.set("platformSerialIdentifier", n[2])
    for instrument in children_named(platform, "instrument"):
        name = next(iter(children_named(instrument, "familyName")), None)
        if name is not None:
            draft.set("instrumentShortName", name.get("abbreviation"))
        mode = next(iter(children_named(instrument, "mode")), None)
        if mode is not None:
            draft.set("operationalMode", mode.get("identifier"))


def _orbit_reference(root: Element, draft: Draft) -> None:
    orbit = first_named(root, "orbitReference")
    if orbit is None:
        return
    for tag, attribute in (("orbitNumber", "orbitNumber"), ("relativeOrbitNumber", "relativeOrbitNumber")):
        values = children_named(orbit, tag)
        start = next((e for e in values if e.get("type", "start") == "start"), None)
        draft.set(attribute, maybe_int(text(start)))
        stop = next((e for e in values if e.get("type") == "stop"), None)
        if stop is not None and tag == "orbitNumber":
            draft.set("lastOrbitNumber", maybe_int(text(stop)))
        direction = start.get("groundTrackDirection") if start is not None else None
        if direction:  # S2/S3 give the pass on the orbit number; S1 in <s1:pass> (below)
            draft.set("orbitDirection", direction.upper())
    draft.set("cycleNumber", maybe_int(first_text(orbit, "cycleNumber")))
    direction = first_text(orbit, "pass")
    if direction:
        draft.set("orbitDirection", direction.upper())


def _processing(root: Element, draft: Draft) -> None:
    wrapper = metadata_object(root, "processing")
    processing = first_named(wrapper, "processing") if wrapper is not None else None
    if processing is None:
        return
    draft.set("processingDate", maybe_time(processing.get("start")))
    facility = next(iter(children_named(processing, "facility")), None)
    if facility is not None:
        draft.set("processingCenter", facility.get("site") or facility.get("name"))
        software = next(iter(children_named(facility, "software")), None)
        if software is not None:
            draft.set("processorName", software.get("name"))
            draft.set("processorVersion", software.get("version"))


def _frames(root: Element, draft: Draft) -> None:
    for footprint in iter_named(root, "footPrint"):
        for elem in footprint:
            value = text(elem)
            if local_name(elem.tag) not in ("coordinates", "posList") or value is None:
                continue
            try:
                draft.frames.append(parse_coordinates(value, dimension=int(elem.get("srsDimension", "2"))))
            except ValueError:
                continue  # as the reference does: no footprint rather than no product


register_step("xfdu-common", is_xfdu, _xfdu_common)
