"""Keyset page tokens shared by the query APIs (OData ``$skiptoken``, STAC ``token``).

A token holds the sort keys of the query and the values of those keys in the last row of the page
(``filters.total_order``: the keys asked for, then the name). The next page is the rows after those
values (``Selection.after``), so a page deep in the results costs what the first one does. The
token carries no filter: the client sends the same query again with the token.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from shared.catalog.filters import SortKey, total_order
from shared.catalog.model import format_utc, parse_utc

MAX_TOKEN = 4096  # characters: a token holds a few sort values and a product name


class InvalidToken(ValueError):
    """A token this service did not issue (``reason`` "foreign"), issued for another sort order
    ("order"), or with a value of the wrong type ("damaged")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fits_int64(value: int) -> bool:
    return -(2**63) <= value < 2**63


def _keys(order: tuple[SortKey, ...]) -> list[str]:
    return [f"{k.prop.value}{'-' if k.descending else '+'}" for k in total_order(order)]


def encode_token(order: tuple[SortKey, ...], values: tuple[Any, ...]) -> str:
    """The token after a row whose ``total_order(order)`` values are ``values``."""
    encoded = [format_utc(v) if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"k": _keys(order), "v": encoded}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, order: tuple[SortKey, ...]) -> tuple[Any, ...]:
    """The sort values a token of ``order`` holds; InvalidToken when it is not such a token."""
    full = total_order(order)
    try:
        if len(token) > MAX_TOKEN:
            raise ValueError(token)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)  # RecursionError on "[[[[...": not a token of ours either
        keys, values = data["k"], data["v"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):
        raise InvalidToken("foreign") from None
    if keys != _keys(order) or not isinstance(values, list) or len(values) != len(full):
        raise InvalidToken("order")
    decoded: list[Any] = []
    for key, value in zip(full, values, strict=True):
        expected = key.prop.python_type
        try:
            if expected is datetime:
                decoded.append(parse_utc(value))
            elif (
                isinstance(value, expected)
                and not isinstance(value, bool)
                and (not isinstance(value, int) or _fits_int64(value))
            ):
                decoded.append(value)
            else:
                raise TypeError(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a date out of range once in UTC
            raise InvalidToken("damaged") from None
    return tuple(decoded)


__all__ = ["MAX_TOKEN", "InvalidToken", "decode_token", "encode_token"]
