"""The object-storage port: the few S3 operations the pipeline needs, over boto3 (any S3 API)."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from shared.settings import Settings

_CHUNK = 8 * 1024 * 1024
# CopyObject copies up to 5 GiB in one request; beyond that only a multipart copy can.
_SINGLE_COPY_LIMIT = 5 * 1024**3
# Concurrent requests one process may have in flight (ingestion moves members in parallel).
MAX_CONNECTIONS = 16
_MD5_ETAG = re.compile(r"[0-9a-f]{32}")
# S3 additional checksum algorithms that are digests a manifest may declare -> hashlib names.
_S3_CHECKSUMS = {"SHA256": "sha256", "SHA1": "sha1"}


@dataclass
class RequestMeter:
    """Object-store requests sent (each attempt, retries included) and object bytes read, for one piece of work."""

    requests: int = 0
    bytes_read: int = 0
    parent: RequestMeter | None = field(default=None, repr=False)  # a meter around this one counts too
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, requests: int = 0, bytes_read: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.bytes_read += bytes_read
        if self.parent is not None:
            self.parent.add(requests, bytes_read)


_meter: ContextVar[RequestMeter | None] = ContextVar("object_store_meter", default=None)


@contextmanager
def metered() -> Iterator[RequestMeter]:
    """Count the requests of every ObjectStore used in this context (threads run with a copy of it too)."""
    meter = RequestMeter(parent=_meter.get())
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def _count_request(**_: Any) -> None:
    if (meter := _meter.get()) is not None:
        meter.add(requests=1)


class CopyFailed(RuntimeError):
    """A copy did not produce the object it copied (or the source changed since it was looked at)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    etag: str  # without quotes
    last_modified: datetime | None = None
    checksum_algorithms: tuple[str, ...] = ()  # S3 additional checksums the store holds (SHA256, CRC32...)

    @property
    def etag_md5(self) -> str | None:
        """The MD5 of the content, when the ETag is one: S3 gives a single-part upload (or a copy of one) the
        MD5 of the bytes it stored as ETag, computed by the server, so a byte changed in transit or in the
        file shows as another ETag. A multipart ETag ends with ``-<parts>`` and is no MD5 of the content.
        (Objects encrypted with SSE-KMS or SSE-C have other ETags: turn ``trust_etag_md5`` off for such stores.)
        """
        etag = self.etag.lower()
        return etag if _MD5_ETAG.fullmatch(etag) else None


