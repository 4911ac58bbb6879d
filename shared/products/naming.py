"""Recognise Sentinel product names: what a name says about the product it names.

The knowledge lives in per-mission modules (``s1``, ``s2``, ``s3``) that :func:`register` one
:class:`NamePattern` per naming convention; this module only holds the result type, the registry and the
generic handling shared by every convention (trailing ``/``, ``.zip`` wrapping, paths inside an inbox).
Supporting another product is adding a pattern, never a branch here.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

# Forms delivered as a directory tree (a product root with objects below it) vs. as one object.
# ISIP: an S3 L0 granule folder described by ``<name>_iif.xml``; EEF: an Earth Explorer folder (S2 GIPP /
# AUX: ``<name>.HDR`` header + ``<name>.DBL`` data block); FOLDER: an S2 item described by one plain XML
# file (``Inventory_Metadata.xml`` of SAD, the ``MTD_L0U`` file of L0U items).
DIRECTORY_PACKAGINGS = frozenset({"SAFE", "SEN3", "ISIP", "EEF", "FOLDER"})
# SESSION: an EDRS/CADIP session folder, recognised by name only: its objects (DSIB, DSDB chunks) are
# delivered, verified and catalogued one by one, as the reference does.
FILE_PACKAGINGS = frozenset({"EOF", "XML", "JP2", "ZIP", "RAW", "SESSION"})

# Modules that register name patterns and extraction steps (imported lazily to avoid an import cycle).
_BUILTIN_MODULES = (
    "shared.products.s1",
    "shared.products.s2",
    "shared.products.s3",
    "shared.products.sessions",
    "shared.products.earth_explorer",
    "shared.products.s2_metadata",
)


@dataclass(frozen=True, slots=True)
class ProductName:
    """Everything a product name tells, without opening the product.

    ``product_type`` is the ESA product type code as the catalogue and the task tables use it:
    S1 ``IW_GRDH_1S`` / ``AUX_POEORB``, S2 PDGS ``MSI_L1C_TL`` / ``PRD_HKTM__``, S2 user products
    (compact names ``S2A_MSIL1C_...``) ``S2MSI1C`` / ``S2MSI2A`` (the PRODUCT_TYPE of their MTD file),
    S3 ``OL_1_EFR___`` (always 11 characters).

    ``packaging`` is the form the product is delivered in: ``SAFE`` (a directory with ``manifest.safe``,
    with or without the ``.SAFE`` suffix), ``SEN3`` (a directory with ``xfdumanifest.xml``),
    ``ISIP`` / ``EEF`` / ``FOLDER`` (directories described by a plain XML file, see ``DIRECTORY_PACKAGINGS``),
    ``EOF``/``XML``/``JP2``/``RAW`` (one file), ``SESSION`` (an EDRS/CADIP session folder, whose objects are
    products of their own) or ``ZIP`` (one zip file; ``inner_packaging`` tells what it holds).
    Contract: ``manifest_name`` is ``None`` exactly for products delivered as one object
    (``not is_directory``); for the others it names the file :func:`read_inventory` reads (an XFDU
    manifest, or the describing file of the plain-XML directory forms).

    ``name_fields`` keeps every other field the name encodes (orbit, datatake id, tile, CRC, ...) as
    ``(key, value)`` pairs; read them with :meth:`name_field`.
    """

    name: str
    mission: str
    satellite: str | None
    product_type: str
    level: str
    family: str
    timeliness: str | None
    validity_start: datetime | None
    validity_stop: datetime | None
    packaging: str
    manifest_name: str | None
    inner_packaging: str | None = None
    name_fields: tuple[tuple[str, str], ...] = ()

    def name_field(self, key: str) -> str | None:
        return next((v for k, v in self.name_fields if k == key), None)

    @property
    def is_directory(self) -> bool:
        """True when the product is a tree of objects under a root, False when it is one object."""
        return self.packaging in DIRECTORY_PACKAGINGS


class UnknownProduct(ValueError):
    """The name is not a product name this package recognises; the message says why."""


class NameMismatch(Exception):
    """Raised by a pattern's builder: the regex matched but a field is inconsistent (message says which)."""


Builder = Callable[[str, "re.Match[str]"], ProductName]


@dataclass(frozen=True)
class NamePattern:
    """One naming convention: a full-match regex and how to turn its match into a :class:`ProductName`.

    ``build`` receives the name as given (without trailing ``/`` and ``.zip``) and the match; it raises
    :class:`NameMismatch` when the name matches the shape but not the rules (e.g. ``GRD`` at level 2).
    """

    key: str
    mission: str
    regex: re.Pattern[str]
    build: Builder


_PATTERNS: dict[str, NamePattern] = {}
_builtins_loaded = False
_builtins_lock = threading.RLock()


def register(pattern: NamePattern) -> None:
    """Add (or replace, by key) a naming convention."""
    _PATTERNS[pattern.key] = pattern


def patterns() -> list[NamePattern]:
    ensure_registered()
    return list(_PATTERNS.values())


