"""Production jobs: one row per thing to process, kept in the catalog database (SQLite or PostgreSQL).

A job is keyed by *what it processes* — ``<processor>:<session id>``, ``<processor>:<slice>``, ... — and
the key is the table's primary key: redelivered and concurrent events that concern the same session
upsert the same row, never a second one (the reference keyed jobs by a Mongo sequence and looked for an
"associated" job first, which two concurrent events could both miss).

States: ``waiting`` (``missing`` lists what it waits for), ``ready`` (complete) and ``timed-out-ready``
(went ahead at its timeout; ``missing`` says what it went without). The move out of ``waiting`` is a
conditional update, so exactly one evaluation wins it and emits ``job.ready``; that evaluation's id is
kept (``ready_by``) with the reply, so a redelivery of the same event answers the same reply again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.catalog.database import CatalogDatabase

_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS processing_jobs (
    job_key TEXT PRIMARY KEY,
    processor TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    window_start TEXT,
    window_stop TEXT,
    missing TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    timeout_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    ready_by TEXT,
    reply TEXT
)
"""
_POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS processing_jobs (
    job_key text PRIMARY KEY,
    processor text NOT NULL,
    subject text NOT NULL,
    state text NOT NULL,
    window_start timestamptz,
    window_stop timestamptz,
    missing text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    timeout_at timestamptz NOT NULL,
    due_at timestamptz NOT NULL,
    ready_by text,
    reply text
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS processing_jobs_due ON processing_jobs (state, due_at)"
_COLUMNS = (
    "job_key, processor, subject, state, window_start, window_stop, missing, created_at, updated_at, "
    "timeout_at, due_at, ready_by, reply"
)


class JobState(StrEnum):
    WAITING = "waiting"
    READY = "ready"
    TIMED_OUT_READY = "timed-out-ready"


@dataclass(frozen=True, slots=True)
class Job:
    key: str
    processor: str
    subject: str  # the session id, slice name, ... in words
    state: JobState
    window_start: datetime | None
    window_stop: datetime | None
    missing: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    timeout_at: datetime
    due_at: datetime  # when the timer looks at it again: its timeout, or the end of a grace period before it
    ready_by: str | None = None  # the evaluation (event id, or "timer") that made it ready
    reply: str | None = None  # the job.ready payload (JSON) it emitted

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat().replace("+00:00", "Z")

        return {
            "key": self.key,
            "processor": self.processor,
            "subject": self.subject,
            "state": self.state.value,
            "windowStart": iso(self.window_start),
            "windowStop": iso(self.window_stop),
            "missing": list(self.missing),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "timeoutAt": iso(self.timeout_at),
            "dueAt": iso(self.due_at),
            "readyBy": self.ready_by,
            "jobReady": None if self.reply is None else json.loads(self.reply),
        }


class JobStore:
    """The ``processing_jobs`` table of the catalog database at ``url``, created on first use."""

    def __init__(self, url: str) -> None:
        self.database = CatalogDatabase(url)
        with self.database.connection() as db:
            db.execute(_SQLITE_DDL if self.database.is_sqlite else _POSTGRES_DDL)
            db.execute(_INDEX)

    def close(self) -> None:
        self.database.close()

    def _time(self, value: datetime | None) -> Any:
        return self.database.time_param(value)

    def _execute(self, text: str, params: Sequence[Any]) -> Any:
        # Statements here mark parameters with "?"; PostgreSQL wants "%s".
        with self.database.connection() as db:
            return db.execute(text.replace("?", self.database.placeholder), tuple(params))

    _read_time = staticmethod(CatalogDatabase.time_value)

    def _job(self, row: Sequence[Any]) -> Job:
        t = self._read_time
        return Job(
            key=row[0],
            processor=row[1],
            subject=row[2],
            state=JobState(row[3]),
            window_start=None if row[4] is None else t(row[4]),
            window_stop=None if row[5] is None else t(row[5]),
            missing=tuple(json.loads(row[6])),
            created_at=t(row[7]),
            updated_at=t(row[8]),
            timeout_at=t(row[9]),
            due_at=t(row[10]),
            ready_by=row[11],
            reply=row[12],
        )

    # -- writes -----------------------------------------------------------------------------------

    def open_job(self, key: str, processor: str, subject: str, now: datetime, timeout_at: datetime) -> Job:
        """The job ``key``, created waiting if it does not exist yet (a concurrent creation is the same row)."""
        self._execute(
            f"INSERT INTO processing_jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (job_key) DO NOTHING",
            (key, processor, subject, JobState.WAITING.value, None, None, "[]", *[self._time(now)] * 2,
             *[self._time(timeout_at)] * 2, None, None),
        )  # fmt: skip
        job = self.get(key)
        assert job is not None  # just inserted, or inserted by someone else; jobs are never deleted here
        return job

    def keep_waiting(
        self,
        key: str,
        missing: Sequence[str],
        window: tuple[datetime, datetime] | None,
        timeout_at: datetime,
        due_at: datetime | None,
        now: datetime,
    ) -> None:
        """Record what a waiting job still misses (a job that left ``waiting`` is not touched)."""
        start, stop = window or (None, None)
        due = timeout_at if due_at is None else min(due_at, timeout_at)
        self._execute(
            "UPDATE processing_jobs SET missing = ?, window_start = COALESCE(?, window_start),"
            " window_stop = COALESCE(?, window_stop), timeout_at = ?, due_at = ?, updated_at = ?"
            " WHERE job_key = ? AND state = ?",
            (json.dumps(list(missing)), self._time(start), self._time(stop), self._time(timeout_at),
             self._time(due), self._time(now), key, JobState.WAITING.value),
        )  # fmt: skip

    def make_ready(
        self,
        key: str,
        state: JobState,
        missing: Sequence[str],
        window: tuple[datetime, datetime],
        ready_by: str,
        reply: str,
        now: datetime,
    ) -> bool:
        """Move a waiting job to ``state``; True only for the one caller that made the move."""
        cursor = self._execute(
            "UPDATE processing_jobs SET state = ?, missing = ?, window_start = ?, window_stop = ?,"
            " ready_by = ?, reply = ?, updated_at = ? WHERE job_key = ? AND state = ?",
            (state.value, json.dumps(list(missing)), self._time(window[0]), self._time(window[1]), ready_by,
             reply, self._time(now), key, JobState.WAITING.value),
        )  # fmt: skip
        return int(cursor.rowcount) == 1

    # -- reads ------------------------------------------------------------------------------------

    def get(self, key: str) -> Job | None:
        row = self._execute(f"SELECT {_COLUMNS} FROM processing_jobs WHERE job_key = ?", (key,)).fetchone()
        return None if row is None else self._job(row)

    def waiting(self, processors: Sequence[str]) -> list[Job]:
        if not processors:
            return []
        marks = ", ".join("?" for _ in processors)
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM processing_jobs WHERE state = ? AND processor IN ({marks}) ORDER BY job_key",
            (JobState.WAITING.value, *processors),
        ).fetchall()
        return [self._job(r) for r in rows]

    def due(self, now: datetime) -> list[Job]:
        """Waiting jobs the timer must look at: their timeout or grace period has passed."""
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM processing_jobs WHERE state = ? AND due_at <= ? ORDER BY due_at, job_key",
            (JobState.WAITING.value, self._time(now)),
        ).fetchall()
        return [self._job(r) for r in rows]

    def list(self, state: JobState | None = None, limit: int = 100) -> list[Job]:
        if state is None:
            rows = self._execute(
                f"SELECT {_COLUMNS} FROM processing_jobs ORDER BY updated_at DESC, job_key LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._execute(
                f"SELECT {_COLUMNS} FROM processing_jobs WHERE state = ? ORDER BY updated_at DESC, job_key LIMIT ?",
                (state.value, limit),
            ).fetchall()
        return [self._job(r) for r in rows]
