"""``Products(<Id>)/$value``, quicklook and asset ``$value``: a presigned redirect, or a zip streamed on the fly.

An object that can be served as it is stored (a product stored as one object, a quicklook, an asset) answers
307 to a short-lived presigned URL: the bytes never pass through the function.

A product stored as a directory (SAFE, SEN3: a key prefix ending in "/") is zipped while it is sent, its
objects read in chunks and written uncompressed (the data is already compressed), so nothing is buffered whole
and no second copy is ever stored. When the catalog step indexed it (:mod:`shared.catalog.archives`) the zip is
the deterministic one of :mod:`shared.catalog.ziplayout`: its bytes are the entry's ``ContentLength`` and their
MD5 its ``Checksum``, and the answer carries ``Content-Length``, ``ETag`` (the MD5) and ``Accept-Ranges``; a
``Range`` request (one range) is answered 206 from header slices and ranged reads of the objects it covers, so
an interrupted download resumes. A product without an index (cataloged before indexing existed), or whose
objects no longer match it, is streamed as before: a zip with data descriptors, length unknown in advance.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

import flask

from shared.catalog.archives import ArchiveIndex, ArchiveStore, Asset
from shared.catalog.model import CatalogEntry, format_utc
from shared.catalog.odata.entities import quicklook_name
from shared.catalog.odata.errors import Gone, NotFound
from shared.catalog.ziplayout import Layout
from shared.responses import error_response

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_RANGE = re.compile(r"bytes=(?:(\d{1,19})-(\d{0,19})|-(\d{1,19}))")


class Unsatisfiable(ValueError):
    """A byte range that starts beyond the end (416)."""


def _disposition(filename: str) -> str:
    safe = filename.replace("\\", "_").replace('"', "_")
    return f'attachment; filename="{safe}"'


def product_value(
    entry: CatalogEntry,
    objects: Any,
    expiry_seconds: int,
    *,
    archives: ArchiveStore | None = None,
    headers: Mapping[str, str] | None = None,
) -> flask.Response:
    _refuse_offline(entry, "it is listed but can no longer be downloaded")
    if not entry.key.endswith("/"):
        # Saved under the stored object's own name: a zip-delivered X.SAFE is X.SAFE.zip (or X.zip).
        filename = entry.key.rsplit("/", 1)[-1]
        return _redirect(objects.presigned_get(entry.bucket, entry.key, expires_in=expiry_seconds), filename)
    stored = sorted((o for o in objects.list(entry.bucket, entry.key) if not o.key.endswith("/")), key=lambda o: o.key)
    if not stored:
        raise NotFound(f"product {entry.name} has no stored objects under {entry.key!r}")
    index = archives.get(entry.id) if archives is not None else None
    if index is not None and (index.length, index.md5) == (entry.content_length, entry.checksum):
        if index.matches(entry.bucket, stored):
            return _archive_response(entry, index, objects, headers or {})
        log.warning("objects of %s changed since it was cataloged: streamed without a known length", entry.name)
    return _zip_response(entry, stored, objects)


def quicklook_value(entry: CatalogEntry, image: str, objects: Any, expiry_seconds: int) -> flask.Response:
    _refuse_offline(entry, "its quicklooks were removed with it")
    for key in entry.quicklooks:
        if quicklook_name(key) == image:
            return _redirect(objects.presigned_get(entry.bucket, key, expires_in=expiry_seconds), image)
    raise NotFound(f"product {entry.name} has no quicklook {image!r}")


def asset_value(asset: Asset, entry: CatalogEntry | None, objects: Any, expiry_seconds: int) -> flask.Response:
    if entry is None or asset.key not in entry.quicklooks:
        raise NotFound(f"asset {asset.id} belongs to no cataloged product any more")
    _refuse_offline(entry, "its assets can no longer be downloaded")
    url = objects.presigned_get(asset.bucket, asset.key, expires_in=expiry_seconds)
    return _redirect(url, quicklook_name(asset.key))


def _refuse_offline(entry: CatalogEntry, consequence: str) -> None:
    """410 for an evicted product: never a URL to bytes that are gone."""
    if not entry.online:
        evicted = f" since {format_utc(entry.eviction_time)}" if entry.eviction_time else ""
        raise Gone(f"product {entry.name} is offline{evicted}: {consequence}")


def _redirect(url: str, filename: str) -> flask.Response:
    response = flask.Response(status=307)
    response.headers["Location"] = url
    response.headers["Content-Disposition"] = _disposition(filename)
    return response


# -- the indexed, deterministic zip -------------------------------------------------------------------------


def byte_range(header: str | None, length: int) -> tuple[int, int] | None:
    """``[start, stop)`` of a ``Range`` header over ``length`` bytes; None: answer the whole (no header, several
    ranges, or a header that is not a valid byte range: RFC 9110 §14.2 lets a server ignore those)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        if int(suffix) == 0:
            raise Unsatisfiable(header)
        return max(length - int(suffix), 0), length
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= length:
        raise Unsatisfiable(header)
    return start, length if not last else min(int(last) + 1, length)


