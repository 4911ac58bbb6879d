"""Trigger filters, evaluated like Knative Eventing does.

* Legacy ``spec.filter.attributes``: every listed attribute must be present and equal; an empty
  value means "present with any non-empty value" (Knative's ``TriggerAnyFilter``); no attributes
  matches everything.
* ``spec.filters`` (CloudEvents Subscriptions API dialects): the list is ANDed; each entry holds
  exactly one dialect (like the Knative webhook): ``exact``/``prefix``/``suffix`` (a map of
  attribute -> string, every pair must hold; a missing attribute never matches), ``all`` (list),
  ``any`` (list), ``not`` (one entry). ``cesql`` is refused at load time (no CESQL engine here).
* When ``filters`` is non-empty it wins over ``filter``.

Filters only see context attributes and extensions, never ``data``. Values compare as strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
# Knative's webhook rule for attribute names in filters.
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")


class FilterError(ValueError):
    """A Trigger filter is malformed."""


class UnsupportedFilter(FilterError):
    """A valid Knative filter dialect that the local broker cannot evaluate (``cesql``)."""


class FilteredTrigger(Protocol):
    @property
    def filter_attributes(self) -> Mapping[str, str] | None: ...

    @property
    def filters(self) -> Sequence[Mapping[str, Any]]: ...


def as_string(value: Any) -> str:
    """Stringify an attribute or filter value the way CloudEvents renders it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(trigger: FilteredTrigger, attributes: Mapping[str, Any]) -> bool:
    """True when an event with these context attributes passes the Trigger's filter."""
    if trigger.filters:
        return all(_evaluate(expr, attributes) for expr in trigger.filters)
    if trigger.filter_attributes is not None:
        return _legacy(trigger.filter_attributes, attributes)
    return True


def _legacy(wanted: Mapping[str, str], attributes: Mapping[str, Any]) -> bool:
    for name, value in wanted.items():
        actual, expected = as_string(attributes.get(name)), as_string(value)
        if name not in attributes or actual == "":
            return False
        if expected != "" and expected != actual:
            return False
    return True


def _evaluate(expr: Mapping[str, Any], attributes: Mapping[str, Any]) -> bool:
    dialect, arg = _single_dialect(expr)
    if dialect in ("exact", "prefix", "suffix"):
        for name, value in arg.items():
            if name not in attributes:
                return False
            actual, wanted = as_string(attributes[name]), as_string(value)
            ok = {
                "exact": actual == wanted,
                "prefix": actual.startswith(wanted),
                "suffix": actual.endswith(wanted),
            }[dialect]
            if not ok:
                return False
        return True
    if dialect == "all":
        return all(_evaluate(sub, attributes) for sub in arg)
    if dialect == "any":
        return any(_evaluate(sub, attributes) for sub in arg)
    if dialect == "not":
        return not _evaluate(arg, attributes)
    raise UnsupportedFilter(f"filter dialect {dialect!r} cannot be evaluated by the local broker")


def validate_filters(filters: Sequence[Any]) -> None:
    """Raise FilterError/UnsupportedFilter for anything the local broker would not evaluate faithfully."""
    for index, expr in enumerate(filters):
        _validate(expr, f"filters[{index}]")


def _validate(expr: Any, path: str) -> None:
    if not isinstance(expr, Mapping):
        raise FilterError(f"{path}: a filter must be a mapping with one dialect, got {expr!r}")
    dialect, arg = _single_dialect(expr, path)
    where = f"{path}.{dialect}"
    if dialect == "cesql":
        raise UnsupportedFilter(
            f"{where}: CESQL filters are not supported by the local broker "
            f"(no CESQL engine installed); express it with exact/prefix/suffix/all/any/not"
        )
    if dialect in ("exact", "prefix", "suffix"):
        if not isinstance(arg, Mapping) or not arg:
            raise FilterError(f"{where}: must be a non-empty map of attribute -> value")
        for name, value in arg.items():
            if not isinstance(name, str) or not _ATTRIBUTE_NAME.match(name):
                raise FilterError(f"{where}: invalid attribute name {name!r} (lowercase letters and digits)")
            if isinstance(value, Mapping | list):
                raise FilterError(f"{where}.{name}: value must be a string, got {value!r}")
    elif dialect in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise FilterError(f"{where}: must be a non-empty list of filters")
        for index, sub in enumerate(arg):
            _validate(sub, f"{where}[{index}]")
    else:  # not
        _validate(arg, where)


def _single_dialect(expr: Mapping[str, Any], path: str = "filter") -> tuple[str, Any]:
    # Empty dialects (e.g. `exact: {}`) count as absent, as in Knative; several set is an error.
    present = [key for key, value in expr.items() if value not in (None, {}, [], "")]
    unknown = [key for key in expr if key not in DIALECTS]
    if unknown:
        raise FilterError(f"{path}: unknown filter dialect {unknown[0]!r} (known: {', '.join(DIALECTS)})")
    if len(present) != 1:
        found = ", ".join(present) or "none"
        raise FilterError(f"{path}: exactly one dialect per filter entry is allowed, found: {found}")
    return present[0], expr[present[0]]
