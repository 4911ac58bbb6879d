"""The event archive's routes of the operations API.

* ``GET /archive`` (selection as query parameters, ``after``, ``limit``) and ``GET /archive/count``;
* ``POST /replays`` (a selection, ``dryRun``, ``rate``) and ``POST /reprocessings`` (``filter``, ``dryRun``,
  ``rate``): a dry run answers ``{"matched": N, "byType": {...}}`` and changes nothing; otherwise the rerun
  runs inside the request and its progress streams back as JSON lines (its record first, ``{"published": n}``
  as it goes, its record again at the end); ``POST /<kind>/<id>/resume`` goes on with one cut short;
* ``GET /replays``, ``GET /replays/<id>`` (and the same for reprocessings).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import flask

from shared import ports
from shared.bus.publisher import SinkUnavailable
from shared.operations.archive import EventSelection, SelectionError
from shared.operations.http import ApiError, answer, json_body
from shared.operations.reruns import (
    Kind,
    Pace,
    Rerun,
    RerunStore,
    count_products,
    plan_replay,
    plan_reprocessing,
    product_filter,
    run,
)
from shared.settings import get_settings

PROGRESS_EVERY_S = 0.5
MAX_RATE = 10_000.0
MAX_PAGE = 1000
_COLLECTIONS = {"replays": Kind.REPLAY, "reprocessings": Kind.REPROCESSING}


@lru_cache(maxsize=1)
def reruns() -> RerunStore:
    return RerunStore(get_settings().catalog_url)


def handle(request: flask.Request, path: str) -> flask.Response:
    parts = path.strip("/").split("/")
    try:
        if parts[0] == "archive":
            return _archive(request, parts[1:])
        return _reruns(request, _COLLECTIONS[parts[0]], parts[1:])
    except SelectionError as exc:
        raise ApiError(400, "InvalidSelection", str(exc)) from None


def on_tick() -> dict[str, int]:
    """The archive's retention (the local broker applies it to its own queue)."""
    return {"archivePurged": ports.event_archive().purge(get_settings().archive_retention_days * 86400)}


def selection_from_query(args: Mapping[str, Any]) -> EventSelection:
    """``?type=A&type=B&source=..&since=..&until=..&subject=..&product=..&attribute=mission=S1&includeReplays=true``."""
    getlist = getattr(args, "getlist", lambda key: [args[key]] if key in args else [])
    attributes = {}
    for pair in getlist("attribute"):
        name, sep, value = str(pair).partition("=")
        if not sep:
            raise SelectionError(f"attribute: {pair!r} is not name=value")
        attributes[name] = value
    raw: dict[str, Any] = {"types": getlist("type"), "sources": getlist("source"), "attributes": attributes}
    for key in ("since", "until", "subject", "product", "includeReplays"):
        if key in args:
            raw[key] = args[key]
    return EventSelection.from_json(raw)


def _archive(request: flask.Request, rest: list[str]) -> flask.Response:
    _method(request, "GET")
    selection = selection_from_query(request.args)
    if rest == ["count"]:
        return answer(ports.event_archive().count(selection))
    if rest:
        raise ApiError(404, "NotFound", f"no route /archive/{'/'.join(rest)}; try /archive or /archive/count")
    after = _integer(request.args.get("after", "0"), "after", 0)
    limit = _integer(request.args.get("limit", "100"), "limit", 1, MAX_PAGE)
    events = ports.event_archive().select(selection, after=after, limit=limit)
    page: dict[str, Any] = {"events": [event.summary() for event in events]}
    if len(events) == limit:
        page["next"] = f"{request.path}?{_query_with(request.args, after=events[-1].seq)}"
    return answer(page)


def _reruns(request: flask.Request, kind: Kind, rest: list[str]) -> flask.Response:
    if not rest:
        if request.method == "GET":
            return answer({kind.value + "s": [r.to_json() for r in reruns().list() if r.kind is kind]})
        _method(request, "POST")
        return _start(kind, json_body(request))
    found = reruns().get(rest[0])
    if found is None or found.kind is not kind:
        raise ApiError(404, "NotFound", f"no {kind.value} {rest[0]!r}")
    if len(rest) == 1:
        _method(request, "GET")
        return answer(found.to_json())
    if rest[1:] == ["resume"]:
        _method(request, "POST")
        return _stream(found, _rate(json_body(request)))
    raise ApiError(404, "NotFound", f"no route {request.path}")


def _start(kind: Kind, body: dict[str, Any]) -> flask.Response:
    dry_run = body.pop("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ApiError(400, "InvalidBody", "dryRun: true or false is expected")
    rate = _rate(body)
    body.pop("rate", None)
    if kind is Kind.REPLAY:
        selection = EventSelection.from_json(body)
        if dry_run:
            return answer(ports.event_archive().count(selection, upto=ports.event_archive().last_seq()))
        return _stream(plan_replay(ports.event_archive(), reruns(), selection), rate)
    text = body.pop("filter", None)
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "InvalidBody", 'a reprocessing needs "filter": an OData $filter of the products')
    if body:
        raise ApiError(400, "InvalidBody", f"unknown field(s) {', '.join(sorted(body))}; known: filter, dryRun, rate")
    if dry_run:
        return answer(count_products(ports.catalog(), product_filter(text)))
    return _stream(plan_reprocessing(ports.catalog(), reruns(), text), rate)


def _stream(rerun: Rerun, rate: float) -> flask.Response:
    """Run what is left of ``rerun`` while streaming its progress (JSON lines)."""

    def lines() -> Iterator[str]:
        yield json.dumps(rerun.to_json()) + "\n"
        shown = time.monotonic()
        try:
            for published in run(
                rerun, ports.event_archive(), ports.catalog(), reruns(), ports.sink().publish, Pace(rate)
            ):
                if time.monotonic() - shown >= PROGRESS_EVERY_S:
                    shown = time.monotonic()
                    yield json.dumps({"published": published}) + "\n"
        except SinkUnavailable as exc:
            yield json.dumps({"error": f"the broker refused an event: {exc}; resume it later"}) + "\n"
        final = reruns().get(rerun.id)
        yield json.dumps((final or rerun).to_json()) + "\n"

    return flask.Response(flask.stream_with_context(lines()), mimetype="application/x-ndjson")


def _rate(body: Mapping[str, Any]) -> float:
    rate = body.get("rate", get_settings().replay_rate)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= MAX_RATE:
        raise ApiError(400, "InvalidBody", f"rate: events per second, a number above 0 and at most {MAX_RATE:g}")
    return float(rate)


def _integer(text: str, name: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "InvalidQuery", f"{name}: an integer is expected, got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else "")
        raise ApiError(400, "InvalidQuery", f"{name}: {bounds}, got {value}")
    return value


def _method(request: flask.Request, allowed: str) -> None:
    if request.method != allowed:
        raise ApiError(405, "MethodNotAllowed", f"{request.path} answers {allowed}, not {request.method}")


def _query_with(args: Any, **changes: Any) -> str:
    pairs = [(k, v) for k, v in args.items(multi=True) if k not in changes]
    return urlencode([*pairs, *changes.items()])
