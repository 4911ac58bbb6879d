"""ingest: an object created in the inbox -> the product verified and moved to its family bucket
(reply ``product.ingested``), still incomplete (202), or quarantined (reply ``product.rejected``)."""

import flask
import functions_framework

from events import ObjectCreated
from shared import ports
from shared.ingestion.inbox import Inbox
from shared.runtime import event_endpoint
from shared.settings import get_settings

_view = event_endpoint(
    "ingest",
    lambda event: Inbox(ports.object_store(), get_settings(), ports.inbox_ledger()).on_object_created(event),
    accepts=(ObjectCreated,),
    processed=ports.processed_events,
)


@functions_framework.http
def ingest(request: flask.Request) -> flask.Response:
    return _view(request)
