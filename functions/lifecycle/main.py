"""lifecycle: POST /tick (a PingSource) evicts the products whose EvictionDate has passed; the operators'
routes list what is due (dry run), evict one product, pin and unpin, show the retention rules. Operator role
needed when OIDC is on."""

from __future__ import annotations

import flask
import functions_framework

from shared.lifecycle import api
from shared.operations.http import Route, operator_api
from shared.runtime import configure_logging, tick_endpoint

configure_logging()
_on_tick = tick_endpoint("lifecycle", api.on_tick)
ROUTES: dict[str, Route] = dict.fromkeys(api.ROUTES, api.handle)


@functions_framework.http
def lifecycle(request: flask.Request) -> flask.Response:
    return operator_api(request, ROUTES, _on_tick)
