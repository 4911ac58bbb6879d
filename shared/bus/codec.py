"""CloudEvents over HTTP <-> the broker's stored form (a structured-mode JSON object).

Own small codec instead of the SDK's converters because the broker must not modify ``data``:
the SDK parses and re-serialises bodies (a text/plain body ``hello`` would go out as
``"hello"``). Here a binary-mode body is stored byte for byte as ``data_base64`` and sent back
unchanged; a structured-mode ``data`` member is sent as JSON (or as the raw string when the
``datacontenttype`` is not JSON).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloudevents.abstract import CloudEvent as AnyCloudEvent
from cloudevents.conversion import to_structured

from events.http import InvalidEvent as InvalidEnvelope
from events.http import check_json, decode_header_value, encode_header_value
from shared.bus.filters import as_string

Record = dict[str, Any]  # structured-mode JSON CloudEvent

REQUIRED = ("specversion", "id", "source", "type")
STRUCTURED_TYPE = "application/cloudevents+json"
BATCH_TYPE = "application/cloudevents-batch"
_DATA_KEYS = ("data", "data_base64")
# CloudEvents attribute names: lowercase ASCII letters and digits.
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]+$")
_STRINGS = ("subject", "time", "datacontenttype", "dataschema")


class InvalidEvent(ValueError):
    """The HTTP message is not a valid CloudEvent; the message says what is wrong."""


def is_cloudevent_message(headers: Mapping[str, str]) -> bool:
    """True when the headers announce a CloudEvent (binary or structured mode)."""
    lower = {k.lower(): v for k, v in headers.items()}
    content_type = lower.get("content-type", "").lower()
    return "ce-specversion" in lower or content_type.startswith("application/cloudevents")


def parse_http(headers: Mapping[str, str], body: bytes) -> Record:
    """Parse a binary- or structured-mode HTTP message; raise InvalidEvent saying what is wrong."""
    lower = {k.lower(): v for k, v in headers.items()}
    content_type = lower.get("content-type", "")
    if content_type.lower().startswith(BATCH_TYPE):
        raise InvalidEvent("batched CloudEvents (application/cloudevents-batch+json) are not supported")
    if content_type.lower().startswith("application/cloudevents"):
        return _parse_structured(body)
    if any(name.startswith("ce-") for name in lower):
        return _parse_binary(lower, body)
    raise InvalidEvent(
        "not a CloudEvent: expected binary mode (ce-specversion, ce-id, ce-source, ce-type headers) "
        f"or structured mode (Content-Type: {STRUCTURED_TYPE}), got Content-Type {content_type or 'none'!r}"
    )


def _parse_binary(headers: Mapping[str, str], body: bytes) -> Record:
    missing = [f"ce-{name}" for name in REQUIRED if not headers.get(f"ce-{name}")]
    if missing:
        raise InvalidEvent(f"binary-mode CloudEvent is missing header(s): {', '.join(missing)}")
    try:  # header values are percent-encoded (CloudEvents HTTP binding); the stored record holds them decoded
        record: Record = {name[3:]: decode_header_value(v) for name, v in headers.items() if name.startswith("ce-")}
    except InvalidEnvelope as exc:
        raise InvalidEvent(str(exc)) from exc
    if headers.get("content-type"):
        record["datacontenttype"] = headers["content-type"]
    if body:
        record["data_base64"] = base64.b64encode(body).decode("ascii")
    return validate(record)


def _parse_structured(body: bytes) -> Record:
    try:
        # Depth first: a 100k-deep body made json.loads raise RecursionError, and the ingress dropped the connection.
        check_json(body, "structured-mode body")
        record = json.loads(body)
    except InvalidEnvelope as exc:
        raise InvalidEvent(str(exc)) from exc
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidEvent(f"structured-mode body is not valid JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise InvalidEvent("structured-mode body must be a JSON object")
    return validate(record)


def validate(record: Record) -> Record:
    """Check a structured-mode record: required attributes, names, data members."""
    missing = [name for name in REQUIRED if not record.get(name)]
    if missing:
        raise InvalidEvent(f"CloudEvent is missing required attribute(s): {', '.join(missing)}")
    not_strings = [name for name in (*REQUIRED, *_STRINGS) if name in record and not isinstance(record[name], str)]
    if not_strings:
        raise InvalidEvent(f"attribute(s) {', '.join(not_strings)} must be strings")
    not_scalars = [
        name for name, value in record.items() if name not in _DATA_KEYS and not isinstance(value, str | int | None)
    ]
    if not_scalars:  # extensions are strings, integers or booleans, never arrays or objects
        raise InvalidEvent(
            f"attribute(s) {', '.join(map(repr, not_scalars[:5]))} must be strings, integers or booleans"
        )
    if record["specversion"] != "1.0":
        raise InvalidEvent(f"unsupported specversion {record['specversion']!r} (only 1.0)")
    bad = [name for name in record if name not in _DATA_KEYS and not _ATTRIBUTE_NAME.fullmatch(name)]
    if bad:
        raise InvalidEvent(f"invalid attribute name(s) {', '.join(map(repr, bad))}: lowercase letters and digits")
    if "data" in record and "data_base64" in record:
        raise InvalidEvent("a CloudEvent cannot carry both data and data_base64")
    if "data_base64" in record:
        try:
            base64.b64decode(record["data_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise InvalidEvent(f"data_base64 is not valid base64: {exc}") from exc
    if record.get("time") is not None:
        try:
            datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidEvent(f"time {record['time']!r} is not an RFC 3339 timestamp") from exc
    return record


def from_cloudevent(event: AnyCloudEvent) -> Record:
    """Record of an SDK CloudEvent (its structured-mode JSON, as the SDK would send it)."""
    _, body = to_structured(event)
    return validate(json.loads(body))


def attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """Context attributes and extensions (what filters see): everything but the data."""
    return {k: v for k, v in record.items() if k not in _DATA_KEYS}


def data_bytes(record: Mapping[str, Any]) -> bytes:
    """The event data as it goes on the wire in binary mode."""
    if record.get("data_base64") is not None:
        return base64.b64decode(record["data_base64"])
    data = record.get("data")
    if data is None:
        return b""
    if isinstance(data, str) and not _is_json(record.get("datacontenttype")):
        return data.encode("utf-8")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def to_binary(record: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> tuple[dict[str, str], bytes]:
    """HTTP headers and body of a binary-mode request; ``extra`` adds/overrides extensions."""
    merged = {**attributes(record), **(extra or {})}
    headers = {
        f"ce-{k}": encode_header_value(as_string(v))
        for k, v in merged.items()
        if k != "datacontenttype" and v is not None
    }
    if merged.get("datacontenttype"):
        headers["content-type"] = str(merged["datacontenttype"])
    return headers, data_bytes(record)


def _is_json(content_type: Any) -> bool:
    # The JSON event format treats a missing datacontenttype as application/json.
    if not content_type:
        return True
    media = str(content_type).split(";")[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")
