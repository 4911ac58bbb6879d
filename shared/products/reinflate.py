"""Re-inflated products: the real sample product folders made whole again, for tests and benchmarks.

The team's samples (``../shared/samples`` beside the checkout; its ``SOURCES.md`` says where each file comes
from) hold real Sentinel product folders reduced to their manifest and a few metadata files. :func:`reinflate`
writes such a folder back as a whole product: every data object its XFDU manifest lists, as the sample's own
file where it has one (real metadata), else as deterministic stand-in bytes of the listed size capped at
``max_object_size`` (an ``.xml`` object is a small well-formed XML document, so that metadata extraction reads
past it as it would past a real file it does not know). The manifest is then edited minimally: each listed
object's ``size`` attribute and the checksums it declares (in its own ``checksumName``: MD5, SHA3-256...) are
set to the written file, every other byte stays as in the sample. The result has the real object count and
layout and verifies against its own manifest (:func:`~shared.products.integrity.verify_product`).

What is kept as the sample has it: a placeholder checksum (``dummy-checksum-value`` of ESA test data sets) and
a missing ``size`` stay so (verification only checks presence then); folders without an XFDU manifest (S3
``_iif.xml``, S2 ``Inventory_Metadata.xml`` and L0U items, Earth Explorer headers, EDRS session folders) and
folders whose manifest the sample lacks are copied as they are. Files of a sample the manifest does
not list are left out (:func:`unlisted_files` names them): a product must not have extras.

:func:`write_real_shape` makes many distinct products of one real shape (S2 MSI L1C, S1 IW SLC): the sample
re-inflated under a new name, every time stamp of its manifest, metadata files and paths shifted to the new
sensing start. The corruption helpers (:func:`flip_byte`, :func:`add_unlisted`, :func:`garble`) make the
faults ingestion must notice.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
import shutil
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import unescape

from shared.products.manifest import (
    _ALGORITHMS,  # checksumName -> hashlib name, as the manifest reader maps them
    _HEX_LENGTH,
    DataObject,
    ManifestError,
    normalise_path,
    read_inventory,
)
from shared.products.naming import recognise
from shared.products.xml import XmlError, local_name, parse_xml

log = logging.getLogger(__name__)

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"
DEFAULT_MAX_OBJECT_SIZE = 16 * 1024

# The samples whose manifests give the real shapes: 97 objects + manifest (S2), 33 + manifest (S1).
REAL_SHAPES = {
    "S2_L1C": "sentinel2/S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE",
    "S1_SLC": "sentinel1/S1A_IW_SLC__1SDH_20220414T102209_20220414T102236_042768_051AA4_E677.SAFE",
}

Rewrite = Callable[[bytes], bytes]


# -- the samples -------------------------------------------------------------------------------------


def sample_products(samples_dir: Path | None = None) -> list[Path]:
    """Every product folder and single-file product of the samples that :func:`recognise` accepts, sorted.

    Raises ``FileNotFoundError`` when the samples are not there.
    """
    root = samples_dir or SAMPLES
    if not root.is_dir():
        raise FileNotFoundError(f"no samples at {root.resolve()} (expected ../shared/samples beside the checkout)")
    found = []
    for entry in root.glob("*/*"):
        try:
            recognise(entry.name)
        except ValueError:  # UnknownProduct: task tables, job orders...
            continue
        found.append(entry)
    return sorted(found)


def unlisted_files(sample_dir: Path) -> list[str]:
    """Files of a sample folder that its XFDU manifest does not list (left out by :func:`reinflate`)."""
    found = _xfdu_inventory(sample_dir)
    if found is None:
        return []
    manifest_name, objects = found
    listed = {o.path for o in objects} | {manifest_name}
    return sorted(p for p in _files(sample_dir) if p not in listed)


def reinflate(
    sample_dir: Path, out_dir: Path, *, max_object_size: int = DEFAULT_MAX_OBJECT_SIZE, seed: int = 0
) -> Path:
    """Write the whole product of ``sample_dir`` as ``out_dir/<same name>`` and return it (see the module doc).

    Same arguments, same bytes. Raises ``FileExistsError`` if the product exists, ``ValueError`` for a
    ``max_object_size`` under 1, :class:`ManifestError` for a manifest that cannot be read.
    """
    return _inflate(sample_dir, Path(out_dir) / sample_dir.name, max_object_size, seed, rewrite=lambda b: b)


def reinflate_samples(
    out_dir: Path,
    *,
    samples_dir: Path | None = None,
    max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
    seed: int = 0,
) -> list[Path]:
    """Re-inflate every folder product of the samples into ``out_dir`` and copy the single-file ones."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for sample in sample_products(samples_dir):
        if sample.is_dir():
            made.append(reinflate(sample, out_dir, max_object_size=max_object_size, seed=seed))
        else:
            target = out_dir / sample.name
            if target.exists():
                raise FileExistsError(f"{target} already exists")
            shutil.copyfile(sample, target)
            made.append(target)
    return made


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _xfdu_inventory(folder: Path) -> tuple[str, list[DataObject]] | None:
    """The manifest name and data objects of a folder with an XFDU manifest; ``None`` for the other forms."""
    manifest_name = recognise(folder.name).manifest_name
    manifest = folder / manifest_name if manifest_name else None
    if manifest_name is None or manifest is None or not manifest.is_file():
        return None
    data = manifest.read_bytes()
    try:
        kind = local_name(parse_xml(data, what=manifest_name).tag)
    except XmlError as exc:
        raise ManifestError(str(exc)) from exc
    if kind != "XFDU":
        return None  # Earth Explorer header, iif, Inventory_Metadata, L0U metadata
    return manifest_name, read_inventory(data)


