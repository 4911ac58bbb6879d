"""Compile a ``shared.catalog.filters`` Selection to parameterised SQL for SQLite or PostgreSQL.

Every piece of SQL text comes from the fixed fragments below; user values (strings, numbers,
times, geometries, attribute names) only ever travel as parameters. The statement's *shape*
depends on the filter's structure (how many terms, which properties), never on user text.

Semantics are those of ``filters.matches``: a predicate on a missing value is false, and NOT is
compiled as ``NOT COALESCE(x, FALSE)`` so SQL's NULL never turns a negation into "unknown".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.catalog.filters import (
    NEVER_EVICTED,
    And,
    AttributeMatch,
    Compare,
    Const,
    Filter,
    In,
    Not,
    Or,
    Prop,
    Selection,
    Spatial,
    TextMatch,
    literal_kind,
    mission_of_collection,
    total_order,
)
from shared.catalog.grid import Box, covering_cells, with_wrapped_copies
from shared.catalog.model import format_utc

_SQL_OPS = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}

# Fixed-width UTC text in SQLite (text order is time order), timestamptz in PostgreSQL.
_SQLITE_COLUMNS = {
    Prop.ID: "p.id",
    Prop.NAME: "p.name",
    Prop.CONTENT_TYPE: "p.content_type",
    Prop.CONTENT_LENGTH: "p.content_length",
    Prop.PUBLICATION: "p.publication_time",
    Prop.MODIFICATION: "p.modification_time",
    Prop.ORIGIN: "COALESCE(p.inbox_time, p.publication_time)",
    Prop.EVICTION: f"COALESCE(p.eviction_time, '{format_utc(NEVER_EVICTED)}')",
    Prop.START: "p.validity_start",
    Prop.END: "p.validity_stop",
    Prop.ONLINE: "p.online",
    Prop.COLLECTION: "('SENTINEL-' || substr(p.mission, 2))",
}
_POSTGRES_COLUMNS = {
    **_SQLITE_COLUMNS,
    Prop.EVICTION: f"COALESCE(p.eviction_time, '{NEVER_EVICTED.isoformat()}'::timestamptz)",
    Prop.COLLECTION: "('SENTINEL-' || substr(p.mission, 2))",
}
# Text compared in byte (code point) order on both backends, like Python's str order.
_POSTGRES_TEXT = {Prop.ID, Prop.NAME, Prop.CONTENT_TYPE, Prop.COLLECTION}

# Well-known PRIP attributes with a generated, indexed column (migration 0003) holding the value of a
# String attribute (else NULL): the same value ``typed_value("String", name)`` reads from the JSON,
# without parsing it per row. Byte order ("C") on PostgreSQL, like every attribute string comparison.
ATTRIBUTE_COLUMNS = {
    "productType": "p.attr_product_type",
    "platformShortName": "p.attr_platform_short_name",
    "platformSerialIdentifier": "p.attr_platform_serial_identifier",
}


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" | "postgresql"
    placeholder: str

    @property
    def sqlite(self) -> bool:
        return self.name == "sqlite"


SQLITE = Dialect("sqlite", "?")
POSTGRESQL = Dialect("postgresql", "%s")

Fragment = tuple[str, list[Any]]


# SQLite parses "a OR b OR c ..." into a tree as deep as the chain is long and refuses trees deeper
# than 1000 (SQLITE_MAX_EXPR_DEPTH): long chains are written as a chain of parenthesised groups.
_GROUP = 100


def joined(parts: Sequence[str], joiner: str) -> str:
    """``(p1 joiner p2 ...)``, grouped so that no chain is longer than ``_GROUP``."""
    texts = list(parts)
    while len(texts) > _GROUP:
        texts = ["(" + joiner.join(texts[i : i + _GROUP]) + ")" for i in range(0, len(texts), _GROUP)]
    return "(" + joiner.join(texts) + ")"


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Compiler:
    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect
        self.ph = dialect.placeholder
        self.false = "0" if dialect.sqlite else "FALSE"
        self.true = "1" if dialect.sqlite else "TRUE"

    # -- values -------------------------------------------------------------------------------

    def value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return format_utc(value) if self.d.sqlite else value
        if isinstance(value, bool) and self.d.sqlite:
            return int(value)
        return value

    def column(self, prop: Prop) -> str:
        columns = _SQLITE_COLUMNS if self.d.sqlite else _POSTGRES_COLUMNS
        return columns[prop]

    def text_column(self, prop: Prop) -> str:
        column = self.column(prop)
        return column if self.d.sqlite or prop is Prop.NAME else f'({column} COLLATE "C")'

    # -- filters ------------------------------------------------------------------------------

    def filter(self, node: Filter, attribute: str | None = None) -> Fragment:
        if isinstance(node, Const):
            return (self.true if node.value else self.false), []
        if isinstance(node, And | Or):
            if not node.items:
                return (self.true if isinstance(node, And) else self.false), []
            parts = [self.filter(item, attribute) for item in node.items]
            joiner = " AND " if isinstance(node, And) else " OR "
            return joined([sql for sql, _ in parts], joiner), [p for _, params in parts for p in params]
        if isinstance(node, Not):
            sql, params = self.filter(node.item, attribute)
            return f"(NOT COALESCE({sql}, {self.false}))", params
        if isinstance(node, AttributeMatch):
            return self.attribute_match(node)
        if isinstance(node, Spatial):
            return self.spatial(node)
        if node.prop is Prop.PRODUCTION_TYPE:
            return self.constant_leaf(node)
        if node.prop is Prop.ATTRIBUTE_VALUE:
            assert attribute is not None, "attribute values only inside an attribute lambda"
            return self.attribute_leaf(node, attribute)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, In):
            return self.in_(node)
        return self.text_match(self.column(node.prop), node.function, node.text)

    def constant_leaf(self, node: Compare | In | TextMatch) -> Fragment:
        from shared.catalog.filters import _compare, _text_match

        constant = "systematic_production"
        if isinstance(node, Compare):
            result = node.value is not None and _compare(constant, node.op, node.value)
        elif isinstance(node, In):
            result = constant in node.values
        else:
            result = _text_match(node.function, constant, node.text)
        return (self.true if result else self.false), []

    def compare(self, node: Compare) -> Fragment:
        if node.prop is Prop.END:
            return self.end_compare(node)
        if node.value is None:
            return f"({self.column(node.prop)} IS {'' if node.op == 'eq' else 'NOT '}NULL)", []
        if node.prop is Prop.COLLECTION and node.op in ("eq", "ne"):
            mission = mission_of_collection(str(node.value))
            if mission is None:
                return (self.false if node.op == "eq" else self.true), []
            return f"(p.mission {_SQL_OPS[node.op]} {self.ph})", [mission]
        column = self.text_column(node.prop) if node.prop in _POSTGRES_TEXT else self.column(node.prop)
        return f"({column} {_SQL_OPS[node.op]} {self.ph})", [self.value(node.value)]

    def end_compare(self, node: Compare) -> Fragment:
        """ContentDate/End: an open-ended product's (stored NULL) is NEVER_EVICTED, as it is shown. Written as
        ``stop <op> ? [OR stop IS NULL]``, decided here for the literal, so the validity indexes still serve it."""
        from shared.catalog.filters import _compare

        if node.value is None:  # no product has no End
            return (self.false if node.op == "eq" else self.true), []
        sql = f"p.validity_stop {_SQL_OPS[node.op]} {self.ph}"
        if _compare(NEVER_EVICTED, node.op, node.value):
            sql += " OR p.validity_stop IS NULL"
        return f"({sql})", [self.value(node.value)]

    def in_(self, node: In) -> Fragment:
        if node.prop is Prop.COLLECTION:
            missions = sorted({m for m in (mission_of_collection(str(v)) for v in node.values) if m is not None})
            values: list[Any] = list(missions)
            column = "p.mission"
        else:
            values = [self.value(v) for v in node.values if v is not None]
            column = self.column(node.prop)
        if not values:
            return self.false, []
        sql = f"{column} IN ({', '.join(self.ph for _ in values)})"
        if node.prop is Prop.END and NEVER_EVICTED in node.values:  # the End of open-ended products
            sql += f" OR {column} IS NULL"
        return f"({sql})", values

    def text_match(self, column: str, function: str, text: str) -> Fragment:
        if function == "contains":  # no wildcards at all: nothing to escape
            return f"({'instr' if self.d.sqlite else 'strpos'}({column}, {self.ph}) > 0)", [text]
        if self.d.sqlite:  # GLOB is case-sensitive (LIKE is not, in SQLite) and can use the name index
            pattern = _glob_escape(text) + "*" if function == "startswith" else "*" + _glob_escape(text)
            return f"({column} GLOB {self.ph})", [pattern]
        pattern = _like_escape(text) + "%" if function == "startswith" else "%" + _like_escape(text)
        return f"({column} LIKE {self.ph})", [pattern]

    # -- attributes: {"name": {"type": "String", "value": ...}} in p.attributes ---------------

    def attribute_key(self, name: str) -> str:
        """The parameter selecting attribute ``name``: a quoted JSON path for SQLite (a bare label
        would be parsed as a path when it holds "." or "["); parsers refuse names with quotes."""
        if '"' in name or "\\" in name or not name.isprintable():
            raise ValueError(f"attribute name {name!r} holds a quote, a backslash or a control character")
        return f'$."{name}"' if self.d.sqlite else name

    def attribute_part(self, part: str) -> str:
        if self.d.sqlite:
            return f"((p.attributes -> {self.ph}) ->> '{part}')"
        return f"(p.attributes -> {self.ph} ->> '{part}')"

    def attribute_match(self, node: AttributeMatch) -> Fragment:
        sql, params = self.filter(node.condition, node.name)
        if _rejects_absent(node.condition):
            # The condition is already false or NULL without the attribute: no existence test
            # (which would read the JSON of every row, and hide an index from the planner).
            return sql, params
        exists = f"((p.attributes -> {self.ph}) IS NOT NULL)" if self.d.sqlite else f"(p.attributes ? {self.ph})"
        return f"({exists} AND {sql})", [self.attribute_key(node.name), *params]

    def typed_value(self, kind: str, name: str) -> Fragment:
        """The attribute's value when its type fits ``kind`` (else NULL), comparable with the literal."""
        types = {
            "Number": "('Integer', 'Double')",
            "String": "('String')",
            "DateTimeOffset": "('DateTimeOffset')",
            "Boolean": "('Boolean')",
            "Null": "('String', 'Integer', 'Double', 'DateTimeOffset', 'Boolean')",
        }[kind]
        if kind == "String" and name in ATTRIBUTE_COLUMNS:
            return ATTRIBUTE_COLUMNS[name], []
        value = self.attribute_part("value")
        if not self.d.sqlite:
            # CASE evaluates the cast only when the type fits (AND has no order in SQL).
            value += {"Number": "::numeric", "Boolean": "::boolean", "Null": ""}.get(kind, ' COLLATE "C"')
        key = self.attribute_key(name)
        return f"(CASE WHEN {self.attribute_part('type')} IN {types} THEN {value} END)", [key, key]

    def attribute_leaf(self, node: Compare | In | TextMatch, name: str) -> Fragment:
        if isinstance(node, In):
            return self.filter(Or(tuple(Compare(node.prop, "eq", v) for v in node.values if v is not None)), name)
        if isinstance(node, TextMatch):
            value, params = self.typed_value("String", name)
            sql, more = self.text_match(value, node.function, node.text)
            return sql, [*params, *more]
        value, params = self.typed_value(literal_kind(node.value), name)
        if node.value is None:
            return f"({value} IS {'' if node.op == 'eq' else 'NOT '}NULL)", params
        # Attribute times are stored as fixed-width UTC text on both backends: compared as text.
        literal = format_utc(node.value) if isinstance(node.value, datetime) else self.value(node.value)
        return f"({value} {_SQL_OPS[node.op]} {self.ph})", [*params, literal]

    # -- space --------------------------------------------------------------------------------

    def box_prefilter(self, bounds: Sequence[Box]) -> Fragment:
        """The box prefilter alone: footprints whose bounding box (columns of the row, and of the
        type + time and grid indexes) meets a part box of the geometry.

        A product without footprint has no box, so it never passes: the NULL test is implied.
        """
        ph = self.ph
        boxes = joined(
            [f"(p.max_lon >= {ph} AND p.min_lon <= {ph} AND p.max_lat >= {ph} AND p.min_lat <= {ph})" for _ in bounds],
            " OR ",
        )
        params = [v for box in bounds for v in box]
        return boxes, params

    def cell_prefilter(self, bounds: Sequence[Box]) -> Fragment:
        """The box prefilter, with the grid cells a footprint meeting the area can be in: a grid
        index then reads only those cells (see ``grid``)."""
        if self.d.sqlite:  # the only store with wrapped boxes (see ``grid``)
            bounds = with_wrapped_copies(bounds)
        boxes, box_params = self.box_prefilter(bounds)
        cells = covering_cells(bounds)
        if self.d.sqlite:  # one parameter, however many cells
            return f"(p.footprint_cell IN (SELECT value FROM json_each(?)) AND {boxes})", [
                json.dumps(cells),
                *box_params,
            ]
        return f"(p.footprint_cell = ANY(%s) AND {boxes})", [cells, *box_params]

    def exact(self, node: Spatial, *, indexable: bool = True) -> Fragment:
        """PostgreSQL's exact test of a spatial predicate (PostGIS). Not ``indexable``: PostGIS's
        underscore form, the same test without the GiST index, for rows already chosen by key; else
        the planner would still scan the GiST index for the whole area, and AND it with the keys."""
        function = {"intersects": "ST_Intersects", "within": "ST_Within", "disjoint": "ST_Disjoint"}[node.relation]
        if not indexable:
            function = "_" + function
        # A plain call, not a scalar subquery (an InitPlan): the planner then sees the geometry
        # (immutable function of a parameter) and estimates how many rows its box selects; with
        # an InitPlan it guessed one row and preferred the GiST index to the type and time index.
        return f"{function}(p.footprint_geom, ST_GeomFromText({self.ph}, 4326))", [node.wkt]

    def spatial(self, node: Spatial) -> Fragment:
        if not self.d.sqlite:
            exact, _ = self.exact(node)
            if node.relation == "disjoint" or not node.bounds:
                return exact, [node.wkt]
            # The box columns, tested inside the type + time index (migration 0004) before any row is read.
            boxes, box_params = self.box_prefilter(node.bounds)
            return f"({boxes} AND {exact})", [*box_params, node.wkt]
        exact = "(p.footprint IS NOT NULL AND refsys_spatial(?, p.footprint, ?))"
        params: list[Any] = [node.relation, node.wkt]
        if node.relation == "disjoint" or not node.bounds:
            return exact, params
        cells, cell_params = self.cell_prefilter(node.bounds)
        return f"({cells} AND {exact})", [*cell_params, *params]

    # -- order and keyset ---------------------------------------------------------------------

    def sort_expression(self, prop: Prop) -> str:
        if prop in (Prop.START, Prop.END):  # missing times sort last, as filters.sort_value says
            never = self.value(NEVER_EVICTED)
            literal = f"'{never}'" if self.d.sqlite else f"'{NEVER_EVICTED.isoformat()}'::timestamptz"
            return f"COALESCE({self.column(prop)}, {literal})"
        if prop in _POSTGRES_TEXT:
            return self.text_column(prop)
        return self.column(prop)