def ensure_registered() -> None:
    """Import the per-mission modules once, so their patterns and extractors are registered.

    Locked, and flagged only once done: a second thread must not see a half-filled registry.
    """
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _builtins_lock:
        if not _builtins_loaded:
            for module in _BUILTIN_MODULES:
                importlib.import_module(module)
            _builtins_loaded = True


def recognise(name: str) -> ProductName:
    """Recognise a product from its name (``NAME.SAFE``, ``NAME.SAFE/``, ``NAME.SAFE.zip``, ``NAME.zip``...).

    Raises :class:`UnknownProduct` with the reason when the name is not a recognised product name.
    """
    ensure_registered()
    given = name
    if name.endswith("/"):
        name = name[:-1]
    if not name:
        raise UnknownProduct(f"{given!r}: empty product name")
    if "/" in name:
        raise UnknownProduct(f"{given!r}: a path, not a product name (use root_of for object keys)")
    if name.lower().endswith(".zip"):
        inner = _match(name[:-4], given)
        return replace(inner, name=name, packaging="ZIP", inner_packaging=inner.packaging, manifest_name=None)
    return _match(name, given)


def root_of(key: str) -> str | None:
    """The key prefix of the product root that ``key`` (an object key in an inbox) belongs to.

    ``some/prefix/S1A_...SAFE/measurement/x.tiff`` -> ``some/prefix/S1A_...SAFE``. The outermost
    recognisable path component wins (objects inside a product can carry product-like names, e.g. an S2
    GIPP's ``.HDR``). A single-file product (EOF, zip, ...) is only a root when it is the last component.
    ``None`` when no component is a recognisable product.
    """
    parts = key.split("/")
    last = len(parts) - 1
    while last > 0 and parts[last] == "":
        last -= 1  # trailing "/" (a directory marker key)
    for i, part in enumerate(parts[: last + 1]):
        if not part:
            continue
        try:
            product = recognise(part)
        except UnknownProduct:
            continue
        if not product.is_directory and i != last:
            continue
        return "/".join(parts[: i + 1])
    return None


def _match(name: str, given: str) -> ProductName:
    mismatches: list[str] = []
    for pattern in _PATTERNS.values():
        m = pattern.regex.fullmatch(name)
        if m is None:
            continue
        try:
            return pattern.build(name, m)
        except NameMismatch as exc:
            mismatches.append(f"{pattern.key}: {exc}")
    if mismatches:
        raise UnknownProduct(f"{given!r}: " + "; ".join(mismatches))
    prefix = name[:2]
    missions = {p.mission for p in _PATTERNS.values()}
    if prefix not in missions:
        raise UnknownProduct(f"{given!r}: does not start with a supported mission prefix {sorted(missions)}")
    known = ", ".join(sorted(p.key for p in _PATTERNS.values() if p.mission == prefix))
    raise UnknownProduct(f"{given!r}: matches no {prefix} naming convention (known: {known})")


# -- helpers for the per-mission builders ------------------------------------------------------------

_ISO = re.compile(
    r"(?P<y>\d{4})-?(?P<mo>\d{2})-?(?P<d>\d{2})-?[T ](?P<h>\d{2}):?(?P<mi>\d{2}):?(?P<s>\d{2})"
    r"(?:[.,](?P<f>\d+))?(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)


def parse_utc(value: str) -> datetime:
    """Parse a product time stamp into an aware UTC datetime.

    Accepts the forms found in names and manifests: ``20180227T145344``, ``2018-02-27T14:53:44.184986``
    (no zone: UTC by convention of every Sentinel format), ``...Z``, ``...+00:00``, an ``UTC=`` prefix
    (Earth Explorer files), more than 6 fractional digits (truncated to microseconds) and the stray
    ``-`` before ``T`` some real manifests have (``2020-05-18-T08:45:34``, an S1 AUX_TRO).
    Raises ``ValueError`` on anything else.
    """
    raw = value.strip()
    if raw.startswith("UTC="):
        raw = raw[4:]
    m = _ISO.fullmatch(raw)
    if m is None:
        raise ValueError(f"not a time stamp: {value!r}")
    frac = (m["f"] or "0")[:6].ljust(6, "0")
    tz = m["tz"]
    zone = UTC
    if tz and tz != "Z":
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[-2:]))
        zone = timezone(offset if tz[0] == "+" else -offset)
    dt = datetime(
        int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]), int(frac), tzinfo=zone
    )
    return dt.astimezone(UTC)


def name_time(value: str) -> datetime:
    """A ``YYYYMMDDTHHMMSS`` field of a name; :class:`NameMismatch` when it is not a real date."""
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise NameMismatch(f"invalid time {value!r} ({exc})") from exc


def satellite_of(code: str) -> str | None:
    """Satellite unit letter from a name; ``_`` means "any unit" (e.g. ``S1__AUX_WAV``) -> ``None``."""
    return None if code == "_" else code


def fields(m: re.Match[str], *keys: str) -> tuple[tuple[str, str], ...]:
    """``(key, value)`` pairs for the named groups ``keys`` that matched."""
    return tuple((k, v) for k in keys if (v := m.group(k)) is not None)
