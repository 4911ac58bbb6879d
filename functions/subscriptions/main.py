"""subscriptions: ``product.cataloged`` and ``product.evicted`` events (POST /events) are matched against every
subscription's filter and queued (created, modified, deleted), then pushed to the subscribers' endpoints at once;
POST /tick (a PingSource, every minute) pushes what is due again and trims the queues. The API that manages
subscriptions is the odata function's ``/odata/v1/Subscriptions``."""

from __future__ import annotations

import flask
import functions_framework

from events import ProductCataloged, ProductEvicted
from shared.catalog.store import CatalogUnavailable
from shared.runtime import RetryLater, error_response, event_endpoint, tick_endpoint
from shared.subscriptions.service import subscription_service


def _on(event: ProductCataloged | ProductEvicted) -> None:
    try:
        subscription_service().on_event(event)  # idempotent: one outbox row per subscription, product, event, version
    except CatalogUnavailable as exc:
        raise RetryLater(f"catalog unavailable: {exc}") from exc


_on_event = event_endpoint("subscriptions", _on, accepts=(ProductCataloged, ProductEvicted))
_on_tick = tick_endpoint("subscriptions", lambda: subscription_service().on_tick())


@functions_framework.http
def subscriptions(request: flask.Request) -> flask.Response:
    path = request.path.rstrip("/")
    if path in ("/events", "/healthz"):
        return _on_event(request)
    if path == "/tick":
        return _on_tick(request)
    return error_response(404, "NotFound", f"no route {path}: POST /events (CloudEvents) or /tick")
