"""Durable SQLite queue of the local broker: events and one delivery row per matching Trigger.

Guarantees (at-least-once, nothing ever dropped):
* an event and all its delivery rows are committed in one transaction *before* ingress answers
  202, so "acknowledged" means "stored" (WAL journal, ``synchronous=FULL``);
* a reply event and the completion of the delivery that produced it commit together;
* deliveries left ``in-flight`` by a crash or an interrupted stop go back to ``pending`` when the
  queue is opened again (the subscriber may see that event twice; Knative allows duplicates);
* finished deliveries stay in the table (``delivered``, ``dead-lettered`` or ``dead``) until their event
  is older than the retention (:meth:`EventQueue.purge`): the queue is also the event archive.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.bus.codec import Record

# Keep enough of a failed response body for knativeerrordata (1024 base64 chars = 768 bytes)
# and for debugging.
MAX_STORED_BODY = 4096
# The first pending delivery of a trigger in enqueue order (parameters: trigger, state): by id, not by
# next attempt, since a retried delivery is due later than those after it. Reads all the trigger's
# pending index entries; only ordered Triggers (one worker) use it.
_FIRST_PENDING = "SELECT MIN(id) FROM deliveries WHERE trigger = ? AND state = ?"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL,
    source          TEXT NOT NULL,
    type            TEXT NOT NULL,
    broker          TEXT NOT NULL,
    event           TEXT NOT NULL,       -- structured-mode JSON CloudEvent
    received_at     REAL NOT NULL,
    parent_delivery INTEGER              -- the delivery whose reply this event is
);
CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq       INTEGER NOT NULL REFERENCES events(seq),
    trigger         TEXT NOT NULL,
    target          TEXT NOT NULL DEFAULT 'subscriber',   -- subscriber | deadletter
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,           -- attempts to the subscriber
    dls_attempts    INTEGER NOT NULL DEFAULT 0,           -- attempts to the dead-letter sink
    next_attempt_at REAL NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    last_body       BLOB,
    error_dest      TEXT,      -- subscriber failure reported to the dead-letter sink
    error_code      INTEGER,
    error_body      BLOB,
    updated_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_attempt_at);
-- Each Trigger's workers claim only its own due deliveries (and count them for stats()).
CREATE INDEX IF NOT EXISTS deliveries_trigger_due ON deliveries(trigger, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS events_id ON events(id);
CREATE INDEX IF NOT EXISTS events_received ON events(received_at);
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_seq);
-- The event archive replays read (shared.operations.archive): every event with its deliveries' outcomes.
CREATE VIEW IF NOT EXISTS archived_events AS
SELECT e.seq, e.id, e.source, e.type,
       json_extract(e.event, '$.subject') AS subject, json_extract(e.event, '$.time') AS time,
       e.received_at, e.event,
       (SELECT json_group_array(json_object('trigger', d.trigger, 'target', d.target, 'state', d.state,
                                            'attempts', d.attempts, 'status', d.last_status, 'error', d.last_error))
          FROM deliveries d WHERE d.event_seq = e.seq) AS outcomes
FROM events e;
"""


