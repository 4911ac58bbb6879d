"""Catalog store on PostgreSQL + PostGIS: the production backend.

Footprints are searched with an exact ``ST_Intersects`` on a GiST-indexed ``geometry(Geometry,
4326)`` (planar lon/lat, like the SQLite backend's shapely test); the GeoJSON as given is kept
beside it and returned. Connections come from a small pool; a connection cut by a server restart
is replaced and the operation retried once (every operation is idempotent).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.adapt import Dumper
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import Format
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_loads

from shared.catalog.filters import Filter, Selection, valid_shapes
from shared.catalog.migrations import COMPONENT, load_migrations
from shared.catalog.model import (
    CatalogEntry,
    ProductQuery,
    attributes_from_json,
    attributes_to_json,
    canonical_json,
    parse_geometry,
)
from shared.catalog.sqlfilter import (
    POSTGRESQL,
    CompiledSelection,
    QueryTooComplex,
    certainly_passing,
    compile_selection,
    exact_tests,
)
from shared.catalog.store import CatalogUnavailable, ConnectionPool

log = logging.getLogger(__name__)

T = TypeVar("T")
Connection = psycopg.Connection[DictRow]

# Serialises migrations of concurrent processes (pg_advisory_xact_lock key; any fixed bigint).
_MIGRATION_LOCK = 0x7265667379730001  # "refsys" + 1
_CONNECT_DEFAULTS = {"connect_timeout": "5", "application_name": "refsys-catalog"}
_CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)

# Columns compared to decide whether an upsert changes anything: all but the bookkeeping times.
_CONTENT_COLUMNS = (
    "name",
    "mission",
    "satellite",
    "product_type",
    "level",
    "family",
    "bucket",
    "object_key",
    "content_length",
    "checksum",
    "content_type",
    "validity_start",
    "validity_stop",
    "footprint",
    "attributes",
    "inbox_time",
    "ingestion_time",
    "eviction_time",
    "online",
    "quicklooks",
)
_JSONB = ("footprint", "attributes", "quicklooks")
# Attributes as text, read by json: an Integer attribute may exceed 64 bits, which orjson (the
# connection's reader of the other jsonb columns, three times json's speed) would make a float.
_SELECT = (
    "SELECT p.id, "
    + ", ".join("p.attributes::text AS attributes" if c == "attributes" else f"p.{c}" for c in _CONTENT_COLUMNS)
    + ", p.publication_time, p.modification_time FROM products p"
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


def _compared(alias: str, column: str) -> str:
    # jsonb as text: canonical (sorted keys) yet type-exact, where jsonb equality has 1 = 1.0.
    return f"{alias}.{column}::text" if column in _JSONB else f"{alias}.{column}"


_GEOMETRY = "ST_Force2D(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(%(footprint)s::text), 4326)))"
# ON CONFLICT ... WHERE: an identical redelivered entry updates nothing and returns no row.
# publication_time is not in the SET list: an existing entry keeps it.
_UPSERT = f"""
INSERT INTO products AS p (id, {", ".join(_CONTENT_COLUMNS)}, footprint_geom, publication_time, modification_time)
VALUES (%(id)s, {", ".join(f"%({c})s::jsonb" if c in _JSONB else f"%({c})s" for c in _CONTENT_COLUMNS)},
        {_GEOMETRY}, %(publication_time)s, %(modification_time)s)
ON CONFLICT (id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _CONTENT_COLUMNS)},
    footprint_geom = EXCLUDED.footprint_geom,
    modification_time = EXCLUDED.modification_time
WHERE ({", ".join(_compared("p", c) for c in _CONTENT_COLUMNS)})
    IS DISTINCT FROM ({", ".join(_compared("EXCLUDED", c) for c in _CONTENT_COLUMNS)})
