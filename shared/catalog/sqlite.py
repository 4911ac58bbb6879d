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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import orjson

from shared.catalog.database import enable_wal
from shared.catalog.filters import (
    Filter,
    Selection,
    Spatial,
    spatial_test,
    spatial_test_many,
    spatial_test_shapes,
    valid_shapes,
)
from shared.catalog.grid import WRAPPED_WIDTH, Box, wrapped_box
from shared.catalog.migrations import COMPONENT, load_migrations
from shared.catalog.model import (
    CatalogEntry,
    ProductQuery,
    attributes_from_json,
    attributes_to_json,
    canonical_json,
    format_utc,
    parse_geometry,
    parse_utc,
)
from shared.catalog.sqlfilter import (
    SQLITE,
    SQLITE_LIMIT_ERRORS,
    CompiledSelection,
    QueryTooComplex,
    certainly_passing,
    compile_selection,
    grid_prefilter,
)
from shared.catalog.store import CatalogUnavailable, ConnectionPool

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 10.0
CHECKPOINT_BYTES = 4 * 1024 * 1024  # SQLite's own threshold for its automatic checkpoints (1,000 pages)
MEMORY = ":memory:"

# Columns compared to decide whether an upsert changes anything: all but the bookkeeping times.
_CONTENT_COLUMNS = (
    "id",
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
# Derived from footprint (so not compared): the valid WKB the exact spatial test reads, and the
# bounding box the type + time index holds.
_DERIVED = ("footprint_wkb", "min_lon", "max_lon", "min_lat", "max_lat")
_ALL_COLUMNS = (*_CONTENT_COLUMNS, "publication_time", "modification_time", *_DERIVED)
# Compared as JSON values when their texts differ: rows written before canonical_json used orjson
# hold other text for the same value (1e-05 for 0.00001, escaped non-ASCII characters).
_JSON_CONTENT = frozenset(_CONTENT_COLUMNS.index(c) for c in ("footprint", "attributes", "quicklooks"))
_SELECT = (
    "SELECT "
    + ", ".join(f"p.{c}" for c in (*_CONTENT_COLUMNS, "publication_time", "modification_time", "footprint_wkb"))
    + " FROM products p"
)
_SELECT_BY_PKS = _SELECT.replace("SELECT ", "SELECT p.pk, ", 1) + " WHERE p.pk IN (SELECT value FROM json_each(?))"
_INSERT = f"INSERT INTO products ({', '.join(_ALL_COLUMNS)}) VALUES ({', '.join('?' for _ in _ALL_COLUMNS)})"
# The bulk path names the key itself: executemany gives no lastrowid per row.
_INSERT_PK = f"INSERT INTO products (pk, {', '.join(_ALL_COLUMNS)}) VALUES (?, {', '.join('?' for _ in _ALL_COLUMNS)})"
# publication_time is deliberately absent: an existing entry keeps it.
_UPDATE = (
    "UPDATE products SET "
    + ", ".join(f"{c} = ?" for c in (*_CONTENT_COLUMNS, "modification_time", *_DERIVED))
    + " WHERE pk = ?"
)
_ORDER = " ORDER BY p.publication_time DESC, p.name"


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


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_utc(value)


def _entry(row: sqlite3.Row) -> CatalogEntry:
    def time(column: str) -> datetime | None:
        text = row[column]
        return None if text is None else parse_utc(text)

    publication_time, modification_time = time("publication_time"), time("modification_time")
    assert publication_time is not None and modification_time is not None  # NOT NULL columns
    # parse_utc gives UTC datetimes, attributes_from_json typed values: already what construction makes.
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
        validity_start=time("validity_start"),
        validity_stop=time("validity_stop"),
        footprint=None if row["footprint"] is None else orjson.loads(row["footprint"]),  # 3 times json's speed
        attributes=attributes_from_json(row["attributes"]),
        publication_time=publication_time,
        modification_time=modification_time,
        inbox_time=time("inbox_time"),
        ingestion_time=time("ingestion_time"),
        eviction_time=time("eviction_time"),
        online=bool(row["online"]),
        quicklooks=tuple(orjson.loads(row["quicklooks"])),
    )


def _part_boxes(geometry: Any) -> list[Box]:
    """The box (see ``Box``) of every part of a (multi-part) shapely geometry."""
    import shapely

    return [(w, e, s, n) for w, s, e, n in shapely.bounds(shapely.get_parts(geometry)).tolist()]