def _inflate(sample: Path, root: Path, max_object_size: int, seed: int, *, rewrite: Rewrite) -> Path:
    """Write ``sample`` whole as ``root``; ``rewrite`` edits the manifest, the sample's files and the paths."""
    if max_object_size < 1:
        raise ValueError(f"max_object_size must be at least 1, not {max_object_size}")
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    found = _xfdu_inventory(sample)
    if found is None:
        shutil.copytree(sample, root)
        return root
    manifest_name, objects = found
    if left_out := unlisted_files(sample):
        log.info("%s: left out %d file(s) its manifest does not list: %s", sample.name, len(left_out), left_out)
    for item in objects:
        path = rewrite(item.path.encode()).decode()
        own = sample / item.path
        data = rewrite(own.read_bytes()) if own.is_file() else _stand_in(path, item.size, max_object_size, seed)
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    manifest, _ = _restamp(rewrite((sample / manifest_name).read_bytes()), root)
    (root / manifest_name).write_bytes(manifest)
    return root


_XML_HEAD, _XML_TAIL = b'<?xml version="1.0" encoding="UTF-8"?>\n<reinflated>', b"</reinflated>\n"


def _stand_in(path: str, listed: int | None, max_object_size: int, seed: int) -> bytes:
    """Deterministic bytes for an object the sample does not have (seeded by its path and ``seed``)."""
    if listed == 0:
        return b""
    size = min(max_object_size if listed is None else listed, max_object_size)
    noise = hashlib.shake_256(f"{seed}:{path}".encode())
    if not path.lower().endswith(".xml"):
        return noise.digest(size)
    fill = max(0, size - len(_XML_HEAD) - len(_XML_TAIL))
    return _XML_HEAD + noise.hexdigest((fill + 1) // 2)[:fill].encode() + _XML_TAIL


# -- the manifest edit ---------------------------------------------------------------------------------

_BYTE_STREAM = re.compile(rb"<(?:[\w.-]+:)?byteStream\b[^>]*>.*?</(?:[\w.-]+:)?byteStream\s*>", re.S)
_HREF = re.compile(rb"""<(?:[\w.-]+:)?fileLocation\b[^>]*?\bhref\s*=\s*(["'])(.*?)\1""", re.S)
_SIZE = re.compile(rb"""(\ssize\s*=\s*)(["'])[^"']*\2""")
_CHECKSUM = re.compile(
    rb"""(<(?:[\w.-]+:)?checksum\b[^>]*?\bchecksumName\s*=\s*(["'])(.*?)\2[^>]*>)(\s*)([^<\s]*)""", re.S
)


def _restamp(manifest: bytes, root: Path, only: Collection[str] | None = None) -> tuple[bytes, set[str]]:
    """``manifest`` with the size and checksums of each listed object (of ``only`` ones) set to its file
    under ``root``; and the paths it set. Objects without a file, and placeholder checksums, are left alone."""
    stamped: set[str] = set()

    def stamp(stream_match: re.Match[bytes]) -> bytes:
        stream = stream_match[0]
        end = stream.index(b">") + 1
        start_tag, body = stream[:end], stream[end:]
        href = _HREF.search(body)
        if href is None:
            return stream
        path = normalise_path(unescape(href[2].decode()))
        file = root / path
        if (only is not None and path not in only) or not file.is_file():
            return stream
        data = file.read_bytes()
        stamped.add(path)

        def checksum(m: re.Match[bytes]) -> bytes:
            algorithm = _ALGORITHMS.get(m[3].decode().strip().upper())
            value = m[5].decode()
            if algorithm is None or not re.fullmatch(f"[0-9a-fA-F]{{{_HEX_LENGTH[algorithm]}}}", value):
                return m[0]
            digest = hashlib.new(algorithm, data, usedforsecurity=False).hexdigest()
            return m[1] + m[4] + (digest.upper() if value.isupper() else digest).encode()

        start_tag = _SIZE.sub(lambda m: m[1] + m[2] + str(len(data)).encode() + m[2], start_tag)
        return start_tag + _CHECKSUM.sub(checksum, body)

    return _BYTE_STREAM.sub(stamp, manifest), stamped


# -- products of a real shape ----------------------------------------------------------------------------

_ISO_TIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_COMPACT_TIME = re.compile(rb"\d{8}[Tt]\d{6}")


def _time_shift(delta: timedelta) -> Rewrite:
    """Shift every time stamp (``2021-09-08T04:27:01``..., ``20210908T042701``, ``20210908t042701``) by
    ``delta`` whole seconds; fractions, zones and what is not a real date are kept."""

    def shift(form: str) -> Callable[[re.Match[bytes]], bytes]:
        def replace(m: re.Match[bytes]) -> bytes:
            text = m[0].decode()
            try:
                moved = datetime.strptime(text.upper(), form) + delta
            except ValueError:
                return m[0]
            new = moved.strftime(form)
            return (new.lower() if "t" in text else new).encode()

        return replace

    iso, compact = shift("%Y-%m-%dT%H:%M:%S"), shift("%Y%m%dT%H%M%S")
    return lambda data: _COMPACT_TIME.sub(compact, _ISO_TIME.sub(iso, data))


def write_real_shape(
    directory: Path,
    kind: Literal["S2_L1C", "S1_SLC"],
    start: datetime,
    *,
    seed: int = 0,
    max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
    samples_dir: Path | None = None,
) -> Path:
    """A product of a real shape, sensing from ``start`` (to the second), under ``directory``; returns its root.

    ``S2_L1C``: the S2A MSI L1C sample (97 objects: 13 bands + TCI jp2, QI_DATA masks and reports, AUX_DATA,
    DATASTRIP and HTML files; SHA3-256 checksums). ``S1_SLC``: the S1A IW SLC dual-polarisation sample
    (33 objects: 6 measurement tiffs, annotation, calibration, noise and RFI XMLs, previews; MD5). The sample is
    re-inflated with every time stamp of its name, manifest, metadata files and paths shifted by the same
    whole seconds, so the name, the manifest's acquisition period and the MTD times agree; an S1 name gets a
    CRC of its new body and ``seed``. Orbit numbers, datatake, tile and footprint stay the sample's.
    A start in another second gives another product; ``seed`` varies the stand-in bytes.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    sample = (samples_dir or SAMPLES) / REAL_SHAPES[kind]
    if not sample.is_dir():
        raise FileNotFoundError(f"no sample {sample.name} in {sample.parent.resolve()}")
    sample_start = recognise(sample.name).validity_start
    if sample_start is None:
        raise ValueError(f"{sample.name}: the name gives no sensing start")
    delta = start.astimezone(UTC).replace(microsecond=0) - sample_start
    rewrite = _time_shift(delta)
    name = rewrite(sample.name.encode()).decode()
    if kind == "S1_SLC":  # the real CRC covers the content; ours, as synthetic.py's, the name and seed
        body = name.removesuffix(".SAFE")[:-5]
        name = f"{body}_{binascii.crc_hqx(f'{body}:{seed}'.encode(), 0):04X}.SAFE"
    recognise(name)  # a shape that no longer makes a product name is a bug: fail loudly
    return _inflate(sample, Path(directory) / name, max_object_size, seed, rewrite=rewrite)


# -- corruption helpers, for tests -------------------------------------------------------------------


def flip_byte(product_dir: Path, path: str, offset: int | None = None) -> None:
    """Invert one byte (the middle one unless ``offset``) of ``path``: same size, another checksum."""
    target = product_dir / path
    data = bytearray(target.read_bytes())
    if not data:
        raise ValueError(f"{path} is empty: there is no byte to flip")
    data[len(data) // 2 if offset is None else offset] ^= 0xFF
    target.write_bytes(bytes(data))


def add_unlisted(product_dir: Path, relpath: str, data: bytes = b"not listed in the manifest\n") -> Path:
    """Write a file the manifest does not list (verification reports it as ``extra``)."""
    target = product_dir / relpath
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def garble(product_dir: Path, relpath: str, data: bytes = b"\x00garbled <metadata & not XML\n") -> None:
    """Replace a listed file with ``data`` (not XML) and restamp its size and checksums in the manifest:
    the product still verifies, only a parser of that file notices."""
    manifest_name = recognise(product_dir.name).manifest_name
    manifest = (product_dir / manifest_name).read_bytes() if manifest_name else b""
    if manifest_name is None or relpath not in {o.path for o in read_inventory(manifest)}:
        raise ValueError(f"{relpath} is not listed in the manifest of {product_dir.name}")
    (product_dir / relpath).write_bytes(data)
    (product_dir / manifest_name).write_bytes(_restamp(manifest, product_dir, {relpath})[0])
