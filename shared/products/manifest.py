"""Product inventory from an XFDU manifest (S1/S2 ``manifest.safe``, S3 ``xfdumanifest.xml``).

Every data object of the product is listed in ``dataObjectSection`` as
``dataObject/byteStream[@size]/fileLocation[@href]`` with a ``checksum[@checksumName]``. The manifest
never lists itself.

The directory forms without an XFDU manifest (see ``naming.DIRECTORY_PACKAGINGS``) are read by the same
function, by root element: an S2 Earth Explorer header (``<name>.HDR``) lists its data block
``<name>.DBL`` (no size, no checksum); an S3 granule's ``_iif.xml``, an S2 ``Inventory_Metadata.xml`` and
an S2 L0U metadata file list nothing. Verification of those products can only check what is listed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from shared.products.xml import XmlError, children_named, iter_named, local_name, parse_xml

# checksumName as written in manifests -> hashlib name. S1/S3 and older S2 use MD5, S2 since 2021 SHA3-256.
_ALGORITHMS = {"MD5": "md5", "SHA1": "sha1", "SHA-1": "sha1", "SHA256": "sha256", "SHA-256": "sha256",
               "SHA3-256": "sha3_256", "SHA3_256": "sha3_256"}  # fmt: skip
_HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "sha3_256": 64}


class ManifestError(ValueError):
    """The manifest is not well-formed, unsafe, not an XFDU manifest, or lists an unusable data object."""


@dataclass(frozen=True)
class DataObject:
    """One file of a product as its manifest lists it.

    ``path`` is relative to the product root, normalised (no ``./``). ``size`` is ``None`` only when the
    manifest omits it (ESA S3 test data sets do). ``md5`` is the lower-case hex MD5, ``None`` when the
    manifest gives none (S2 SAFE since 2021 gives SHA3-256) or a placeholder that is not an MD5.
    ``digests`` holds every usable checksum as ``(hashlib name, hex)`` pairs, MD5 included; ``unsupported``
    names the algorithms of checksums that cannot be checked (an unknown ``checksumName``).
    """

    path: str
    size: int | None
    md5: str | None
    digests: tuple[tuple[str, str], ...] = ()
    unsupported: tuple[str, ...] = ()  # checksumNames declared with a value that we cannot compute

    def digest(self, algorithm: str) -> str | None:
        """Hex digest for a hashlib algorithm name (``"md5"``, ``"sha3_256"``...), if the manifest has it."""
        return next((v for k, v in self.digests if k == algorithm), None)


def parse_manifest(manifest: bytes) -> Element:
    """Parse an XFDU manifest safely; :class:`ManifestError` unless it is a well-formed XFDU document."""
    try:
        root = parse_xml(manifest, what="manifest")
    except XmlError as exc:
        raise ManifestError(str(exc)) from exc
    if local_name(root.tag) != "XFDU":
        raise ManifestError(f"not an XFDU manifest: root element is <{local_name(root.tag)}>")
    return root


@dataclass(frozen=True)
class Inventory:
    """What a manifest lists. ``exhaustive``: it lists every file of the product (XFDU manifests), so a file
    it does not list does not belong; the other headers list some files or none."""

    objects: list[DataObject]
    exhaustive: bool


def read_inventory(manifest: bytes) -> list[DataObject]:
    """Every data object listed in the manifest, in manifest order."""
    return read_manifest(manifest).objects


def read_manifest(manifest: bytes) -> Inventory:
    """The inventory of a manifest; :class:`ManifestError` when it is unreadable or of an unknown kind."""
    try:
        root = parse_xml(manifest, what="manifest")
    except XmlError as exc:
        raise ManifestError(str(exc)) from exc
    kind = local_name(root.tag)
    reader = _READERS.get(kind)
    if reader is None:
        raise ManifestError(f"not an XFDU manifest: root element is <{kind}>")
    return Inventory(reader(root), exhaustive=kind == "XFDU")


def _xfdu_inventory(root: Element) -> list[DataObject]:
    objects: list[DataObject] = []
    for section in children_named(root, "dataObjectSection"):
        for data_object in children_named(section, "dataObject"):
            ident = data_object.get("ID", "?")
            for stream in children_named(data_object, "byteStream"):
                objects.append(_data_object(ident, stream))
    return objects


def _earth_explorer_inventory(root: Element) -> list[DataObject]:
    name = next((e.text.strip() for e in iter_named(root, "File_Name") if e.text and e.text.strip()), None)
    if name is None:
        raise ManifestError("Earth Explorer header without File_Name")
    return [DataObject(normalise_path(f"{name}.DBL", "File_Name"), None, None)]


def _nothing_listed(_: Element) -> list[DataObject]:
    return []


# Root element -> inventory reader.
_READERS: dict[str, Callable[[Element], list[DataObject]]] = {
    "XFDU": _xfdu_inventory,
    "Earth_Explorer_Header": _earth_explorer_inventory,
    "IIF": _nothing_listed,
    "Inventory_Metadata": _nothing_listed,
    "DIMAP_Level-0-unconsolidated_DataStrip": _nothing_listed,
    "DIMAP_Level-0-unconsolidated_Granule": _nothing_listed,
}


def _data_object(ident: str, stream: Element) -> DataObject:
    location = next(iter_named(stream, "fileLocation"), None)
    href = location.get("href") if location is not None else None
    if not href:
        raise ManifestError(f"data object {ident!r} has no fileLocation href")
    size_attr = stream.get("size")
    size: int | None = None
    if size_attr is not None:
        if not re.fullmatch(r"\s*\d+\s*", size_attr):
            raise ManifestError(f"data object {ident!r}: size {size_attr!r} is not a byte count")
        size = int(size_attr)
    digests, unsupported = [], []
    for checksum in children_named(stream, "checksum"):
        declared = (checksum.get("checksumName") or "").strip()
        algorithm = _ALGORITHMS.get(declared.upper())
        value = (checksum.text or "").strip().lower()
        if algorithm is None:
            if value:
                unsupported.append(declared or "(unnamed)")
        # Placeholders ("dummy-checksum-value" in ESA test data sets) are not digests: drop them.
        elif re.fullmatch(f"[0-9a-f]{{{_HEX_LENGTH[algorithm]}}}", value):
            digests.append((algorithm, value))
    md5 = next((v for k, v in digests if k == "md5"), None)
    return DataObject(normalise_path(href, ident), size, md5, tuple(digests), tuple(unsupported))


def normalise_path(href: str, ident: str = "?") -> str:
    """``./measurement/x.tiff`` -> ``measurement/x.tiff``; refuses paths leaving the product root."""
    path = href.strip().replace("\\", "/")
    if path.startswith("/") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", path):
        raise ManifestError(f"data object {ident!r}: {href!r} is not a path relative to the product root")
    path = posixpath.normpath(path)
    if path in (".", "") or path == ".." or path.startswith("../"):
        raise ManifestError(f"data object {ident!r}: {href!r} is outside the product root")
    return path