RETURNING p.id
"""
_ORDER = " ORDER BY p.publication_time DESC, p.name"

# Bulk path (upsert_many). Rows travel by binary COPY: typed values, no text to parse server-side,
# and the geometry as EWKB made valid client-side (vectorised GEOS calls, a chunk at a time). Ids not
# in the table yet are COPYed straight into it; the others go through a staging table and one
# INSERT ... SELECT with _UPSERT's conflict handling.
_ROW_COLUMNS = ("id", *_CONTENT_COLUMNS, "footprint_geom", "publication_time", "modification_time")
# COPY types: psycopg picks each value's binary dumper from these. jsonb goes from JSON text
# (_JsonbText), the geometry's EWKB as raw bytes, which the column's binary input (geometry_recv) reads.
_COPY_TYPES = [
    {
        "content_length": "int8",
        "validity_start": "timestamptz",
        "validity_stop": "timestamptz",
        "inbox_time": "timestamptz",
        "ingestion_time": "timestamptz",
        "eviction_time": "timestamptz",
        "online": "bool",
        "footprint_geom": "bytea",
        "publication_time": "timestamptz",
        "modification_time": "timestamptz",
    }.get(c, "jsonb" if c in _JSONB else "text")
    for c in _ROW_COLUMNS
]
_COLUMN_LIST = ", ".join(_ROW_COLUMNS)
_COPY_NEW = f"COPY products ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_EXISTING = "SELECT id FROM products WHERE id = ANY(%s::text[])"
_CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS products_stage ON COMMIT DELETE ROWS AS"
    f" SELECT {_COLUMN_LIST} FROM products WITH NO DATA"
)
_COPY_STAGE = f"COPY products_stage ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
# Emptying the stage as it is read: a later round (an id twice in a batch) stages its own rows.
_UPSERT_STAGED = f"""
WITH staged AS (DELETE FROM products_stage RETURNING *)
INSERT INTO products AS p ({_COLUMN_LIST})
SELECT {_COLUMN_LIST} FROM staged
ON CONFLICT {_UPSERT.split("ON CONFLICT", 1)[1]}"""
_ID_KEY = "products_pkey"  # the primary key's constraint: a COPYed id that a concurrent writer inserted

Row = tuple[Any, ...]
# Built once (json.dumps with options builds an encoder per call); a NaN is a ValueError, not bad JSON.
_JSON = json.JSONEncoder(allow_nan=False).encode
_CHUNK = 500  # entries made into rows at a time: GEOS calls still vectorised, the server soon busy


class _JsonbText(Dumper):
    """Binary jsonb from JSON text: the format's version byte, then the text."""

    oid = psycopg.postgres.types["jsonb"].oid
    format = Format.BINARY

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _valid_ewkb(batch: list[CatalogEntry], footprints: list[str | None]) -> list[bytes | None]:
    """The 2D EWKB (SRID 4326) of each footprint, made valid as ST_MakeValid would; a clear
    ValueError naming the entry for one that is not a usable GeoJSON geometry."""
    # Imported here, as parse_geometry does: only writes and spatial queries need them.
    import numpy as np
    import shapely

    present = [i for i, text in enumerate(footprints) if text is not None]
    ewkb: list[bytes | None] = [None] * len(batch)
    if not present:
        return ewkb
    try:
        shapes = shapely.from_geojson([footprints[i] for i in present])
        usable = not shapely.is_empty(shapes).any()
    except (shapely.errors.GEOSException, TypeError, ValueError):
        usable = False
    if not usable:  # entry by entry: parse_geometry says which footprint is wrong, and how
        shapes = np.array(
            [parse_geometry(e.footprint, f"footprint of {e.name}") for e in batch if e.footprint is not None],
            dtype=object,
        )
    shapes = shapely.set_srid(valid_shapes(shapes), 4326)
    for i, wkb in zip(present, shapely.to_wkb(shapes, output_dimension=2, include_srid=True).tolist(), strict=True):
        ewkb[i] = wkb
    return ewkb


def _rows(batch: list[CatalogEntry]) -> list[Row]:
    """COPY rows (``_ROW_COLUMNS``) of a batch. JSON need not be canonical here: jsonb orders keys itself."""
    footprints = [None if e.footprint is None else _JSON(e.footprint) for e in batch]
    return [
        (
            e.id,
            e.name,
            e.mission,
            e.satellite,
            e.product_type,
            e.level,
            e.family,
            e.bucket,
            e.key,
            e.content_length,
            e.checksum,
            e.content_type,
            e.validity_start,
            e.validity_stop,
            footprint,
            attributes_to_json(e.attributes),
            e.inbox_time,
            e.ingestion_time,
            e.eviction_time,
            e.online,
            _JSON(e.quicklooks),
            geometry,
            e.publication_time,
            e.modification_time,
        )
        for e, footprint, geometry in zip(batch, footprints, _valid_ewkb(batch, footprints), strict=True)
    ]