def _rejects_absent(node: Filter) -> bool:
    """Whether ``node`` (an attribute lambda's condition) is false or NULL when the attribute is absent.

    Every value leaf then reads NULL; a comparison with a literal, ``in`` and a text function give
    NULL, and so does ``ne null`` (``IS NOT NULL`` is false). ``eq null``, ``not`` and ``true`` do not.
    """
    if isinstance(node, Const):
        return not node.value
    if isinstance(node, And):
        return any(_rejects_absent(item) for item in node.items)
    if isinstance(node, Or):
        return all(_rejects_absent(item) for item in node.items)
    if isinstance(node, Compare):
        return node.prop is Prop.ATTRIBUTE_VALUE and (node.value is not None or node.op == "ne")
    if isinstance(node, In | TextMatch):
        return node.prop is Prop.ATTRIBUTE_VALUE
    return False


def _conjuncts(node: Filter) -> list[Filter]:
    if isinstance(node, And):
        return [c for item in node.items for c in _conjuncts(item)]
    return [node]


def _narrows_by_index(node: Filter) -> bool:
    """Whether ``node`` is a conjunct an index serves with few rows: a product type (whose index holds
    the footprint's grid cell and box), a name or an id. PostgreSQL then defers the exact spatial
    test; else its GiST index serves the area."""
    if isinstance(node, Compare | In) and node.prop in (Prop.NAME, Prop.ID):
        return isinstance(node, In) or node.op == "eq"
    if isinstance(node, AttributeMatch) and node.name == "productType":
        condition = node.condition
        return isinstance(condition, Compare) and condition.op == "eq" and isinstance(condition.value, str)
    return False


