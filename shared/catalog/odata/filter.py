"""``$filter`` text -> ``shared.catalog.filters`` nodes: the meaning of the OData parse tree.

What PRIP and CDSE clients send (reference production-common §4.3, peers §1.1): text functions,
comparisons, ``and or not``, ``in``, ``Collection/Name``, typed attribute lambdas and the
``OData.CSC`` spatial functions. Every error says where the filter failed (1-based position).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, NoReturn

import lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

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
)
from shared.catalog.odata.errors import BadFilter
from shared.catalog.odata.grammar import parse
from shared.catalog.spatial import spatial_filter

# Limits far above what PRIP and CDSE clients send (filters of a few hundred terms, nested a few
# levels), low enough that every backend can run what they admit: beyond them a 400 says which one.
MAX_FILTER_LENGTH = 100_000  # characters
MAX_DEPTH = 16  # nested not / and-or alternations / lambdas; a flat chain of and/or is one level
MAX_TERMS = 2_000  # conditions, counting each value of an 'in' list and each part of a geography
MAX_IN_VALUES = 1_000
MAX_VERTICES = 10_000  # of one geography
MAX_PARTS = 500  # of one geography: each part is a box of the index prefilter

# OData property paths of a Product (reference §4.1, CDSE ModificationDate and Collection/Name).
PROPERTIES: dict[str, Prop] = {
    "Id": Prop.ID,
    "Name": Prop.NAME,
    "ContentType": Prop.CONTENT_TYPE,
    "ContentLength": Prop.CONTENT_LENGTH,
    "PublicationDate": Prop.PUBLICATION,
    "ModificationDate": Prop.MODIFICATION,
    "OriginDate": Prop.ORIGIN,
    "EvictionDate": Prop.EVICTION,
    "ContentDate/Start": Prop.START,
    "ContentDate/End": Prop.END,
    "Online": Prop.ONLINE,
    "Collection/Name": Prop.COLLECTION,
    "ProductionType": Prop.PRODUCTION_TYPE,
}
ATTRIBUTE_TYPES = ("String", "Integer", "Double", "DateTimeOffset", "Boolean")
_ATTRIBUTE_CASTS = {f"OData.CSC.{t}Attribute" for t in ATTRIBUTE_TYPES}
_SPATIAL = {
    "odata.csc.intersects": "intersects",
    "odata.csc.within": "within",
    "odata.csc.disjoints": "disjoint",  # the reference's spelling
    "odata.csc.disjoint": "disjoint",
    "geo.intersects": "intersects",
}
_TEXT_FUNCTIONS = {"contains", "startswith", "endswith"}
_FLIP = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_GEOGRAPHY = re.compile(r"^(?:geography|geometry)'(?:SRID=(\d+);)?(.*)'$", re.IGNORECASE | re.DOTALL)
_GEOMETRY_TYPES = {"Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString", "MultiLineString"}
_WKT_TYPE = re.compile(r"^\s*([A-Za-z]+)")


class _Literal:
    """A literal with where it was written (for messages)."""

    def __init__(self, value: Value, kind: str, position: int, geometry: Any = None) -> None:
        self.value = value
        self.kind = kind  # string, number, datetime, boolean, null, geography, enum
        self.position = position
        self.geometry = geometry


def parse_filter(text: str) -> Filter:
    """The filter a ``$filter`` value asks for; BadFilter (400) saying where it failed."""
    if len(text) > MAX_FILTER_LENGTH:
        raise BadFilter(f"$filter is {len(text)} characters long; at most {MAX_FILTER_LENGTH} are accepted")
    if not text.strip():
        raise BadFilter("$filter is empty")
    try:
        tree = parse(text, positions=False)
    except UnexpectedInput as exc:
        raise BadFilter(_syntax_message(text, exc)) from None
    try:
        return _Translator().boolean(tree, None, 1)
    except BadFilter:
        # A valid filter needs no positions; a refused one is parsed again to say where it fails.
        return _Translator().boolean(parse(text), None, 1)


def _syntax_message(text: str, exc: UnexpectedInput) -> str:
    position = getattr(exc, "column", None)
    if isinstance(exc, UnexpectedEOF) or position in (None, -1):
        return "$filter ends too early: an expression is incomplete (a missing value or parenthesis?)"
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        return "$filter ends too early: an expression is incomplete (a missing value or parenthesis?)"
    pos = int(exc.pos_in_stream) if exc.pos_in_stream is not None else int(position) - 1
    fragment = text[pos : pos + 20]
    if isinstance(exc, UnexpectedCharacters):
        return f"$filter syntax error at position {pos + 1}: unexpected character(s) {fragment!r}"
    return f"$filter syntax error at position {pos + 1}: unexpected {fragment!r}"


def _position(node: lark.Tree | lark.Token) -> int:
    if isinstance(node, lark.Token):
        return (node.start_pos or 0) + 1
    meta = node.meta
    return (meta.start_pos + 1) if not meta.empty else 0


def _fail(node: lark.Tree | lark.Token, message: str) -> NoReturn:
    raise BadFilter(f"$filter at position {_position(node)}: {message}")


def _parse_datetime(token: lark.Token) -> datetime:
    text = str(token)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        _fail(token, f"{str(token)!r} is not a valid date and time ({exc})")
    if value.tzinfo is None:  # timezone-less is UTC, as CDSE decided in 2024
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        _fail(token, f"{str(token)!r} is out of range (years 0001 to 9999) once converted to UTC")


def _parse_geography(token: lark.Token) -> Any:
    import shapely
    from shapely.errors import GEOSException

    match = _GEOGRAPHY.match(str(token))
    if match is None:
        _fail(token, "a geography literal looks like geography'SRID=4326;POLYGON((lon lat, ...))'")
    srid, wkt = match[1], match[2].strip()
    if srid is not None and srid != "4326":
        _fail(token, f"SRID={srid} is not supported; footprints are in SRID=4326 (lon/lat degrees)")
    supported = ", ".join(sorted(_GEOMETRY_TYPES))
    # Named before parsing: GEOS raises NotImplementedError on curves (CIRCULARSTRING, CURVEPOLYGON).
    kind = _WKT_TYPE.match(wkt)
    if kind is None or kind[1].upper() not in {t.upper() for t in _GEOMETRY_TYPES}:
        _fail(token, f"{kind[1] if kind else 'this geography'} is not supported; use {supported}")
    try:
        geometry = shapely.from_wkt(wkt)
    except (GEOSException, ValueError, TypeError, NotImplementedError) as exc:
        _fail(token, f"the geography is not valid WKT: {exc}")
    if geometry is None or geometry.is_empty:
        _fail(token, "the geography is empty")
    if geometry.geom_type not in _GEOMETRY_TYPES:
        _fail(token, f"{geometry.geom_type} is not supported; use {supported}")
    vertices = int(shapely.get_num_coordinates(geometry))
    if vertices > MAX_VERTICES:
        _fail(token, f"the geography has {vertices} vertices; at most {MAX_VERTICES} are accepted (simplify it)")
    parts = int(shapely.get_num_geometries(geometry))
    if parts > MAX_PARTS:
        _fail(token, f"the geography has {parts} parts; at most {MAX_PARTS} are accepted")
    if shapely.has_z(geometry):
        geometry = shapely.force_2d(geometry)
    # Longitudes beyond ±180 are refused, not wrapped: 190 could mean -170 or a deliberately unwrapped
    # edge, and a 400 is better than a guess. A shape across the antimeridian is written in range
    # (170 ... -170): its edges go the short way round, below.
    for lon, lat in shapely.get_coordinates(geometry).tolist():
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            _fail(
                token,
                f"coordinates must be lon in [-180, 180] and lat in [-90, 90] (lon first); ({lon:g} {lat:g}) is not"
                " (across the antimeridian write e.g. 170 then -170: edges go the short way round)",
            )
    # Read as the stored footprints are (split at ±180), so that every backend's planar test is right.
    from shared.products.footprint import split_at_antimeridian

    try:
        geometry = split_at_antimeridian(geometry)
    except (GEOSException, ValueError) as exc:
        _fail(token, f"the geography, with its edges the short way round (across ±180), is not valid: {exc}")
    if not geometry.is_valid:
        _fail(token, f"the geography is not a valid geometry: {shapely.is_valid_reason(geometry)}")
    return geometry


class _Translator:
    def __init__(self) -> None:
        self.terms = 0

    def count(self, node: lark.Tree | lark.Token, terms: int = 1) -> None:
        self.terms += terms
        if self.terms > MAX_TERMS:
            _fail(node, f"the filter has more than {MAX_TERMS} conditions (or values of 'in' lists and geographies)")

    def boolean(self, node: lark.Tree | lark.Token, variable: str | None, depth: int) -> Filter:
        # Checked before going deeper: recursion (here, in matching, in SQL compilation and in the
        # database's own parser) stays bounded. SQLite overflowed its parser stack at 20 nested 'not'.
        if depth > MAX_DEPTH:
            _fail(node, f"the filter is nested more than {MAX_DEPTH} levels deep (not, and/or alternations, lambdas)")
        if isinstance(node, lark.Token):
            _fail(node, f"{str(node)!r} is not a condition")
        rule = str(node.data)
        if rule in ("or_", "and_"):
            # The grammar gives a chain of "or" as a left-deep tree (as deep as the chain is long):
            # collected without recursion into one flat node.
            kind = Or if rule == "or_" else And
            return kind(tuple(self.boolean(child, variable, depth + 1) for child in _chain(node, rule)))
        if rule == "not_":
            return Not(self.boolean(node.children[0], variable, depth + 1))
        if rule == "comparison":
            self.count(node)
            return self.comparison(node, variable)
        if rule == "in_list":
            self.count(node, len(node.children) - 1)
            return self.in_list(node, variable)
        if rule == "call":
            self.count(node)
            return self.call(node, variable, depth)
        if rule == "bare_member":
            self.count(node)
            prop = self.property(node.children[0], variable)
            if prop is Prop.ONLINE:
                return Compare(Prop.ONLINE, "eq", True)
            _fail(node, "a property alone is not a condition; compare it, e.g. Name eq '...'")
        _fail(node, "a value alone is not a condition")

    # -- operands -----------------------------------------------------------------------------

    def path(self, node: lark.Tree) -> list[str]:
        path = node if node.data == "path" else node.children[0]
        assert isinstance(path, lark.Tree)
        return [str(token) for token in path.children]

    def property(self, node: lark.Tree | lark.Token, variable: str | None) -> Prop:
        assert isinstance(node, lark.Tree)
        segments = self.path(node)
        if variable is not None and segments[0] == variable:
            rest = [s for s in segments[1:] if s not in _ATTRIBUTE_CASTS]
            if rest == ["Value"]:
                return Prop.ATTRIBUTE_VALUE
            if rest == ["Name"]:
                _fail(node, f"{variable}/Name is only compared once, as {variable}/Name eq '<attribute name>'")
            _fail(node, f"{'/'.join(segments)}: inside the lambda use {variable}/Name and {variable}/Value")
        name = "/".join(segments)
        if name in PROPERTIES:
            return PROPERTIES[name]
        if name in ("Footprint", "GeoFootprint"):
            _fail(node, f"{name} is filtered with OData.CSC.Intersects/Within/Disjoints(area=geography'...')")
        known = ", ".join(sorted(PROPERTIES))
        _fail(node, f"unknown property {name!r}; filterable: {known}, and Attributes (lambda any)")

    def literal(self, node: lark.Tree) -> _Literal:
        kind = str(node.data)
        token = node.children[-1]
        assert isinstance(token, lark.Token)
        position = _position(node)
        if kind in ("string", "enum"):
            return _Literal(str(token)[1:-1].replace("''", "'"), kind, position)
        if kind == "number":
            text = str(token)
            try:
                number: int | float = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
            except ValueError:
                _fail(token, f"{text!r} is not a number")
            if isinstance(number, float) and not (abs(number) < float("inf")):
                _fail(token, f"{text!r} is not a finite number")
            if isinstance(number, int) and abs(number) >= 2**63:
                _fail(token, f"{text!r} is out of the 64-bit integer range")
            return _Literal(number, kind, position)
        if kind == "datetime":
            return _Literal(_parse_datetime(token), kind, position)
        if kind in ("true", "false"):
            return _Literal(kind == "true", "boolean", position)
        if kind == "null":
            return _Literal(None, kind, position)
        return _Literal(None, "geography", position, _parse_geography(token))

    def operand(self, node: lark.Tree | lark.Token, variable: str | None) -> Prop | _Literal:
        assert isinstance(node, lark.Tree)
        if node.data == "member":
            return self.property(node, variable)
        return self.literal(node)

    # -- conditions ---------------------------------------------------------------------------

    def comparison(self, node: lark.Tree, variable: str | None) -> Filter:
        left_node, op_token, right_node = node.children
        op = str(op_token).lower()
        left, right = self.operand(left_node, variable), self.operand(right_node, variable)
        if isinstance(left, _Literal) and isinstance(right, Prop):
            left, right, op = right, left, _FLIP[op]
        if not isinstance(left, Prop) or not isinstance(right, _Literal):
            _fail(node, "compare a property with a value, e.g. ContentLength gt 1000")
        return Compare(left, op, self.checked(left, right, node, op))

    def checked(self, prop: Prop, literal: _Literal, node: lark.Tree, op: str = "eq") -> Value:
        """The literal's value, if it fits the property's type."""
        if literal.kind == "geography":
            _fail(node, "geography values are used in OData.CSC.Intersects/Within/Disjoints")
        if literal.kind == "null":
            if op not in ("eq", "ne"):
                _fail(node, "null is compared with eq or ne only")
            return None
        if prop is Prop.ATTRIBUTE_VALUE:  # the literal's type decides (clients mix the casts up)
            if literal.kind == "enum":
                _fail(node, "attribute values are strings, numbers, dates or booleans")
            if literal.kind == "boolean" and op not in ("eq", "ne"):
                _fail(node, "booleans are compared with eq or ne only")
            return literal.value
        expected = prop.python_type
        kinds = {str: ("string", "enum"), int: ("number",), datetime: ("datetime",), bool: ("boolean",)}[expected]
        if literal.kind not in kinds:
            wanted = {
                str: "a 'quoted string'",
                int: "a number",
                datetime: "a date like 2024-05-01T00:00:00.000Z",
                bool: "true or false",
            }[expected]
            _fail(node, f"{prop.name.lower()} is compared with {wanted}, not a {literal.kind}")
        if expected is bool and op not in ("eq", "ne"):
            _fail(node, "booleans are compared with eq or ne only")
        return literal.value

    def in_list(self, node: lark.Tree, variable: str | None) -> Filter:
        subject, *items = node.children
        prop = self.operand(subject, variable)
        if not isinstance(prop, Prop):
            _fail(node, "the left side of 'in' is a property")
        if len(items) > MAX_IN_VALUES:
            _fail(node, f"'in' takes at most {MAX_IN_VALUES} values")
        values = []
        for item in items:
            assert isinstance(item, lark.Tree)
            values.append(self.checked(prop, self.literal(item), item))
        return In(prop, tuple(values))

    def call(self, node: lark.Tree, variable: str | None, depth: int) -> Filter:
        path_node, *arguments = node.children
        assert isinstance(path_node, lark.Tree)
        segments = [str(t) for t in path_node.children]
        name = "/".join(segments)
        if len(segments) > 1 and segments[-1].lower() in ("any", "all"):
            return self.lambda_(node, segments, arguments, depth)
        if name.lower() in _TEXT_FUNCTIONS:
            return self.text_function(node, name.lower(), arguments, variable)
        if name.lower() in _SPATIAL:
            return self.spatial(node, _SPATIAL[name.lower()], arguments)
        _fail(
            node,
            f"unknown function {name!r}; supported: contains, startswith, endswith, "
            "OData.CSC.Intersects, OData.CSC.Within, OData.CSC.Disjoints, Attributes/.../any",
        )

    def text_function(self, node: lark.Tree, function: str, arguments: list[Any], variable: str | None) -> Filter:
        if len(arguments) != 2 or any(a is None or a.data != "argument" for a in arguments):
            _fail(node, f"{function} takes two arguments: {function}(Name,'text')")
        prop = self.operand(arguments[0].children[0], variable)
        text = self.operand(arguments[1].children[0], variable)
        if not isinstance(prop, Prop) or not isinstance(text, _Literal) or text.kind != "string":
            _fail(node, f"{function} takes a property and a 'quoted string': {function}(Name,'text')")
        if prop is not Prop.ATTRIBUTE_VALUE and prop.python_type is not str:
            _fail(node, f"{function} applies to text properties (Name, Id, ContentType, ...)")
        assert isinstance(text.value, str)
        return TextMatch(prop, function, text.value)

    def spatial(self, node: lark.Tree, relation: str, arguments: list[Any]) -> Filter:
        import shapely

        geography = None
        for argument in arguments:
            if argument is None:
                continue
            if argument.data == "named_argument":
                key, value = argument.children
                if str(key) in ("geo_property", "property"):
                    continue  # geo_property=Footprint: the only geographic property
                if str(key) not in ("area", "Footprint", "GeoFootprint", "geo_shape", "geography"):
                    _fail(argument, f"unknown argument {str(key)!r}; use area=geography'SRID=4326;POLYGON((...))'")
            elif argument.data == "argument":
                value = argument.children[0]
                if value.data == "member":
                    continue  # geo.intersects(Footprint, geography'...')
            else:
                _fail(argument, "a spatial function takes area=geography'...'")
            literal = self.literal(value) if value.data != "member" else None
            if literal is None or literal.kind != "geography":
                _fail(argument, "the area is a literal geography'SRID=4326;POLYGON((lon lat, ...))'")
            geography = literal.geometry
            self.count(argument, int(shapely.get_num_geometries(geography)) - 1)
        if geography is None:
            _fail(node, "a spatial function needs area=geography'SRID=4326;POLYGON((lon lat, ...))'")
        return spatial_filter(relation, geography)

    def lambda_(self, node: lark.Tree, segments: list[str], arguments: list[Any], depth: int) -> Filter:
        if segments[-1].lower() == "all":
            _fail(node, "'all' lambdas are not supported; use any(...)")
        if segments[0] != "Attributes" or not all(s in _ATTRIBUTE_CASTS for s in segments[1:-1]) or len(segments) > 3:
            _fail(
                node,
                "lambdas are on Attributes: Attributes/OData.CSC.StringAttribute/any(att:att/Name eq '...' and ...)",
            )
        if len(arguments) != 1 or arguments[0] is None or arguments[0].data != "lambda_argument":
            _fail(
                node,
                "any takes one lambda: any(att:att/Name eq '<name>' and att/OData.CSC.<Type>Attribute/Value eq ...)",
            )
        variable_token, body = arguments[0].children
        variable = str(variable_token)
        conjuncts = _chain(body, "and_")
        name: str | None = None
        rest: list[Filter] = []
        for conjunct in conjuncts:
            attribute = self.attribute_name(conjunct, variable)
            if attribute is None:
                rest.append(self.boolean(conjunct, variable, depth + 1))
            elif name is not None:
                _fail(conjunct, f"{variable}/Name is given twice")
            else:
                name = attribute
        if name is None:
            _fail(node, f"the lambda must name the attribute: any({variable}:{variable}/Name eq '<name>' and ...)")
        if '"' in name or "\\" in name or not name.isprintable():  # a JSON path's key: SQLite refuses these
            _fail(node, "attribute names contain no quotes, backslashes or control characters")
        condition: Filter = Const(True) if not rest else rest[0] if len(rest) == 1 else And(tuple(rest))
        return AttributeMatch(name, _product_type_group(name, condition))

    def attribute_name(self, node: lark.Tree | lark.Token, variable: str) -> str | None:
        """``'x'`` when the node is ``<variable>/Name eq 'x'`` (either way round), else None."""
        if not isinstance(node, lark.Tree) or node.data != "comparison" or str(node.children[1]).lower() != "eq":
            return None
        sides = [node.children[0], node.children[2]]
        for member, literal in (sides, sides[::-1]):
            if (
                isinstance(member, lark.Tree)
                and member.data == "member"
                and self.path(member) == [variable, "Name"]
                and isinstance(literal, lark.Tree)
                and literal.data == "string"
            ):
                value = self.literal(literal).value
                assert isinstance(value, str)
                return value
        return None


def _chain(node: lark.Tree | lark.Token, rule: str) -> list[lark.Tree | lark.Token]:
    """The operands of a chain of one operator (``a or b or (c or d)``), in order, found without recursion."""
    operands: list[lark.Tree | lark.Token] = []
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, lark.Tree) and current.data == rule:
            pending.extend(reversed(current.children))
        else:
            operands.append(current)
    return operands


def _product_type_group(name: str, condition: Filter) -> Filter:
    """CDSE's S1 product type groups: ``productType eq 'GRD'`` also matches every GRD code (IW_GRDH_1S, ...)."""
    if name != "productType" or not isinstance(condition, Compare) or condition.op != "eq":
        return condition
    from shared.products.s1 import product_type_group  # only for this attribute: S1 naming knowledge

    marker = product_type_group(condition.value) if isinstance(condition.value, str) else None
    return condition if marker is None else Or((condition, TextMatch(Prop.ATTRIBUTE_VALUE, "contains", marker)))
