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

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent, from_json

from shared.catalog.database import CatalogDatabase

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
    return ProcessedEventsTable(CatalogDatabase(url))


def _encode(reply: CloudEvent | None) -> bytes | None:
    return None if reply is None else to_json(reply)


def _decode(blob: Any) -> Processed:
    return Processed(None if blob is None else from_json(bytes(blob)))


class ProcessedEventsTable:
    def __init__(self, database: CatalogDatabase) -> None:
        self.database = database
        with database.connection() as db:
            db.execute(_SQLITE_DDL if database.is_sqlite else _POSTGRES_DDL)

    def lookup(self, function: str, source: str, event_id: str) -> Processed | None:
        sql = "SELECT reply FROM processed_events WHERE function = {p} AND source = {p} AND id = {p}"
        with self.database.connection() as db:
            row = db.execute(self.database.sql(sql), (function, source, event_id)).fetchone()
        return None if row is None else _decode(row[0])

    def record(self, function: str, source: str, event_id: str, reply: CloudEvent | None) -> None:
        sql = "INSERT INTO processed_events VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT DO NOTHING"
        now = self.database.time_param(datetime.now(UTC))
        with self.database.connection() as db:
            db.execute(self.database.sql(sql), (function, source, event_id, _encode(reply), now))
