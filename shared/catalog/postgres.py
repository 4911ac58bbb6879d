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

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row

from shared.catalog.filters import Filter, Selection
from shared.catalog.migrations import COMPONENT, load_migrations
from shared.catalog.model import (
    CatalogEntry,
    ProductQuery,
    attributes_from_json,
    attributes_to_json,
    canonical_json,
    parse_geometry,
)
from shared.catalog.sqlfilter import POSTGRESQL, compile_selection
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
_SELECT = (
    "SELECT p.id, "
    + ", ".join(f"p.{c}" for c in _CONTENT_COLUMNS)
    + ", p.publication_time, p.modification_time FROM products p"
)


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

# Bulk path: the batch is COPYed into a temporary table, then upserted by one INSERT ... SELECT with
# the same conflict handling as _UPSERT (one statement for the batch instead of one per entry).
_STAGE_TYPES = {
    "content_length": "bigint",
    "validity_start": "timestamptz",
    "validity_stop": "timestamptz",
    "inbox_time": "timestamptz",
    "ingestion_time": "timestamptz",
    "eviction_time": "timestamptz",
    "online": "boolean",
    "publication_time": "timestamptz",
    "modification_time": "timestamptz",
}
_STAGE_COLUMNS = ("id", *_CONTENT_COLUMNS, "publication_time", "modification_time")
_CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS products_stage (seq integer, "
    + ", ".join(f"{c} {_STAGE_TYPES.get(c, 'text')}" for c in _STAGE_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
_COPY_STAGE = f"COPY products_stage (seq, {', '.join(_STAGE_COLUMNS)}) FROM STDIN"
_UPSERT_STAGED = f"""
INSERT INTO products AS p (id, {", ".join(_CONTENT_COLUMNS)}, footprint_geom, publication_time, modification_time)
SELECT id, {", ".join(f"{c}::jsonb" if c in _JSONB else c for c in _CONTENT_COLUMNS)},
       {_GEOMETRY.replace("%(footprint)s", "footprint")}, publication_time, modification_time
FROM products_stage ORDER BY seq
ON CONFLICT {_UPSERT.split("ON CONFLICT", 1)[1]}"""


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
        batch = [_params(entry) for entry in entries]

        def staged(conn: Connection) -> int:
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.execute(_CREATE_STAGE)
                    with cursor.copy(_COPY_STAGE) as copy:
                        for seq, params in enumerate(batch):
                            copy.write_row((seq, *(params[c] for c in _STAGE_COLUMNS)))
                    return len(cursor.execute(_UPSERT_STAGED).fetchall())
            except psycopg.errors.UniqueViolation as exc:
                raise ValueError(f"cannot catalog a batch of {len(batch)} entries: {exc}") from exc

        def write(conn: Connection) -> int:
            changed = 0
            try:
                with conn.transaction(), conn.cursor() as cursor:  # one transaction, one round trip per batch
                    cursor.executemany(_UPSERT, batch, returning=True)
                    while True:
                        changed += cursor.fetchone() is not None
                        if not cursor.nextset():
                            break
            except psycopg.errors.UniqueViolation as exc:
                raise ValueError(f"cannot catalog a batch of {len(batch)} entries: {exc}") from exc
            return changed

        if not batch:
            return 0
        # An id twice in one batch would make the single INSERT update a row twice (an error):
        # such a batch goes entry by entry, the later compared with the earlier.
        return self._run(staged if len({p["id"] for p in batch}) == len(batch) else write)

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
        compiled = compile_selection(selection, POSTGRESQL)
        sql = _SELECT + compiled.where + compiled.order_by + " LIMIT %s OFFSET %s"
        params = (*compiled.params, selection.limit, selection.offset)
        return [_entry(row) for row in self._run(lambda conn: conn.execute(sql, params).fetchall())]

    def count_where(self, where: Filter | None) -> int:
        compiled = compile_selection(Selection(where=where), POSTGRESQL)
        sql = "SELECT count(*) AS n FROM products p" + compiled.count_where
        row = self._run(lambda conn: conn.execute(sql, compiled.count_params).fetchone())
        return int(row["n"]) if row is not None else 0

    def find_counted(self, selection: Selection) -> tuple[list[CatalogEntry], int]:
        # Two statements: the page's stops early in index order, the count's is an index-only scan.
        return self.find(selection), self.count_where(selection.where)

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