def _deferrable(node: Spatial) -> bool:
    return node.relation in ("intersects", "within") and bool(node.bounds)


def _bounds_start(node: Filter) -> bool:
    return isinstance(node, Compare) and node.prop is Prop.START and node.op in ("lt", "le", "gt", "ge", "eq")


def grid_prefilter(bounds: Sequence[Box], dialect: Dialect) -> Fragment:
    """Footprints that may meet an area of these part boxes: their grid cell, then their box."""
    return _Compiler(dialect).cell_prefilter(bounds)


def exact_tests(tests: tuple[Spatial, ...]) -> Fragment:
    """PostgreSQL: the deferred exact tests of a compiled selection, ANDed."""
    compiler = _Compiler(POSTGRESQL)
    parts = [compiler.exact(test, indexable=False) for test in tests]
    return "(" + " AND ".join(sql for sql, _ in parts) + ")", [p for _, params in parts for p in params]


@dataclass(frozen=True)
class CompiledSelection:
    where: str  # " WHERE ..." or ""
    params: list[Any]
    order_by: str  # " ORDER BY ..."
    count_where: str  # WHERE without the keyset condition, for $count
    count_params: list[Any]
    # Exact spatial tests left to the caller (``defer_exact``): the WHERE holds only their box
    # prefilter, and a row is a result only when it passes every one of these too.
    exact: tuple[Spatial, ...] = ()
    # The order's expressions and whether each is descending; the keyset condition alone ("" without).
    order_keys: tuple[tuple[str, bool], ...] = ()
    keyset: str = ""
    keyset_params: tuple[Any, ...] = ()
    # PostgreSQL: select the WHERE's rows first, then order them (see ``compile_selection``).
    select_before_order: bool = False


