"""``/odata/v1/Subscriptions``: the CDSE Subscriptions API on the OData service.

``POST   Subscriptions``                   create (201); the body CDSE documents (``model.parse_create``)
``GET    Subscriptions``                   the caller's subscriptions, OData collection (``$top``, ``$skip``)
``GET    Subscriptions/Info``              the same as CDSE answers it: a bare JSON array
``GET    Subscriptions(<Id>)``             one subscription
``PATCH  Subscriptions(<Id>)``             Status running/paused (cancelled deletes); a push endpoint, credentials
``DELETE Subscriptions(<Id>)``             204
``GET    Subscriptions(<Id>)/Read?$top=N`` PULL: the oldest pending notifications (1 to 20), each with an AckId
``POST   Subscriptions(<Id>)/Ack?$ackid=`` PULL: that notification and every one before it are done (GET too)
``POST   Subscriptions(<Id>)/Redeliver``   ours: notifications since ``{"FromSequence": n}``, ``{"FromAckId": ..}``
                                           or ``{"FromDate": ".."}`` are pending again (pushed / read again)

A subscription belongs to the subject (``sub``) of the token that created it; its owner sees and changes it,
an admin every one, an operator may also redeliver any. With access control off (a laptop), everyone is
the anonymous owner. An unknown or foreign subscription is 404 alike (as CDSE answers a cancelled one).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import flask
import orjson

from shared.catalog.odata.errors import BadOption, MethodNotAllowed, NotFound
from shared.security.access import ADMIN, OPERATOR, VIEWER, AccessPolicy
from shared.subscriptions.delivery import not_public, notification_json
from shared.subscriptions.model import (
    BadBody,
    Status,
    Subscription,
    odata_time,
    parse_ack_id,
    parse_create,
    parse_time,
    parse_update,
)
from shared.subscriptions.service import SubscriptionService, render_product

_ENTITY = re.compile(r"^/Subscriptions\((?:'([^']*)'|([^()']*))\)(/[A-Za-z.]+)?$")
MAX_READ = 20  # CDSE's $top limit of Read
MAX_LIST = 1000


class Caller:
    def __init__(self, subject: str, admin: bool, operator: bool) -> None:
        self.subject, self.admin, self.operator = subject, admin, operator


def caller(request: flask.Request, access: AccessPolicy | None) -> Caller:
    if access is None or access.open:
        return Caller("", True, True)
    claims = access.require(request.headers.get("Authorization"), VIEWER)
    granted = access.granted(claims)
    return Caller(str(claims.get("sub") or ""), ADMIN in granted, OPERATOR in granted or ADMIN in granted)


class SubscriptionsApi:
    def __init__(self, service: SubscriptionService) -> None:
        self.service = service
        self.store = service.store

    def handle(self, request: flask.Request, path: str, access: AccessPolicy | None) -> flask.Response:
        who = caller(request, access)
        if path in ("/Subscriptions", "/Subscriptions/Info"):
            if request.method == "POST" and path == "/Subscriptions":
                return self._create(request, who)
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed("GET lists subscriptions, POST creates one")
            return self._list(request, who, bare=path.endswith("/Info"))
        match = _ENTITY.match(path)
        if match is None:
            raise NotFound(f"no resource {path!r} of the subscriptions")
        key = (match[1] if match[1] is not None else match[2]).strip()
        rest = match[3] or ""
        subscription = self._find(key, who, for_redelivery=rest == "/Redeliver")
        if rest == "":
            return self._entity(request, subscription)
        if rest == "/Read" and request.method in ("GET", "HEAD"):
            return self._read(request, subscription)
        if rest == "/Ack" and request.method in ("GET", "POST"):
            return self._ack(request, subscription)
        if rest == "/Redeliver" and request.method == "POST":
            return self._redeliver(request, subscription)
        if rest in ("/Read", "/Ack", "/Redeliver"):
            raise MethodNotAllowed(f"{request.method} is not supported on {rest[1:]}")
        raise NotFound(f"no resource {rest!r} of a subscription; see Read, Ack, Redeliver")

    # -- collection -----------------------------------------------------------------------------

    def _create(self, request: flask.Request, who: Caller) -> flask.Response:
        new = parse_create(_body(request))
        self._public_only(new.endpoint.url)
        subscription = self.store.create(new, who.subject, _root(request))
        return _json(self._json(subscription), 201)

    def _list(self, request: flask.Request, who: Caller, bare: bool) -> flask.Response:
        top = min(_int(request.args, "$top", MAX_LIST), MAX_LIST)
        skip = _int(request.args, "$skip", 0)
        found = self.store.list_for(None if who.admin else who.subject, top, skip)
        lengths = self.store.queue_lengths(s.id for s in found)
        items = [self._json(s, lengths[s.id]) for s in found]
        if bare:  # CDSE's Subscriptions/Info: a JSON array
            return _json(items)
        return _json({"@odata.context": "$metadata#Subscriptions", "value": items})

    # -- one subscription -----------------------------------------------------------------------

    def _find(self, key: str, who: Caller, for_redelivery: bool = False) -> Subscription:
        subscription = self.store.get(key)
        allowed = subscription is not None and (
            who.admin or subscription.owner == who.subject or (for_redelivery and who.operator)
        )
        if subscription is None or not allowed:
            raise NotFound(f"Subscription with id {key} not found.")
        return subscription

    def _entity(self, request: flask.Request, subscription: Subscription) -> flask.Response:
        if request.method in ("GET", "HEAD"):
            return _json(self._json(subscription))
        if request.method == "DELETE":
            self.store.delete(subscription.id)
            return flask.Response(status=204)
        if request.method != "PATCH":
            raise MethodNotAllowed(f"{request.method} is not supported on a subscription: GET, PATCH, DELETE")
        update = parse_update(_body(request), subscription)
        self._public_only(update.endpoint.url if update.endpoint else None)
        if update.status is Status.CANCELLED:  # CDSE: cancelling is deleting
            self.store.delete(subscription.id)
            return flask.Response(status=204)
        self.store.update(subscription.id, update.status, update.endpoint)
        if subscription.push and update.status is not Status.PAUSED:
            self.service.pusher().drain([subscription.id])  # resumed or repointed: what waited goes now
        found = self.store.get(subscription.id)
        assert found is not None
        return _json(self._json(found))

    def _read(self, request: flask.Request, subscription: Subscription) -> flask.Response:
        if subscription.push:
            raise BadOption("Read is for PULL subscriptions; this one pushes to its NotificationEndpoint")
        top = _int(request.args, "$top", 1)
        if not 1 <= top <= MAX_READ:
            raise BadOption(f"$top of Read is 1 to {MAX_READ}, got {top}")
        catalog = self.service.catalog()
        items = [
            notification_json(n, catalog.get(n.product_id), render_product, _root(request), with_ack=True)
            for n in self.store.pending(subscription.id, top)
        ]
        return _json(items)

    def _ack(self, request: flask.Request, subscription: Subscription) -> flask.Response:
        if subscription.push:
            raise BadOption("Ack is for PULL subscriptions; this one pushes to its NotificationEndpoint")
        token = request.args.get("$ackid")
        if not token:
            raise BadOption("Ack needs $ackid=<AckId of the last notification read>")
        count = self.store.acknowledge(subscription.id, parse_ack_id(token, subscription.id))
        lengths = self.store.queue_lengths([subscription.id])
        return _json(
            {
                "@odata.context": "$metadata#Notification/$entity",
                "AckMessagesNum": count,
                "CurrentQueueLength": lengths[subscription.id],
                "MaxQueueLength": self.service.max_queue_length,
            }
        )

    def _redeliver(self, request: flask.Request, subscription: Subscription) -> flask.Response:
        body = _body(request)
        if (
            not isinstance(body, dict)
            or len(body.keys() & {"FromSequence", "FromAckId", "FromDate"}) != 1
            or any(k not in ("FromSequence", "FromAckId", "FromDate") for k in body)
        ):
            raise BadBody('Redeliver takes one of {"FromSequence": n}, {"FromAckId": "..."}, {"FromDate": "..."}')
        if "FromDate" in body:
            count = self.store.replay(subscription.id, from_date=odata_time(parse_time(body["FromDate"], "FromDate")))
        else:
            seq = body.get("FromSequence")
            if "FromAckId" in body:
                seq = parse_ack_id(str(body["FromAckId"]), subscription.id)
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
                raise BadBody("FromSequence is a notification's sequence number (a positive integer)")
            count = self.store.replay(subscription.id, from_seq=seq)
        if subscription.push and subscription.status is Status.RUNNING:
            self.service.pusher().drain([subscription.id])
        return _json(
            {"Redelivered": count, "CurrentQueueLength": self.store.queue_lengths([subscription.id])[subscription.id]}
        )

    def _public_only(self, url: str | None) -> None:
        if url is not None and not self.service.policy.private_endpoints and (refused := not_public(url)):
            raise BadBody(refused)

    def _json(self, subscription: Subscription, queue_length: int | None = None) -> dict[str, Any]:
        if queue_length is None:
            queue_length = self.store.queue_lengths([subscription.id])[subscription.id]
        due = self.store.next_attempt(subscription.id) if subscription.push and subscription.last_error else None
        next_attempt = odata_time(datetime.fromtimestamp(due, UTC)) if due is not None else None
        return subscription.to_json(queue_length, self.service.max_queue_length, next_attempt)


def _root(request: flask.Request) -> str:
    """The OData service root as the client reached it: notifications' asset links start with it."""
    return request.host_url.rstrip("/") + "/odata/v1"


def _body(request: flask.Request) -> Any:
    data = request.get_data(cache=True)
    if not data.strip():
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadBody("the request body is not JSON") from None


def _int(args: Any, name: str, default: int) -> int:
    text = args.get(name)
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()):
        raise BadOption(f"{name} is a non-negative integer, got {text[:40]!r}")
    return int(text)


def _json(body: Any, status: int = 200) -> flask.Response:
    return flask.Response(orjson.dumps(body), status=status, mimetype="application/json")


@lru_cache(maxsize=1)
def subscriptions_api() -> SubscriptionsApi:
    """The API of this process (built at its first request: the OData service pays nothing until then)."""
    from shared.subscriptions.service import subscription_service

    return SubscriptionsApi(subscription_service())
