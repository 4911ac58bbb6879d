"""Push delivery: each pending notification POSTed to its subscription's endpoint, in ``seq`` order.

A failure (no answer, or a status other than 2xx) leaves the notification at the head of its queue with a
due time ``retry_delay(attempts)`` later: exponential from ``retry_base_s``, capped at ``retry_max_s``, and
never given up (CDSE retries three times and drops; a subscriber down for a day here gets everything once it
is back). The notifications behind it wait: order per subscription is kept. The outbox is the whole state, so a
restart loses nothing; a crash between a successful POST and its record sends that one notification again
(at-least-once), which the ``X-Refsys-Notification-Sequence`` header lets a subscriber recognise.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from shared.catalog.model import CatalogEntry
from shared.subscriptions.model import NOTIFICATION_CONTEXT, Status, Subscription, ack_id
from shared.subscriptions.store import Notification, SubscriptionStore

log = logging.getLogger(__name__)

SEQUENCE_HEADER = "X-Refsys-Notification-Sequence"
LEASE_S = 60.0
PARALLEL_SUBSCRIPTIONS = 8  # queues pushed at once by one drain


@dataclass(frozen=True)
class PushPolicy:
    timeout_s: float = 10.0
    retry_base_s: float = 10.0
    retry_max_s: float = 3600.0
    batch: int = 200  # notifications one drain sends a subscription at most (the tick sends the rest)
    private_endpoints: bool = True  # False: refuse endpoints on loopback, private, link-local addresses

    def retry_delay(self, attempts: int) -> float:
        """Wait after the ``attempts``-th failed attempt (1: the first)."""
        return min(self.retry_max_s, self.retry_base_s * 2 ** min(max(attempts - 1, 0), 32))


def not_public(url: str) -> str | None:
    """Why ``url`` is not on the public internet (a loopback, private or link-local address), or None.

    A subscriber names the URL the platform POSTs to: on a shared deployment it must not reach the
    cluster's own services or a cloud's metadata endpoint. A name that does not resolve is left to the push.
    """
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return None
    for address in sorted(addresses):
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if not ip.is_global:
            return f"NotificationEndpoint host {host} is {ip}, not a public address"
    return None


Post = Callable[..., Any]
Lookup = Callable[[str], CatalogEntry | None]
Render = Callable[[CatalogEntry, str], dict[str, Any]]  # the entry, the OData service root of its links


def notification_json(
    notification: Notification, entry: CatalogEntry | None, render: Render, root: str, with_ack: bool = False
) -> dict[str, Any]:
    """The notification as CDSE sends and reads it; ``value`` is the product as it is now in the catalog."""
    body: dict[str, Any] = {
        "@odata.context": NOTIFICATION_CONTEXT,
        "SubscriptionEvent": notification.event.value,
        "ProductId": notification.product_id,
        "ProductName": notification.product_name,
        "SubscriptionId": notification.subscription_id,
        "NotificationDate": notification.notification_date,
    }
    if with_ack:
        body["AckId"] = ack_id(notification.seq, notification.subscription_id)
    if entry is not None:
        body["value"] = render(entry, root)
    return body


class Pusher:
    def __init__(
        self, store: SubscriptionStore, lookup: Lookup, render: Render, policy: PushPolicy, post: Post = requests.post
    ) -> None:
        self.store, self.lookup, self.render, self.policy, self._post = store, lookup, render, policy, post

    def drain(self, subscription_ids: list[str] | None = None, budget_s: float | None = None) -> dict[str, int]:
        """Push what is due, for these subscriptions or every one with something due: several subscriptions at
        once (a slow endpoint holds up only its own queue), and nothing more is sent once ``budget_s`` has
        passed: what is left stays due and the next tick sends it (the caller's delivery must not time out)."""
        ids = self.store.with_due_pushes() if subscription_ids is None else list(dict.fromkeys(subscription_ids))
        if not ids:
            return {"pushed": 0, "push-failures": 0}
        deadline = None if budget_s is None else time.monotonic() + budget_s
        with ThreadPoolExecutor(max_workers=min(PARALLEL_SUBSCRIPTIONS, len(ids))) as pool:
            results = list(pool.map(lambda subscription_id: self.drain_one(subscription_id, deadline), ids))
        return {"pushed": sum(ok for ok, _ in results), "push-failures": sum(bad for _, bad in results)}

    def drain_one(self, subscription_id: str, deadline: float | None = None) -> tuple[int, int]:
        token = self.store.lease(subscription_id, LEASE_S)
        if token is None:  # another drain is pushing this subscription's queue
            return 0, 0
        sent = 0
        try:
            subscription = self.store.get(subscription_id)
            if subscription is None or not subscription.push or subscription.status is not Status.RUNNING:
                return 0, 0
            for notification in self.store.pending(subscription_id, self.policy.batch):
                if notification.due_at > self.store.now() or (deadline is not None and time.monotonic() > deadline):
                    break
                error = self._send(subscription, notification)
                if error is not None:
                    retry_at = self.store.now() + self.policy.retry_delay(notification.attempts + 1)
                    self.store.failed(notification, error, retry_at)
                    log.warning(
                        "push to subscription %s failed (attempt %d): %s",
                        subscription_id,
                        notification.attempts + 1,
                        error,
                    )
                    return sent, 1
                self.store.delivered(notification)
                sent += 1
                self.store.renew(subscription_id, token, LEASE_S)
            return sent, 0
        finally:
            self.store.release(subscription_id, token)

    def _send(self, subscription: Subscription, notification: Notification) -> str | None:
        if (
            not self.policy.private_endpoints
            and subscription.endpoint
            and (refused := not_public(subscription.endpoint))
        ):
            return refused  # checked again at each push: a name may resolve elsewhere since it was accepted
        entry = self.lookup(notification.product_id)
        body = notification_json(notification, entry, self.render, subscription.service_root)
        auth = (subscription.username, subscription.password or "") if subscription.username else None
        try:
            response = self._post(
                subscription.endpoint,
                json=body,
                auth=auth,
                headers={SEQUENCE_HEADER: str(notification.seq)},
                timeout=self.policy.timeout_s,
                allow_redirects=False,  # credentials are for this endpoint, not wherever it points
            )
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if not 200 <= response.status_code < 300:
            return f"HTTP {response.status_code} from the NotificationEndpoint"
        return None
