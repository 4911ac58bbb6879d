"""``Products(<Id>)/$value`` and quicklook ``$value``: a presigned redirect, or a zip streamed on the fly.

A product stored as one object answers 307 to a short-lived presigned URL (the bytes never pass
through the function). A product stored as a directory (SAFE, SEN3: a key prefix ending in "/")
is zipped while it is sent: objects are read in chunks and written uncompressed (the data is
already compressed), so nothing is buffered whole and no second copy is ever stored.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator
from typing import Any

import flask

from shared.catalog.model import CatalogEntry, format_utc
from shared.catalog.odata.entities import quicklook_name
from shared.catalog.odata.errors import Gone, NotFound

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


def _disposition(filename: str) -> str:
    safe = filename.replace("\\", "_").replace('"', "_")
    return f'attachment; filename="{safe}"'


def product_value(entry: CatalogEntry, objects: Any, expiry_seconds: int) -> flask.Response:
    if not entry.online:
        evicted = f" since {format_utc(entry.eviction_time)}" if entry.eviction_time else ""
        raise Gone(f"product {entry.name} is offline{evicted}: it is listed but can no longer be downloaded")
    if entry.key.endswith("/"):
        return _zip_response(entry, objects)
    return _redirect(objects.presigned_get(entry.bucket, entry.key, expires_in=expiry_seconds), entry.name)


def quicklook_value(entry: CatalogEntry, image: str, objects: Any, expiry_seconds: int) -> flask.Response:
    for key in entry.quicklooks:
        if quicklook_name(key) == image:
            return _redirect(objects.presigned_get(entry.bucket, key, expires_in=expiry_seconds), image)
    raise NotFound(f"product {entry.name} has no quicklook {image!r}")


def _redirect(url: str, filename: str) -> flask.Response:
    response = flask.Response(status=307)
    response.headers["Location"] = url
    response.headers["Content-Disposition"] = _disposition(filename)
    return response


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


def _zip_response(entry: CatalogEntry, objects: Any) -> flask.Response:
    stored = [o for o in objects.list(entry.bucket, entry.key) if not o.key.endswith("/")]
    if not stored:
        raise NotFound(f"product {entry.name} has no stored objects under {entry.key!r}")
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
