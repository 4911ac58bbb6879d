"""prepare: a cataloged product -> the processing jobs it creates or completes (reply ``job.ready``);
a tick of its timer (POST /timer, a PingSource) -> the jobs whose wait is over, posted to K_SINK."""

import flask
import functions_framework

from events import ProductCataloged
from shared import ports
from shared.processing.service import on_cataloged, on_timer
from shared.runtime import event_endpoint, tick_endpoint

_on_event = event_endpoint("prepare", on_cataloged, accepts=(ProductCataloged,), processed=ports.processed_events)
_on_tick = tick_endpoint("prepare", on_timer)


@functions_framework.http
def prepare(request: flask.Request) -> flask.Response:
    if request.path.rstrip("/") == "/timer":
        return _on_tick(request)
    return _on_event(request)
