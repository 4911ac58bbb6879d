"""Catalog store on SQLite: the embedded default (a file) and the fast unit-test store (memory).

Concurrency: WAL mode (readers never block the writer), a busy timeout for writers of other
processes, and a small pool of connections each used by one thread at a time. ``:memory:`` is
one database per connection, so it gets a pool of exactly one connection.

Spatial search: a grid index (the footprint's coarse cell, then the sensing time and the bounding
box; see ``grid``) preselects candidates; shapely decides exactly. Datetimes are fixed-width UTC
text (see the migration).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from shared.catalog.database import enable_wal
from shared.catalog.errors import SQLITE_LIMIT_ERRORS, CatalogUnavailable, QueryTooComplex
from shared.catalog.filters import Filter, Selection, Spatial
from shared.catalog.migrations import COMPONENT, load_migrations
from shared.catalog.model import CatalogEntry, ProductQuery, ProductTypeSummary, format_utc, parse_geometry
from shared.catalog.pool import ConnectionPool, StoreTuning
from shared.catalog.sqlboxes import certainly_passing
from shared.catalog.sqlfilter import (
    SQLITE,
    CompiledSelection,
    compile_selection,
    grid_prefilter,
)
from shared.catalog.sqlite_rows import (
    ALL_COLUMNS,
    CONTENT_COLUMNS,
    DERIVED,
    ExactIntersects,
    Prepared,
    entry_from_row,
    exact_verdicts,
    part_boxes,
    prepare_rows,
    product_type_summary,
    same_content,
    spatial_udf,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 10.0
CHECKPOINT_BYTES = 4 * 1024 * 1024  # SQLite's own threshold for its automatic checkpoints (1,000 pages)
MEMORY = ":memory:"

_SELECT = (
    "SELECT "
    + ", ".join(f"p.{c}" for c in (*CONTENT_COLUMNS, "publication_time", "modification_time"))
    + " FROM products p"
)
_BY_PKS = " WHERE p.pk IN (SELECT value FROM json_each(?))"
_SELECT_BY_PKS = _SELECT.replace("SELECT ", "SELECT p.pk, ", 1) + _BY_PKS
# What the exact tests read: the WKB, and the GeoJSON only of rows without one (written before migration
# 0003); reading a text they do not need cost as much as the tests.
_EXACT_TEST_ROWS = (
    "SELECT p.pk, p.footprint_wkb, CASE WHEN p.footprint_wkb IS NULL THEN p.footprint END AS footprint FROM products p"
)
_INSERT = f"INSERT INTO products ({', '.join(ALL_COLUMNS)}) VALUES ({', '.join('?' for _ in ALL_COLUMNS)})"
# The bulk path names the key itself: executemany gives no lastrowid per row.
_INSERT_PK = f"INSERT INTO products (pk, {', '.join(ALL_COLUMNS)}) VALUES (?, {', '.join('?' for _ in ALL_COLUMNS)})"
# publication_time is deliberately absent: an existing entry keeps it.
_UPDATE = (
    "UPDATE products SET "
    + ", ".join(f"{c} = ?" for c in (*CONTENT_COLUMNS, "modification_time", *DERIVED))
    + " WHERE pk = ?"
)
_ORDER = " ORDER BY p.publication_time DESC, p.name"
_PRODUCT_TYPES = (
    "SELECT mission, product_type, count(*), min(validity_start), max(validity_stop),"
    " min(min_lon), min(min_lat), max(max_lon), max(max_lat)"
    " FROM products GROUP BY mission, product_type ORDER BY mission, product_type"
)


def sqlite_path(url: str) -> str:
    """File path (or ``:memory:``) of a ``sqlite:///...`` URL; ``sqlite:////abs`` is absolute."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        raise ValueError(
            f"SQLite catalog URL must look like sqlite:///relative.db, sqlite:////absolute.db "
            f"or sqlite:///:memory:, got {url!r}"
        )
    path = url[len(prefix) :]
    if not path:
        raise ValueError(f"SQLite catalog URL {url!r} names no database file")
    return path


