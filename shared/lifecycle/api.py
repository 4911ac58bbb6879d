"""The lifecycle function's HTTP routes (operator role), and the sweep its timer runs.

``GET /due[?limit=N]`` the dry run: what a sweep would evict now and what it keeps, and why ·
``POST /evictions {"product", "force"}`` evict one product now · ``GET /evictions`` the journal ·
``GET /pins`` · ``POST /pins {"product", "reason"}`` · ``DELETE /pins/<name or id>`` unpin ·
``GET /rules`` the retention rules in force.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import flask

from shared import ports
from shared.lifecycle.eviction import Lifecycle, LifecycleError
from shared.lifecycle.rules import retention_rules
from shared.operations.http import ApiError, answer, json_body
from shared.settings import get_settings

ROUTES = ("due", "evictions", "pins", "rules")
DUE_LIMIT_MAX = 10_000


@lru_cache(maxsize=1)
def lifecycle() -> Lifecycle:
    from shared.lifecycle.protection import JobInputReader
    from shared.lifecycle.state import LifecycleStore

    settings = get_settings()
    return Lifecycle(
        catalog=ports.catalog(),
        objects=ports.object_store(),
        state=LifecycleStore(settings.catalog_url),
        rules=retention_rules(settings.retention_rules_file),
        job_inputs=JobInputReader(settings.catalog_url),
        publish=lambda event: ports.sink().publish(event),
    )


def on_tick() -> dict[str, int]:
    return lifecycle().sweep(get_settings().lifecycle_max_evictions)


def handle(request: flask.Request, path: str) -> flask.Response:
    from shared.bus.publisher import SinkUnavailable

    parts = [part for part in path.split("/") if part]
    try:
        return _route(request, parts, request.method)
    except LifecycleError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    except SinkUnavailable as exc:
        # The eviction is journaled: the next tick (or the same request again) finishes it.
        message = f"evicted, not yet announced ({exc}); the next tick finishes it"
        raise ApiError(503, "SinkUnavailable", message) from None


def _route(request: flask.Request, parts: list[str], method: str) -> flask.Response:
    service = lifecycle()
    if parts == ["rules"]:
        _allow(method, "GET")
        return answer(service.rules.to_json())
    if parts == ["due"]:
        _allow(method, "GET")
        limit = _limit(request.args.get("limit"))
        due = service.due(limit)
        return answer({"count": len(due), "limit": limit, "due": [d.to_json() for d in due]})
    if parts == ["evictions"]:
        _allow(method, "GET", "POST")
        if method == "GET":
            return answer({"evictions": [e.to_json() for e in service.state.recent(_limit(request.args.get("limit")))]})
        body = json_body(request)
        return answer(service.evict(_product(body), force=_flag(body, "force")).to_json())
    if parts == ["pins"]:
        _allow(method, "GET", "POST")
        if method == "GET":
            return answer({"pins": [p.to_json() for p in service.state.pins()]})
        body = json_body(request)
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise ApiError(400, "InvalidRequest", "'reason' must be a string")
        return answer(service.pin(_product(body), reason).to_json())
    if len(parts) == 2 and parts[0] == "pins":
        _allow(method, "DELETE")
        return answer(service.unpin(parts[1]))
    raise ApiError(404, "NotFound", f"no route /{'/'.join(parts)}; the routes: {', '.join(ROUTES)}")


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here; use {' or '.join(allowed)}")


def _limit(text: str | None) -> int:
    if text is None:
        return 100
    if not text.isdigit() or not 1 <= int(text) <= DUE_LIMIT_MAX:
        raise ApiError(400, "InvalidRequest", f"limit must be an integer from 1 to {DUE_LIMIT_MAX}, not {text[:50]!r}")
    return int(text)


def _product(body: dict[str, Any]) -> str:
    product = body.get("product")
    if not isinstance(product, str) or not product:
        raise ApiError(400, "InvalidRequest", "'product' (a product name or id) is required")
    return product


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(400, "InvalidRequest", f"{name!r} must be true or false")
    return value
