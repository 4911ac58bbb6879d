"""The launch step: a ready job becomes a run — a Kubernetes Job on a cluster, a subprocess on a laptop —
and every run ends in exactly one outcome event, even one that dies without a word.

* ``job.ready``: the run (id = the job.ready event id) is recorded in ``processing_runs`` (beside the
  catalog) and started. A redelivery finds the run and starts nothing: Kubernetes answers 409 for the
  Job name derived from the run id (the Job is adopted); the local runner sees its live process. A
  local run whose launcher died with it (a platform restart) is started again.
* ``job.completed`` / ``job.failed``: the run is marked ended with its outcome.
* The runner ends (the local process exits; the ApiServerSource reports a finished Job or a Pod that
  cannot run): :meth:`Launcher.settle` re-posts the wrapper's outcome object if its event was never
  seen, or posts ``job.failed`` saying how the run died.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import flask
from cloudevents.http import CloudEvent

from events import InvalidEvent, make_event, parse_http
from events.naming import function_source
from events.processing import FailureReason, JobCompleted, JobFailed, JobReady
from shared.catalog.database import CatalogDatabase
from shared.observability import tracing
from shared.runtime import error_response
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from shared.storage.objects import ObjectStore

log = logging.getLogger(__name__)

SOURCE = function_source("launch")
# Exit codes of `refsys execute`: the run's outcome was posted (0 completed, 1 failed) or not (others).
REPORTED_EXIT_CODES = frozenset({0, 1})

_DDL = """CREATE TABLE IF NOT EXISTS processing_runs (
    run_id TEXT PRIMARY KEY,
    job_key TEXT NOT NULL,
    runner TEXT NOT NULL,
    handle TEXT,
    state TEXT NOT NULL,
    ready TEXT NOT NULL,
    outcome TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS processing_runs_job ON processing_runs (job_key)"


class RunStore:
    """``processing_runs``: one row per run, its state ``running``, ``completed`` or ``failed``."""

    def __init__(self, url: str) -> None:
        self.database = CatalogDatabase(url)
        with self.database.connection() as db:
            db.execute(_DDL)
            db.execute(_INDEX)

    def _execute(self, text: str, params: tuple[Any, ...]) -> Any:
        with self.database.connection() as db:
            return db.execute(self.database.sql(text), params)

    def claim(self, run_id: str, ready: JobReady, runner: str) -> bool:
        """Record a new run; False when it is known already."""
        cursor = self._execute(
            "INSERT INTO processing_runs (run_id, job_key, runner, state, ready, started_at)"
            " VALUES ({p}, {p}, {p}, {p}, {p}, {p})"
            " ON CONFLICT (run_id) DO NOTHING",
            (run_id, ready.job_key, runner, "running", ready.model_dump_json(), _now()),
        )
        return int(cursor.rowcount) == 1

    def set_handle(self, run_id: str, handle: str) -> None:
        self._execute("UPDATE processing_runs SET handle = {p} WHERE run_id = {p}", (handle, run_id))

    def end(self, outcome: JobCompleted | JobFailed) -> bool:
        """Record how a running run ended; False when it was known ended already (a redelivery)."""
        state = "completed" if isinstance(outcome, JobCompleted) else "failed"
        cursor = self._execute(
            "UPDATE processing_runs SET state = {p}, outcome = {p}, ended_at = {p}"
            " WHERE run_id = {p} AND state = 'running'",
            (state, outcome.model_dump_json(), _now(), outcome.run_id),
        )
        return bool(cursor.rowcount == 1)

    def get(self, run_id: str) -> dict[str, Any] | None:
        row = self._execute(
            "SELECT run_id, job_key, runner, handle, state, ready, outcome, started_at, ended_at"
            " FROM processing_runs WHERE run_id = {p}",
            (run_id,),
        ).fetchone()
        return None if row is None else _run_json(row)

    def of_job(self, job_key: str) -> list[dict[str, Any]]:
        rows = self._execute(
            "SELECT run_id, job_key, runner, handle, state, ready, outcome, started_at, ended_at"
            " FROM processing_runs WHERE job_key = {p} ORDER BY started_at",
            (job_key,),
        ).fetchall()
        return [_run_json(r) for r in rows]


def _run_json(row: Any) -> dict[str, Any]:
    keys = ("runId", "jobKey", "runner", "handle", "state", "ready", "outcome", "startedAt", "endedAt")
    run = dict(zip(keys, row, strict=True))
    run["ready"] = json.loads(run["ready"])
    run["outcome"] = None if run["outcome"] is None else json.loads(run["outcome"])
    return run


class LocalRunner:
    """Runs ``refsys execute`` as a child process and watches it (the laptop's stand-in for a Job)."""

    def __init__(self, settings: Settings, on_exit: Callable[[str, int], None]) -> None:
        self.settings = settings
        self._on_exit = on_exit
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        root = settings.workdir_root or str(Path.cwd() / "runs")
        self.root = Path(root)

    def running(self, run_id: str) -> bool:
        with self._lock:
            proc = self._running.get(run_id)
        return proc is not None and proc.poll() is None

    def start(self, ready: JobReady, run_id: str) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        job_file = self.root / f"{run_id}.job.json"
        job_file.write_text(ready.model_dump_json(), encoding="utf-8")
        log_file = (self.root / f"{run_id}.log").open("ab")
        command = [sys.executable, "-m", "shared.cli", "--log-level", "INFO", "execute", "--job-file", str(job_file),
                   "--run-id", run_id]  # fmt: skip
        env = dict(os.environ)
        if (trace := tracing.current()) is not None:  # the run continues the trace of its job.ready
            env[tracing.TRACEPARENT.upper()] = trace.header()
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log_file.close()
        with self._lock:
            self._running[run_id] = proc
        threading.Thread(target=self._watch, args=(run_id, proc, job_file), daemon=True).start()
        log.info("run %s of %s started locally (pid %d)", run_id, ready.job_key, proc.pid)
        return f"pid:{proc.pid}"

    def _watch(self, run_id: str, proc: subprocess.Popen[bytes], job_file: Path) -> None:
        code = proc.wait()
        with self._lock:
            self._running.pop(run_id, None)
        job_file.unlink(missing_ok=True)
        self._on_exit(run_id, code)


class Launcher:
    """The launch function's work, for either runner."""

    def __init__(
        self, settings: Settings, runs: RunStore, store: ObjectStore, publish: Callable[[CloudEvent], None]
    ) -> None:
        self.settings = settings
        self.runs = runs
        self.store = store
        self.publish = publish
        self.local = LocalRunner(settings, self._local_exit) if settings.runner == "local" else None

    def on_ready(self, ready: JobReady) -> None:
        run_id = ready.event_id()
        new = self.runs.claim(run_id, ready, self.settings.runner)
        run = self.runs.get(run_id)
        if run is not None and run["state"] != "running":
            return  # ended already: a late redelivery
        if self.local is None:
            from shared.processing.kubernetes import KubernetesRunner

            try:
                name = KubernetesRunner(self.settings).start(ready)
            except Exception as exc:
                if _is_client_error(exc):  # the cluster refused the Job itself: retrying will not help
                    self._fail(ready, run_id, FailureReason.LAUNCH_FAILED, f"the Job was refused: {exc}")
                    return
                raise
            self.runs.set_handle(run_id, f"job:{name}")
            return
        if not new and self.local.running(run_id):
            return  # a redelivery while it runs
        self.runs.set_handle(run_id, self.local.start(ready, run_id))

    def on_outcome(self, outcome: JobCompleted | JobFailed) -> None:
        if self.runs.end(outcome):  # counted once, however often the outcome is delivered
            from shared.observability.metrics import JOB_TIME, JOBS

            ended = "completed" if isinstance(outcome, JobCompleted) else "failed"
            JOBS.labels(outcome.processor, ended).inc()
            JOB_TIME.labels(outcome.processor, ended).observe((outcome.finished - outcome.started).total_seconds())

    def settle(self, run_id: str, reason: FailureReason, message: str, exit_code: int | None = None) -> None:
        """The runner of ``run_id`` ended: make sure its outcome is told (once the run is known ended, nothing)."""
        run = self.runs.get(run_id)
        if run is None or run["state"] != "running":
            return
        from shared.processing.execution import STRUCTURED, outcome_key

        self.store.ensure_bucket(self.settings.jobs_bucket)
        stored = self.store.read(self.settings.jobs_bucket, outcome_key(run_id))
        if stored is not None:
            event = parse_http({"content-type": STRUCTURED}, stored)
            log.info("run %s ended without its event seen: posting its outcome %s", run_id, event["type"])
            self.publish(event)
            return
        ready = JobReady.model_validate(run["ready"])
        self._fail(ready, run_id, reason, message, exit_code)

    def _fail(
        self, ready: JobReady, run_id: str, reason: FailureReason, message: str, exit_code: int | None = None
    ) -> None:
        now = datetime.now(UTC)
        failed = JobFailed(
            run_id=run_id, job_key=ready.job_key, processor=ready.processor, task_table=ready.task_table,
            processor_name=ready.processor_name, processor_version=ready.processor_version, mission=ready.mission,
            satellite=ready.satellite, inputs=tuple(sorted({i.name for i in ready.inputs})), started=now, finished=now,
            reason=reason, message=message, exit_code=exit_code,
        )  # fmt: skip
        log.warning("run %s of %s failed: %s", run_id, ready.job_key, message)
        self.publish(make_event(failed, source=SOURCE))

    def stop_job(self, run_id: str) -> None:
        """Remove the Job of a run that cannot run (its image cannot be pulled): it would wait forever."""
        if self.local is None:
            from shared.processing.kubernetes import KubernetesRunner, job_name

            KubernetesRunner(self.settings).delete(job_name(run_id))

    def _local_exit(self, run_id: str, code: int) -> None:
        if code in REPORTED_EXIT_CODES:
            return
        how = f"killed by signal {-code}" if code < 0 else f"exited {code} without reporting"
        try:
            self.settle(run_id, FailureReason.DIED, f"the run's process {how}", 128 - code if code < 0 else code)
        except Exception:
            log.exception("run %s: could not settle", run_id)


def _is_client_error(exc: Exception) -> bool:
    status = getattr(exc, "status", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 429)


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- the launch function's entry points ----------------------------------------------------------------


@lru_cache(maxsize=1)
def launcher() -> Launcher:
    from shared import ports

    settings = get_settings()
    return Launcher(settings, RunStore(settings.catalog_url), ports.object_store(), ports.sink().publish)


def on_run_event(event: JobReady | JobCompleted | JobFailed) -> None:
    if isinstance(event, JobReady):
        launcher().on_ready(event)
    else:
        launcher().on_outcome(event)


def on_kubernetes_change(request: flask.Request) -> flask.Response:
    """A Job or Pod of a run changed (ApiServerSource, Resource mode): settle the runs that ended."""
    from shared.processing.kubernetes import job_outcome, pod_problem, run_id_of

    try:
        event = parse_http(request.headers, request.get_data())
    except InvalidEvent as exc:
        return error_response(400, "InvalidEvent", str(exc))
    obj = event.get_data()
    if not isinstance(obj, dict):
        return error_response(422, "InvalidPayload", "expected a Kubernetes object as the event data")
    run_id = run_id_of(obj)
    if run_id is None:
        return flask.Response(status=202)  # not one of ours
    if obj.get("kind") == "Job":
        ended = job_outcome(obj)
        if ended is not None:
            # Failed: how. Succeeded: the wrapper reported; its outcome is posted again only if never seen.
            reason = ended.reason or FailureReason.DIED
            launcher().settle(
                run_id, reason, ended.message if ended.reason else "the Job ended but its outcome was lost"
            )
    elif obj.get("kind") == "Pod":
        problem = pod_problem(obj)
        if problem is not None:
            launcher().settle(run_id, *problem)
            launcher().stop_job(run_id)
    return flask.Response(status=202)
