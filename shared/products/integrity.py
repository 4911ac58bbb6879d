"""Integrity: a delivered product checked against its own manifest inventory.

A product is read through :class:`ProductFiles`, one small port with three implementations: a local
directory, a local zip (members under ``<product>/`` or at the top) and an object-store prefix
(:class:`~shared.storage.objects.ObjectStore`). :func:`verify_product` compares what is there with what the
manifest lists and names every missing, extra, wrong-size and wrong-checksum file. Every digest the manifest
declares for a file is checked (MD5, SHA-1, SHA-256, SHA3-256; S2 since 2021 gives SHA3-256), all of them in
one pass over its bytes; a checksum of an algorithm we cannot compute is reported, never passed over silently.
A listed file without size or checksum (real S3 manifests, S2 GIPP headers) is only checked for presence.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from shared.products.manifest import DataObject, ManifestError, read_inventory
from shared.products.naming import ProductName, recognise

if TYPE_CHECKING:  # boto3 is heavy: functions that only recognise names must not pay for it
    from shared.storage.objects import ObjectStore

_CHUNK = 1024 * 1024


class ProductFiles(Protocol):
    """The files of one product, by path relative to the product root."""

    @property
    def location(self) -> str: ...

    def sizes(self) -> dict[str, int]: ...

    def read(self, path: str) -> bytes | None: ...

    def digests(self, path: str, algorithms: Sequence[str]) -> dict[str, str]: ...


def hash_chunks(chunks: Iterable[bytes], algorithms: Sequence[str]) -> dict[str, str]:
    """Hex digests of a byte stream for several hashlib algorithms at once: each byte is read once."""
    hashes = {a: hashlib.new(a, usedforsecurity=False) if a == "md5" else hashlib.new(a) for a in algorithms}
    for chunk in chunks:
        for h in hashes.values():
            h.update(chunk)
    return {a: h.hexdigest() for a, h in hashes.items()}


def hash_stream(stream: IO[bytes], algorithms: Sequence[str]) -> dict[str, str]:
    return hash_chunks(iter(lambda: stream.read(_CHUNK), b""), algorithms)


@dataclass(frozen=True)
class LocalDirectory:
    root: Path

    @property
    def location(self) -> str:
        return str(self.root)

    def sizes(self) -> dict[str, int]:
        return {p.relative_to(self.root).as_posix(): p.stat().st_size for p in self.root.rglob("*") if p.is_file()}

    def read(self, path: str) -> bytes | None:
        target = self.root / path
        return target.read_bytes() if _inside(self.root, target) and target.is_file() else None

    def digests(self, path: str, algorithms: Sequence[str]) -> dict[str, str]:
        with (self.root / path).open("rb") as f:
            return hash_stream(f, algorithms)


def _inside(root: Path, target: Path) -> bool:
    try:
        target.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


@dataclass
class ZipArchive:
    """A zipped product: members under one top folder (``X.SAFE/...``) or directly at the top."""

    path: Path
    _zip: zipfile.ZipFile = field(init=False, repr=False)
    _prefix: str = field(init=False, default="")

    def __post_init__(self) -> None:
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as exc:
            raise ManifestError(f"{self.path.name}: not a zip file ({exc})") from exc
        names = [n for n in self._zip.namelist() if not n.endswith("/")]
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) == 1 and all("/" in n for n in names):
            self._prefix = tops.pop() + "/"

    @property
    def location(self) -> str:
        return str(self.path)

    def sizes(self) -> dict[str, int]:
        return {
            i.filename[len(self._prefix) :]: i.file_size
            for i in self._zip.infolist()
            if not i.is_dir() and i.filename.startswith(self._prefix)
        }

    def read(self, path: str) -> bytes | None:
        try:
            return self._zip.read(self._prefix + path)
        except KeyError:
            return None

    def digests(self, path: str, algorithms: Sequence[str]) -> dict[str, str]:
        with self._zip.open(self._prefix + path) as f:
            return hash_stream(f, algorithms)


@dataclass(frozen=True)
class StorePrefix:
    """A product directory in object storage: every object under ``bucket/prefix/``."""

    store: ObjectStore
    bucket: str
    prefix: str

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def sizes(self) -> dict[str, int]:
        base = self.prefix.rstrip("/") + "/"
        return {o.key[len(base) :]: o.size for o in self.store.iter(self.bucket, base) if not o.key.endswith("/")}

    def read(self, path: str) -> bytes | None:
        return self.store.read(self.bucket, f"{self.prefix.rstrip('/')}/{path}")

    def digests(self, path: str, algorithms: Sequence[str]) -> dict[str, str]:
        return self.store.digests(self.bucket, f"{self.prefix.rstrip('/')}/{path}", algorithms)


@dataclass(frozen=True)
class IntegrityReport:
    """What :func:`verify_product` found. ``ok`` only when the manifest was read and every listed file matches."""

    product: str
    manifest: str | None
    listed: int = 0
    checked_checksums: int = 0
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    wrong_size: tuple[str, ...] = ()
    wrong_checksum: tuple[str, ...] = ()
    unsupported_checksum: tuple[str, ...] = ()  # "path (algorithm)": declared, but not computable here
    error: str | None = None

    @property
    def ok(self) -> bool:
        problems = self.missing or self.extra or self.wrong_size or self.wrong_checksum or self.unsupported_checksum
        return self.error is None and not problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "manifest": self.manifest,
            "listed": self.listed,
            "checkedChecksums": self.checked_checksums,
            "missing": list(self.missing),
            "extra": list(self.extra),
            "wrongSize": list(self.wrong_size),
            "wrongChecksum": list(self.wrong_checksum),
            "unsupportedChecksum": list(self.unsupported_checksum),
            "error": self.error,
        }


def manifest_of(product: ProductName) -> str | None:
    """The manifest a directory product (or the product inside a zip) is verified against."""
    if product.packaging == "ZIP":
        return recognise(product.name[:-4]).manifest_name
    return product.manifest_name


def verify_product(files: ProductFiles, product: ProductName | None = None) -> IntegrityReport:
    """Check ``files`` against the inventory of their manifest (``product`` defaults to the location's name)."""
    if product is None:
        product = recognise(Path(files.location.rstrip("/")).name)
    manifest_name = manifest_of(product)
    if manifest_name is None:
        return IntegrityReport(product.name, None, error=f"{product.packaging} product: no manifest to verify against")
    manifest = files.read(manifest_name)
    if manifest is None:
        return IntegrityReport(product.name, manifest_name, error=f"manifest {manifest_name} is missing")
    try:
        inventory = read_inventory(manifest)
    except ManifestError as exc:
        return IntegrityReport(product.name, manifest_name, error=f"{manifest_name}: {exc}")
    present = files.sizes()
    present.pop(manifest_name, None)
    listed = {item.path: item for item in inventory}
    missing = tuple(p for p in listed if p not in present)
    extra = tuple(sorted(p for p in present if p not in listed))
    wrong_size, wrong_checksum, unsupported, checked = [], [], [], 0
    for path, item in listed.items():
        unsupported += [f"{path} ({algorithm})" for algorithm in item.unsupported]
        if path not in present:
            continue
        if item.size is not None and present[path] != item.size:
            wrong_size.append(path)
            continue
        if item.digests:
            checked += 1
            if digest_mismatches(item, files.digests(path, [a for a, _ in item.digests])):
                wrong_checksum.append(path)
    return IntegrityReport(
        product.name,
        manifest_name,
        len(listed),
        checked,
        missing,
        extra,
        tuple(wrong_size),
        tuple(wrong_checksum),
        tuple(unsupported),
    )


def digest_mismatches(item: DataObject, computed: dict[str, str]) -> list[str]:
    """The algorithms whose computed digest differs from what the manifest declares for ``item``."""
    return [algorithm for algorithm, expected in item.digests if computed.get(algorithm) != expected]


def open_product(location: str | Path, store: ObjectStore | None = None) -> ProductFiles | None:
    """The files of a product directory or zip: a local path or ``s3://bucket/prefix``.

    ``None`` for a local file that is not a zip (a product that is one object has no files to verify).
    """
    text = str(location)
    if text.startswith("s3://"):
        if store is None:
            raise ValueError(f"{text}: an object store is needed to read s3:// locations")
        bucket, _, key = text[5:].partition("/")
        if not bucket or not key.strip("/"):
            raise ValueError(f"{text}: expected s3://bucket/key")
        return StorePrefix(store, bucket, key.rstrip("/"))
    path = Path(location)
    if path.is_dir():
        return LocalDirectory(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if zipfile.is_zipfile(path):
        return ZipArchive(path)
    return None
