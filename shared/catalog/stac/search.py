"""Item search parameters (GET query string or POST JSON body) -> a catalog ``Selection``.

``bbox``, ``intersects``, ``datetime``, ``ids``, ``collections`` and ``filter`` (with ``filter-lang``
cql2-text or cql2-json) each become ``filters`` nodes, all of which must hold; ``sortby`` becomes
sort keys, ``limit`` the page size (default 10, at most 1000: larger values are clamped) and
``token`` the keyset after which the page starts (``shared.catalog.paging``): a page deep in the
results costs what the first one does. ``fields`` shapes the items (``apply_fields``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.catalog.filters import And, Compare, Filter, In, Prop, SortKey, Spatial
from shared.catalog.paging import InvalidToken, decode_token
from shared.catalog.spatial import BadGeometry, from_bbox, from_geojson, spatial_filter
from shared.catalog.stac import cql2
from shared.catalog.stac.cql2 import BadCql2

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
MAX_IDS = 1000
SORTABLE = cql2.PROPERTIES  # every core property a filter takes also sorts
DEFAULT_ORDER = (SortKey(Prop.START, descending=True),)  # newest first, as STAC APIs answer
_DIGITS = re.compile(r"[0-9]{1,30}")


class BadSearch(ValueError):
    """A search parameter that is wrong (the message names it)."""


@dataclass(frozen=True)
class Fields:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Search:
    where: Filter | None
    order: tuple[SortKey, ...]
    limit: int
    after: tuple[Any, ...] | None
    fields: Fields | None
    parameters: dict[str, Any] = field(default_factory=dict)  # as received, for the next page's link


def parse_get(args: Mapping[str, str], collections: Callable[[list[str]], Filter]) -> Search:
    """A search from a GET query string (``filter-lang`` defaults to cql2-text)."""
    body: dict[str, Any] = {}
    for name in ("bbox", "ids", "collections"):
        if name in args:
            body[name] = [part.strip() for part in args[name].split(",") if part.strip()]
    if "bbox" in body:
        try:
            body["bbox"] = [float(v) for v in body["bbox"]]
        except ValueError:
            raise BadSearch(f"bbox is 4 numbers west,south,east,north, got {args['bbox'][:80]!r}") from None
    if "intersects" in args:
        try:
            body["intersects"] = json.loads(args["intersects"])
        except ValueError:
            raise BadSearch("intersects is a GeoJSON geometry (JSON text)") from None
    for name in ("datetime", "filter", "filter-lang", "token", "limit"):
        if name in args:
            body[name] = args[name]
    if "sortby" in args:
        body["sortby"] = [_sort_item(part) for part in args["sortby"].split(",") if part.strip()]
    if "fields" in args:
        parts = [p.strip() for p in args["fields"].split(",") if p.strip()]
        body["fields"] = {
            "include": [p.lstrip("+") for p in parts if not p.startswith("-")],
            "exclude": [p[1:] for p in parts if p.startswith("-")],
        }
    return _parse(body, collections, "cql2-text", dict(args))


def parse_post(body: Any, collections: Callable[[list[str]], Filter]) -> Search:
    """A search from a POST JSON body (``filter-lang`` defaults to cql2-json)."""
    if not isinstance(body, dict):
        raise BadSearch("POST /search takes a JSON object of search parameters")
    return _parse(body, collections, "cql2-json", body)


def _sort_item(text: str) -> dict[str, str]:
    # "+datetime" arrives as " datetime" when the client did not encode the plus.
    text = text.strip()
    if text.startswith("-"):
        return {"field": text[1:], "direction": "desc"}
    return {"field": text.lstrip("+"), "direction": "asc"}


def _parse(
    body: dict[str, Any], collections: Callable[[list[str]], Filter], default_lang: str, parameters: dict[str, Any]
) -> Search:
    if "query" in body:
        raise BadSearch("the query extension is not supported; use filter (CQL2)")
    conditions: list[Filter] = []
    if "bbox" in body and "intersects" in body:
        raise BadSearch("bbox and intersects cannot be given together")
    try:
        if body.get("bbox") is not None:
            conditions.append(_bbox(body["bbox"]))
        if body.get("intersects") is not None:
            conditions.append(spatial_filter("intersects", from_geojson(body["intersects"], "intersects")))
    except BadGeometry as exc:
        raise BadSearch(str(exc)) from None
    if body.get("datetime") is not None:
        conditions.append(datetime_filter(body["datetime"]))
    if body.get("ids") is not None:
        ids = _strings(body["ids"], "ids")
        if len(ids) > MAX_IDS:
            raise BadSearch(f"ids takes at most {MAX_IDS} ids")
        conditions.append(In(Prop.NAME, tuple(ids)))
    if body.get("collections") is not None:
        conditions.append(collections(_strings(body["collections"], "collections")))
    if body.get("filter") is not None:
        conditions.append(_filter(body["filter"], body.get("filter-lang", default_lang), collections))
    order = sort_keys(body.get("sortby"))
    after = None
    if body.get("token") is not None:
        if not isinstance(body["token"], str):
            raise BadSearch("token is the text of a next link")
        try:
            after = decode_token(body["token"], order)
        except InvalidToken as exc:
            reason = {"order": "belongs to another sortby", "foreign": "is not one this service issued"}
            raise BadSearch(f"token {reason.get(exc.reason, 'is damaged')}; follow the next link as given") from None
    where: Filter | None = None
    if conditions:
        where = conditions[0] if len(conditions) == 1 else And(tuple(conditions))
    return Search(where, order, _limit(body.get("limit")), after, _fields(body.get("fields")), parameters)


def _strings(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadSearch(f"{name} is a list of strings")
    return value


def _bbox(value: Any) -> Spatial:
    if not isinstance(value, list):
        raise BadSearch("bbox is 4 numbers west,south,east,north")
    return spatial_filter("intersects", from_bbox(value, "bbox"))


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadSearch(f"limit is a positive integer, got {str(value)[:40]!r}")
    return min(value, MAX_LIMIT)


def _filter(value: Any, lang: Any, collections: Callable[[list[str]], Filter]) -> Filter:
    try:
        if lang == "cql2-text":
            if not isinstance(value, str):
                raise BadSearch("a cql2-text filter is a string (send JSON filters with filter-lang=cql2-json)")
            return cql2.parse_text(value, collections)
        if lang == "cql2-json":
            if isinstance(value, str):  # GET: the JSON as text
                try:
                    value = json.loads(value)
                except ValueError:
                    raise BadSearch("a cql2-json filter is a JSON object") from None
            return cql2.parse_json(value, collections)
    except BadCql2 as exc:
        raise BadSearch(f"filter: {exc}") from None
    raise BadSearch(f"filter-lang {lang!r} is not supported; use cql2-text or cql2-json")


def sort_keys(value: Any) -> tuple[SortKey, ...]:
    if value is None or value == []:
        return DEFAULT_ORDER
    if isinstance(value, str):
        value = [_sort_item(part) for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise BadSearch('sortby is a list of {"field": ..., "direction": "asc"|"desc"}')
    keys: list[SortKey] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("field"), str):
            raise BadSearch('sortby is a list of {"field": ..., "direction": "asc"|"desc"}')
        name = item["field"].removeprefix("properties.")
        direction = str(item.get("direction", "asc")).lower()
        if name not in SORTABLE:
            raise BadSearch(f"sortby {item['field']!r} is not supported; sortable: {', '.join(SORTABLE)}")
        if direction not in ("asc", "desc"):
            raise BadSearch(f"sortby direction {direction!r} is asc or desc")
        prop = SORTABLE[name]
        if any(k.prop is prop for k in keys):
            raise BadSearch(f"sortby names {name} twice (datetime and start_datetime are the same key)")
        keys.append(SortKey(prop, descending=direction == "desc"))
    return tuple(keys)


def _fields(value: Any) -> Fields | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadSearch('fields is {"include": [...], "exclude": [...]}')
    include, exclude = value.get("include") or [], value.get("exclude") or []
    if not all(isinstance(v, str) for v in [*include, *exclude]):
        raise BadSearch("fields include and exclude are lists of property paths")
    return Fields(tuple(include), tuple(exclude))


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise BadSearch(f"datetime {text!r} is not RFC 3339 (e.g. 2024-05-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def datetime_filter(value: Any) -> Filter:
    """``datetime``: an instant, or an interval ``start/end`` with ``..`` (or nothing) for an open
    end. A product matches when its validity [start, end] meets it (a product without validity never)."""
    if not isinstance(value, str) or not value.strip():
        raise BadSearch("datetime is an RFC 3339 instant or interval start/end ('..' for open)")
    if "/" in value:
        start_text, _, end_text = value.partition("/")
        low = None if start_text.strip() in ("", "..") else _instant(start_text)
        high = None if end_text.strip() in ("", "..") else _instant(end_text)
        if low is None and high is None:
            raise BadSearch("datetime ../.. is open at both ends; leave datetime out instead")
        if low is not None and high is not None and low > high:
            raise BadSearch(f"datetime {value!r} starts after it ends")
    else:
        low = high = _instant(value)
    parts: list[Filter] = []
    if high is not None:
        parts.append(Compare(Prop.START, "le", high))
    if low is not None:
        parts.append(Compare(Prop.END, "ge", low))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


# Kept whatever fields asks: without them the item is no item (id, type, links, stac_version).
_ALWAYS = ("id", "type", "stac_version", "links")


def apply_fields(item: dict[str, Any], fields: Fields | None) -> dict[str, Any]:
    """The item with only the included paths (and those always kept), then without the excluded ones."""
    if fields is None:
        return item
    result: dict[str, Any]
    if fields.include:
        result = {key: item[key] for key in _ALWAYS if key in item}
        for path in fields.include:
            _copy(item, result, path.split("."))
    else:
        result = json.loads(json.dumps(item))
    for path in fields.exclude:
        if path not in _ALWAYS and path not in fields.include:
            _remove(result, path.split("."))
    return result


def _copy(source: dict[str, Any], target: dict[str, Any], path: list[str]) -> None:
    if path[0] not in source:
        return
    if len(path) == 1:
        target[path[0]] = source[path[0]]
        return
    if isinstance(source[path[0]], dict):
        _copy(source[path[0]], target.setdefault(path[0], {}), path[1:])


def _remove(target: dict[str, Any], path: list[str]) -> None:
    if path[0] not in target:
        return
    if len(path) == 1:
        del target[path[0]]
    elif isinstance(target[path[0]], dict):
        _remove(target[path[0]], path[1:])
