"""CloudEvents over HTTP, binary and structured content modes, with the cloudevents 1.x SDK."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.conversion import to_binary, to_structured
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from pydantic import ValidationError

from events.models import EVENT_MODELS, EventData

JSON = "application/json"


class InvalidEvent(ValueError):
    """The HTTP request does not carry a valid CloudEvent (answer 400)."""


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
    return dict(headers), body if isinstance(body, bytes) else str(body).encode()


def parse_http(headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes | None) -> CloudEvent:
    """Read a CloudEvent in either content mode; say precisely what is wrong otherwise."""
    headers = dict(headers)  # a plain mapping, or pairs as werkzeug's Headers iterates
    if not body and not any(k.lower().startswith("ce-") for k in headers):
        raise InvalidEvent("empty request: expected a CloudEvent (ce-* headers or application/cloudevents+json)")
    try:
        return from_http(headers, body)
    except GenericException as exc:
        raise InvalidEvent(f"not a valid CloudEvent: {exc}") from exc
    except (ValueError, TypeError) as exc:  # e.g. malformed structured JSON
        raise InvalidEvent(f"not a valid CloudEvent: {exc}") from exc


def parse_data(event: CloudEvent) -> EventData:
    """The typed payload of an event of a known type."""
    event_type = event["type"]
    model = EVENT_MODELS.get(event_type)
    if model is None:
        raise InvalidPayload(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_MODELS))}")
    data = event.data
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidPayload(f"data of {event_type} is not JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'data'}: {err['msg']}" for err in exc.errors())
        raise InvalidPayload(f"data of {event_type} is invalid: {problems}") from exc
