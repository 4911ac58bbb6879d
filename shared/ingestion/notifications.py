"""Every notification format an object store sends, turned into the one internal ``ObjectCreated`` event.

- S3 event records (``{"Records": [{"s3": ...}]}``) as AWS sends them through SQS/SNS/EventBridge and
  MinIO/Ceph send them to webhooks (MinIO prefixes event names with ``s3:``; keys are URL-encoded).
- The SeaweedFS filer webhook (``{"event_type": "create", "key": "/buckets/<bucket>/<key>", ...}``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from events import ObjectCreated


class UnknownNotification(ValueError):
    """The body is not a notification format we know."""


def object_events(body: Any) -> list[ObjectCreated]:
    """The object-created events a notification body reports (other events, directories: none)."""
    if isinstance(body, Mapping) and "Records" in body:
        return [event for record in body["Records"] if (event := _from_s3_record(record))]
    if isinstance(body, Mapping) and "event_type" in body and "key" in body:
        event = _from_seaweedfs(body)
        return [event] if event else []
    if isinstance(body, Mapping) and body.get("Event") == "s3:TestEvent":
        return []  # sent once when a bucket notification is configured
    raise UnknownNotification(
        "expected S3 event records ({'Records': [...]}) or a SeaweedFS filer notification ({'event_type', 'key'})"
    )


def _from_s3_record(record: Mapping[str, Any]) -> ObjectCreated | None:
    name = str(record.get("eventName", "")).removeprefix("s3:")
    if not name.startswith("ObjectCreated:"):
        return None
    try:
        s3 = record["s3"]
        obj = s3["object"]
        source = str(record.get("eventSource", "aws:s3"))
        return ObjectCreated(
            store=source.split(":")[0] or "aws",
            bucket=s3["bucket"]["name"],
            key=unquote_plus(obj["key"]),
            size=int(obj.get("size", 0)),
            etag=obj.get("eTag") or None,
            sequencer=obj.get("sequencer") or None,
            event_time=_parse_time(record.get("eventTime")),
        )
    except (KeyError, TypeError) as exc:
        raise UnknownNotification(f"S3 record without {exc}") from exc


def _from_seaweedfs(body: Mapping[str, Any]) -> ObjectCreated | None:
    message = body.get("message") or {}
    entry = message.get("new_entry")
    if body.get("event_type") not in ("create", "update") or not entry or entry.get("is_directory"):
        return None
    path = str(body["key"])
    name = entry.get("name")
    # The filer reports the parent directory in `key` for some operations and the full path for others.
    if name and not path.endswith("/" + name):
        path = path.rstrip("/") + "/" + name
    parts = path.lstrip("/").split("/", 2)
    if len(parts) < 3 or parts[0] != "buckets" or parts[1].startswith(".") or parts[2].startswith(".uploads/"):
        return None  # outside the S3 buckets, SeaweedFS's own /buckets/.system, or parts of a multipart upload
    attributes = entry.get("attributes") or {}
    size = attributes.get("file_size") or sum(int(c.get("size", 0)) for c in entry.get("chunks") or [])
    return ObjectCreated(
        store="seaweedfs",
        bucket=parts[1],
        key=parts[2],
        size=int(size),
        etag=_seaweedfs_etag(entry),
        event_time=_epoch(attributes.get("mtime")),
    )


def _seaweedfs_etag(entry: Mapping[str, Any]) -> str | None:
    """The ETag S3 clients see (so ids match other notification paths), else the MD5 attribute."""
    s3_etag = (entry.get("extended") or {}).get("Seaweed-X-Amz-ETag")
    if s3_etag:
        return base64.b64decode(s3_etag).decode()
    md5 = (entry.get("attributes") or {}).get("md5")
    return base64.b64decode(md5).hex() if md5 else None


def _parse_time(value: Any) -> datetime:
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    # moto omits the zone; S3 times are UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC) if value else datetime.now(UTC)
