"""A subscription as CDSE answers it, and the request bodies that create and update one.

Names and values follow the CDSE Subscriptions API (documentation.dataspace.copernicus.eu/APIs/Subscriptions):
``FilterParam``, ``SubscriptionEvent``, ``Status``, ``StageOrder``, ``Priority``, ``NotificationEndpoint``,
``NotificationEpUsername``/``NotificationEpPassword`` (write-only), ``SubmissionDate``, ``LastNotificationDate``,
``AckMessagesNum``, ``CurrentQueueLength``, ``MaxQueueLength``. CDSE has no ``SubscriptionType``: a subscription
with a ``NotificationEndpoint`` is PUSH, one without is PULL, and so here. What CDSE has no field for (the
state of push delivery) is answered as OData instance annotations of our own namespace, ``@refsys.*``, which
OData clients ignore.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from shared.catalog.filters import Filter
from shared.catalog.odata.errors import BadOption, ODataError
from shared.catalog.odata.filter import parse_filter

CONTEXT = "$metadata#OData.CSC.Subscription"
NOTIFICATION_CONTEXT = "$metadata#Notification/$entity"
MAX_ENDPOINT_LENGTH = 2048
MAX_CREDENTIAL_LENGTH = 1024


class Event(StrEnum):
    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"


class Status(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"  # CDSE: setting it deletes the subscription; never stored


class BadBody(ODataError):
    code = "InvalidSubscription"


@dataclass(frozen=True)
class Subscription:
    id: str
    owner: str  # the token's subject; "" when access control is off
    filter_param: str  # "" selects every product
    events: tuple[Event, ...]
    status: Status
    stage_order: bool
    priority: int
    endpoint: str | None  # None: a PULL subscription
    username: str | None
    password: str | None
    submission_date: str
    last_notification_date: str | None
    ack_messages_num: int
    last_error: str | None  # the last failed push, until one succeeds
    service_root: str  # the OData root it was created at: pushed products' asset links start with it

    @property
    def push(self) -> bool:
        return self.endpoint is not None

    def where(self) -> Filter | None:
        return parsed_filter(self.filter_param)

    def to_json(self, queue_length: int, max_queue_length: int, next_attempt: str | None = None) -> dict[str, Any]:
        """The entity as CDSE answers it: the password never, the username neither (CDSE keeps both in a vault)."""
        body: dict[str, Any] = {
            "@odata.context": CONTEXT,
            "Id": self.id,
            "FilterParam": self.filter_param,
            "StageOrder": self.stage_order,
            "Priority": self.priority,
            "Status": self.status.value,
        }
        if self.endpoint is not None:
            body["NotificationEndpoint"] = self.endpoint
        body["LastNotificationDate"] = self.last_notification_date
        body["SubscriptionEvent"] = [event.value for event in self.events]
        body["SubmissionDate"] = self.submission_date
        body["AckMessagesNum"] = self.ack_messages_num
        body["CurrentQueueLength"] = queue_length
        body["MaxQueueLength"] = max_queue_length
        if self.push:  # no CDSE field tells a subscriber why its endpoint gets nothing
            body["@refsys.LastDeliveryError"] = self.last_error
            body["@refsys.NextDeliveryAttemptDate"] = next_attempt
        return body


@dataclass(frozen=True)
class Endpoint:
    url: str | None
    username: str | None
    password: str | None


def parsed_filter(text: str) -> Filter | None:
    return _parsed(text) if text.strip() else None


# Every event evaluates every subscription's filter: parsed once per process (a filter tree is immutable).
# Larger than the query side's cache (512): one entry per distinct subscription filter.
_parsed = lru_cache(maxsize=16384)(parse_filter)


CREATE_FIELDS = frozenset(
    {
        "FilterParam",
        "SubscriptionEvent",
        "Status",
        "StageOrder",
        "Priority",
        "NotificationEndpoint",
        "NotificationEpUsername",
        "NotificationEpPassword",
    }
)
# CDSE: a PUSH subscription may change its status and endpoint; a PULL one its status only.
UPDATE_FIELDS = frozenset({"Status", "NotificationEndpoint", "NotificationEpUsername", "NotificationEpPassword"})
# What a client may send back from an entity it read: ignored, not refused.
READ_ONLY = frozenset(
    {
        "Id",
        "SubmissionDate",
        "LastNotificationDate",
        "AckMessagesNum",
        "CurrentQueueLength",
        "MaxQueueLength",
    }
)


@dataclass(frozen=True)
class NewSubscription:
    filter_param: str
    events: tuple[Event, ...]
    status: Status
    stage_order: bool
    priority: int
    endpoint: Endpoint


def parse_create(body: Any) -> NewSubscription:
    """A create request body; BadBody (400) for anything wrong. Every field is optional, as at CDSE."""
    fields = _object(body, CREATE_FIELDS)
    filter_param = fields.get("FilterParam") or ""
    if not isinstance(filter_param, str):
        raise BadBody("FilterParam is an OData $filter string")
    if filter_param.strip():
        try:
            parse_filter(filter_param)
        except ODataError as exc:
            raise BadBody(f"FilterParam: {exc.message}") from None
    status = _status(fields.get("Status", Status.RUNNING.value))
    if status is Status.CANCELLED:
        raise BadBody("a subscription is created running or paused")
    stage_order = fields.get("StageOrder", False)
    if not isinstance(stage_order, bool):
        raise BadBody("StageOrder is true or false")
    priority = fields.get("Priority", 1)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100:
        raise BadBody("Priority is an integer from 1 to 100")
    return NewSubscription(
        filter_param=filter_param,
        events=_events(fields.get("SubscriptionEvent", [Event.CREATED.value])),
        status=status,
        stage_order=stage_order,
        priority=priority,
        endpoint=_endpoint(fields, None),
    )


@dataclass(frozen=True)
class Update:
    status: Status | None
    endpoint: Endpoint | None  # None: unchanged


def parse_update(body: Any, current: Subscription) -> Update:
    fields = _object(body, UPDATE_FIELDS)
    status = _status(fields["Status"]) if "Status" in fields else None
    endpoint = None
    if any(name in fields for name in ("NotificationEndpoint", "NotificationEpUsername", "NotificationEpPassword")):
        if not current.push:
            raise BadBody("a PULL subscription (no NotificationEndpoint) may change its Status only")
        endpoint = _endpoint(fields, current)
        if endpoint.url is None:
            raise BadBody("a PUSH subscription keeps a NotificationEndpoint; delete it to stop notifications")
    if status is None and endpoint is None:
        raise BadBody(f"nothing to update: send one of {', '.join(sorted(UPDATE_FIELDS))}")
    return Update(status, endpoint)


def _object(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise BadBody("the request body is a JSON object")
    unknown = sorted(str(k) for k in body if k not in allowed and k not in READ_ONLY and not str(k).startswith("@"))
    if unknown:
        raise BadBody(f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}")
    return {k: v for k, v in body.items() if k in allowed}


def _status(value: Any) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise BadBody(f"Status is one of {', '.join(s.value for s in Status)}, got {str(value)[:40]!r}") from None


def _events(value: Any) -> tuple[Event, ...]:
    # CDSE documents a list; a single comma-separated string ("created,modified") is taken too.
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise BadBody("SubscriptionEvent is a list of created, modified, deleted")
    events: list[Event] = []
    for item in items:
        try:
            event = Event(item.strip())
        except ValueError:
            raise BadBody(f"SubscriptionEvent {item[:40]!r} is not one of created, modified, deleted") from None
        if event not in events:
            events.append(event)
    return tuple(events)


def _endpoint(fields: Mapping[str, Any], current: Subscription | None) -> Endpoint:
    url = fields.get("NotificationEndpoint", current.endpoint if current else None)
    username = fields.get("NotificationEpUsername", current.username if current else None)
    password = fields.get("NotificationEpPassword", current.password if current else None)
    for name, value, limit in (
        ("NotificationEndpoint", url, MAX_ENDPOINT_LENGTH),
        ("NotificationEpUsername", username, MAX_CREDENTIAL_LENGTH),
        ("NotificationEpPassword", password, MAX_CREDENTIAL_LENGTH),
    ):
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise BadBody(f"{name} is a string of at most {limit} characters")
    if url == "":
        url = None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadBody(f"NotificationEndpoint is an http(s) URL, got {url[:80]!r}")
    if url is None and (username or password):
        raise BadBody("NotificationEpUsername/NotificationEpPassword need a NotificationEndpoint")
    if (username is None) != (password is None):
        raise BadBody("NotificationEpUsername and NotificationEpPassword go together")
    return Endpoint(url, username or None, password)


# --- AckId: which notification of which subscription (the shape CDSE's has: "<stream id>:<subscription>") ---


def ack_id(seq: int, subscription_id: str) -> str:
    return base64.b64encode(f"{seq}-0:{subscription_id}".encode()).decode()


def parse_ack_id(token: str, subscription_id: str) -> int:
    try:
        text = base64.b64decode(token.strip(), validate=True).decode()
        stream_id, _, owner = text.partition(":")
        seq = int(stream_id.split("-", 1)[0])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadOption("$ackid is not an AckId this service issued; use one a Read answered") from None
    if owner != subscription_id or seq < 1:
        raise BadOption("$ackid belongs to another subscription")
    return seq


def odata_time(value: datetime) -> str:
    """UTC with milliseconds and Z, as CDSE writes SubmissionDate and NotificationDate."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: Any, what: str) -> datetime:
    if not isinstance(text, str):
        raise BadBody(f"{what} is an ISO 8601 date and time")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadBody(f"{what} is an ISO 8601 date and time, got {text[:40]!r}") from None
    if value.tzinfo is None:
        raise BadBody(f"{what} needs a time zone (e.g. Z)")
    return value.astimezone(UTC)
