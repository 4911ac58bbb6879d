"""Catalog store on PostgreSQL + PostGIS: the production backend.

Footprints are searched with an exact ``ST_Intersects`` on a GiST-indexed ``geometry(Geometry,
4326)`` (planar lon/lat, like the SQLite backend's shapely test); the GeoJSON as given is kept
beside it and returned. Connections come from a small pool; a connection cut by a server restart
is replaced and the operation retried once (every operation is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.types.json import set_json_loads

from shared.catalog.errors import CatalogUnavailable, QueryTooComplex
from shared.catalog.filters import Filter, Selection
from shared.catalog.migrations import COMPONENT, load_migrations
from shared.catalog.model import (
    CatalogEntry,
    ProductQuery,
    ProductTypeSummary,
    canonical_json,
    parse_geometry,
)
from shared.catalog.pool import ConnectionPool, StoreTuning
from shared.catalog.postgres_rows import (
    CONTENT_COLUMNS,
    ID_KEY,
    UPSERT,
    JsonbText,
    entry_from_row,
    rounds,
    upsert_params,
    upsert_round,
)
from shared.catalog.sqlboxes import certainly_passing
from shared.catalog.sqlfilter import (
    POSTGRESQL,
    CompiledSelection,
    compile_selection,
    exact_tests,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Connection = psycopg.Connection[DictRow]

# Serialises migrations of concurrent processes (pg_advisory_xact_lock key; any fixed bigint).
_MIGRATION_LOCK = 0x7265667379730001  # "refsys" + 1
_CONNECT_DEFAULTS = {"connect_timeout": "5", "application_name": "refsys-catalog"}
_CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)

# Attributes as text, read by json: an Integer attribute may exceed 64 bits, which orjson (the
# connection's reader of the other jsonb columns, three times json's speed) would make a float.
# The footprint as text: an answer passes it on as it is (CatalogEntry.footprint_text).
_AS_TEXT = ("attributes", "footprint")
_SELECT = (
    "SELECT p.id, "
    + ", ".join(f"p.{c}::text AS {c}" if c in _AS_TEXT else f"p.{c}" for c in CONTENT_COLUMNS)
    + ", p.publication_time, p.modification_time FROM products p"
)
_ORDER = " ORDER BY p.publication_time DESC, p.name"
_PRODUCT_TYPES = (
    "SELECT mission, product_type, count(*), min(validity_start), max(validity_stop), ST_Extent(footprint_geom)"
    " FROM products GROUP BY mission, product_type ORDER BY mission, product_type"
)


def _keys(compiled: CompiledSelection) -> tuple[str, str]:
    """The order's values as columns ``k0, k1...`` of a subquery ``c``, and the ORDER BY of ``c``."""
    columns = ", ".join(f"{expression} AS k{i}" for i, (expression, _) in enumerate(compiled.order_keys))
    order = ", ".join(f"c.k{i} {'DESC' if desc else 'ASC'}" for i, (_, desc) in enumerate(compiled.order_keys))
    return columns, order


def _candidate_keys(compiled: CompiledSelection) -> str:
    """The ids of a selection with deferred exact tests, in its order; LIMIT and OFFSET parameters."""
    if not compiled.select_before_order:
        return "SELECT p.id FROM products p" + compiled.where + compiled.order_by + " LIMIT %s OFFSET %s"
    columns, order = _keys(compiled)
    # A subquery with OFFSET 0 is planned on its own: by its WHERE alone, blind to the order.
    return (
        f"SELECT c.id FROM (SELECT p.id, {columns} FROM products p{compiled.where} OFFSET 0) c"
        f" ORDER BY {order} LIMIT %s OFFSET %s"
    )


