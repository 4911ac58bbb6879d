"""The object-storage port: the few S3 operations the pipeline needs, over boto3 (any S3 API)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from shared.settings import Settings

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    etag: str  # without quotes
    last_modified: datetime | None = None


class ObjectStore:
    """One S3 endpoint. Clients are created once per process: creating one costs ~100 ms."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def client(self) -> Any:
        s = self._settings
        return boto3.session.Session().client(
            "s3",
            endpoint_url=s.s3_endpoint_url,
            aws_access_key_id=s.s3_access_key,
            aws_secret_access_key=s.s3_secret_key,
            region_name=s.s3_region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
        )

    def ensure_bucket(self, bucket: str) -> None:
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        return list(self.iter(bucket, prefix))

    def iter(self, bucket: str, prefix: str = "") -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"], item["Size"], item["ETag"].strip('"'), item.get("LastModified"))

    def head(self, bucket: str, key: str) -> StoredObject | None:
        try:
            meta = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(key, meta["ContentLength"], meta["ETag"].strip('"'), meta.get("LastModified"))

    def read(self, bucket: str, key: str) -> bytes | None:
        try:
            body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return body

    def md5(self, bucket: str, key: str) -> str:
        """MD5 of the content, streamed: ETags are not MD5s for multipart uploads."""
        digest = hashlib.md5(usedforsecurity=False)
        stream = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def put(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def copy(self, source_bucket: str, source_key: str, bucket: str, key: str) -> None:
        # The managed copy switches to multipart UploadPartCopy above its threshold, as objects over
        # 5 GB require.
        self.client.copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)

    def presigned_get(self, bucket: str, key: str, expires_in: int = 3600) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url
