"""CQL2 (text and JSON, parsed by pygeofilter) -> ``shared.catalog.filters`` nodes: the same nodes,
and so the same SQL, as OData's ``$filter``.

Queryable properties: ``id`` (the product name), ``collection``, ``datetime``/``start_datetime``/
``end_datetime``, ``created``/``updated``, ``constellation``, ``platform``, ``geometry`` (in the
spatial functions) and every filterable property of ``shared.products.stac.MAPPING`` (each the PRIP
attribute it shows). Operators: ``= <> < <= > >=``, ``AND OR NOT``, ``IN``, ``BETWEEN``, ``IS NULL``,
``LIKE`` (patterns a prefix, suffix or substring search can answer), ``S_INTERSECTS``, ``S_WITHIN``,
``S_DISJOINT``, ``T_INTERSECTS``, ``T_BEFORE``, ``T_AFTER``, ``T_DURING``. Anything else is a 400
naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any, NoReturn, cast

from pygeofilter import ast, values

from shared.catalog.filters import (
    And,
    AttributeMatch,
    Compare,
    Const,
    Filter,
    In,
    Not,
    Or,
    Prop,
    TextMatch,
    Value,
    collection_of,
)
from shared.catalog.spatial import BadGeometry, checked, from_bbox, from_geojson, spatial_filter
from shared.products.stac import BY_STAC_NAME, StacProperty

# As OData's $filter limits (shared/catalog/odata/filter.py): what every backend can run.
MAX_FILTER_LENGTH = 100_000
MAX_DEPTH = 16
MAX_TERMS = 2_000
MAX_IN_VALUES = 1_000

PROPERTIES: dict[str, Prop] = {
    "id": Prop.NAME,
    "datetime": Prop.START,
    "start_datetime": Prop.START,
    "end_datetime": Prop.END,
    "created": Prop.PUBLICATION,
    "updated": Prop.MODIFICATION,
}
SPECIAL = ("collection", "constellation", "platform", "geometry")
_COMPARISONS = {
    ast.Equal: "eq",
    ast.NotEqual: "ne",
    ast.LessThan: "lt",
    ast.LessEqual: "le",
    ast.GreaterThan: "gt",
    ast.GreaterEqual: "ge",
}
_FLIP = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_SPATIAL = {ast.GeometryIntersects: "intersects", ast.GeometryWithin: "within", ast.GeometryDisjoint: "disjoint"}
_PLATFORM = re.compile(r"^sentinel-(\d+)([a-z])$")
_CONSTELLATION = re.compile(r"^sentinel-(\d+)$")


class BadCql2(ValueError):
    """A filter the catalog cannot answer; the message says which part and why."""


def queryable_names() -> list[str]:
    return sorted([*PROPERTIES, *SPECIAL, *(p.name for p in BY_STAC_NAME.values() if p.filterable)])


def parse_text(text: str, collections: Callable[[list[str]], Filter]) -> Filter:
    from pygeofilter.parsers.cql2_text import parse

    if len(text) > MAX_FILTER_LENGTH:
        raise BadCql2(f"the filter is {len(text)} characters long; at most {MAX_FILTER_LENGTH} are accepted")
    if not text.strip():
        raise BadCql2("the filter is empty")
    try:
        tree = parse(text)
    except RecursionError:
        raise BadCql2(f"the filter is nested more than {MAX_DEPTH} levels deep") from None
    except Exception as exc:  # lark's errors and the parser's own ValueErrors: the input is wrong
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadCql2(f"cql2-text syntax error: {first}") from None
    return _Translator(collections).condition(tree, 1)


def parse_json(document: Any, collections: Callable[[list[str]], Filter]) -> Filter:
    from pygeofilter.parsers.cql2_json import parse

    if not isinstance(document, dict):
        raise BadCql2('a cql2-json filter is a JSON object like {"op": "=", "args": [{"property": "id"}, "..."]}')
    try:
        tree = parse(document)
    except RecursionError:
        raise BadCql2(f"the filter is nested more than {MAX_DEPTH} levels deep") from None
    except Exception as exc:  # the parser raises bare KeyErrors and ValueErrors on shapes it does not know
        raise BadCql2(f"cql2-json filter not understood ({type(exc).__name__}: {exc})") from None
    return _Translator(collections).condition(tree, 1)


def _fail(message: str) -> NoReturn:
    raise BadCql2(message)


def _name(node: Any) -> str | None:
    return str(node.name) if isinstance(node, ast.Attribute) else None


def _instant(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _instant(datetime.fromisoformat(value.replace("Z", "+00:00")), what)
        except ValueError:
            pass
    _fail(f"{what} is compared with a timestamp like TIMESTAMP('2024-05-01T00:00:00Z'), not {value!r}")


class _Translator:
    def __init__(self, collections: Callable[[list[str]], Filter]) -> None:
        self.collections = collections
        self.terms = 0

    def count(self, terms: int = 1) -> None:
        self.terms += terms
        if self.terms > MAX_TERMS:
            _fail(f"the filter has more than {MAX_TERMS} conditions (or values of IN lists)")

    def condition(self, node: Any, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            _fail(f"the filter is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.And | ast.Or):
            kind = And if isinstance(node, ast.And) else Or
            return kind(tuple(self.condition(child, depth + 1) for child in _chain(node, type(node))))
        if isinstance(node, ast.Not):
            return Not(self.condition(node.sub_node, depth + 1))
        if isinstance(node, bool):
            return Const(node)
        if isinstance(node, ast.Include):
            return Const(not node.not_)
        self.count()
        if isinstance(node, ast.Comparison):
            return self.comparison(node)
        if isinstance(node, ast.Between):
            low = self.compare(node.lhs, "ge", node.low)
            high = self.compare(node.lhs, "le", node.high)
            both: Filter = And((low, high))
            return Not(both) if node.not_ else both
        if isinstance(node, ast.In):
            if not isinstance(node.sub_nodes, list | tuple):
                _fail("IN takes a list of values")
            self.count(len(node.sub_nodes))
            found = self.in_list(node.lhs, list(node.sub_nodes))
            return Not(found) if node.not_ else found
        if isinstance(node, ast.IsNull):
            found = self.is_null(node.lhs)
            return Not(found) if node.not_ else found
        if isinstance(node, ast.Like):
            found = self.like(node)
            return Not(found) if node.not_ else found
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self.spatial(node)
        if isinstance(node, ast.TemporalPredicate):
            return self.temporal(node)
        if isinstance(node, ast.ArrayPredicate):
            _fail(f"array operator {node.op.name} is not supported (no queryable property is an array)")
        if isinstance(node, ast.Node):
            _fail(f"{type(node).__name__} is not supported in filters")
        _fail(f"{node!r} is not a condition")

    # -- comparisons ----------------------------------------------------------------------------

    def comparison(self, node: ast.Comparison) -> Filter:
        op = _COMPARISONS[type(node)]
        lhs, rhs = node.lhs, node.rhs
        if _name(lhs) is None and _name(rhs) is not None:
            lhs, rhs, op = rhs, lhs, _FLIP[op]
        return self.compare(lhs, op, rhs)

    def compare(self, lhs: Any, op: str, rhs: Any) -> Filter:
        name = _name(lhs)
        if name is None:
            _fail(f"compare a property with a value, e.g. id = '...' (got {lhs!r})")
        if _name(rhs) is not None:
            _fail(f"{name} is compared with a value, not with the property {_name(rhs)}")
        if name == "collection":
            return self.collection(op, [rhs])
        if name in ("constellation", "platform"):
            return self.platform(name, op, [rhs])
        if name in PROPERTIES:
            prop = PROPERTIES[name]
            return Compare(prop, op, self.value(name, prop, rhs, op))
        mapped = self.mapped(name)
        literal = self.attribute_value(mapped, rhs, op)
        return self.restricted(mapped, AttributeMatch(mapped.attribute, Compare(Prop.ATTRIBUTE_VALUE, op, literal)))

    def in_list(self, lhs: Any, items: list[Any]) -> Filter:
        name = _name(lhs)
        if name is None:
            _fail("the left side of IN is a property")
        if len(items) > MAX_IN_VALUES:
            _fail(f"IN takes at most {MAX_IN_VALUES} values")
        if name == "collection":
            return self.collection("eq", items)
        if name in ("constellation", "platform"):
            return self.platform(name, "eq", items)
        if name in PROPERTIES:
            prop = PROPERTIES[name]
            return In(prop, tuple(self.value(name, prop, item, "eq") for item in items))
        mapped = self.mapped(name)
        literals = tuple(self.attribute_value(mapped, item, "eq") for item in items)
        return self.restricted(mapped, AttributeMatch(mapped.attribute, In(Prop.ATTRIBUTE_VALUE, literals)))

    def is_null(self, lhs: Any) -> Filter:
        name = _name(lhs)
        if name in ("datetime", "start_datetime", "end_datetime"):
            return Compare(PROPERTIES[name], "eq", None)
        if name in PROPERTIES or name in SPECIAL:
            return Const(False)  # always set
        if name is None:
            _fail("IS NULL applies to a property")
        mapped = self.mapped(name)
        return Not(self.restricted(mapped, AttributeMatch(mapped.attribute, Const(True))))

    def like(self, node: ast.Like) -> Filter:
        name = _name(node.lhs)
        if node.nocase:
            _fail("case-insensitive LIKE (CASEI) is not supported: product names and attributes compare exactly")
        function, text = _like_pattern(str(node.pattern))
        if name == "id":
            return _text(Prop.NAME, function, text)
        if name is None or name in PROPERTIES or name in SPECIAL:
            _fail(f"LIKE applies to id and text properties, not to {name or node.lhs!r}")
        mapped = self.mapped(name)
        return self.restricted(mapped, AttributeMatch(mapped.attribute, _text(Prop.ATTRIBUTE_VALUE, function, text)))

    # -- properties -----------------------------------------------------------------------------

    def mapped(self, name: str) -> StacProperty:
        found = BY_STAC_NAME.get(name.removeprefix("properties."))
        if found is None:
            if name in ("geometry", "bbox"):
                _fail(f"{name} is filtered with S_INTERSECTS, S_WITHIN or S_DISJOINT")
            _fail(f"unknown property {name!r}; queryable: {', '.join(queryable_names())}")
        if not found.filterable:
            _fail(f"{name} is a list; it cannot be filtered")
        return found

    def restricted(self, mapped: StacProperty, condition: Filter) -> Filter:
        """``condition`` limited to the missions the property means something for."""
        if not mapped.missions:
            return condition
        missions = tuple(collection_of(m) for m in mapped.missions)
        limit: Filter = (
            Compare(Prop.COLLECTION, "eq", missions[0]) if len(missions) == 1 else In(Prop.COLLECTION, missions)
        )
        return And((limit, condition))

    def value(self, name: str, prop: Prop, literal: Any, op: str) -> Value:
        if literal is None:
            _fail(f"compare {name} with IS NULL, not with null")
        if prop.python_type is datetime:
            return _instant(literal, name)
        if not isinstance(literal, str):
            _fail(f"{name} is compared with a 'quoted string', not {literal!r}")
        return literal

    def attribute_value(self, mapped: StacProperty, literal: Any, op: str) -> Value:
        if isinstance(literal, ast.Node | values.Geometry | values.Envelope | values.Interval | list | dict):
            _fail(f"{mapped.name} is compared with a string, number, timestamp or boolean")
        if isinstance(literal, datetime | date):
            return _instant(literal, mapped.name)
        if isinstance(literal, bool) and op not in ("eq", "ne"):
            _fail("booleans are compared with = or <> only")
        if literal is None:
            _fail(f"compare {mapped.name} with IS NULL, not with null")
        if isinstance(literal, int) and not isinstance(literal, bool) and abs(literal) >= 2**63:
            _fail(f"{literal} is out of the 64-bit integer range")
        if isinstance(literal, float) and not abs(literal) < float("inf"):
            _fail(f"{literal} is not a finite number")
        converted: Value = mapped.to_attribute(literal)
        return converted

    def collection(self, op: str, items: list[Any]) -> Filter:
        if op not in ("eq", "ne") or not all(isinstance(i, str) for i in items):
            _fail("collection is compared with = , <> or IN and collection ids in quotes")
        found = self.collections([str(i) for i in items])
        return Not(found) if op == "ne" else found

    def platform(self, name: str, op: str, items: list[Any]) -> Filter:
        if op not in ("eq", "ne") or not all(isinstance(i, str) for i in items):
            _fail(f"{name} is compared with =, <> or IN and values like 'sentinel-1a'")
        found: list[Filter] = []
        for item in items:
            if name == "constellation":
                match = _CONSTELLATION.match(item)
                found.append(Compare(Prop.COLLECTION, "eq", f"SENTINEL-{match[1]}") if match else Const(False))
            else:
                # The satellite letter is the third character of a Sentinel product name (S1A_..., S3B_...).
                match = _PLATFORM.match(item)
                if match is None:
                    _fail(f"platform {item!r}: platforms are compared with one satellite, e.g. 'sentinel-1a'")
                found.append(TextMatch(Prop.NAME, "startswith", f"S{match[1]}{match[2].upper()}"))
        result = found[0] if len(found) == 1 else Or(tuple(found))
        return Not(result) if op == "ne" else result

    # -- space and time ---------------------------------------------------------------------------

    def spatial(self, node: ast.SpatialComparisonPredicate) -> Filter:
        relation = _SPATIAL.get(type(node))
        if relation is None:
            _fail(f"{node.op.name} is not supported; use S_INTERSECTS, S_WITHIN or S_DISJOINT")
        lhs, rhs = node.lhs, node.rhs
        if _name(lhs) is None:
            lhs, rhs = rhs, lhs
        if _name(lhs) != "geometry":
            _fail(f"{node.op.name} compares the property geometry with a geometry literal")
        try:
            if isinstance(rhs, values.Geometry):
                geometry = from_geojson(rhs.geometry, f"the {node.op.name} geometry")
            elif isinstance(rhs, values.Envelope):
                geometry = from_bbox([rhs.x1, rhs.y1, rhs.x2, rhs.y2], f"the {node.op.name} envelope")
            elif isinstance(rhs, ast.Function) and rhs.name.lower() == "bbox":
                geometry = from_bbox(list(rhs.arguments), f"the {node.op.name} BBOX")
            else:
                _fail(f"{node.op.name} takes a geometry literal (WKT, GeoJSON or BBOX(...)), not {rhs!r}")
            geometry = checked(geometry, f"the {node.op.name} geometry")
        except BadGeometry as exc:
            _fail(str(exc))
        self.count(len(getattr(geometry, "geoms", [geometry])) - 1)
        return spatial_filter(relation, geometry)

    def temporal(self, node: ast.TemporalPredicate) -> Filter:
        name = _name(node.lhs)
        if name not in ("datetime", "start_datetime", "end_datetime"):
            _fail(f"{node.op.name} compares datetime, start_datetime or end_datetime with a time or interval")
        first = Prop.END if name == "end_datetime" else Prop.START
        last = Prop.START if name == "start_datetime" else Prop.END
        rhs = node.rhs
        if isinstance(rhs, values.Interval):
            low = None if rhs.start is None else _instant(rhs.start, name)
            high = None if rhs.end is None else _instant(rhs.end, name)
        else:
            low = high = _instant(rhs, name)
        op = node.op.name
        # The product's time is [first, last]; the query's [low, high] (either side may be open).
        # pygeofilter reads T_INTERSECTS (and T_OVERLAPS alike) as TimeOverlaps: answered as T_INTERSECTS.
        parts: list[Filter | None]
        if op == "TOVERLAPS":
            parts = [Compare(first, "le", high) if high else None, Compare(last, "ge", low) if low else None]
        elif op == "BEFORE":
            parts = [Compare(last, "lt", low) if low else Const(False)]
        elif op == "AFTER":
            parts = [Compare(first, "gt", high) if high else Const(False)]
        elif op == "DURING":
            parts = [Compare(first, "ge", low) if low else None, Compare(last, "le", high) if high else None]
        else:
            _fail(f"T_{op} is not supported; use T_INTERSECTS, T_BEFORE, T_AFTER or T_DURING")
        chosen = [p for p in parts if p is not None]
        if not chosen:  # ".." to "..": any product with a time
            return Compare(first, "ne", None)
        return chosen[0] if len(chosen) == 1 else And(tuple(chosen))


def _chain(node: Any, kind: type) -> list[Any]:
    """The operands of a chain of one operator, in order, without recursion (pygeofilter nests them)."""
    operands: list[Any] = []
    pending: list[Any] = [node]
    while pending:
        current: Any = pending.pop()
        if type(current) is kind:
            combination = cast(ast.Combination, current)
            pending.extend([combination.rhs, combination.lhs])
        else:
            operands.append(current)
    return operands


def _text(prop: Prop, function: str, text: str) -> Filter:
    return Compare(prop, "eq", text) if function == "eq" else TextMatch(prop, function, text)


def _like_pattern(pattern: str) -> tuple[str, str]:
    """LIKE's pattern as (eq | startswith | endswith | contains, text): ``%`` any text, ``_`` one
    character (CQL2), ``\\`` escapes. Only patterns those searches answer exactly are accepted."""
    parts: list[str | None] = []  # text runs, None for %
    run: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            run.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append("".join(run))
            parts.append(None)
            run = []
        elif char == "_":
            _fail(
                f"LIKE {pattern!r}: '_' matches any one character, which the catalog cannot search;"
                " write \\_ for an underscore (product names have many)"
            )
        else:
            run.append(char)
    parts.append("".join(run))
    texts = [p for p in parts if p]  # the non-empty literal runs
    wild_start, wild_end = parts[0] == "" and len(parts) > 1, parts[-1] == "" and len(parts) > 1
    if len(texts) > 1:
        _fail(f"LIKE {pattern!r}: a % between two texts cannot be searched; use prefix%, %suffix or %text%")
    if not texts:
        return ("contains", "") if None in parts else ("eq", "")
    text = texts[0]
    if wild_start and wild_end:
        return "contains", text
    if wild_end:
        return "startswith", text
    if wild_start:
        return "endswith", text
    return "eq", text