def _counted_page(compiled: CompiledSelection) -> tuple[str, list[Any]]:
    """One statement for the count and the page's ids of a selection with deferred exact tests: the
    candidates once from the index (``c``), the rows their box leaves in doubt (``certainly_passing``)
    read and tested exactly (``failing``: those that do not pass); a first row (id NULL) holds the
    count, the others are the page's ids in order. LIMIT and OFFSET parameters follow those returned."""
    columns, order = _keys(compiled)
    certain, certain_params = certainly_passing(compiled.exact, POSTGRESQL)
    exact, exact_params = exact_tests(compiled.exact)
    sql = (
        f"WITH c AS MATERIALIZED (SELECT p.id, {columns}, {certain} AS certain, {compiled.keyset or 'TRUE'} AS beyond"
        f" FROM products p{compiled.count_where}),"
        " failing AS MATERIALIZED (SELECT c.id FROM c JOIN products p ON p.id = c.id"
        f" WHERE NOT c.certain AND NOT {exact})"
        " SELECT NULL AS id, (SELECT count(*) FROM c) - (SELECT count(*) FROM failing) AS total"
        " UNION ALL (SELECT c.id, NULL FROM c WHERE c.beyond AND c.id NOT IN (SELECT id FROM failing)"
        f" ORDER BY {order} LIMIT %s OFFSET %s)"
    )
    return sql, [*certain_params, *compiled.keyset_params, *compiled.count_params, *exact_params]


def _where(query: ProductQuery) -> tuple[str, dict[str, Any]]:
    """WHERE clause from fixed fragments; values only ever travel as parameters."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if query.names:
        clauses.append("p.name = ANY(%(names)s::text[])")
        params["names"] = list(query.names)
    if query.name_contains is not None:
        clauses.append("strpos(p.name, %(name_contains)s::text) > 0")  # case-sensitive, no LIKE wildcards
        params["name_contains"] = query.name_contains
    for column in ("mission", "product_type", "family"):
        value = getattr(query, column)
        if value is not None:
            clauses.append(f"p.{column} = %({column})s")
            params[column] = value
    if query.start is not None:
        clauses.append("p.validity_stop >= %(start)s")
        params["start"] = query.start
    if query.stop is not None:
        clauses.append("p.validity_start <= %(stop)s")
        params["stop"] = query.stop
    if query.intersects is not None:
        parse_geometry(query.intersects, "intersects geometry")
        # The scalar subquery is evaluated once (an InitPlan), and the GiST index still applies.
        clauses.append(
            "ST_Intersects(p.footprint_geom, (SELECT ST_Force2D(ST_MakeValid(ST_SetSRID("
            "ST_GeomFromGeoJSON(%(intersects)s::text), 4326)))))"
        )
        params["intersects"] = canonical_json(query.intersects)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _box(extent: str | None) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of PostGIS's box2d text ``BOX(w s,e n)``. Footprints cut at the
    antimeridian are in the world cell here (see ``grid``): their extent spans every longitude."""
    if extent is None:
        return None
    low, high = extent.removeprefix("BOX(").removesuffix(")").split(",")
    west, south = (float(v) for v in low.split())
    east, north = (float(v) for v in high.split())
    return west, south, east, north


