"""The catalog store port: one interface, a SQLite and a PostgreSQL+PostGIS implementation.

``open_catalog(url)`` picks the backend from the URL scheme; database drivers are imported only
when their backend is opened, so a function that never touches PostgreSQL never imports psycopg.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from shared.catalog.filters import Filter, Selection
from shared.catalog.model import CatalogEntry, ProductQuery

log = logging.getLogger(__name__)


class CatalogUnavailable(Exception):
    """The catalog database cannot be reached or is overloaded (HTTP 503 upstream; retry later)."""


class CatalogStore(Protocol):
    def upsert(self, entry: CatalogEntry) -> bool:
        """Insert or replace by id. True when something was inserted or changed; False when the
        identical entry was already there (publication_time and modification_time aside: a
        redelivered event changes nothing). An existing entry keeps its publication_time."""
        ...

    def upsert_many(self, entries: Iterable[CatalogEntry]) -> int:
        """``upsert`` of each entry in one transaction (all or none); the number inserted or changed."""
        ...

    def get(self, product_id: str) -> CatalogEntry | None: ...

    def get_by_name(self, name: str) -> CatalogEntry | None: ...

    def search(self, query: ProductQuery) -> list[CatalogEntry]: ...

    def count(self, query: ProductQuery) -> int:
        """Number of products matching the query's filters (limit and offset ignored)."""
        ...

    def find(self, selection: Selection) -> list[CatalogEntry]:
        """One page of the products matching a compiled query language's filter (see ``filters``)."""
        ...

    def count_where(self, where: Filter | None) -> int:
        """Number of products matching ``where`` (all products for None)."""
        ...

    def find_counted(self, selection: Selection) -> tuple[list[CatalogEntry], int]:
        """``find`` and ``count_where`` of the selection's filter (``$count=true``), in one pass
        over the candidates where the backend can."""
        ...

    def ping(self) -> None:
        """Raise CatalogUnavailable when the database cannot be reached."""
        ...

    def close(self) -> None: ...


def open_catalog(url: str) -> CatalogStore:
    """Open (and migrate) the catalog at ``url``.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``,
    ``postgresql://user@host:port/db`` (or ``postgres://``). Raises CatalogUnavailable when the
    database cannot be reached, ValueError for a URL it does not understand.
    """
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ValueError(f"catalog URL {url!r} has no scheme; expected sqlite:///path.db or postgresql://...")
    scheme = scheme.lower()
    if scheme == "sqlite":
        from shared.catalog.sqlite import SqliteCatalog

        return SqliteCatalog(url)
    if scheme in ("postgresql", "postgres"):
        from shared.catalog.postgres import PostgresCatalog

        return PostgresCatalog(url)
    raise ValueError(
        f"unsupported catalog URL scheme {scheme!r} in {url!r}; expected sqlite:///path.db or postgresql://..."
    )


C = TypeVar("C")


class ConnectionPool(Generic[C]):
    """A small thread-safe pool: each caller borrows a connection for one operation.

    Connections are created on demand up to ``max_size`` (callers beyond that wait up to
    ``wait_seconds``) and at most ``max_idle`` are kept. When an operation fails with one of
    ``broken_errors``, its connection and the idle ones are closed: the next borrower gets a fresh one.
    """

    def __init__(
        self,
        connect: Callable[[], C],
        close: Callable[[C], None],
        *,
        max_size: int,
        max_idle: int,
        broken_errors: tuple[type[BaseException], ...],
        wait_seconds: float = 30.0,
    ) -> None:
        self._connect = connect
        self._close = close
        self._max_size = max_size
        self._max_idle = max_idle
        self._broken_errors = broken_errors
        self._wait_seconds = wait_seconds
        self._cond = threading.Condition()
        self._idle: list[C] = []
        self._open = 0  # idle + borrowed
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[tuple[C, bool]]:
        """Yield ``(connection, fresh)``; ``fresh`` is False for a connection used before."""
        conn, fresh = self._acquire()
        try:
            yield conn, fresh
        except self._broken_errors:
            # One broken connection usually means all idle ones are (server restart): drop them too.
            self._discard(conn)
            self._drop_idle()
            raise
        except BaseException:
            self._release(conn)
            raise
        else:
            self._release(conn)

    def close(self) -> None:
        with self._cond:
            self._closed = True
        self._drop_idle()

    def _drop_idle(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            self._close_quietly(conn)

    def _acquire(self) -> tuple[C, bool]:
        with self._cond:
            ready = self._cond.wait_for(
                lambda: self._closed or self._idle or self._open < self._max_size, timeout=self._wait_seconds
            )
            if self._closed:
                raise CatalogUnavailable("the catalog store is closed")
            if not ready:
                raise CatalogUnavailable(f"all {self._max_size} catalog connections busy for {self._wait_seconds} s")
            if self._idle:
                return self._idle.pop(), False
            self._open += 1  # reserve the slot before connecting outside the lock
        try:
            return self._connect(), True
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _release(self, conn: C) -> None:
        with self._cond:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                self._cond.notify()
                return
            self._open -= 1
            self._cond.notify()
        self._close_quietly(conn)

    def _discard(self, conn: C) -> None:
        with self._cond:
            self._open -= 1
            self._cond.notify()
        self._close_quietly(conn)

    def _close_quietly(self, conn: C) -> None:
        try:
            self._close(conn)
        except Exception:  # closing a broken connection may fail; nothing left to do with it
            log.debug("closing a catalog connection failed", exc_info=True)
