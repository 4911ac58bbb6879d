"""catalog: ``product.ingested`` events (POST /events) are described and stored, replying
``product.cataloged``; GET /products answers catalog queries."""

import flask
import functions_framework

from events import ProductIngested
from shared import ports
from shared.catalog.api import handle_query
from shared.catalog.cataloging import Cataloguer
from shared.runtime import event_endpoint
from shared.settings import get_settings

_on_event = event_endpoint(
    "catalog",
    lambda event: Cataloguer(ports.object_store(), ports.catalog(), get_settings()).on_product_ingested(event),
    accepts=(ProductIngested,),
    processed=ports.processed_events,
)


@functions_framework.http
def catalog(request: flask.Request) -> flask.Response:
    if request.path.rstrip("/") in ("/events", "/healthz"):
        return _on_event(request)
    return handle_query(request, ports.catalog())
