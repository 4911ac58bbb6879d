"""How a cataloged product is delivered: the member index of a directory product's zip, and its assets.

A directory product (SAFE, SEN3: a key prefix ending in "/") is downloaded as a zip made on the fly
(:mod:`shared.catalog.ziplayout`). When it is cataloged, its objects are read once, in key order: each
member's CRC-32 and size, and the MD5 of the very bytes ``$value`` will send (headers made by the same
code, the objects' bytes between them), are computed and kept here (table ``product_archives``), and the
entry's ``ContentLength`` and ``Checksum`` become the zip's. A redelivery whose listing (keys, sizes, ETags)
still matches the index reuses it without reading a byte.

Browse images found among the objects (:mod:`shared.products.quicklooks`) become the entry's quicklooks, and
CDSE-style assets (table ``product_assets``): each has a deterministic Id (uuid5 of the product's Id and the
object key) that ``/odata/v1/Assets(<Id>)/$value`` resolves.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import tempfile
import uuid
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.catalog.database import CatalogDatabase
from shared.catalog.model import CatalogEntry
from shared.catalog.ziplayout import Layout, Member, layout, local_header

if TYPE_CHECKING:  # boto3 (behind ObjectStore) costs ~300 ms at start: the OData function loads it on download
    from shared.storage.objects import ObjectStore, StoredObject

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_SPOOL_IN_MEMORY = 8 * 1024 * 1024  # an object larger than this waits for its turn on disk, not in memory
_PARALLEL_READS = 4
QUICKLOOK = "QUICKLOOK"
_ASSET_NAMESPACE = uuid.UUID("6f1d8a52-3c0e-5b7e-9a41-2f7c0d9e4b13")

_SQLITE_DDL = (
    """CREATE TABLE IF NOT EXISTS product_archives (
    product_id TEXT PRIMARY KEY, name TEXT NOT NULL, bucket TEXT NOT NULL, prefix TEXT NOT NULL,
    length INTEGER NOT NULL, md5 TEXT NOT NULL, members TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS product_assets (
    asset_id TEXT PRIMARY KEY, product_id TEXT NOT NULL, type TEXT NOT NULL, bucket TEXT NOT NULL,
    key TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS product_assets_product ON product_assets (product_id)",
)
_POSTGRES_DDL = tuple(s.replace("INTEGER", "bigint") for s in _SQLITE_DDL)


class ArchiveChanged(RuntimeError):
    """An object changed between listing and reading (another ETag or size): the index would be wrong."""


@dataclass(frozen=True, slots=True)
class StoredMember:
    path: str  # relative to the product's prefix
    size: int
    crc32: int
    etag: str  # as listed when indexed: a later listing that differs means the bytes may have changed


@dataclass(frozen=True, slots=True)
class ArchiveIndex:
    product_id: str
    name: str  # the product's name: the folder at the root of the zip
    bucket: str
    prefix: str
    members: tuple[StoredMember, ...]
    length: int
    md5: str

    def layout(self) -> Layout:
        return layout([Member(f"{self.name}/{m.path}", m.size, m.crc32) for m in self.members])

    def key(self, member: int) -> str:
        return self.prefix + self.members[member].path

    def matches(self, bucket: str, listing: list[StoredObject]) -> bool:
        """Whether ``listing`` (sorted by key) is still the set of objects this index was made from."""
        if bucket != self.bucket or len(listing) != len(self.members):
            return False
        return all(
            o.key == self.prefix + m.path and o.size == m.size and o.etag == m.etag
            for o, m in zip(listing, self.members, strict=True)
        )


@dataclass(frozen=True, slots=True)
class Asset:
    id: str
    product_id: str
    type: str
    bucket: str
    key: str


def asset_id(product_id: str, key: str) -> str:
    """The asset's Id: the same for the same product and object, across re-catalogs and instances."""
    return str(uuid.uuid5(_ASSET_NAMESPACE, f"{product_id}\n{key}"))


class ArchiveStore:
    """The ``product_archives`` and ``product_assets`` tables beside the catalog (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.database = CatalogDatabase(url)
        self._ready = False

    def _tables(self) -> None:
        if self._ready:
            return
        with self.database.connection() as db:
            for statement in _SQLITE_DDL if self.database.is_sqlite else _POSTGRES_DDL:
                db.execute(statement)
        self._ready = True

    def get(self, product_id: str) -> ArchiveIndex | None:
        self._tables()
        sql = self.database.sql(
            "SELECT product_id, name, bucket, prefix, length, md5, members FROM product_archives WHERE product_id = {p}"
        )
        with self.database.connection() as db:
            row = db.execute(sql, (product_id,)).fetchone()
        if row is None:
            return None
        members = tuple(StoredMember(str(p), int(s), int(c), str(e)) for p, s, c, e in json.loads(row[6]))
        return ArchiveIndex(str(row[0]), str(row[1]), str(row[2]), str(row[3]), members, int(row[4]), str(row[5]))

    def put(self, index: ArchiveIndex) -> None:
        self._tables()
        members = json.dumps([[m.path, m.size, m.crc32, m.etag] for m in index.members], separators=(",", ":"))
        sql = self.database.sql(
            "INSERT INTO product_archives (product_id, name, bucket, prefix, length, md5, members, updated_at) "
            "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (product_id) DO UPDATE SET "
            "name = excluded.name, bucket = excluded.bucket, prefix = excluded.prefix, length = excluded.length, "
            "md5 = excluded.md5, members = excluded.members, updated_at = excluded.updated_at"
        )
        now = self.database.time_param(datetime.now(UTC))
        row = (index.product_id, index.name, index.bucket, index.prefix, index.length, index.md5, members, now)
        with self.database.connection() as db:
            db.execute(sql, row)

    def set_assets(self, product_id: str, assets: list[Asset]) -> None:
        """The product's assets are exactly ``assets`` (idempotent: a redelivery writes the same rows)."""
        self._tables()
        delete = self.database.sql("DELETE FROM product_assets WHERE product_id = {p}")
        insert = self.database.sql(
            "INSERT INTO product_assets (asset_id, product_id, type, bucket, key) VALUES ({p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (asset_id) DO UPDATE SET product_id = excluded.product_id, type = excluded.type, "
            "bucket = excluded.bucket, key = excluded.key"
        )
        with self.database.transaction() as db:
            db.execute(delete, (product_id,))
            for a in assets:
                db.execute(insert, (a.id, a.product_id, a.type, a.bucket, a.key))

    def asset(self, asset_id: str) -> Asset | None:
        self._tables()
        sql = self.database.sql(
            "SELECT asset_id, product_id, type, bucket, key FROM product_assets WHERE asset_id = {p}"
        )
        with self.database.connection() as db:
            row = db.execute(sql, (asset_id,)).fetchone()
        return None if row is None else Asset(*(str(v) for v in row))

    def close(self) -> None:
        self.database.close()


@lru_cache(maxsize=8)
def archives_at(url: str) -> ArchiveStore:
    """One store per database URL and process (its connections are per thread)."""
    return ArchiveStore(url)


# -- catalog time -------------------------------------------------------------------------------------------


def build_index(
    objects: ObjectStore, product_id: str, name: str, bucket: str, listing: list[StoredObject], prefix: str
) -> ArchiveIndex:
    """Read every object once and digest the zip ``$value`` will send of them, in key order.

    The MD5 runs in archive order, but the local header before each member holds its CRC, known only once the
    member is read: each object waits in a spool (memory, disk beyond ``_SPOOL_IN_MEMORY``) until its turn."""
    digest = hashlib.md5(usedforsecurity=False)
    members: list[StoredMember] = []
    for item, spool, size, crc in _read_in_order(objects, bucket, listing):
        with spool:
            path = item.key[len(prefix) :]
            digest.update(local_header(Member(f"{name}/{path}", size, crc)))
            spool.seek(0)
            while chunk := spool.read(_CHUNK):
                digest.update(chunk)
        members.append(StoredMember(path, size, crc, item.etag))
    plan = layout([Member(f"{name}/{m.path}", m.size, m.crc32) for m in members])
    tail = plan.segments[-1].header
    assert tail is not None  # the central directory and end records: always header bytes
    digest.update(tail)
    return ArchiveIndex(product_id, name, bucket, prefix, tuple(members), plan.length, digest.hexdigest())


def _read_in_order(
    objects: ObjectStore, bucket: str, listing: list[StoredObject]
) -> Iterator[tuple[StoredObject, Any, int, int]]:
    """Each object with its spooled bytes, size and CRC, in listing order; a few read ahead at once (most
    objects are small: a request's latency, not its bytes, is their cost)."""
    with ThreadPoolExecutor(_PARALLEL_READS) as pool:
        pending: deque[tuple[StoredObject, Future[tuple[Any, int, int]]]] = deque()
        items = iter(listing)
        try:
            while True:
                while len(pending) < 2 * _PARALLEL_READS and (item := next(items, None)) is not None:
                    # A copy of the context per read: the object-store meter counts the worker's requests too.
                    pending.append((item, pool.submit(contextvars.copy_context().run, _fetch, objects, bucket, item)))
                if not pending:
                    return
                item, future = pending.popleft()
                yield (item, *future.result())
        finally:
            for _, future in pending:  # after a failure: what was read ahead is thrown away
                if not future.cancel() and future.exception() is None:
                    future.result()[0].close()


def _fetch(objects: ObjectStore, bucket: str, item: StoredObject) -> tuple[Any, int, int]:
    """The object's bytes (spooled), size and CRC-32: of the version listed, or ArchiveChanged."""
    from botocore.exceptions import ClientError

    from shared.storage.objects import _meter

    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 (handed to the caller)
    try:
        try:  # the version listed, or none: an index must describe one set of bytes
            body = objects.client.get_object(Bucket=bucket, Key=item.key, IfMatch=f'"{item.etag}"')["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("412", "PreconditionFailed", "404", "NoSuchKey"):
                raise ArchiveChanged(f"{bucket}/{item.key} changed while the product was indexed") from exc
            raise
        crc, size = 0, 0
        for chunk in body.iter_chunks(_CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            spool.write(chunk)
        if (meter := _meter.get()) is not None:  # the bytes read count where ObjectStore's own reads count
            meter.add(bytes_read=size)
        if size != item.size:
            raise ArchiveChanged(f"{bucket}/{item.key} has {size} bytes, listed with {item.size}")
    except BaseException:
        spool.close()
        raise
    return spool, size, crc


def with_delivery(objects: ObjectStore, archives: ArchiveStore, entry: CatalogEntry) -> CatalogEntry:
    """``entry`` (about to be stored) with what its download is: for a directory product, the zip's length and MD5
    as ``content_length`` and ``checksum`` (ingestion's are the objects' sum and the manifest's MD5, kept for a
    product stored as one object) and the browse images among its objects as ``quicklooks``."""
    from shared.products.quicklooks import find_quicklooks  # shared.products loads shapely: not at OData's start

    if not entry.key.endswith("/"):
        return entry
    listing = sorted((o for o in objects.iter(entry.bucket, entry.key) if not o.key.endswith("/")), key=_by_key)
    index = archives.get(entry.id)
    if not listing:
        # Evicted (or not visible yet): the index, if any, still describes what was served; quicklooks stay.
        return entry if index is None else replace(entry, content_length=index.length, checksum=index.md5)
    if (
        index is None
        or (index.name, index.prefix) != (entry.name, entry.key)
        or not index.matches(entry.bucket, listing)
    ):
        index = build_index(objects, entry.id, entry.name, entry.bucket, listing, entry.key)
        archives.put(index)
    paths = [o.key[len(entry.key) :] for o in listing]
    quicklooks = tuple(entry.key + p for p in find_quicklooks(entry.mission, paths))
    archives.set_assets(
        entry.id, [Asset(asset_id(entry.id, k), entry.id, QUICKLOOK, entry.bucket, k) for k in quicklooks]
    )
    return replace(entry, content_length=index.length, checksum=index.md5, quicklooks=quicklooks)


def _by_key(item: StoredObject) -> str:
    return item.key


__all__ = [
    "QUICKLOOK",
    "ArchiveChanged",
    "ArchiveIndex",
    "ArchiveStore",
    "Asset",
    "archives_at",
    "asset_id",
    "build_index",
    "with_delivery",
]
