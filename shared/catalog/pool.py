"""A small thread-safe connection pool, shared by the catalog backends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from shared.catalog.errors import CatalogUnavailable

log = logging.getLogger(__name__)

C = TypeVar("C")


@dataclass(frozen=True)
class StoreTuning:
    """What bounds a store's memory in one process (settings ``catalog_pool_size``, ``catalog_sqlite_cache_mib``)."""

    max_connections: int = 4
    sqlite_cache_mib: int = 4  # per connection; the PostgreSQL backend has no client-side page cache


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
