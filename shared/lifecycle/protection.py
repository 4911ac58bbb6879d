"""Which products processing still needs: inputs of waiting, ready-but-not-run and running jobs.

Read from the processing tables beside the catalog (``processing_jobs``, ``processing_runs``):

* a **running** run, or a **ready** job no run has started yet (its ``job.ready`` is on its way, or waits
  in the dead letters to be restarted): the inputs its ``job.ready`` names, exactly;
* a **waiting** job: the table keeps what it still misses, not what it has gathered, so what it may
  take is inferred — the product its subject names (slice, datastrip, coverage trigger), the products of
  its session (EDRS session id) or datatake (S1 L0 segments), and every product whose validity
  overlaps the job's window once it is known (the auxiliary and covering inputs its policies select
  around it). That keeps more than the job will take; an over-kept product only waits for a later sweep,
  an evicted input would fail the job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from shared.catalog.model import CatalogEntry

READY_STATES = ("ready", "timed-out-ready")


@dataclass
class JobInputs:
    """What the jobs need at one moment; :meth:`holder` names the job that keeps a product."""

    names: dict[str, str] = field(default_factory=dict)  # product name -> job key
    subjects: dict[str, str] = field(default_factory=dict)  # session id / datatake -> job key
    windows: list[tuple[datetime, datetime, str]] = field(default_factory=list)

    def holder(self, entry: CatalogEntry) -> str | None:
        from shared.processing.triggers import datatake_of, session_id_of

        if (job := self.names.get(entry.name)) is not None:
            return job
        if self.subjects:
            for subject in (session_id_of(entry.name), datatake_of(entry.name)):
                if subject is not None and (job := self.subjects.get(subject)) is not None:
                    return job
        start, stop = entry.validity_start, entry.validity_stop
        if start is not None and stop is not None:
            for w_start, w_stop, job in self.windows:
                if start <= w_stop and stop >= w_start:
                    return job
        return None


class JobInputReader:
    """Reads :class:`JobInputs` from the catalog database at ``url``; its tables' stores are opened once."""

    def __init__(self, url: str) -> None:
        from shared.processing.jobs import JobStore
        from shared.processing.launch import RunStore

        # Their constructors create the tables when processing never ran here: the queries then find nothing.
        self._jobs, self._runs = JobStore(url).database, RunStore(url).database

    def __call__(self) -> JobInputs:
        database = self._jobs
        found = JobInputs()
        with database.connection() as db:
            waiting = db.execute(
                database.sql(
                    "SELECT job_key, subject, window_start, window_stop FROM processing_jobs WHERE state = {p}"
                ),
                ("waiting",),
            ).fetchall()
            ready = db.execute(
                database.sql(
                    "SELECT j.job_key, j.reply FROM processing_jobs j WHERE j.state IN ({p}, {p})"
                    " AND j.reply IS NOT NULL"
                    " AND NOT EXISTS (SELECT 1 FROM processing_runs r WHERE r.job_key = j.job_key)"
                ),
                READY_STATES,
            ).fetchall()
        with self._runs.connection() as db:
            running = db.execute("SELECT job_key, ready FROM processing_runs WHERE state = 'running'").fetchall()
        for job_key, reply in (*ready, *running):
            for item in json.loads(reply).get("inputs", ()):
                found.names.setdefault(str(item["name"]), job_key)
        for job_key, subject, window_start, window_stop in waiting:
            found.names.setdefault(subject, job_key)
            found.subjects.setdefault(subject, job_key)
            if window_start is not None and window_stop is not None:
                found.windows.append((database.time_value(window_start), database.time_value(window_stop), job_key))
        return found