def _location(url: str) -> str:
    """host:port/dbname of a URL, for messages (never the password)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"invalid PostgreSQL catalog URL: {exc}") from exc
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresCatalog:
    """CatalogStore on PostgreSQL + PostGIS."""

    def __init__(self, url: str, tuning: StoreTuning | None = None) -> None:
        max_connections = (tuning or StoreTuning()).max_connections
        self._location = _location(url)
        given = conninfo_to_dict(url)
        self._conninfo = make_conninfo(url, **{k: v for k, v in _CONNECT_DEFAULTS.items() if k not in given})
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            self._connect,
            lambda conn: conn.close(),
            max_size=max_connections,
            max_idle=max_connections,
            broken_errors=_CONNECTION_ERRORS,
        )
        try:
            self._run(self._migrate)
        except BaseException:
            self._pool.close()
            raise

    # -- CatalogStore --------------------------------------------------------------------------

    def upsert(self, entry: CatalogEntry) -> bool:
        params = upsert_params(entry)

        def write(conn: Connection) -> bool:
            try:
                with conn.transaction():
                    return conn.execute(UPSERT, params).fetchone() is not None
            except psycopg.errors.UniqueViolation as exc:
                raise ValueError(f"cannot catalog {entry.name} with id {entry.id}: {exc}") from exc

        return self._run(write)

    def upsert_many(self, entries: Iterable[CatalogEntry]) -> int:
        batch = list(entries)
        if not batch:
            return 0
        batch_rounds = rounds(batch)

        def write(conn: Connection, all_staged: bool) -> int:
            with conn.transaction(), conn.cursor() as cursor:  # one transaction for the batch
                cursor.adapters.register_dumper(None, JsonbText)
                # A later round's ids were all in the first, so they are in the table by then.
                return sum(
                    upsert_round(cursor, entries_of_round, all_staged=all_staged or n > 0)
                    for n, entries_of_round in enumerate(batch_rounds)
                )

        try:
            try:
                return self._run(lambda conn: write(conn, False))
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != ID_KEY:
                    raise
                # A concurrent writer inserted one of the new ids meanwhile: again, all with ON CONFLICT.
                return self._run(lambda conn: write(conn, True))
        except psycopg.errors.UniqueViolation as exc:
            raise ValueError(f"cannot catalog a batch of {len(batch)} entries: {exc}") from exc

    def get(self, product_id: str) -> CatalogEntry | None:
        return self._first(_SELECT + " WHERE p.id = %s", (product_id,))

    def get_by_name(self, name: str) -> CatalogEntry | None:
        return self._first(_SELECT + " WHERE p.name = %s", (name,))

    def search(self, query: ProductQuery) -> list[CatalogEntry]:
        where, params = _where(query)
        sql = _SELECT + where + _ORDER + " LIMIT %(limit)s OFFSET %(offset)s"
        params.update(limit=query.limit, offset=query.offset)
        rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [entry_from_row(row) for row in rows]

    def count(self, query: ProductQuery) -> int:
        where, params = _where(query)
        row = self._run(lambda conn: conn.execute("SELECT count(*) AS n FROM products p" + where, params).fetchone())
        return int(row["n"]) if row is not None else 0

    def find(self, selection: Selection) -> list[CatalogEntry]:
        compiled = compile_selection(selection, POSTGRESQL, defer_exact=True)
        if not compiled.exact:
            sql = _SELECT + compiled.where + compiled.order_by + " LIMIT %s OFFSET %s"
            params = (*compiled.params, selection.limit, selection.offset)
            return [entry_from_row(row) for row in self._run(lambda conn: conn.execute(sql, params).fetchall())]
        if selection.limit == 0:
            return []
        keys = _candidate_keys(compiled)
        exact, exact_params = exact_tests(compiled.exact)
        rows_sql = _SELECT + " WHERE p.id = ANY(%s) AND " + exact
        wanted = selection.offset + selection.limit

        def read(conn: Connection) -> list[DictRow]:
            # Candidates in result order, a batch at a time (the first is usually the last): only
            # their rows are read and tested exactly. One snapshot, so batches neither overlap nor miss.
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                kept: list[DictRow] = []
                offset, size = 0, max(wanted + wanted // 4, 32)
                while len(kept) < wanted:
                    ids = [row["id"] for row in conn.execute(keys, (*compiled.params, size, offset))]
                    passed = {row["id"]: row for row in conn.execute(rows_sql, (ids, *exact_params))}
                    kept.extend(passed[i] for i in ids if i in passed)
                    if len(ids) < size:
                        break
                    offset, size = offset + size, size * 2
                return kept[selection.offset : wanted]

        return [entry_from_row(row) for row in self._run(read)]

    def count_where(self, where: Filter | None) -> int:
        compiled = compile_selection(Selection(where=where), POSTGRESQL, defer_exact=True)
        if compiled.exact:  # a page of none: the count alone
            return self._counted(compiled, 0, 0)[1]
        sql = "SELECT count(*) AS n FROM products p" + compiled.count_where
        row = self._run(lambda conn: conn.execute(sql, compiled.count_params).fetchone())
        return int(row["n"]) if row is not None else 0

    def find_counted(self, selection: Selection) -> tuple[list[CatalogEntry], int]:
        compiled = compile_selection(selection, POSTGRESQL, defer_exact=True)
        if not compiled.exact:
            return self.find(selection), self.count_where(selection.where)
        return self._counted(compiled, selection.limit, selection.offset)

    def _counted(self, compiled: CompiledSelection, limit: int, offset: int) -> tuple[list[CatalogEntry], int]:
        """The page and the count of a selection with deferred exact tests (``_counted_page``)."""
        sql, params = _counted_page(compiled)

        def read(conn: Connection) -> tuple[list[DictRow], int]:
            with conn.transaction():  # one snapshot for the count and the page
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                result = conn.execute(sql, (*params, limit, offset)).fetchall()
                count = next(int(row["total"]) for row in result if row["id"] is None)
                ids = [row["id"] for row in result if row["id"] is not None]
                if not ids:
                    return [], count
                rows = {row["id"]: row for row in conn.execute(_SELECT + " WHERE p.id = ANY(%s)", (ids,))}
            return [rows[i] for i in ids], count

        rows, count = self._run(read)
        return [entry_from_row(row) for row in rows], count

    def product_types(self) -> list[ProductTypeSummary]:
        def read(conn: Connection) -> list[ProductTypeSummary]:
            with conn.cursor(row_factory=tuple_row) as cursor:
                rows = cursor.execute(_PRODUCT_TYPES).fetchall()
            return [
                ProductTypeSummary(mission, product_type, count, start, end, _box(extent))
                for mission, product_type, count, start, end, extent in rows
            ]

        return self._run(read)

    def ping(self) -> None:
        self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self._pool.close()

    # -- internals ------------------------------------------------------------------------------

    def _connect(self) -> Connection:
        # autocommit: reads need no transaction left open; writes use explicit conn.transaction().
        conn = psycopg.connect(self._conninfo, autocommit=True, row_factory=dict_row)
        try:
            conn.execute("SET TIME ZONE 'UTC'")  # timestamps come back in UTC whatever the server's zone
            # No JIT: catalog queries take milliseconds, but from a few million entries the planner
            # estimates a count costly enough to compile it first (14 ms of a 40 ms count at 3 M).
            # Only its custom plans were compiled: psycopg's prepared (generic) plans are estimated
            # cheap, hence counts of 277 ms p95 over HTTP but 112 at store level at 10 M.
            conn.execute("SET jit = off")
            set_json_loads(orjson.loads, conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, operation: Callable[[Connection], T]) -> T:
        for attempt in (1, 2):
            fresh = True  # stays True when connecting itself fails
            try:
                with self._pool.connection() as (conn, fresh):
                    return operation(conn)
            except psycopg.errors.ProgramLimitExceeded as exc:
                # "stack depth limit exceeded" and the like (SQLSTATE class 54): an OperationalError
                # to psycopg, but the statement's fault, not the server's.
                raise QueryTooComplex(f"the query is too complex for the catalog database: {exc}") from exc
            except _CONNECTION_ERRORS as exc:
                if fresh or attempt == 2:
                    raise CatalogUnavailable(f"PostgreSQL catalog {self._location}: {exc}") from exc
                # A pooled connection may have been cut (server restart, idle timeout): retry on a new one.
                log.info("catalog connection to %s lost (%s); retrying", self._location, exc)
        raise AssertionError("unreachable")

    def _first(self, sql: str, params: tuple[Any, ...]) -> CatalogEntry | None:
        row = self._run(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else entry_from_row(row)

    @staticmethod
    def _migrate(conn: Connection) -> None:
        with conn.transaction():
            # Transaction-scoped lock: concurrent openers wait, then find the work done.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (component text NOT NULL, version integer NOT NULL,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                " PRIMARY KEY (component, version))"
            )
            rows = conn.execute("SELECT version FROM schema_migrations WHERE component = %s", (COMPONENT,))
            applied = {row["version"] for row in rows}
            for migration in load_migrations("postgresql"):
                if migration.version in applied:
                    continue
                log.info("applying catalog migration %04d_%s (postgresql)", migration.version, migration.name)
                # No parameters: psycopg sends the whole file as one simple query, all statements in it.
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, name) VALUES (%s, %s, %s)",
                    (COMPONENT, migration.version, migration.name),
                )