def _batch_geometry(entries: list[CatalogEntry], footprints: list[str | None]) -> tuple[list[Box | None], list[Any]]:
    """The bounding box (see ``Box``) and the valid WKB of every entry's footprint (GeoJSON text),
    parsed in one vectorised GEOS call."""
    import shapely

    present = [i for i, text in enumerate(footprints) if text is not None]
    boxes: list[Box | None] = [None] * len(entries)
    wkbs: list[Any] = [None] * len(entries)
    if not present:
        return boxes, wkbs
    try:
        geometries = shapely.from_geojson([footprints[i] for i in present])
        unusable = bool(shapely.is_empty(geometries).any())
    except Exception:
        unusable = True
    if unusable:  # entry by entry: parse_geometry says which footprint is wrong, and how
        import numpy

        # GEOS's GeoJSON reader refuses some that shapely's reads (an open ring).
        shapes = [parse_geometry(e.footprint, f"footprint of {e.name}") for e in entries if e.footprint is not None]
        geometries = numpy.array(shapes, dtype=object)
    valid = valid_shapes(geometries)  # what the exact test reads; its box is the one the prefilters test
    bounds = shapely.bounds(valid).tolist()
    for k, (i, (min_lon, min_lat, max_lon, max_lat)) in enumerate(zip(present, bounds, strict=True)):
        boxes[i] = (min_lon, max_lon, min_lat, max_lat)
        if max_lon - min_lon > WRAPPED_WIDTH:  # perhaps cut at the antimeridian (see ``grid``)
            boxes[i] = wrapped_box(_part_boxes(valid[k])) or boxes[i]
    for i, wkb in zip(present, shapely.to_wkb(valid).tolist(), strict=True):
        wkbs[i] = wkb
    return boxes, wkbs


def _same_content(stored: Sequence[Any], content: Sequence[Any]) -> bool:
    """Whether a stored row's content columns hold this content (see ``_JSON_CONTENT``)."""
    return all(
        old == new or (i in _JSON_CONTENT and None not in (old, new) and json.loads(old) == json.loads(new))
        for i, (old, new) in enumerate(zip(stored, content, strict=True))
    )


# An entry ready to write, and its row (values in _ALL_COLUMNS order).
Prepared = tuple[CatalogEntry, tuple[Any, ...]]
_NO_BOX = (None, None, None, None)  # the box columns without footprint


def _prepare(batch: list[CatalogEntry]) -> list[Prepared]:
    """Each entry's row (built as a tuple straight away: this is most of a bulk load's Python time)."""
    footprints = [None if e.footprint is None else canonical_json(e.footprint) for e in batch]
    boxes, wkbs = _batch_geometry(batch, footprints)
    prepared = []
    for e, footprint, wkb, box in zip(batch, footprints, wkbs, boxes, strict=True):
        row = (
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
            _time(e.validity_start),
            _time(e.validity_stop),
            footprint,
            attributes_to_json(e.attributes),
            _time(e.inbox_time),
            _time(e.ingestion_time),
            _time(e.eviction_time),
            int(e.online),
            canonical_json(list(e.quicklooks)) if e.quicklooks else "[]",
            _time(e.publication_time),
            _time(e.modification_time),
            wkb,
            *(box or _NO_BOX),
        )
        prepared.append((e, row))
    return prepared


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


class _ExactIntersects:
    """The exact test after the grid prefilter (planar, lon/lat degrees, like PostGIS geometry)."""

    def __init__(self, geojson: dict[str, Any]) -> None:
        import shapely

        geometry = parse_geometry(geojson, "intersects geometry")
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        shapely.prepare(geometry)
        self.geometry = geometry

    def __call__(self, row: sqlite3.Row) -> bool:
        import shapely

        footprint = parse_geometry(json.loads(row["footprint"]), f"footprint of {row['name']}")
        if not footprint.is_valid:
            # A self-intersecting footprint (the reference's S3 L0 case) would make GEOS raise.
            footprint = shapely.make_valid(footprint)
        return bool(self.geometry.intersects(footprint))