def compile_selection(selection: Selection, dialect: Dialect, *, defer_exact: bool = False) -> CompiledSelection:
    """``selection`` as SQL.

    With ``defer_exact``, spatial tests that are conjuncts of the whole filter compile to their box
    prefilter only and come back in ``exact``: the caller tests the rows the other predicates kept,
    in result order, and only as many as the page needs. On SQLite the exact test, in Python, costs
    far more than any SQL predicate. On PostgreSQL they are deferred only when an index narrows the
    rows (a product type, a name or an id): the type + time index then tests the box, while the
    planner, given the exact test, would also scan the GiST index for the whole area and AND both.
    """
    compiler = _Compiler(dialect)
    clauses: list[str] = []
    params: list[Any] = []
    exact: list[Spatial] = []
    conjuncts = _conjuncts(selection.where) if selection.where is not None else []
    if selection.where is not None:
        narrowed = any(_narrows_by_index(c) for c in conjuncts)
        if defer_exact and (dialect.sqlite or narrowed):
            exact = [c for c in conjuncts if isinstance(c, Spatial) and _deferrable(c)]
            if exact:
                parts = [compiler.cell_prefilter(c.bounds) if c in exact else compiler.filter(c) for c in conjuncts]
                sql = joined([s for s, _ in parts], " AND ")
                params = [p for _, ps in parts for p in ps]
                clauses.append(sql)
        if not exact:
            sql, params = compiler.filter(selection.where)
            clauses.append(sql)
    count_where = " WHERE " + clauses[0] if clauses else ""
    count_params = list(params)
    order = total_order(selection.order)
    expressions = [compiler.sort_expression(key.prop) for key in order]
    filter_params = len(params)
    if selection.after is not None:
        if len(selection.after) != len(order):
            raise ValueError(f"keyset has {len(selection.after)} values for {len(order)} sort keys")
        values = [compiler.value(v) for v in selection.after]
        if len({key.descending for key in order}) == 1:
            # One direction: a row-value comparison, which an index on the keys can serve.
            op = "<" if order[0].descending else ">"
            placeholders = ", ".join(compiler.ph for _ in values)
            clauses.append(f"(({', '.join(expressions)}) {op} ({placeholders}))")
            params = [*params, *values]
        else:
            alternatives = []
            for i, key in enumerate(order):
                equal = [f"{expressions[j]} = {compiler.ph}" for j in range(i)]
                beyond = f"{expressions[i]} {'<' if key.descending else '>'} {compiler.ph}"
                alternatives.append("(" + " AND ".join([*equal, beyond]) + ")")
                params = [*params, *values[:i], values[i]]
            clauses.append("(" + " OR ".join(alternatives) + ")")
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    order_by = " ORDER BY " + ", ".join(
        f"{expression} {'DESC' if key.descending else 'ASC'}"
        for expression, key in zip(expressions, order, strict=True)
    )
    # PostgreSQL's planner assumes matches spread evenly along the order, so for a first page it
    # walks the publication index and filters: but a sensing time range selects products published
    # together (an archive is published in sensing order), and the walk crosses all the others
    # first (151 ms at 1 M entries, seconds at 10 M). The rows a type + time range + area selects
    # are few and found by one index: select them first, then order them.
    select_before_order = bool(exact) and any(_bounds_start(c) for c in conjuncts) and order[0].prop is not Prop.START
    return CompiledSelection(
        where,
        params,
        order_by,
        count_where,
        count_params,
        tuple(exact),
        tuple((expression, key.descending) for expression, key in zip(expressions, order, strict=True)),
        clauses[-1] if selection.after is not None else "",
        tuple(params[filter_params:]),
        select_before_order,
    )
