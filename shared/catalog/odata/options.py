"""The system query options of ``GET Products``: ``$filter $orderby $top $skip $count $expand
$select $skiptoken`` (reference production-common §4.3, CDSE peers §1.1).

``$top``: default and maximum 1000, as the reference (``max-search-hits``); a larger value is
clamped, not refused, so scripts written for the reference keep working. ``$top=0`` with
``$count=true`` answers the count alone. ``$skip``: at most 1,000,000 (CDSE stops at 10,000); pages
beyond continue with the keyset ``$skiptoken`` of ``@odata.nextLink``, which has no depth limit.
Integers are ASCII digits only (``str.isdigit`` would take ``²``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.catalog.filters import Filter, Prop, SortKey
from shared.catalog.odata.errors import BadOption
from shared.catalog.odata.filter import parse_filter
from shared.catalog.paging import MAX_TOKEN, InvalidToken, decode_token, encode_token

DEFAULT_TOP = 1000
MAX_TOP = 1000
# Deep $skip pages read and drop every row before them; the keyset $skiptoken costs the same at any depth.
MAX_SKIP = 1_000_000
_DIGITS = re.compile(r"[0-9]{1,30}")
MAX_SKIPTOKEN = MAX_TOKEN


ORDERABLE: dict[str, Prop] = {
    "PublicationDate": Prop.PUBLICATION,
    "ModificationDate": Prop.MODIFICATION,
    "EvictionDate": Prop.EVICTION,
    "OriginDate": Prop.ORIGIN,
    "ContentDate/Start": Prop.START,
    "ContentDate/End": Prop.END,
    "ContentLength": Prop.CONTENT_LENGTH,
    "Name": Prop.NAME,
    "Id": Prop.ID,
    "ContentType": Prop.CONTENT_TYPE,
}
EXPANDABLE = ("Attributes", "Quicklooks", "Assets")  # Assets: CDSE's (quicklooks with download links)
SELECTABLE = (
    "Id",
    "Name",
    "ContentType",
    "ContentLength",
    "OriginDate",
    "PublicationDate",
    "ModificationDate",
    "EvictionDate",
    "Online",
    "ProductionType",
    "Checksum",
    "ContentDate",
    "Footprint",
    "GeoFootprint",
)
# Pollers send the same filter again and again: parsed once (the result is immutable; errors are not cached).
_parse_filter = lru_cache(maxsize=512)(parse_filter)

KNOWN = ("$filter", "$orderby", "$top", "$skip", "$count", "$expand", "$select", "$skiptoken", "$format")


@dataclass(frozen=True)
class ProductsQuery:
    where: Filter | None = None
    order: tuple[SortKey, ...] = ()
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    expand: tuple[str, ...] = ()
    select: tuple[str, ...] | None = None  # None: every property
    after: tuple[Any, ...] | None = None  # keyset of the last row of the previous page


def parse_options(args: Mapping[str, str], *, collection: bool = True) -> ProductsQuery:
    """The query options of a request; BadOption/BadFilter (400) for anything wrong."""
    unknown = sorted(k for k in args if k.startswith("$") and k not in KNOWN)
    if unknown:
        raise BadOption(f"unknown query option(s) {', '.join(unknown)}; supported: {', '.join(KNOWN)}")
    if not collection:
        extra = sorted(k for k in args if k in ("$filter", "$orderby", "$top", "$skip", "$count", "$skiptoken"))
        if extra:
            raise BadOption(f"{', '.join(extra)} apply to the Products collection, not to one product")
    if args.get("$format", "json").lower() not in ("json", "application/json"):
        raise BadOption("$format: only json is served")
    where = _parse_filter(args["$filter"]) if "$filter" in args else None
    order = _orderby(args.get("$orderby"))
    top = min(_non_negative(args, "$top", DEFAULT_TOP), MAX_TOP)
    skip = _non_negative(args, "$skip", 0)
    if skip > MAX_SKIP:
        raise BadOption(f"$skip is at most {MAX_SKIP}, got {skip}; page further with @odata.nextLink")
    count = _boolean(args.get("$count", "false"), "$count")
    after = decode_skiptoken(args["$skiptoken"], order) if "$skiptoken" in args else None
    return ProductsQuery(
        where, order, top, skip, count, _expand(args.get("$expand")), _select(args.get("$select")), after
    )


def _non_negative(args: Mapping[str, str], option: str, default: int) -> int:
    if option not in args:
        return default
    text = args[option].strip()
    if _DIGITS.fullmatch(text) is None:  # also bounds int()'s work on a million digits
        raise BadOption(f"{option} must be a non-negative integer (ASCII digits), got {args[option][:40]!r}")
    return int(text)


def _boolean(text: str, option: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise BadOption(f"{option} must be true or false, got {text!r}")
    return text.lower() == "true"


def _orderby(text: str | None) -> tuple[SortKey, ...]:
    if text is None or not text.strip():
        return (SortKey(Prop.PUBLICATION),)  # the reference: oldest publication first
    keys: list[SortKey] = []
    for item in text.split(","):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise BadOption(f"$orderby item {item.strip()!r} is not '<property> [asc|desc]'")
        if words[0] not in ORDERABLE:
            raise BadOption(f"$orderby on {words[0]!r} is not supported; orderable: {', '.join(ORDERABLE)}")
        prop = ORDERABLE[words[0]]
        if any(k.prop is prop for k in keys):
            raise BadOption(f"$orderby names {words[0]} twice")
        keys.append(SortKey(prop, descending=len(words) == 2 and words[1].lower() == "desc"))
    return tuple(keys)


def _expand(text: str | None) -> tuple[str, ...]:
    if text is None or not text.strip():
        return ()
    items = tuple(item.strip().removesuffix("()") for item in text.split(","))
    for item in items:
        if item not in EXPANDABLE:
            raise BadOption(f"$expand {item!r} is not supported; expandable: {', '.join(EXPANDABLE)}")
    return items


def _select(text: str | None) -> tuple[str, ...] | None:
    if text is None or not text.strip() or text.strip() == "*":
        return None
    items = tuple(item.strip() for item in text.split(","))
    for item in items:
        if item not in SELECTABLE:
            raise BadOption(f"$select {item!r} is not a Product property; selectable: {', '.join(SELECTABLE)}")
    return items


# --- keyset tokens: the sort key values of the last row of a page (shared with STAC: paging.py) ---

encode_skiptoken = encode_token


def decode_skiptoken(token: str, order: tuple[SortKey, ...]) -> tuple[Any, ...]:
    try:
        return decode_token(token, order)
    except InvalidToken as exc:
        if exc.reason == "foreign":
            raise BadOption("$skiptoken is not one this service issued; follow @odata.nextLink as given") from None
        if exc.reason == "order":
            raise BadOption("$skiptoken belongs to another $orderby; follow @odata.nextLink as given") from None
        raise BadOption("$skiptoken is damaged; follow @odata.nextLink as given") from None
