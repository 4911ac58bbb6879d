"""catalog: ``product.ingested`` events (POST /events) are described and stored, replying
``product.cataloged``; ``job.completed`` events record their outputs' lineage; GET /products answers
catalog queries."""

from functools import lru_cache

import flask
import functions_framework

from events import EventData, ProductCataloged, ProductIngested
from events.processing import JobCompleted
from shared import ports
from shared.catalog.api import handle_query, json_errors
from shared.processing.lineage import LineageStore, mark_produced
from shared.runtime import event_endpoint
from shared.security.access import VIEWER, access_policy
from shared.settings import get_settings


@lru_cache(maxsize=1)
def _lineage() -> LineageStore:
    return LineageStore(get_settings().catalog_url)


def _on(event: ProductIngested | JobCompleted) -> EventData | None:
    # A run's event and its outputs' ingestion come in either order: each marks what the other left.
    if isinstance(event, JobCompleted):
        _lineage().record(event)
        for output in event.outputs:
            mark_produced(ports.catalog(), _lineage(), output.name)
        return None
    from shared.catalog.cataloging import Cataloguer  # boto3, shapely: events only, not the queries

    reply = Cataloguer(ports.object_store(), ports.catalog(), get_settings()).on_product_ingested(event)
    if isinstance(reply, ProductCataloged):
        mark_produced(ports.catalog(), _lineage(), reply.product.name)
    return reply


_on_event = event_endpoint("catalog", _on, accepts=(ProductIngested, JobCompleted), processed=ports.processed_events)


@functions_framework.http
@json_errors
def catalog(request: flask.Request) -> flask.Response:
    if request.path.rstrip("/") in ("/events", "/healthz"):
        return _on_event(request)
    return access_policy().refuse(request, VIEWER) or handle_query(request, ports.catalog())