class ObjectStore:
    """One S3 endpoint. Clients are created once per process: creating one costs ~100 ms."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._buckets: set[str] = set()  # known to exist: asked once per process

    @cached_property
    def client(self) -> Any:
        s = self._settings
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=s.s3_endpoint_url,
            aws_access_key_id=s.s3_access_key,
            aws_secret_access_key=s.s3_secret_key,
            region_name=s.s3_region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=MAX_CONNECTIONS,
            ),
        )
        client.meta.events.register_first("before-send.s3", _count_request)
        return client

    def ensure_bucket(self, bucket: str) -> None:
        if bucket in self._buckets:
            return
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._buckets.add(bucket)

    def list(self, bucket: str, prefix: str = "", limit: int | None = None) -> list[StoredObject]:
        return list(self.iter(bucket, prefix, limit))

    def iter(self, bucket: str, prefix: str = "", limit: int | None = None) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = {"MaxItems": limit, "PageSize": limit} if limit else {}
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig=pages):
            for item in page.get("Contents", []):
                checksums = tuple(item.get("ChecksumAlgorithm") or ())
                yield StoredObject(
                    item["Key"], item["Size"], item["ETag"].strip('"'), item.get("LastModified"), checksums
                )

    def head(self, bucket: str, key: str) -> StoredObject | None:
        try:
            meta = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(key, meta["ContentLength"], meta["ETag"].strip('"'), meta.get("LastModified"))

    def metadata(self, bucket: str, key: str) -> dict[str, str]:
        """The object's user metadata (``x-amz-meta-*``, names lower-case); empty when there is no object."""
        try:
            return dict(self.client.head_object(Bucket=bucket, Key=key).get("Metadata") or {})
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return {}
            raise

    def read(self, bucket: str, key: str) -> bytes | None:
        found = self.read_object(bucket, key)
        return None if found is None else found[0]

    def read_object(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """The content and ETag of an object (None: there is none)."""
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        body: bytes = response["Body"].read()
        if (meter := _meter.get()) is not None:
            meter.add(bytes_read=len(body))
        return body, response["ETag"].strip('"')

    def stored_digests(self, bucket: str, obj: StoredObject) -> dict[str, str]:
        """Hex digests (hashlib names) of the S3 additional checksums the store holds for ``obj``, by a HEAD.

        Safe to trust: a client that sends such a checksum with an upload has it checked by the server against
        the bytes received (the upload is refused otherwise). A multipart upload's composite checksum
        (``...-<parts>``) is no digest of the content and is left out.
        """
        wanted = {name for name in obj.checksum_algorithms if name in _S3_CHECKSUMS}
        if not wanted:
            return {}
        meta = self.client.head_object(Bucket=bucket, Key=obj.key, IfMatch=f'"{obj.etag}"', ChecksumMode="ENABLED")
        found = {}
        for name in wanted:
            value = meta.get(f"Checksum{name}")
            if value and "-" not in value:
                found[_S3_CHECKSUMS[name]] = base64.b64decode(value).hex()
        return found

    def digests(self, bucket: str, key: str, algorithms: Sequence[str], etag: str | None = None) -> dict[str, str]:
        """Hex digests of the content for several hashlib algorithms, in one streamed read.

        With ``etag``, the read is of that version only (``IfMatch``): a changed object fails (412).
        """
        from shared.products.integrity import hash_stream

        extra = {"IfMatch": f'"{etag}"'} if etag else {}
        response = self.client.get_object(Bucket=bucket, Key=key, **extra)
        try:
            digests = hash_stream(response["Body"], algorithms)
        finally:
            response["Body"].close()
        if (meter := _meter.get()) is not None:
            meter.add(bytes_read=response["ContentLength"])
        return digests

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        extra = {"Metadata": dict(metadata)} if metadata else {}
        self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **extra)

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str) -> None:
        # The managed copy switches to multipart UploadPartCopy above its threshold, as objects over
        # 5 GB require.
        self.client.copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)

    def copy_verified(self, source_bucket: str, obj: StoredObject, bucket: str, key: str | None = None) -> None:
        """Copy exactly the version ``obj`` describes (``CopySourceIfMatch``), and check what was written.

        One request for objects up to 5 GiB: the copy's ETag, returned by the copy itself, must be the
        source's (same bytes, single part); otherwise (a multipart source, a larger object) the copy's size is
        checked with a HEAD. Raises :class:`CopyFailed`.
        """
        key = key or obj.key
        if obj.size > _SINGLE_COPY_LIMIT:
            self.copy(source_bucket, obj.key, bucket, key)
            etag = None
        else:
            source = {"Bucket": source_bucket, "Key": obj.key}
            try:
                result = self.client.copy_object(
                    CopySource=source, CopySourceIfMatch=f'"{obj.etag}"', Bucket=bucket, Key=key
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("PreconditionFailed", "412"):
                    raise CopyFailed(f"{source_bucket}/{obj.key} changed since it was verified") from exc
                raise
            etag = result.get("CopyObjectResult", {}).get("ETag", "").strip('"')
        if etag != obj.etag:
            copied = self.head(bucket, key)
            if copied is None or copied.size != obj.size:
                raise CopyFailed(f"copy of {source_bucket}/{obj.key} to {bucket}/{key} did not verify")

    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)

    def presigned_get(self, bucket: str, key: str, expires_in: int = 3600) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url
