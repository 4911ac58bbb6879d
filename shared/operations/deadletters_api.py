"""The dead letters' routes of the operations API (/deadletters).

    GET    /deadletters                 the letters, oldest first: filters as query parameters, limit/offset
    GET    /deadletters/count           how many, grouped by function, type and error code (same filters)
    GET    /deadletters/{id}            one letter: the whole event, the decoded error, its history
    DELETE /deadletters/{id}            put it aside (kept under deleted/)
    POST   /deadletters/{id}/restart    publish the original event again
    POST   /deadletters/{id}/resubmit   publish it corrected: {"data"|"dataPatch": ..., "attributes": {...}}
    POST   /deadletters/restart         batch: {"ids": [...]} or {"filter": {...}}
    POST   /deadletters/delete          batch, the same way

Filters: state (pending, restarted, deleted), function, type (glob), errorCode (422, 0, 5xx), error (text),
subject (glob on the subject and the product names of the data), since, until (ISO times), malformed.
Batches answer as the reference's Request Parking Lot does: {"action", "idsWithSuccess", "idsSkipped"}.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import flask
from pydantic import ValidationError

from shared import ports
from shared.operations.deadletters import (
    DeadLetters,
    InvalidEdit,
    LetterFilter,
    LetterNotFound,
    NotRestartable,
    RestartRules,
    load_rules,
    local_services,
)
from shared.operations.http import ApiError, answer, json_body
from shared.settings import get_settings

PAGE_DEFAULT, PAGE_MAX = 100, 1000
BATCH_ACTIONS = ("restart", "delete")


@lru_cache(maxsize=1)
def _rules() -> RestartRules:
    return load_rules(get_settings().deadletter_rules_file)


def letters() -> DeadLetters:
    """The dead letters of this process's settings (what the deadletter and operations functions use)."""
    return DeadLetters(
        ports.object_store(), get_settings().deadletter_bucket, rules=_rules(), services=local_services()
    )


def handle(request: flask.Request, path: str) -> flask.Response:
    parts = [part for part in path.split("/") if part][1:]  # after "deadletters"
    method = request.method
    if not parts:
        _allow(method, "GET")
        return _list(request)
    if parts == ["count"]:
        _allow(method, "GET")
        return answer(letters().count(_filter(_query(request, ()))))
    if len(parts) == 1 and parts[0] in BATCH_ACTIONS:
        _allow(method, "POST")
        return _batch(parts[0], json_body(request))
    if len(parts) == 1:
        _allow(method, "GET", "DELETE")
        if method == "GET":
            state = _filter(_query(request, (), only=("state",))).state
            return answer(_get(parts[0], state).detail())
        store = letters()
        store.delete(_get(parts[0]))
        return answer({"id": parts[0], "state": "deleted"})
    if len(parts) == 2 and parts[1] in ("restart", "resubmit"):
        _allow(method, "POST")
        return _restart(parts[0]) if parts[1] == "restart" else _resubmit(parts[0], json_body(request))
    raise ApiError(404, "NotFound", f"no route {path}; see GET /deadletters")


def on_tick() -> dict[str, int]:
    """Restart the letters whose restart rule's wait is over (the operations timer, every minute)."""
    return letters().restart_due(ports.sink)


def _list(request: flask.Request) -> flask.Response:
    params = _query(request, ("limit", "offset"))
    limit = _int(request.args.get("limit"), "limit", PAGE_DEFAULT, 1, PAGE_MAX)
    offset = _int(request.args.get("offset"), "offset", 0, 0, None)
    chosen = letters().select(_filter(params))
    page = chosen[offset : offset + limit]
    body: dict[str, Any] = {"total": len(chosen), "offset": offset, "items": [x.summary() for x in page]}
    if offset + limit < len(chosen):
        body["nextOffset"] = offset + limit
    return answer(body)


def _get(letter_id: str, state: Any = "pending") -> Any:
    try:
        return letters().get(letter_id, state)
    except LetterNotFound as exc:
        raise ApiError(404, "NotFound", str(exc)) from None


