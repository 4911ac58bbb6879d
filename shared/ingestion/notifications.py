"""Every notification format an object store sends, turned into the one internal ``ObjectCreated`` event.

- S3 event records (``{"Records": [{"s3": ...}]}``) as AWS sends them through SQS/SNS/EventBridge and
  MinIO/Ceph send them to webhooks (MinIO prefixes event names with ``s3:``; keys are URL-encoded).
- The SeaweedFS filer webhook (``{"event_type": "create", "key": "/buckets/<bucket>/<key>", ...}``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from events import ObjectCreated


class UnknownNotification(ValueError):
    """The body is not a notification format we know."""


def object_events(body: Any) -> list[ObjectCreated]:
    """The object-created events a notification body reports (other events, directories: none).

    A body of the wrong shape raises :class:`UnknownNotification` saying which member is wrong (it used to
    end in an AttributeError or TypeError: a 500 the store retried for ever).
    """
    if isinstance(body, Mapping) and "Records" in body:
        records = body["Records"]
        if not isinstance(records, list):
            raise UnknownNotification(f"Records must be an array, not {_kind(records)}")
        return [event for i, record in enumerate(records) if (event := _from_s3_record(record, f"Records[{i}]"))]
    if isinstance(body, Mapping) and "event_type" in body and "key" in body:
        event = _from_seaweedfs(body)
        return [event] if event else []
    if isinstance(body, Mapping) and body.get("Event") == "s3:TestEvent":
        return []  # sent once when a bucket notification is configured
    raise UnknownNotification(
        "expected S3 event records ({'Records': [...]}) or a SeaweedFS filer notification ({'event_type', 'key'})"
    )


def _from_s3_record(record: Any, where: str) -> ObjectCreated | None:
    if not isinstance(record, Mapping):
        raise UnknownNotification(f"{where} must be an object, not {_kind(record)}")
    name = _member(record, "eventName", str, where, default="").removeprefix("s3:")
    if not name.startswith("ObjectCreated:"):
        return None
    s3 = _member(record, "s3", dict, where)
    bucket = _member(_member(s3, "bucket", dict, f"{where}.s3"), "name", str, f"{where}.s3.bucket")
    obj = _member(s3, "object", dict, f"{where}.s3")
    key = unquote_plus(_member(obj, "key", str, f"{where}.s3.object"))
    if not key or not bucket:
        raise UnknownNotification(f"{where}: an object needs a bucket name and a key")
    source = _member(record, "eventSource", str, where, default="aws:s3")
    size = _member(obj, "size", int, f"{where}.s3.object", default=0)
    return ObjectCreated(
        store=source.split(":")[0] or "aws",
        bucket=bucket,
        key=key,
        size=size,
        etag=_member(obj, "eTag", str, f"{where}.s3.object", default="") or None,
        sequencer=_member(obj, "sequencer", str, f"{where}.s3.object", default="") or None,
        event_time=_parse_time(_member(record, "eventTime", str, where, default="")),
    )


def _from_seaweedfs(body: Mapping[str, Any]) -> ObjectCreated | None:
    message = _member(body, "message", dict, "notification", default={})
    entry = _member(message, "new_entry", dict, "message", default={})
    if body.get("event_type") not in ("create", "update") or not entry or entry.get("is_directory"):
        return None
    path = _member(body, "key", str, "notification")
    name = _member(entry, "name", str, "message.new_entry", default="")
    # The filer reports the parent directory in `key` for some operations and the full path for others.
    if name and not path.endswith("/" + name):
        path = path.rstrip("/") + "/" + name
    parts = path.lstrip("/").split("/", 2)
    if len(parts) < 3 or parts[0] != "buckets" or parts[1].startswith(".") or parts[2].startswith(".uploads/"):
        return None  # outside the S3 buckets, SeaweedFS's own /buckets/.system, or parts of a multipart upload
    attributes = _member(entry, "attributes", dict, "message.new_entry", default={})
    chunks = _member(entry, "chunks", list, "message.new_entry", default=[])
    try:
        size = attributes.get("file_size") or sum(int(c.get("size", 0)) for c in chunks)
        return ObjectCreated(
            store="seaweedfs",
            bucket=parts[1],
            key=parts[2],
            size=int(size),
            etag=_seaweedfs_etag(entry),
            event_time=_epoch(attributes.get("mtime")),
        )
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise UnknownNotification(f"SeaweedFS entry of the wrong shape: {type(exc).__name__}: {exc}") from exc


T = TypeVar("T")


def _member(obj: Mapping[str, Any], name: str, kind: type[T], where: str, default: T | None = None) -> T:
    """``obj[name]`` of the JSON type ``kind`` (or ``default`` when given and the member is absent or null)."""
    value = obj.get(name)
    if value is None and default is not None:
        return default
    if value is None:
        raise UnknownNotification(f"{where} has no {name}")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        if kind is int and isinstance(value, str) and value.isdigit():
            return kind(value)  # type: ignore[call-arg]  # some stores send sizes as strings
        raise UnknownNotification(f"{where}.{name} must be {_kind_name(kind)}, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    return names.get(type(value), "a number" if isinstance(value, float) else "null" if value is None else "a value")


def _kind_name(kind: type) -> str:
    return {dict: "an object", list: "an array", str: "a string", int: "an integer"}.get(kind, kind.__name__)


def _seaweedfs_etag(entry: Mapping[str, Any]) -> str | None:
    """The ETag S3 clients see (so ids match other notification paths), else the MD5 attribute."""
    s3_etag = (entry.get("extended") or {}).get("Seaweed-X-Amz-ETag")
    if s3_etag:
        return base64.b64decode(s3_etag).decode()
    md5 = (entry.get("attributes") or {}).get("md5")
    return base64.b64decode(md5).hex() if md5 else None


def _parse_time(value: str) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnknownNotification(f"eventTime {value[:40]!r} is not an ISO 8601 time") from exc
    # moto omits the zone; S3 times are UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC) if value else datetime.now(UTC)