def _split_statements(script: str) -> Iterator[str]:
    """The statements of a SQL script (executescript would COMMIT the migration's transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {statement.strip()[:80]!r}")


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front: the read-compare-write of an upsert (and a
    # migration check) cannot interleave with another writer, in this or another process.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _rows_by_pk(conn: sqlite3.Connection, pks: list[int]) -> list[sqlite3.Row]:
    """The rows of ``pks``, in that order."""
    if not pks:
        return []
    rows = {row["pk"]: row for row in conn.execute(_SELECT_BY_PKS, (json.dumps(pks),))}
    return [rows[pk] for pk in pks]


def _failing(conn: sqlite3.Connection, compiled: CompiledSelection) -> list[int]:
    """The keys of the candidates of a selection with deferred exact tests (``count_where``'s rows)
    that fail them.

    Most candidates certainly intersect the area, by their box (``certainly_passing``): only the
    others, across its corners, are read and tested.
    """
    certain, certain_params = certainly_passing(compiled.exact, SQLITE)
    sql = f"{_EXACT_TEST_ROWS}{compiled.count_where} AND NOT {certain}"
    return _failing_keys(compiled.exact, conn.execute(sql, (*compiled.count_params, *certain_params)).fetchall())


def _failing_among(conn: sqlite3.Connection, tests: tuple[Spatial, ...], pks: list[int]) -> set[int]:
    """The keys among ``pks`` whose footprint fails the exact ``tests``."""
    if not pks:
        return set()
    return set(_failing_keys(tests, conn.execute(_EXACT_TEST_ROWS + _BY_PKS, (json.dumps(pks),)).fetchall()))


def _failing_keys(tests: tuple[Spatial, ...], rows: list[sqlite3.Row]) -> list[int]:
    return [row["pk"] for row, ok in zip(rows, exact_verdicts(tests, rows), strict=True) if not ok]


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    # One read transaction: the statements of a count see the same rows.
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


class _Checkpointer:
    """Copies the WAL back into the database file in a thread of its own, once it holds
    ``CHECKPOINT_BYTES``.

    SQLite does that copy in the COMMIT that crosses the threshold, and a bulk batch crosses it every
    time: at 1 M entries the copy (pages written at random places, then an fsync) was a third of a
    bulk load. Here the commit returns at once and the copy overlaps what the writer does next (build
    its next batch); the next write transaction waits for it to end, so that the WAL starts again
    from its beginning and never holds more than one transaction's pages.
    """

    def __init__(self, path: str, checkpoint: Callable[[], None]) -> None:
        self._wal = Path(path + "-wal")
        self._checkpoint = checkpoint
        self._running = threading.Lock()  # held while a checkpoint runs

    def after_commit(self) -> None:
        try:
            # journal_size_limit truncates the WAL to CHECKPOINT_BYTES at its first commit after a
            # restart: a larger file holds more than that many bytes of frames.
            if self._wal.stat().st_size <= CHECKPOINT_BYTES:
                return
        except OSError:  # no WAL file (not WAL mode): SQLite's own checkpoints
            return
        if self._running.acquire(blocking=False):  # else one is running already
            threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True).start()

    def before_write(self) -> None:
        with self._running:
            pass

    def _run(self) -> None:
        try:
            self._checkpoint()
        except Exception:  # the next commit over the threshold tries again
            log.warning("SQLite checkpoint of %s failed", self._wal, exc_info=True)
        finally:
            self._running.release()


class SqliteCatalog:
    """CatalogStore on a SQLite file (or memory)."""

    def __init__(self, url: str, tuning: StoreTuning | None = None) -> None:
        tuning = tuning or StoreTuning()
        self._cache_kib = tuning.sqlite_cache_mib * 1024
        self._path = sqlite_path(url)
        memory = self._path == MEMORY
        if not memory:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._pool: ConnectionPool[sqlite3.Connection] = ConnectionPool(
            self._connect,
            lambda conn: conn.close(),
            max_size=1 if memory else tuning.max_connections,
            max_idle=1 if memory else tuning.max_connections,
            broken_errors=(),  # SQLite connections do not break; errors are per statement
        )
        self._checkpointer = _Checkpointer(self._path, self._checkpoint)
        try:
            self._run(self._migrate)
        except BaseException:
            self._pool.close()
            raise

    # -- CatalogStore --------------------------------------------------------------------------

    def upsert(self, entry: CatalogEntry) -> bool:
        return self.upsert_many([entry]) == 1

    def upsert_many(self, entries: Iterable[CatalogEntry]) -> int:
        batch = list(entries)
        if not batch:
            return 0

        prepared = prepare_rows(batch)  # before taking a connection: it is most of a bulk load's Python time

        def write(conn: sqlite3.Connection) -> int:
            self._checkpointer.before_write()
            with _write_transaction(conn):  # one transaction: a bulk load pays one commit
                if len({entry.id for entry in batch}) == len(batch):
                    conn.execute("SAVEPOINT bulk")
                    try:
                        changed = self._upsert_bulk(conn, prepared)
                        conn.execute("RELEASE bulk")
                        return changed
                    except sqlite3.IntegrityError:
                        # A conflicting name: undo the batch, and let the row by row path name the entry.
                        conn.execute("ROLLBACK TO bulk")
                        conn.execute("RELEASE bulk")
                # An id twice in one batch: the later one is compared with the earlier, row by row.
                return sum(self._upsert_one(conn, *item) for item in prepared)

        changed = self._run(write)
        self._checkpointer.after_commit()
        return changed

    def _upsert_bulk(self, conn: sqlite3.Connection, prepared: list[Prepared]) -> int:
        """Upsert a batch of distinct ids: new ones with one executemany (the statement prepared once),
        the few that exist already row by row (compared, updated if changed)."""
        first_pk = conn.execute("SELECT coalesce(max(pk), 0) FROM products").fetchone()[0] + 1
        # Explicit keys, to tell the rows inserted from those skipped: an existing id is not an error.
        conn.executemany(
            _INSERT_PK + " ON CONFLICT (id) DO NOTHING",
            ((first_pk + i, *row) for i, (_, row) in enumerate(prepared)),
        )
        inserted = {row[0] for row in conn.execute("SELECT pk FROM products WHERE pk >= ?", (first_pk,))}
        existing = [item for i, item in enumerate(prepared) if first_pk + i not in inserted]
        return len(inserted) + sum(self._upsert_one(conn, *item) for item in existing)

    def _upsert_one(self, conn: sqlite3.Connection, entry: CatalogEntry, row: tuple[Any, ...]) -> bool:
        content = row[: len(CONTENT_COLUMNS)]
        existing = conn.execute(
            f"SELECT pk, {', '.join(CONTENT_COLUMNS)} FROM products WHERE id = ?", (entry.id,)
        ).fetchone()
        if existing is not None and same_content(tuple(existing)[1:], content):
            return False
        try:
            if existing is None:
                conn.execute(_INSERT, row)
            else:
                modification = row[ALL_COLUMNS.index("modification_time")]
                conn.execute(_UPDATE, (*content, modification, *row[-len(DERIVED) :], existing["pk"]))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"cannot catalog {entry.name} with id {entry.id}: {exc}") from exc
        return True

    def get(self, product_id: str) -> CatalogEntry | None:
        return self._first(_SELECT + " WHERE p.id = ?", (product_id,))

    def get_by_name(self, name: str) -> CatalogEntry | None:
        return self._first(_SELECT + " WHERE p.name = ?", (name,))

    def search(self, query: ProductQuery) -> list[CatalogEntry]:
        where, params = self._where(query)
        exact = ExactIntersects(query.intersects) if query.intersects is not None else None
        if query.limit == 0:
            return []

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if exact is None:
                sql = _SELECT + where + _ORDER + " LIMIT ? OFFSET ?"
                return conn.execute(sql, (*params, query.limit, query.offset)).fetchall()
            # Paging applies after the exact test, so candidates stream in result order until the page is full.
            rows = conn.execute(_SELECT + where + _ORDER, params)
            return list(islice(filter(exact, rows), query.offset, query.offset + query.limit))

        return [entry_from_row(row) for row in self._run(read)]

    def count(self, query: ProductQuery) -> int:
        where, params = self._where(query)
        if query.intersects is None:
            return int(self._run(lambda c: c.execute("SELECT count(*) FROM products p" + where, params).fetchone()[0]))
        exact = ExactIntersects(query.intersects)
        sql = "SELECT p.name, p.footprint FROM products p" + where
        return self._run(lambda conn: sum(1 for row in conn.execute(sql, params) if exact(row)))

    def find(self, selection: Selection) -> list[CatalogEntry]:
        compiled = compile_selection(selection, SQLITE, defer_exact=True)
        if selection.limit == 0:
            return []
        # Keys first, rows after: the filter and the order are often served by an index alone, and
        # only the rows of the page are then read from the table.
        keys = "SELECT p.pk FROM products p" + compiled.where + compiled.order_by
        if not compiled.exact:
            params = (*compiled.params, selection.limit, selection.offset)

            def page(conn: sqlite3.Connection) -> list[sqlite3.Row]:
                pks = [row[0] for row in conn.execute(keys + " LIMIT ? OFFSET ?", params)]
                return _rows_by_pk(conn, pks)

            return [entry_from_row(row) for row in self._run(page)]
        wanted = selection.offset + selection.limit
        # Each candidate's key, and whether its box alone says it passes (most do: see certainly_passing).
        certain, certain_params = certainly_passing(compiled.exact, SQLITE)
        candidates = f"SELECT p.pk, {certain} FROM products p{compiled.where}{compiled.order_by}"

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            # Candidates stream in result order; the exact test runs on batches of them, only
            # until the page is full (paging applies after it), and only on those their box leaves in doubt.
            cursor = conn.execute(candidates, (*certain_params, *compiled.params))
            try:
                kept: list[sqlite3.Row] = []
                read = 0
                size = max(wanted + wanted // 4, 32)
                while batch := cursor.fetchmany(size):
                    failing = _failing_among(conn, compiled.exact, [pk for pk, sure in batch if not sure])
                    kept.extend(_rows_by_pk(conn, [pk for pk, _ in batch if pk not in failing]))
                    read += len(batch)
                    if len(kept) >= wanted:
                        break
                    # As many more as the share that passed so far says are needed, and a quarter more.
                    size = max(32, int((wanted - len(kept)) * 1.25 * read / max(len(kept), 1)))
                return kept[selection.offset : wanted]
            finally:
                cursor.close()

        return [entry_from_row(row) for row in self._run(read)]

    def count_where(self, where: Filter | None) -> int:
        compiled = compile_selection(Selection(where=where), SQLITE, defer_exact=True)
        if not compiled.exact:
            sql = "SELECT count(*) FROM products p" + compiled.count_where
            return int(self._run(lambda conn: conn.execute(sql, compiled.count_params).fetchone()[0]))
        return self._run(lambda conn: self._counted(conn, compiled, 0, 0)[1])

    def find_counted(self, selection: Selection) -> tuple[list[CatalogEntry], int]:
        compiled = compile_selection(selection, SQLITE, defer_exact=True)
        if not compiled.exact:
            return self.find(selection), self.count_where(selection.where)
        rows, count = self._run(lambda conn: self._counted(conn, compiled, selection.limit, selection.offset))
        return [entry_from_row(row) for row in rows], count

    @staticmethod
    def _counted(
        conn: sqlite3.Connection, compiled: CompiledSelection, limit: int, offset: int
    ) -> tuple[list[sqlite3.Row], int]:
        """The page and the count of a selection with deferred exact tests: the candidates that fail
        them are found first, then the count and the page are index scans without them."""
        with _snapshot(conn):
            failing = _failing(conn, compiled)
            count_sql = "SELECT count(*) FROM products p" + compiled.count_where
            count = conn.execute(count_sql, compiled.count_params).fetchone()[0] - len(failing)
            if limit == 0:
                return [], count
            keys = (
                f"SELECT p.pk FROM products p{compiled.where} AND p.pk NOT IN (SELECT value FROM json_each(?))"
                f"{compiled.order_by} LIMIT ? OFFSET ?"
            )
            params = (*compiled.params, json.dumps(failing), limit, offset)
            return _rows_by_pk(conn, [row[0] for row in conn.execute(keys, params)]), count

    def product_types(self) -> list[ProductTypeSummary]:
        rows = self._run(lambda conn: conn.execute(_PRODUCT_TYPES).fetchall())
        return [product_type_summary(*row) for row in rows]

    def ping(self) -> None:
        self._run(lambda conn: conn.execute("SELECT count(*) FROM schema_migrations").fetchone())

    def close(self) -> None:
        self._checkpointer.before_write()  # a running checkpoint ends first
        self._pool.close()

    # -- internals ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions, they are explicit (BEGIN IMMEDIATE).
        # check_same_thread=False: the pool hands a connection to one thread at a time.
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            if self._path != MEMORY:
                enable_wal(conn, BUSY_TIMEOUT_SECONDS)
                conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # the store's _Checkpointer does them
                conn.execute(f"PRAGMA journal_size_limit = {CHECKPOINT_BYTES}")
            conn.execute("PRAGMA foreign_keys = ON")
            # The page cache bounds a connection's memory (StoreTuning); beyond it pages come from the OS cache.
            conn.execute(f"PRAGMA cache_size = -{self._cache_kib}")
            # The exact spatial test of compiled filters (after the grid prefilter).
            conn.create_function("refsys_spatial", 3, spatial_udf, deterministic=True)
        except BaseException:
            conn.close()
            raise
        return conn

    def _checkpoint(self) -> None:
        self._run(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)"))

    def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            with self._pool.connection() as (conn, _):
                return operation(conn)
        except sqlite3.IntegrityError:
            raise  # a bug or a conflicting entry, not an unavailable store
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            if any(limit in str(exc).lower() for limit in SQLITE_LIMIT_ERRORS):
                raise QueryTooComplex(f"the query is too complex for the catalog database: {exc}") from exc
            # "database is locked" past the busy timeout, unreadable or missing file, disk full.
            raise CatalogUnavailable(f"SQLite catalog {self._path}: {exc}") from exc

    def _first(self, sql: str, params: tuple[Any, ...]) -> CatalogEntry | None:
        row = self._run(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else entry_from_row(row)

    @staticmethod
    def _where(query: ProductQuery) -> tuple[str, tuple[Any, ...]]:
        """WHERE clause from fixed fragments; values only ever travel as parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if query.names:
            clauses.append("p.name IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(query.names)))
        if query.name_contains is not None:
            clauses.append("instr(p.name, ?) > 0")  # case-sensitive, no LIKE wildcards to escape
            params.append(query.name_contains)
        for column in ("mission", "product_type", "family"):
            value = getattr(query, column)
            if value is not None:
                clauses.append(f"p.{column} = ?")
                params.append(value)
        if query.start is not None:
            clauses.append("p.validity_stop >= ?")
            params.append(format_utc(query.start))
        if query.stop is not None:
            clauses.append("p.validity_start <= ?")
            params.append(format_utc(query.stop))
        if query.intersects is not None:
            boxes = part_boxes(parse_geometry(query.intersects, "intersects geometry"))
            prefilter, prefilter_params = grid_prefilter(boxes, SQLITE)
            clauses.append(prefilter)
            params.extend(prefilter_params)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        migrations = load_migrations("sqlite")
        if {m.version for m in migrations} <= SqliteCatalog._applied(conn):
            return  # the common case, without taking the write lock
        with _write_transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
            )
            applied = SqliteCatalog._applied(conn)  # again, under the lock: another process may have won
            for migration in migrations:
                if migration.version in applied:
                    continue
                log.info("applying catalog migration %04d_%s (sqlite)", migration.version, migration.name)
                for statement in _split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)",
                    (COMPONENT, migration.version, migration.name, format_utc(datetime.now(UTC))),
                )

    @staticmethod
    def _applied(conn: sqlite3.Connection) -> set[int]:
        try:
            rows = conn.execute("SELECT version FROM schema_migrations WHERE component = ?", (COMPONENT,))
            return {row[0] for row in rows}
        except sqlite3.OperationalError:  # no such table yet
            return set()