class State(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in-flight"
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead-lettered"
    DEAD = "dead"


class Target(StrEnum):
    SUBSCRIBER = "subscriber"
    DEAD_LETTER = "deadletter"


class QueueClosed(RuntimeError):
    """The queue was closed (broker stopping); the caller should give up quietly."""


@dataclass(frozen=True)
class Delivery:
    """A claimed (in-flight) delivery and its event."""

    id: int
    event_seq: int
    trigger: str
    broker: str
    target: Target
    attempts: int
    dls_attempts: int
    record: Record
    error_dest: str | None
    error_code: int | None
    error_body: bytes

    @property
    def event_id(self) -> str:
        return str(self.record["id"])


@dataclass(frozen=True)
class NewEvent:
    """An event to store with the Triggers it must be delivered to."""

    record: Record
    broker: str
    triggers: Sequence[str]


class EventQueue:
    """Thread-safe: one connection guarded by a lock (every operation is a short transaction)."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._closed = False
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a 202 must survive a power cut
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self.recovered = self._release_in_flight()

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise QueueClosed("event queue is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _release_in_flight(self) -> int:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET state = ?, updated_at = ? WHERE state = ?",
                (State.PENDING, time.time(), State.IN_FLIGHT),
            )
            return cur.rowcount

    @staticmethod
    def _insert(db: sqlite3.Connection, event: NewEvent, now: float, parent: int | None) -> int:
        rec = event.record
        cur = db.execute(
            "INSERT INTO events (id, source, type, broker, event, received_at, parent_delivery)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rec["id"], rec["source"], rec["type"], event.broker, json.dumps(rec), now, parent),
        )
        seq = int(cur.lastrowid or 0)
        db.executemany(
            "INSERT INTO deliveries (event_seq, trigger, next_attempt_at, updated_at) VALUES (?, ?, ?, ?)",
            [(seq, trigger, now, now) for trigger in event.triggers],
        )
        return seq

    # -- operations -------------------------------------------------------------------------------
    def enqueue(self, event: NewEvent, *, now: float | None = None) -> int:
        """Store an event and its pending deliveries atomically; returns the event's sequence number."""
        now = time.time() if now is None else now
        with self._tx() as db:
            return self._insert(db, event, now, None)

    def claim(self, now: float, trigger: str | None = None, *, in_order: bool = False) -> Delivery | None:
        """Mark a due pending delivery in-flight and return it (None if nothing is due).

        The oldest due one (by next attempt), of ``trigger`` only when given. ``in_order`` (with a
        trigger): the trigger's first pending delivery in enqueue order, or None while it waits for a
        retry: it holds back the ones after it.
        """
        columns = (
            "SELECT d.id, d.event_seq, d.trigger, e.broker, d.target, d.attempts, d.dls_attempts,"
            " e.event, d.error_dest, d.error_code, d.error_body"
            " FROM deliveries d JOIN events e ON e.seq = d.event_seq"
        )
        args: tuple[Any, ...]
        if in_order:
            if trigger is None:
                raise ValueError("in-order claims are per trigger")
            query = f"{columns} WHERE d.id = ({_FIRST_PENDING}) AND d.next_attempt_at <= ?"
            args = (trigger, State.PENDING, now)
        elif trigger is None:
            query = f"{columns} WHERE d.state = ? AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT 1"
            args = (State.PENDING, now)
        else:
            query = (
                f"{columns} WHERE d.trigger = ? AND d.state = ? AND d.next_attempt_at <= ?"
                " ORDER BY d.next_attempt_at, d.id LIMIT 1"
            )
            args = (trigger, State.PENDING, now)
        with self._tx() as db:
            row = db.execute(query, args).fetchone()
            if row is None:
                return None
            db.execute("UPDATE deliveries SET state = ?, updated_at = ? WHERE id = ?", (State.IN_FLIGHT, now, row[0]))
        return Delivery(
            id=row[0],
            event_seq=row[1],
            trigger=row[2],
            broker=row[3],
            target=Target(row[4]),
            attempts=row[5],
            dls_attempts=row[6],
            record=json.loads(row[7]),
            error_dest=row[8],
            error_code=row[9],
            error_body=bytes(row[10] or b""),
        )

    def next_due(self, trigger: str | None = None, *, in_order: bool = False) -> float | None:
        """When the next claim (same arguments as ``claim``) can succeed; None when nothing is pending."""
        if in_order and trigger is None:
            raise ValueError("in-order claims are per trigger")
        args: tuple[Any, ...] = (State.PENDING,) if trigger is None else (trigger, State.PENDING)
        if in_order:
            query = f"SELECT next_attempt_at FROM deliveries WHERE id = ({_FIRST_PENDING})"
        elif trigger is None:
            query = "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = ?"
        else:
            query = "SELECT MIN(next_attempt_at) FROM deliveries WHERE trigger = ? AND state = ?"
        with self._lock:
            if self._closed:
                raise QueueClosed("event queue is closed")
            row = self._db.execute(query, args).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def settle_unknown(self, known: Collection[str], *, now: float, error: str) -> dict[str, int]:
        """Mark ``dead`` the pending deliveries of Triggers not in ``known``; their counts per trigger.

        No worker claims them: Triggers removed from the manifests since their events were stored.
        """
        unknown = f"state = ? AND trigger NOT IN ({', '.join('?' * len(known))})"
        with self._tx() as db:
            where = (State.PENDING, *known)
            counts = db.execute(
                f"SELECT trigger, COUNT(*) FROM deliveries WHERE {unknown} GROUP BY trigger", where
            ).fetchall()
            db.execute(
                f"UPDATE deliveries SET state = ?, last_error = ?, updated_at = ? WHERE {unknown}",
                (State.DEAD, error, now, *where),
            )
        return {str(name): int(count) for name, count in counts}

    def settle(
        self,
        delivery: Delivery,
        *,
        state: State,
        now: float,
        status: int | None = None,
        error: str | None = None,
        body: bytes = b"",
        next_at: float | None = None,
        to_dead_letter: str | None = None,
        reply: NewEvent | None = None,
    ) -> int | None:
        """Record the outcome of one attempt (counted on the delivery's current target).

        ``to_dead_letter`` (the failing destination URL) switches the delivery to its dead-letter
        sink, keeping this failure for the knativeerror* extensions. ``reply`` is stored in the
        same transaction; its sequence number is returned.
        """
        counter = "attempts" if delivery.target is Target.SUBSCRIBER else "dls_attempts"
        with self._tx() as db:
            db.execute(
                f"UPDATE deliveries SET state = ?, {counter} = {counter} + 1, next_attempt_at = ?,"
                " last_status = ?, last_error = ?, last_body = ?, updated_at = ? WHERE id = ?",
                (
                    state,
                    next_at if next_at is not None else now,
                    status,
                    error,
                    body[:MAX_STORED_BODY],
                    now,
                    delivery.id,
                ),
            )
            if to_dead_letter is not None:
                db.execute(
                    "UPDATE deliveries SET target = ?, error_dest = ?, error_code = ?, error_body = ? WHERE id = ?",
                    (Target.DEAD_LETTER, to_dead_letter, status, body[:MAX_STORED_BODY], delivery.id),
                )
            return self._insert(db, reply, now, delivery.id) if reply is not None else None

    def purge(self, older_than_s: float, *, now: float | None = None, batch: int = 5000) -> int:
        """Delete events received more than ``older_than_s`` ago whose deliveries are all finished, with
        their deliveries (in batches: the ingress waits for the lock between them); how many events."""
        cutoff = (time.time() if now is None else now) - older_than_s
        unfinished = (State.PENDING, State.IN_FLIGHT)
        removed = 0
        while True:
            with self._tx() as db:
                seqs = [
                    row[0]
                    for row in db.execute(
                        "SELECT seq FROM events e WHERE received_at < ? AND NOT EXISTS"
                        " (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.state IN (?, ?))"
                        " ORDER BY seq LIMIT ?",
                        (cutoff, *unfinished, batch),
                    )
                ]
                if not seqs:
                    return removed
                marks = ", ".join("?" * len(seqs))
                db.execute(f"DELETE FROM deliveries WHERE event_seq IN ({marks})", seqs)
                db.execute(f"DELETE FROM events WHERE seq IN ({marks})", seqs)
                removed += len(seqs)

    # -- monitoring -------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Stored events, deliveries per state, ``per_trigger``: {trigger: {state: count}}, and ``retries``:
        {trigger: attempts beyond the first} of the stored deliveries."""
        with self._lock:
            if self._closed:
                raise QueueClosed("event queue is closed")
            rows = self._db.execute(
                "SELECT trigger, state, COUNT(*) FROM deliveries GROUP BY trigger, state"
            ).fetchall()
            retried = self._db.execute(
                "SELECT trigger, SUM(MAX(attempts - 1, 0)) FROM deliveries GROUP BY trigger"
            ).fetchall()
            events = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        per_trigger: dict[str, dict[str, int]] = {}
        for trigger, state, count in rows:
            per_trigger.setdefault(trigger, {s.value: 0 for s in State})[state] = int(count)
        totals = {state.value: sum(counts[state.value] for counts in per_trigger.values()) for state in State}
        retries = {trigger: int(count or 0) for trigger, count in retried}
        return {"events": int(events), **totals, "per_trigger": per_trigger, "retries": retries}

    def deliveries(self, event_id: str | None = None) -> list[dict[str, Any]]:
        """Delivery rows (oldest first), optionally only those of one CloudEvent id."""
        query = (
            "SELECT d.id, e.id, e.type, e.broker, d.trigger, d.target, d.state, d.attempts, d.dls_attempts,"
            " d.last_status, d.last_error, d.next_attempt_at"
            " FROM deliveries d JOIN events e ON e.seq = d.event_seq"
        )
        args: tuple[Any, ...] = ()
        if event_id is not None:
            query += " WHERE e.id = ?"
            args = (event_id,)
        keys = (
            "id",
            "event_id",
            "type",
            "broker",
            "trigger",
            "target",
            "state",
            "attempts",
            "dls_attempts",
            "last_status",
            "last_error",
            "next_attempt_at",
        )
        with self._lock:
            if self._closed:
                raise QueueClosed("event queue is closed")
            rows = self._db.execute(query + " ORDER BY d.id", args).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def close(self) -> None:
        """Put unfinished in-flight deliveries back to pending and close the database."""
        if self._closed:
            return
        self._release_in_flight()
        with self._lock:
            self._closed = True
            self._db.close()
