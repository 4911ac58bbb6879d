"""A connection to the catalog database for the tables that live beside the catalog (processed events,
processing jobs) and for queries over it (selection policies): one per thread, opened lazily, autocommit,
the PostgreSQL driver imported only when used. Times are stored as the catalog stores them."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class CatalogDatabase:
    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        if url.startswith("sqlite:///"):
            self.is_sqlite = True
            self._path = url.removeprefix("sqlite:///")
        elif url.startswith(("postgresql://", "postgres://")):
            self.is_sqlite = False
            self._path = ""
        else:
            raise ValueError(f"unsupported catalog database URL: {url.split(':', 1)[0]}://...")
        self.placeholder = "?" if self.is_sqlite else "%s"

    @contextmanager
    def connection(self) -> Iterator[Any]:
        db = getattr(self._local, "db", None)
        if db is None or getattr(db, "closed", False):
            if self.is_sqlite:
                if self._path != ":memory:":
                    Path(self._path).parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA busy_timeout = 30000")
                if self._path != ":memory:":
                    # Many small writes from several processes (the inbox ledger): WAL lets readers go on
                    # beside a writer, and commits wait for no fsync but at checkpoints.
                    enable_wal(db, 30.0)
                    db.execute("PRAGMA synchronous = NORMAL")
            else:
                import psycopg  # only processes on PostgreSQL pay for the driver

                db = psycopg.connect(self.url, autocommit=True)
                db.execute("SET TIME ZONE 'UTC'")
            self._local.db = db
        yield db

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The connection inside one transaction: committed at the end, rolled back on an exception."""
        with self.connection() as db:
            if not self.is_sqlite:
                with db.transaction():
                    yield db
                return
            db.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock with another writer
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def sql(self, text: str) -> str:
        """A fixed statement with ``{p}`` for each parameter, in this backend's placeholder style."""
        return text.replace("{p}", self.placeholder)

    def time_param(self, value: datetime | None) -> Any:
        """A datetime as the catalog stores it (SQLite: fixed-width text, whose order is time order)."""
        if value is None:
            return None
        if self.is_sqlite:
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        return value.astimezone(UTC)

    @staticmethod
    def time_value(stored: Any) -> datetime:
        if isinstance(stored, datetime):
            return stored.astimezone(UTC)
        return datetime.fromisoformat(str(stored)).astimezone(UTC)


def enable_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite answers SQLITE_BUSY at once,
    # without its busy handler, when another process is switching too: retry until the timeout.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if mode.lower() != "wal":  # e.g. a file system without shared memory: works, less concurrently
            log.warning("SQLite database could not use WAL mode, journal_mode is %s", mode)
        return
