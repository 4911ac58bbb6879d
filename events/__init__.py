"""The event contract: the only thing two pipeline steps know about each other."""

from events.http import InvalidEvent, InvalidPayload, make_event, parse_data, parse_http, to_http
from events.models import (
    EVENT_MODELS,
    EventData,
    ObjectCreated,
    ProductCataloged,
    ProductEvicted,
    ProductIdentity,
    ProductIngested,
    ProductRejected,
    RejectionReason,
)

__all__ = [
    "EVENT_MODELS",
    "EventData",
    "InvalidEvent",
    "InvalidPayload",
    "ObjectCreated",
    "ProductCataloged",
    "ProductEvicted",
    "ProductIdentity",
    "ProductIngested",
    "ProductRejected",
    "RejectionReason",
    "make_event",
    "parse_data",
    "parse_http",
    "to_http",
]