def _exact(tests: tuple[Spatial, ...], rows: Sequence[Any]) -> list[bool]:
    """Whether each row (a mapping) passes every exact spatial test (vectorised): on its ``footprint_wkb``
    (valid already), or on its GeoJSON ``footprint`` when it has none (written before migration 0003)."""
    import numpy
    import shapely

    passed = [False] * len(rows)
    stored = [i for i, row in enumerate(rows) if row["footprint_wkb"] is not None]
    legacy = [i for i, row in enumerate(rows) if row["footprint_wkb"] is None and row["footprint"] is not None]
    if stored:
        shapes = shapely.from_wkb([rows[i]["footprint_wkb"] for i in stored])
        verdicts = numpy.ones(len(stored), dtype=bool)
        for test in tests:
            verdicts &= numpy.array(spatial_test_shapes(test.relation, test.wkt, shapes), dtype=bool)
        for i, ok in zip(stored, verdicts.tolist(), strict=True):
            passed[i] = ok
    if legacy:
        texts = [rows[i]["footprint"] for i in legacy]
        results = [spatial_test_many(test.relation, test.wkt, texts) for test in tests]
        for j, i in enumerate(legacy):
            passed[i] = all(result[j] for result in results)
    return passed


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
    sql = f"SELECT p.pk, p.footprint, p.footprint_wkb FROM products p{compiled.count_where} AND NOT {certain}"
    rows = conn.execute(sql, (*compiled.count_params, *certain_params)).fetchall()
    return [row["pk"] for row, ok in zip(rows, _exact(compiled.exact, rows), strict=True) if not ok]


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    # One read transaction: the statements of a count see the same rows.
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _spatial_udf(relation: str, footprint: str | None, wkt: str) -> int:
    # Called by SQLite for each candidate row; an exception here would surface as an opaque
    # OperationalError, so a footprint that cannot be read simply does not match.
    if footprint is None:
        return 0
    try:
        return int(spatial_test(relation, wkt, footprint))
    except Exception:
        log.warning("footprint %.80s could not be tested", footprint, exc_info=True)
        return 0


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

    def __init__(self, url: str) -> None:
        self._path = sqlite_path(url)
        memory = self._path == MEMORY
        if not memory:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._pool: ConnectionPool[sqlite3.Connection] = ConnectionPool(
            self._connect,
            lambda conn: conn.close(),
            max_size=1 if memory else 8,
            max_idle=1 if memory else 4,
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

        prepared = _prepare(batch)  # before taking a connection: it is most of a bulk load's Python time

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
        content = row[: len(_CONTENT_COLUMNS)]
        existing = conn.execute(
            f"SELECT pk, {', '.join(_CONTENT_COLUMNS)} FROM products WHERE id = ?", (entry.id,)
        ).fetchone()
        if existing is not None and _same_content(tuple(existing)[1:], content):
            return False
        try:
            if existing is None:
                conn.execute(_INSERT, row)
            else:
                modification = row[_ALL_COLUMNS.index("modification_time")]
                conn.execute(_UPDATE, (*content, modification, *row[-len(_DERIVED) :], existing["pk"]))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"cannot catalog {entry.name} with id {entry.id}: {exc}") from exc
        return True

    def get(self, product_id: str) -> CatalogEntry | None:
        return self._first(_SELECT + " WHERE p.id = ?", (product_id,))

    def get_by_name(self, name: str) -> CatalogEntry | None:
        return self._first(_SELECT + " WHERE p.name = ?", (name,))

    def search(self, query: ProductQuery) -> list[CatalogEntry]:
        where, params = self._where(query)
        exact = _ExactIntersects(query.intersects) if query.intersects is not None else None
        if query.limit == 0:
            return []

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if exact is None:
                sql = _SELECT + where + _ORDER + " LIMIT ? OFFSET ?"
                return conn.execute(sql, (*params, query.limit, query.offset)).fetchall()
            # Paging applies after the exact test, so candidates stream in result order until the page is full.
            rows = conn.execute(_SELECT + where + _ORDER, params)
            return list(islice(filter(exact, rows), query.offset, query.offset + query.limit))

        return [_entry(row) for row in self._run(read)]

    def count(self, query: ProductQuery) -> int:
        where, params = self._where(query)
        if query.intersects is None:
            return int(self._run(lambda c: c.execute("SELECT count(*) FROM products p" + where, params).fetchone()[0]))
        exact = _ExactIntersects(query.intersects)
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

            return [_entry(row) for row in self._run(page)]
        wanted = selection.offset + selection.limit

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            # Candidates stream in result order; the exact test runs on batches of them, only
            # until the page is full (paging applies after it).
            cursor = conn.execute(keys, compiled.params)
            try:
                kept: list[sqlite3.Row] = []
                size = max(wanted + wanted // 4, 32)
                while len(kept) < wanted:
                    rows = _rows_by_pk(conn, [row[0] for row in cursor.fetchmany(size)])
                    if not rows:
                        break
                    kept.extend(row for row, ok in zip(rows, _exact(compiled.exact, rows), strict=True) if ok)
                    size *= 2
                return kept[selection.offset : wanted]
            finally:
                cursor.close()

        return [_entry(row) for row in self._run(read)]

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
        return [_entry(row) for row in rows], count

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
            # 64 MiB of page cache instead of 2: the indexes of a bulk load (random ids and names)
            # and of a query stay in memory instead of being read again from the OS.
            conn.execute("PRAGMA cache_size = -65536")
            # The exact spatial test of compiled filters (after the grid prefilter).
            conn.create_function("refsys_spatial", 3, _spatial_udf, deterministic=True)
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
        return None if row is None else _entry(row)

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
            boxes = _part_boxes(parse_geometry(query.intersects, "intersects geometry"))
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
