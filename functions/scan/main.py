"""scan: on each tick of its schedule (a PingSource), list the inbox, raise ``object.created`` for objects
no notification announced, and settle products left incomplete too long. Events go to K_SINK."""

import flask
import functions_framework

from shared.ingestion.scan_endpoint import scan_inbox


@functions_framework.http
def scan(request: flask.Request) -> flask.Response:
    return scan_inbox(request)
