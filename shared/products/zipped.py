"""Products delivered as one zip (``X.SAFE.zip``, ``X.SEN3.zip``, or ``X.zip`` as CDSE serves a SAFE), read in place.

A zip is read where it lies: :func:`open_object` gives a seekable, read-only file over one S3 object version,
each read a ranged GET (``IfMatch`` its ETag, so a replaced object fails instead of mixing two versions), behind
a read-ahead buffer so the many small reads zipfile makes (end record, central directory, local headers) cost a
few requests. Nothing is downloaded whole: describing a zip reads its central directory and the documents the
metadata come from (an S1 SAFE: 3 to 4 requests, some kilobytes).

:class:`ZippedProduct` is the zip as :class:`~shared.products.integrity.ProductFiles` (members under one top
folder ``X.SAFE/...`` or directly at the top), so :func:`~shared.products.integrity.verify_product` and
:func:`~shared.products.metadata.extract_metadata` read it as they read a directory. :func:`real_name` is the
name the product is cataloged under: ``X.SAFE``, not ``X.SAFE.zip`` — the same product, so the same id, as
the directory ``X.SAFE`` delivered unzipped.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from shared.products.integrity import hash_stream, manifest_of
from shared.products.manifest import ManifestError, read_inventory
from shared.products.metadata import ProductMetadata, extract_metadata, metadata_from_name
from shared.products.naming import ProductName, UnknownProduct, recognise

if TYPE_CHECKING:  # boto3 is heavy: a function that only recognises names must not pay for it
    from shared.storage.objects import ObjectStore, StoredObject

# Read-ahead of the zip reader: a central directory of a few hundred members and a manifest fit in one request.
READ_AHEAD = 1024 * 1024
# Directory forms whose name carries a suffix a zip of them may leave out (CDSE: "X.zip" holding "X.SAFE/").
_SUFFIXES = (".SAFE", ".SEN3")


class ObjectRange(io.RawIOBase):
    """A seekable, read-only raw file over one object version: each read is one ranged GET."""

    def __init__(self, client: Any, bucket: str, key: str, size: int, etag: str) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._size, self._etag, self._pos = size, etag, 0
        self.requests = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        end = min(self._pos + len(view), self._size)
        response = self._client.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-{end - 1}", IfMatch=f'"{self._etag}"'
        )
        body = response["Body"]
        try:
            got = 0
            while got < end - self._pos:  # a ranged body may arrive in pieces
                chunk = body.read(end - self._pos - got)
                if not chunk:
                    break
                view[got : got + len(chunk)] = chunk
                got += len(chunk)
        finally:
            body.close()
        self._count(got)
        self._pos += got
        return got

    def _count(self, got: int) -> None:
        from shared.storage.objects import _meter

        self.requests += 1
        self.bytes_read += got
        if (meter := _meter.get()) is not None:
            meter.add(bytes_read=got)  # the request itself is counted by the client's hook


def open_object(store: ObjectStore, bucket: str, obj: StoredObject, read_ahead: int = READ_AHEAD) -> IO[bytes]:
    """A buffered, seekable reader of ``obj`` (as listed or HEADed: its size and ETag pin the version)."""
    raw = ObjectRange(store.client, bucket, obj.key, obj.size, obj.etag)
    return io.BufferedReader(raw, buffer_size=read_ahead)


@dataclass
class ZippedProduct:
    """A zipped product read from any seekable binary file: ``ProductFiles`` over its members.

    ``top_folder`` is the one folder every member is under (``X.SAFE``), ``None`` when members lie at the top.
    """

    file: IO[bytes]
    location: str
    _zip: zipfile.ZipFile = field(init=False, repr=False)
    top_folder: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        try:
            self._zip = zipfile.ZipFile(self.file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
            raise ManifestError(f"{self.location}: not a readable zip file ({exc})") from exc
        names = [n for n in self._zip.namelist() if not n.endswith("/")]
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) == 1 and all("/" in n for n in names):
            self.top_folder = tops.pop()

    @property
    def _prefix(self) -> str:
        return f"{self.top_folder}/" if self.top_folder else ""

    def sizes(self) -> dict[str, int]:
        """Member sizes from the central directory (no member is read)."""
        prefix = self._prefix
        return {
            i.filename[len(prefix) :]: i.file_size
            for i in self._zip.infolist()
            if not i.is_dir() and i.filename.startswith(prefix)
        }

    def read(self, path: str) -> bytes | None:
        try:
            return self._zip.read(self._prefix + path)  # zipfile checks the member's CRC-32 as it reads
        except KeyError:
            return None
        except (zipfile.BadZipFile, EOFError, ValueError) as exc:
            raise ManifestError(f"{self.location}: member {path} cannot be read ({exc})") from exc

    def digests(self, path: str, algorithms: Sequence[str]) -> dict[str, str]:
        try:
            with self._zip.open(self._prefix + path) as member:
                return hash_stream(member, algorithms)
        except (zipfile.BadZipFile, EOFError) as exc:  # a CRC-32 that differs is a BadZipFile too
            raise ManifestError(f"{self.location}: member {path} cannot be read ({exc})") from exc

    def close(self) -> None:
        self._zip.close()


def stem(name: str) -> str:
    """A product name without the directory suffix a zip may leave out: ``X.SAFE`` -> ``X``."""
    for suffix in _SUFFIXES:
        if name.upper().endswith(suffix):
            return name[: -len(suffix)]
    return name


def unzipped(product: ProductName) -> ProductName:
    """What a ``ZIP`` product holds, by name: ``X.SAFE.zip`` -> the product ``X.SAFE`` (others: as they are)."""
    return recognise(product.name[:-4]) if product.packaging == "ZIP" else product


def real_name(product: ProductName, files: ZippedProduct) -> str:
    """The name a zipped product is cataloged under: its top folder when that names the same product
    (``X.zip`` holding ``X.SAFE/`` is ``X.SAFE``), else its name without ``.zip``."""
    inner = unzipped(product)
    folder = files.top_folder
    if folder and folder != inner.name and stem(folder) == stem(inner.name):
        try:
            if recognise(folder).packaging == inner.packaging:
                return folder
        except UnknownProduct:
            pass
    return inner.name


def is_zip_of(key_name: str, product: ProductName) -> bool:
    """Whether the object ``key_name`` is a zip holding ``product`` (``X.SAFE.zip`` or ``X.zip`` of ``X.SAFE``)."""
    if not key_name.lower().endswith(".zip") or not product.is_directory:
        return False
    try:
        inner = unzipped(recognise(key_name))
    except UnknownProduct:
        return False
    return stem(inner.name) == stem(product.name) and inner.packaging == product.packaging


def missing_members(product: ProductName, files: ZippedProduct, manifest: bytes) -> list[str]:
    """Files the manifest lists that the zip lacks or holds with another size (central directory only: free)."""
    present = files.sizes()
    problems = []
    for item in read_inventory(manifest):
        size = present.get(item.path)
        if size is None:
            problems.append(f"{item.path} (missing)")
        elif item.size is not None and size != item.size:
            problems.append(f"{item.path} (size {size}, manifest says {item.size})")
    return problems


def describe_zipped(product: ProductName, files: ZippedProduct) -> ProductMetadata:
    """Metadata of the zipped ``product`` (its real, unzipped name) from the documents inside the zip.

    Raises :class:`ManifestError` when a document cannot be read or the manifest lists a file the zip does
    not hold (each listed file's presence and size is checked against the central directory; digests are
    the ingest step's work, see :func:`shared.products.integrity.verify_product`).
    """
    for document in _documents(product):
        data = files.read(document)
        if data is None:
            continue
        if document == manifest_of(product) and (missing := missing_members(product, files, data)):
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise ManifestError(f"{files.location}: listed in {document} but not in the zip: {shown}")
        return extract_metadata(product, data, files.read, document_name=f"{files.location}:{document}")
    return metadata_from_name(product)


def _documents(product: ProductName) -> list[str]:
    manifest = manifest_of(product)
    fallbacks: list[str] = []
    if product.mission == "S2":  # S2 items without manifest.safe: their usual metadata files
        from shared.products.s2_metadata import s2_documents

        fallbacks = s2_documents(product)
    return [*([manifest] if manifest else []), *fallbacks]


@dataclass(frozen=True)
class VerifiedZip:
    """A zipped product that verifies: what it holds, under its real name, and the manifest inside it."""

    product: ProductName
    manifest: bytes


def verify_zip(store: ObjectStore, bucket: str, obj: StoredObject, product: ProductName) -> VerifiedZip | str:
    """Check the zip ``obj`` (a ``ZIP`` product) against the manifest inside it, read in place.

    Every listed member is checked for presence, size and every digest the manifest declares (each member's
    bytes read once, in 1 MiB ranged GETs: the cost is one read of the zip; zipfile checks the CRC-32 too).
    Answers the product it holds, or what is wrong, in words.
    """
    from shared.products.integrity import verify_product

    inner = unzipped(product)
    if not inner.is_directory:
        return f"{obj.key}: a zip of a {inner.packaging} product has no manifest to verify against"
    with open_object(store, bucket, obj) as file:
        try:
            files = ZippedProduct(file, obj.key)
            report = verify_product(files, product)
            manifest = files.read(inner.manifest_name or "") if report.ok else None
        except ManifestError as exc:
            return str(exc)
        name = real_name(product, files)
    if not report.ok or manifest is None:
        problems = {
            "missing": report.missing,
            "extra": report.extra,
            "wrong size": report.wrong_size,
            "wrong checksum": report.wrong_checksum,
            "checksum of an unsupported algorithm": report.unsupported_checksum,
        }
        listed = [f"{what}: {', '.join(paths)}" for what, paths in problems.items() if paths]
        return f"{obj.key} does not verify against its manifest: " + ("; ".join(listed) or str(report.error))
    return VerifiedZip(recognise(name), manifest)


def describe_object(store: ObjectStore, bucket: str, obj: StoredObject, product: ProductName) -> ProductMetadata:
    """Metadata of the zipped ``product`` (its real name) stored as ``obj``, read in place (see the module)."""
    with open_object(store, bucket, obj) as file:
        return describe_zipped(product, ZippedProduct(file, f"{bucket}/{obj.key}"))
