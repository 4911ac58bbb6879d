"""scan: on each tick of its schedule (a PingSource), list the inbox, raise ``object.created`` for objects
no notification announced, and settle products left incomplete too long. Events go to K_SINK."""

import flask
import functions_framework

from shared.ingestion.scan import run_scan
from shared.runtime import tick_endpoint

_on_tick = tick_endpoint("scan", run_scan)


@functions_framework.http
def scan(request: flask.Request) -> flask.Response:
    return _on_tick(request)