def _rounds(batch: list[CatalogEntry]) -> list[list[CatalogEntry]]:
    """The batch split so that no id is twice in a round: the n-th occurrence of an id in round n."""
    occurrences: dict[str, int] = {}
    rounds: list[list[CatalogEntry]] = []
    for entry in batch:
        n = occurrences[entry.id] = occurrences.get(entry.id, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(entry)
    return rounds


def _copy(cursor: psycopg.Cursor[DictRow], statement: str, entries: list[CatalogEntry]) -> None:
    """COPY the entries' rows, made a chunk at a time: the server inserts one chunk while the next
    is made (two cores busy instead of one after the other)."""
    with cursor.copy(statement) as copy:
        copy.set_types(_COPY_TYPES)
        for start in range(0, len(entries), _CHUNK):
            for row in _rows(entries[start : start + _CHUNK]):
                copy.write_row(row)


def _upsert_round(cursor: psycopg.Cursor[DictRow], entries: list[CatalogEntry], *, all_staged: bool) -> int:
    """Upsert entries of distinct ids; the number inserted or changed. ``all_staged``: every entry
    goes through the staging table's conflict handling (safe against a concurrent insert of an id)."""
    if all_staged:
        new, known = [], entries
    else:
        existing = {row["id"] for row in cursor.execute(_EXISTING, ([e.id for e in entries],))}
        new = [e for e in entries if e.id not in existing]
        known = [e for e in entries if e.id in existing] if existing else []
    if new:
        _copy(cursor, _COPY_NEW, new)
    if not known:
        return len(new)
    cursor.execute(_CREATE_STAGE)
    _copy(cursor, _COPY_STAGE, known)
    return len(new) + len(cursor.execute(_UPSERT_STAGED).fetchall())


def _entry(row: DictRow) -> CatalogEntry:
    # Timestamps come back in UTC (the session's time zone), jsonb as plain JSON values: already
    # what construction makes.
    return CatalogEntry.from_store(
        id=row["id"],
        name=row["name"],
        mission=row["mission"],
        satellite=row["satellite"],
        product_type=row["product_type"],
        level=row["level"],
        family=row["family"],
        bucket=row["bucket"],
        key=row["object_key"],
        content_length=row["content_length"],
        checksum=row["checksum"],
        content_type=row["content_type"],
        validity_start=row["validity_start"],
        validity_stop=row["validity_stop"],
        footprint=row["footprint"],
        attributes=attributes_from_json(row["attributes"]),
        publication_time=row["publication_time"],
        modification_time=row["modification_time"],
        inbox_time=row["inbox_time"],
        ingestion_time=row["ingestion_time"],
        eviction_time=row["eviction_time"],
        online=row["online"],
        quicklooks=tuple(row["quicklooks"]),
    )


def _params(entry: CatalogEntry) -> dict[str, Any]:
    if entry.footprint is not None:
        parse_geometry(entry.footprint, f"footprint of {entry.name}")  # a clear ValueError, not a DB error
    return {
        "id": entry.id,
        "name": entry.name,
        "mission": entry.mission,
        "satellite": entry.satellite,
        "product_type": entry.product_type,
        "level": entry.level,
        "family": entry.family,
        "bucket": entry.bucket,
        "object_key": entry.key,
        "content_length": entry.content_length,
        "checksum": entry.checksum,
        "content_type": entry.content_type,
        "validity_start": entry.validity_start,
        "validity_stop": entry.validity_stop,
        "footprint": None if entry.footprint is None else canonical_json(entry.footprint),
        "attributes": attributes_to_json(entry.attributes),
        "inbox_time": entry.inbox_time,
        "ingestion_time": entry.ingestion_time,
        "eviction_time": entry.eviction_time,
        "online": entry.online,
        "quicklooks": canonical_json(list(entry.quicklooks)),
        "publication_time": entry.publication_time,
        "modification_time": entry.modification_time,
    }


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


def _location(url: str) -> str:
    """host:port/dbname of a URL, for messages (never the password)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"invalid PostgreSQL catalog URL: {exc}") from exc
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresCatalog:
    """CatalogStore on PostgreSQL + PostGIS."""

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self._location = _location(url)
        given = conninfo_to_dict(url)
        self._conninfo = make_conninfo(url, **{k: v for k, v in _CONNECT_DEFAULTS.items() if k not in given})
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            self._connect,
            lambda conn: conn.close(),
            max_size=max_connections,
            max_idle=min(4, max_connections),
            broken_errors=_CONNECTION_ERRORS,
        )
        try:
            self._run(self._migrate)
        except BaseException:
            self._pool.close()
            raise

    # -- CatalogStore --------------------------------------------------------------------------

    def upsert(self, entry: CatalogEntry) -> bool:
        params = _params(entry)

        def write(conn: Connection) -> bool:
            try:
                with conn.transaction():
                    return conn.execute(_UPSERT, params).fetchone() is not None
            except psycopg.errors.UniqueViolation as exc:
                raise ValueError(f"cannot catalog {entry.name} with id {entry.id}: {exc}") from exc

        return self._run(write)

    def upsert_many(self, entries: Iterable[CatalogEntry]) -> int:
        batch = list(entries)
        if not batch:
            return 0
        rounds = _rounds(batch)

        def write(conn: Connection, all_staged: bool) -> int:
            with conn.transaction(), conn.cursor() as cursor:  # one transaction for the batch
                cursor.adapters.register_dumper(None, _JsonbText)
                # A later round's ids were all in the first, so they are in the table by then.
                return sum(
                    _upsert_round(cursor, entries_of_round, all_staged=all_staged or n > 0)
                    for n, entries_of_round in enumerate(rounds)
                )

        try:
            try:
                return self._run(lambda conn: write(conn, False))
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != _ID_KEY:
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
        return [_entry(row) for row in rows]

    def count(self, query: ProductQuery) -> int:
        where, params = _where(query)
        row = self._run(lambda conn: conn.execute("SELECT count(*) AS n FROM products p" + where, params).fetchone())
        return int(row["n"]) if row is not None else 0

    def find(self, selection: Selection) -> list[CatalogEntry]:
        compiled = compile_selection(selection, POSTGRESQL, defer_exact=True)
        if not compiled.exact:
            sql = _SELECT + compiled.where + compiled.order_by + " LIMIT %s OFFSET %s"
            params = (*compiled.params, selection.limit, selection.offset)
            return [_entry(row) for row in self._run(lambda conn: conn.execute(sql, params).fetchall())]
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

        return [_entry(row) for row in self._run(read)]

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
        return [_entry(row) for row in rows], count

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
        return None if row is None else _entry(row)

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