def _archive_response(
    entry: CatalogEntry, index: ArchiveIndex, objects: Any, headers: Mapping[str, str]
) -> flask.Response:
    plan = index.layout()
    etag = f'"{index.md5}"'
    if_range = headers.get("If-Range")
    try:
        # An If-Range that names another version (or a date: we keep none) asks for the whole product.
        wanted = byte_range(headers.get("Range"), plan.length) if if_range in (None, etag) else None
    except Unsatisfiable:
        response = error_response(
            416, "RangeNotSatisfiable", f"the zip of {entry.name} has {plan.length} bytes; ask for a range within"
        )
        response.headers["Content-Range"] = f"bytes */{plan.length}"
        return response
    start, stop = wanted or (0, plan.length)
    response = flask.Response(
        _archive_stream(index, plan, objects, start, stop), status=206 if wanted else 200, mimetype="application/zip"
    )
    if wanted:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{plan.length}"
    response.headers["Content-Length"] = str(stop - start)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = etag
    response.headers["Content-Disposition"] = _disposition(f"{entry.name}.zip")
    return response


def archive_bytes(index: ArchiveIndex, objects: Any, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """Bytes ``[start, stop)`` of the product's zip, in chunks of about a MiB."""
    return _archive_stream(index, index.layout(), objects, start, index.length if stop is None else stop)


def _archive_stream(index: ArchiveIndex, plan: Layout, objects: Any, start: int, stop: int) -> Iterator[bytes]:
    buffer = bytearray()
    for segment, within, count in plan.pieces(start, stop):
        if segment.header is not None:
            buffer += segment.header[within : within + count]
        else:
            for chunk in _object_range(objects, index, segment.member, within, count):
                buffer += chunk
                if len(buffer) >= _CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
    if buffer:
        yield bytes(buffer)


def _object_range(objects: Any, index: ArchiveIndex, member: int, within: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of a member's object from byte ``within``: a ranged GET unless it is the whole object."""
    request: dict[str, Any] = {"Bucket": index.bucket, "Key": index.key(member)}
    if (within, count) != (0, index.members[member].size):
        request["Range"] = f"bytes={within}-{within + count - 1}"
    sent = 0
    for chunk in objects.client.get_object(**request)["Body"].iter_chunks(_CHUNK):
        sent += len(chunk)
        yield chunk
    if sent != count:
        # Sending on would shift every later byte: cut the response short, the client sees it is incomplete.
        raise RuntimeError(f"{index.bucket}/{index.key(member)} gave {sent} bytes, {count} expected")


# -- products without an index: the zip streamed as before -----------------------------------------------


class _Spool(io.RawIOBase):
    """A write-only, non-seekable buffer that zipfile writes into and the response drains."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        return len(chunk)

    def drain(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


def _zip_response(entry: CatalogEntry, stored: list[Any], objects: Any) -> flask.Response:
    response = flask.Response(_zip_stream(entry, stored, objects), status=200, mimetype="application/zip")
    response.headers["Content-Disposition"] = _disposition(f"{entry.name}.zip")
    return response


def _zip_stream(entry: CatalogEntry, stored: list[Any], objects: Any) -> Iterator[bytes]:
    spool = _Spool()
    # Non-seekable output: zipfile writes data descriptors after each member (streaming zip).
    with zipfile.ZipFile(spool, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for item in stored:
            info = zipfile.ZipInfo(f"{entry.name}/{item.key[len(entry.key) :]}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            body = objects.client.get_object(Bucket=entry.bucket, Key=item.key)["Body"]
            with archive.open(info, mode="w", force_zip64=item.size > 2**31) as member:
                for chunk in body.iter_chunks(_CHUNK):
                    member.write(chunk)
                    if data := spool.drain():
                        yield data
            if data := spool.drain():
                yield data
    if data := spool.drain():
        yield data
