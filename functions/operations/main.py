"""operations: the operators' HTTP API — dead letters (/deadletters), the event archive (/archive),
replays (/replays) and reprocessing (/reprocessings); POST /tick (a PingSource) restarts the dead letters
the restart rules scheduled and applies the archive's retention. Operator role needed when OIDC is on."""

from __future__ import annotations

import flask
import functions_framework

from shared.operations import deadletters_api, replay_api
from shared.operations.http import Route, operator_api
from shared.runtime import configure_logging, tick_endpoint

configure_logging()
ROUTES: dict[str, Route] = {
    "deadletters": deadletters_api.handle,
    "archive": replay_api.handle,
    "replays": replay_api.handle,
    "reprocessings": replay_api.handle,
}


def _tick() -> dict[str, int]:
    return {**deadletters_api.on_tick(), **replay_api.on_tick()}


_on_tick = tick_endpoint("operations", _tick)


@functions_framework.http
def operations(request: flask.Request) -> flask.Response:
    return operator_api(request, ROUTES, _on_tick)
