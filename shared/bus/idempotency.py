"""The one idempotency mechanism of every handler: events whose work is done, with the reply they made.

Knative delivers at least once and never deduplicates; the key of an event is (source, id). A
handler's side effects are idempotent themselves (deterministic keys, upserts, copies), so a
duplicate that slips through concurrently is harmless; this record makes the common case cheap and
exact: a delivery of an event already handled does no work again and answers the *same* reply
(same id), which the next step recognises in turn. The reply must be given again because a broker
redelivers precisely when it could not store the first one.

Kept in the catalog database (SQLite or PostgreSQL), in its own table.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent, from_json

_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS processed_events (
    function TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    reply BLOB,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (function, source, id)
)
"""
_POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS processed_events (
    function text NOT NULL,
    source text NOT NULL,
    id text NOT NULL,
    reply bytea,
    processed_at timestamptz NOT NULL,
    PRIMARY KEY (function, source, id)
)
"""


@dataclass(frozen=True)
class Processed:
    reply: CloudEvent | None


class ProcessedEvents(Protocol):
    def lookup(self, function: str, source: str, event_id: str) -> Processed | None: ...

    def record(self, function: str, source: str, event_id: str, reply: CloudEvent | None) -> None: ...


def open_processed_events(url: str) -> ProcessedEvents:
    if url.startswith("sqlite:///"):
        return SqliteProcessedEvents(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresProcessedEvents(url)
    raise ValueError(f"unsupported database URL for processed events: {url.split(':', 1)[0]}://...")


def _encode(reply: CloudEvent | None) -> bytes | None:
    return None if reply is None else to_json(reply)


def _decode(blob: Any) -> Processed:
    return Processed(None if blob is None else from_json(bytes(blob)))


class _Table:
    """Lookups and records in SQL both databases speak; backends differ in connections and placeholders."""

    placeholder = "?"
    insert = "INSERT INTO processed_events VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT DO NOTHING"

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def lookup(self, function: str, source: str, event_id: str) -> Processed | None:
        p = self.placeholder
        with self._connection() as db:
            row = db.execute(
                f"SELECT reply FROM processed_events WHERE function = {p} AND source = {p} AND id = {p}",
                (function, source, event_id),
            ).fetchone()
        return None if row is None else _decode(row[0])

    def record(self, function: str, source: str, event_id: str, reply: CloudEvent | None) -> None:
        with self._connection() as db:
            db.execute(
                self.insert.format(p=self.placeholder),
                (function, source, event_id, _encode(reply), datetime.now(UTC)),
            )


class SqliteProcessedEvents(_Table):
    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        with self._connection() as db:
            db.execute(_SQLITE_DDL)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 30000")
        yield db


class PostgresProcessedEvents(_Table):
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        import psycopg  # only processes that use PostgreSQL pay for the driver

        self._psycopg = psycopg
        self._url = url
        self._local = threading.local()
        with self._connection() as db:
            db.execute(_POSTGRES_DDL)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        db = getattr(self._local, "db", None)
        if db is None or db.closed:
            db = self._local.db = self._psycopg.connect(self._url, autocommit=True)
        yield db
