"""CloudEvents over HTTP, binary and structured content modes, with the cloudevents 1.x SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from cloudevents.conversion import to_binary, to_structured
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from pydantic import ValidationError

from events.models import EVENT_MODELS, EventData

JSON = "application/json"

# Limits on what an event may be: far above any event of ours (an S3 batch, a run's outputs), far below what
# would hurt a function (the JSON parsers recurse; a 100k-deep body used to end in a RecursionError, a 500).
MAX_EVENT_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64
# Context attributes that are strings, whatever a structured-mode body says.
_STRING_ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema")
_REQUIRED = ("specversion", "id", "source", "type")
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,64}")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class InvalidEvent(ValueError):
    """The HTTP request does not carry a valid CloudEvent (answer 400)."""


class EventTooLarge(InvalidEvent):
    """The request body is larger than any event may be (answer 413)."""


class InvalidPayload(ValueError):
    """The envelope is fine but its type is unknown or its data does not fit the type's model (answer 422)."""


def make_event(
    data: EventData,
    *,
    source: str,
    extensions: Mapping[str, str] | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap a payload in its envelope: type, deterministic id, subject and routing extensions."""
    attributes: dict[str, Any] = {
        "type": data.TYPE,
        "source": source,
        "id": data.event_id(),
        "time": (time or datetime.now(UTC)).isoformat(),
        # Always set: the 1.x SDK leaves Content-Type out of binary mode otherwise.
        "datacontenttype": JSON,
        **data.routing(),
        **(extensions or {}),
    }
    subject = data.subject()
    if subject is not None:
        attributes["subject"] = subject
    return CloudEvent(attributes, data.model_dump(mode="json"))


def to_http(event: CloudEvent, *, structured: bool = False) -> tuple[dict[str, str], bytes]:
    headers, body = to_structured(event) if structured else to_binary(event)
    # The 1.x SDK puts attribute values into headers as they are: an object key with a newline or non-Latin-1
    # characters made a request http.client refuses (the inbox scan was blocked for good by one such key).
    headers = {k: encode_header_value(_text(v)) if k.lower().startswith("ce-") else v for k, v in headers.items()}
    return headers, body if isinstance(body, bytes) else str(body).encode()


def _text(value: object) -> str:
    # Integer and boolean extensions (e.g. knativeerrorcode) as the JSON format writes them.
    return str(value).lower() if isinstance(value, bool) else str(value)


def encode_header_value(value: str) -> str:
    """Percent-encode (UTF-8) what the CloudEvents HTTP binding asks: space, '"', '%' and all but printable ASCII."""
    if all("!" <= ch <= "~" and ch not in '"%' for ch in value):
        return value
    return "".join(
        ch if "!" <= ch <= "~" and ch not in '"%' else "".join(f"%{b:02X}" for b in ch.encode()) for ch in value
    )


def decode_header_value(value: str) -> str:
    """Percent-decode a binary-mode attribute header; invalid UTF-8 is refused, as the binding says.

    Servers hand raw header bytes over as Latin-1 text: a sender that put UTF-8 in a header unencoded is read
    right too.
    """
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # already text (a mapping built in-process)
        raw = value.encode("utf-8")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"header value {value[:80]!r} is not percent-encoded UTF-8: {exc.reason}") from exc


def check_json(body: bytes | str, what: str = "body") -> None:
    """Refuse JSON nested deeper than :data:`MAX_JSON_DEPTH`, before any parser recurses into it."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return  # cannot be deeper (the common case: no scan)
    depth = 0
    for bracket in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in b"[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise InvalidEvent(f"{what} is JSON nested deeper than {MAX_JSON_DEPTH} levels")


def parse_http(headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes | None) -> CloudEvent:
    """Read a CloudEvent in either content mode; say precisely what is wrong otherwise."""
    headers = dict(headers)  # a plain mapping, or pairs as werkzeug's Headers iterates
    if not body and not any(k.lower().startswith("ce-") for k in headers):
        raise InvalidEvent("empty request: expected a CloudEvent (ce-* headers or application/cloudevents+json)")
    if body and len(body) > MAX_EVENT_BYTES:
        raise EventTooLarge(f"a CloudEvent is at most {MAX_EVENT_BYTES} bytes; this body has {len(body)}")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    structured = content_type.lower().startswith("application/cloudevents")
    if not structured:
        headers = {k: decode_header_value(v) if k.lower().startswith("ce-") else v for k, v in headers.items()}
    if body and (structured or _is_json(content_type)):
        check_json(body, "the event" if structured else "the event data")
    try:
        event = from_http(headers, body)
    except GenericException as exc:
        raise InvalidEvent(f"not a valid CloudEvent: {exc}") from exc
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:  # e.g. malformed JSON
        raise InvalidEvent(f"not a valid CloudEvent: {type(exc).__name__}: {exc}") from exc
    _check_attributes(event.get_attributes())
    return event


def _check_attributes(attributes: Mapping[str, Any]) -> None:
    """What the SDK lets through from a structured-mode body: attributes of the wrong JSON type, odd names."""
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise InvalidEvent(f"not a valid CloudEvent: missing required attribute(s) {', '.join(missing)}")
    for name, value in attributes.items():
        if not _ATTRIBUTE_NAME.fullmatch(name):
            raise InvalidEvent(
                f"not a valid CloudEvent: attribute name {name[:80]!r} is not lowercase letters and digits"
            )
        if value is None:
            continue
        if name in _STRING_ATTRIBUTES:
            if not isinstance(value, str):
                raise InvalidEvent(
                    f"not a valid CloudEvent: attribute {name!r} must be a string, not {_json_type(value)}"
                )
        elif not isinstance(value, str | int):
            # Extensions: strings, integers and booleans in the JSON format; never arrays or objects.
            raise InvalidEvent(f"not a valid CloudEvent: extension {name!r} must be a string, integer or boolean")
    if attributes["specversion"] != "1.0":
        raise InvalidEvent(
            f"not a valid CloudEvent: unsupported specversion {attributes['specversion'][:20]!r} (only 1.0)"
        )


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return not media or media in ("application/json", "text/json") or media.endswith("+json")


def parse_data(event: CloudEvent) -> EventData:
    """The typed payload of an event of a known type."""
    event_type = event["type"]
    model = EVENT_MODELS.get(event_type)
    if model is None:
        raise InvalidPayload(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_MODELS))}")
    data = event.data
    if isinstance(data, bytes | str):
        try:
            check_json(data, f"data of {event_type}")
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InvalidPayload(f"data of {event_type} is not JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'data'}: {err['msg']}" for err in exc.errors())
        raise InvalidPayload(f"data of {event_type} is invalid: {problems}") from exc