def _restart(letter_id: str) -> flask.Response:
    letter = _get(letter_id)
    try:
        event_id = letters().restart(letter, _sink())
    except NotRestartable as exc:
        raise ApiError(409, "NotRestartable", f"dead letter {letter_id}: {exc}") from None
    except Exception as exc:
        _unavailable(exc)
        raise
    return answer({"id": letter_id, "state": "restarted", "eventId": event_id})


def _resubmit(letter_id: str, body: dict[str, Any]) -> flask.Response:
    letter = _get(letter_id)
    if not body:
        raise ApiError(400, "InvalidEdit", "the body names the edits: data or dataPatch, and/or attributes")
    try:
        event_id = letters().resubmit(letter, body, _sink())
    except InvalidEdit as exc:
        raise ApiError(400, "InvalidEdit", f"dead letter {letter_id}: {exc}") from None
    except Exception as exc:
        _unavailable(exc)
        raise
    return answer({"id": letter_id, "state": "restarted", "eventId": event_id})


def _batch(action: str, body: dict[str, Any]) -> flask.Response:
    unknown = set(body) - {"ids", "filter"}
    if unknown or ("ids" in body) == ("filter" in body):
        usage = f'POST /deadletters/{action} takes {{"ids": [...]}} or {{"filter": {{...}}}}'
        raise ApiError(400, "InvalidBody", usage)
    ids = body.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise ApiError(400, "InvalidBody", "ids must be a list of dead letter ids")
    where = None
    if "filter" in body:
        if not isinstance(body["filter"], dict):
            raise ApiError(400, "InvalidFilter", 'filter must be an object, e.g. {"errorCode": "5xx"}')
        where = _filter(body["filter"])
        if where.state != "pending":
            message = f"only pending letters can be {action}ed; the filter says {where.state}"
            raise ApiError(400, "InvalidFilter", message)
    store = letters()
    if action == "restart":
        sink = _sink()
        outcome = store.batch(action, lambda letter: store.restart(letter, sink), ids=ids, where=where)
    else:
        outcome = store.batch(action, store.delete, ids=ids, where=where)
    return answer({"entity": "DeadLetter", **outcome.as_json()})


def _query(request: flask.Request, extra: tuple[str, ...], only: tuple[str, ...] | None = None) -> dict[str, str]:
    params = {key: request.args.getlist(key) for key in request.args}
    allowed = set(only) if only is not None else {*LetterFilter.model_fields, *_aliases(), *extra}
    for key, values in params.items():
        if key not in allowed:
            raise ApiError(400, "InvalidFilter", f"unknown parameter {key!r}; the filters: {', '.join(_names())}")
        if len(values) > 1:
            raise ApiError(400, "InvalidFilter", f"parameter {key!r} given {len(values)} times")
    return {key: values[0] for key, values in params.items() if key not in extra}


def _filter(params: dict[str, Any]) -> LetterFilter:
    try:
        return LetterFilter.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'filter'}: {e['msg']}" for e in exc.errors())
        raise ApiError(400, "InvalidFilter", problems) from None


def _aliases() -> list[str]:
    return [f.alias for f in LetterFilter.model_fields.values() if f.alias]


def _names() -> list[str]:
    return [f.alias or name for name, f in LetterFilter.model_fields.items()]


def _int(value: str | None, name: str, default: int, low: int, high: int | None) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, "InvalidParameter", f"{name} must be an integer, not {value!r}") from None
    if number < low or (high is not None and number > high):
        raise ApiError(400, "InvalidParameter", f"{name} must be in [{low}, {high if high else '...'}]")
    return number


def _allow(method: str, *methods: str) -> None:
    if method not in methods:
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here; use {' or '.join(methods)}")


def _sink() -> Any:
    try:
        return ports.sink()
    except RuntimeError as exc:
        raise ApiError(503, "SinkUnavailable", str(exc)) from None


def _unavailable(exc: Exception) -> None:
    from shared.bus.publisher import SinkUnavailable

    if isinstance(exc, SinkUnavailable):
        raise ApiError(503, "SinkUnavailable", f"the broker did not take the event; the letter is kept: {exc}") from exc
