"""The execution wrapper (``refsys execute``): one processing run, as the ESA generic IPF interface asks.

It is what a processing Job runs (and the local runner's subprocess), from the ``job.ready`` payload:

1. a fresh working directory; the inputs downloaded into it, many objects at once and large ones in
   ranged parts (boto3's transfer manager: memory stays bounded by its part queue, not the file size);
2. the JobOrder written; the pools run in order, the tasks of a pool together, each as
   ``<task binary> <JobOrder>`` in the working directory (``IPF_TASK_NAME`` says which task it is);
3. exit codes judged as the interface says: 0 done, 1..127 a warning (the run goes on), 128 and above
   or a signal an error (the pool's other tasks are stopped, the run fails);
4. the outputs found: the lines of a ``*.LIST`` file when the processor writes one, else the entries
   of the working directory; a product is handed on only if its name matches a declared output and is
   not an input; a mandatory output type with no product fails the run;
5. the outputs uploaded to the inbox, each product's manifest last, so that they are ingested like any
   delivery (a run stopped while uploading deletes the product it had begun: half an output never
   stays);
6. the outcome (``job.completed`` or ``job.failed``) written to ``<jobs bucket>/<run id>/outcome.json``
   and then posted to the sink. The outcome object is the run's last word: whoever sees the run end
   without its event (the launch function watching Jobs and processes) re-posts it, or reports a
   death when there is none. A failed run's working directory, inputs left out, is kept under
   ``<failed-workdir bucket>/<run id>/``.

SIGTERM (Kubernetes stopping the pod, an operator) stops the tasks, and the run reports ``terminated``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import ClientError
from cloudevents.http import CloudEvent

from events import make_event, to_http
from events.naming import function_source
from events.processing import (
    FailureReason,
    JobCompleted,
    JobFailed,
    JobReady,
    JobTask,
    ProducedProduct,
    TaskRun,
)
from shared.ingestion.upload import product_files
from shared.logs import set_process_fields
from shared.observability import tracing
from shared.settings import Settings
from shared.storage.objects import ObjectStore

log = logging.getLogger(__name__)

SOURCE = function_source("execute")
TAIL_LINES = 20
STOP_GRACE_S = 10.0
OUTCOME = "outcome.json"
STRUCTURED = "application/cloudevents+json"
MiB = 1024 * 1024


def transfer_config(concurrency: int) -> TransferConfig:
    # 16 MiB parts: few enough requests for multi-GB objects, while the part queue bounds memory.
    return TransferConfig(
        multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=concurrency, use_threads=True
    )


def outcome_key(run_id: str) -> str:
    return f"{run_id}/{OUTCOME}"


class _Failure(Exception):
    def __init__(self, reason: FailureReason, message: str, *, task: str | None = None, code: int | None = None):
        super().__init__(message)
        self.reason, self.task, self.exit_code = reason, task, code


@dataclass
class _Progress:
    started: datetime
    tasks: list[TaskRun] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    bytes_downloaded: int = 0
    bytes_uploaded: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


class Run:
    """One run of a ready job. :meth:`execute` never raises for what goes wrong with the job itself."""

    def __init__(
        self,
        ready: JobReady,
        run_id: str,
        settings: Settings,
        store: ObjectStore,
        publish: Callable[[CloudEvent], None] | None = None,
    ) -> None:
        self.ready = ready
        self.run_id = run_id
        self.settings = settings
        self.store = store
        self._publish = publish
        root = settings.workdir_root
        self.workdir = Path(root) / PurePosixPath(ready.workdir).name if root else Path(ready.workdir)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[bytes]] = set()

    # -- the run ------------------------------------------------------------------------------------

    def execute(self) -> JobCompleted | JobFailed:
        progress = _Progress(started=_now())
        try:
            outcome: JobCompleted | JobFailed = self._succeed(progress)
        except _Failure as failure:
            outcome = self._fail(progress, failure)
        except Exception as exc:  # the wrapper's own fault: still a reported failure, never silence
            log.exception("run %s: unexpected error", self.run_id)
            outcome = self._fail(progress, _Failure(FailureReason.DIED, f"wrapper error: {exc!r}"))
        self._report(outcome)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return outcome

    def stop(self) -> None:
        """Stop the run (SIGTERM): running tasks are terminated, the run ends as ``terminated``."""
        self._stopping.set()
        self._terminate_all()

    def _succeed(self, progress: _Progress) -> JobCompleted:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        t0 = time.monotonic()
        progress.bytes_downloaded = self._download_inputs()
        job_order = self.workdir / f"JobOrder.{self.run_id[:12]}.xml"
        job_order.write_text(self._local(self.ready.job_order), encoding="utf-8")
        t1 = time.monotonic()
        self._run_pools(job_order, progress, deadline=t0 + self.ready.max_time_s if self.ready.max_time_s else None)
        t2 = time.monotonic()
        products = self._outputs(progress)
        produced = self._upload(products, progress)
        t3 = time.monotonic()
        progress.durations.update(download=t1 - t0, processing=t2 - t1, upload=t3 - t2, total=t3 - t0)
        return JobCompleted(
            **self._common(progress),
            outputs=tuple(produced),
            warnings=tuple(progress.warnings),
            durations={k: round(v, 3) for k, v in progress.durations.items()},
            bytes_downloaded=progress.bytes_downloaded,
            bytes_uploaded=progress.bytes_uploaded,
        )

    def _fail(self, progress: _Progress, failure: _Failure) -> JobFailed:
        if self._stopping.is_set() and failure.reason is not FailureReason.DEADLINE_EXCEEDED:
            failure = _Failure(
                FailureReason.TERMINATED, "stopped by SIGTERM", task=failure.task, code=failure.exit_code
            )
        log.warning("run %s failed (%s): %s", self.run_id, failure.reason.value, failure)
        bucket, prefix = self._keep_workdir()
        return JobFailed(
            **self._common(progress),
            reason=failure.reason,
            message=str(failure),
            exit_code=failure.exit_code,
            task=failure.task,
            log_tail=tuple(progress.tail),
            workdir_bucket=bucket,
            workdir_key=prefix,
        )

    def _common(self, progress: _Progress) -> dict[str, Any]:
        r = self.ready
        return {
            "run_id": self.run_id,
            "job_key": r.job_key,
            "processor": r.processor,
            "task_table": r.task_table,
            "processor_name": r.processor_name,
            "processor_version": r.processor_version,
            "mission": r.mission,
            "satellite": r.satellite,
            "inputs": tuple(sorted({i.name for i in r.inputs})),
            "tasks": tuple(progress.tasks),
            "started": progress.started,
            "finished": _now(),
        }

    def _report(self, outcome: JobCompleted | JobFailed) -> None:
        event = tracing.stamp(make_event(outcome, source=SOURCE))
        try:
            self.store.ensure_bucket(self.settings.jobs_bucket)
            _, body = to_http(event, structured=True)  # what the watcher re-posts verbatim
            self.store.put(self.settings.jobs_bucket, outcome_key(self.run_id), body, STRUCTURED)
        except Exception:
            log.exception("run %s: could not write its outcome", self.run_id)
        if self._publish is not None:
            try:
                self._publish(event)
            except Exception:  # the outcome object stays: the watcher posts it when it sees the run end
                log.exception("run %s: could not post %s", self.run_id, event["type"])

    # -- inputs ---------------------------------------------------------------------------------------

    def _local(self, text: str) -> str:
        """The job's paths moved to this working directory (a laptop has no /data/localWD)."""
        return text.replace(self.ready.workdir, str(self.workdir))

    def _download_inputs(self) -> int:
        transfers: list[tuple[str, str, Path]] = []
        for item in self.ready.inputs:
            local = Path(self._local(item.local_path))
            if item.key.endswith("/"):
                objects = self.store.list(item.bucket, item.key)
                if not objects:
                    raise _Failure(
                        FailureReason.INPUT_UNAVAILABLE, f"{item.name}: nothing under s3://{item.bucket}/{item.key}"
                    )
                transfers += [(item.bucket, o.key, local / o.key[len(item.key) :]) for o in objects]
            else:
                transfers.append((item.bucket, item.key, local))
        for _, _, path in transfers:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._transfer(False, transfers)
        except ClientError as exc:
            raise _Failure(FailureReason.INPUT_UNAVAILABLE, f"download failed: {exc}") from exc
        return sum(p.stat().st_size for _, _, p in transfers)

    def _transfer(self, upload: bool, items: Sequence[tuple[str, str, Path]], *, stoppable: bool = True) -> None:
        """Move (bucket, key, local path) items, down or up, all at once within the transfer manager's bounds."""
        if not items:
            return
        config = transfer_config(self.settings.transfer_concurrency)
        # Outputs carry the run's trace: ingestion continues it for the products made here.
        trace = tracing.current()
        extra = {"Metadata": {tracing.OBJECT_METADATA: trace.header()}} if trace is not None else None
        with create_transfer_manager(self.store.client, config) as manager:
            futures = [
                manager.upload(str(path), bucket, key, extra_args=extra)
                if upload
                else manager.download(bucket, key, str(path))
                for bucket, key, path in items
            ]
            for future in futures:
                if stoppable and self._stopping.is_set():
                    manager.shutdown(cancel=True)
                    raise _Failure(FailureReason.TERMINATED, "stopped while moving data")
                future.result()

    # -- tasks ----------------------------------------------------------------------------------------

    def _run_pools(self, job_order: Path, progress: _Progress, deadline: float | None) -> None:
        logs = self.workdir / "logs"
        logs.mkdir()
        for pool in self.ready.pools:
            results: dict[str, TaskRun] = {}
            threads = [
                threading.Thread(target=self._run_task, args=(task, job_order, logs, progress, results), daemon=True)
                for task in pool
            ]
            for thread in threads:
                thread.start()
            culprit: str | None = None  # the task that failed first: the others were stopped because of it
            while alive := [t for t in threads if t.is_alive()]:
                if deadline is not None and time.monotonic() > deadline:
                    self._terminate_all()
                    for thread in threads:
                        thread.join()
                    progress.tasks += results.values()
                    raise _Failure(
                        FailureReason.DEADLINE_EXCEEDED, f"the run took longer than {self.ready.max_time_s} s"
                    )
                failed = [name for name, r in list(results.items()) if _is_error(r.exit_code)]
                if culprit is None and failed:
                    culprit = failed[0]
                if self._stopping.is_set() or culprit is not None:
                    self._terminate_all()
                alive[0].join(0.1)
            progress.tasks += [results[t.name] for t in pool if t.name in results]
            if self._stopping.is_set():
                raise _Failure(FailureReason.TERMINATED, "stopped by SIGTERM")
            culprit = culprit or next((t.name for t in pool if _is_error(results[t.name].exit_code)), None)
            if culprit is not None:
                code = results[culprit].exit_code
                assert code is not None
                shown = str(code) if code >= 0 else f"signal {-code}"
                raise _Failure(FailureReason.TASK_ERROR, f"task {culprit} failed (exit {shown})", task=culprit,
                               code=128 - code if code < 0 else code)  # fmt: skip
            for task in pool:
                code = results[task.name].exit_code
                if code:
                    progress.warnings.append(f"task {task.name} exited {code} (warning)")

    def _command(self, task: JobTask, job_order: Path) -> list[str]:
        if os.access(task.binary, os.X_OK):
            return [task.binary, str(job_order)]
        if self.settings.task_command:
            return [*self.settings.task_command.split(), task.binary, str(job_order)]
        return [task.binary, str(job_order)]  # fails to start: reported as the task's error

    def _run_task(
        self, task: JobTask, job_order: Path, logs: Path, progress: _Progress, results: dict[str, TaskRun]
    ) -> None:
        started = time.monotonic()
        env = {**os.environ, "IPF_TASK_NAME": task.name, "IPF_TASK_VERSION": task.version}
        log_path = logs / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', task.name)}.log"
        code: int | None
        with log_path.open("w", encoding="utf-8") as out:
            try:
                proc = subprocess.Popen(
                    self._command(task, job_order), cwd=self.workdir, env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                line = f"{task.name}: cannot start {task.binary}: {exc}"
                out.write(line + "\n")
                progress.tail.append(line)
                results[task.name] = TaskRun(name=task.name, exit_code=127 + 128, seconds=0.0)
                return
            with self._lock:
                self._processes.add(proc)
            if self._stopping.is_set():
                self._terminate(proc)
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                out.write(line + "\n")
                progress.tail.append(line)
                log.info(line, extra={"task": task.name, "run": self.run_id})
            code = proc.wait()
            with self._lock:
                self._processes.discard(proc)
        results[task.name] = TaskRun(name=task.name, exit_code=code, seconds=round(time.monotonic() - started, 3))

    def _terminate_all(self) -> None:
        with self._lock:
            running = list(self._processes)
        for proc in running:
            self._terminate(proc)

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        def stop() -> None:
            for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, None)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    return
                try:
                    proc.wait(wait)
                    return
                except subprocess.TimeoutExpired:
                    continue

        threading.Thread(target=stop, daemon=True).start()

    # -- outputs --------------------------------------------------------------------------------------

    def _outputs(self, progress: _Progress) -> list[Path]:
        inputs = {i.name for i in self.ready.inputs}
        lists = sorted(self.workdir.glob("*.LIST"))
        if lists:
            listed = [
                line.strip() for f in lists for line in f.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
            candidates = [self.workdir / line for line in listed]
        else:
            candidates = sorted(p for p in self.workdir.iterdir() if p.name not in {"logs"})
        found: list[Path] = []
        for path in candidates:
            if path.name in inputs or (path.suffix == ".xml" and path.name.startswith("JobOrder.")):
                continue
            if not any(re.fullmatch(o.pattern, path.name) for o in self.ready.outputs):
                if lists:
                    progress.warnings.append(f"{path.name}: listed but not a declared output, not handed on")
                continue
            if not _product_type(path.name):  # an intermediate named after its type, not a product
                if lists:
                    progress.warnings.append(f"{path.name}: listed but not a product name, not handed on")
                continue
            if not path.exists():
                raise _Failure(FailureReason.MISSING_OUTPUT, f"{path.name} is listed but was not written")
            found.append(path)
        for output in self.ready.outputs:
            if output.mandatory and not any(re.fullmatch(output.pattern, p.name) for p in found):
                raise _Failure(FailureReason.MISSING_OUTPUT, f"no {output.file_type} product: a mandatory output")
        return found

    def _upload(self, products: Iterable[Path], progress: _Progress) -> list[ProducedProduct]:
        bucket = self.settings.inbox_bucket
        self.store.ensure_bucket(bucket)
        plan = [(p, list(product_files(p))) for p in products]
        members = [(bucket, key, file) for _, files in plan for file, key in files[:-1]]
        manifests = [(bucket, key, file) for _, files in plan for file, key in files[-1:]]
        try:
            # Every product's manifest last: a product is complete in the inbox when its manifest lands.
            self._transfer(True, members)
            self._transfer(True, manifests)
        except (_Failure, ClientError) as exc:
            self._remove_partial(plan)
            if isinstance(exc, _Failure):
                raise
            raise _Failure(FailureReason.UPLOAD_FAILED, f"upload failed: {exc}") from exc
        produced = []
        for path, files in plan:
            size = sum(f.stat().st_size for f, _ in files)
            progress.bytes_uploaded += size
            key = f"{path.name}/" if path.is_dir() else path.name
            produced.append(
                ProducedProduct(
                    name=path.name, product_type=_product_type(path.name), bucket=bucket, key=key, size=size
                )
            )
        return produced

    def _remove_partial(self, plan: list[tuple[Path, list[tuple[Path, str]]]]) -> None:
        """Products whose manifest did not land are taken out of the inbox again."""
        bucket = self.settings.inbox_bucket
        for _, files in plan:
            manifest_key = files[-1][1]
            if self.store.head(bucket, manifest_key) is not None:
                continue
            for _, key in files:
                try:
                    self.store.delete(bucket, key)
                except ClientError:
                    log.warning("could not remove the partial upload s3://%s/%s", bucket, key)

    # -- a failed run's working directory -----------------------------------------------------------

    def _keep_workdir(self) -> tuple[str | None, str | None]:
        if not self.workdir.exists():
            return None, None
        inputs = {Path(self._local(i.local_path)) for i in self.ready.inputs}
        files = [
            p for p in self.workdir.rglob("*")
            if p.is_file() and not any(p == i or i in p.parents for i in inputs)
        ]  # fmt: skip
        bucket, prefix = self.settings.failed_workdir_bucket, f"{self.run_id}/"
        try:
            self.store.ensure_bucket(bucket)
            items = [(bucket, prefix + p.relative_to(self.workdir).as_posix(), p) for p in files]
            self._transfer(True, items, stoppable=False)  # a stopped run still keeps its working directory
        except Exception:
            log.exception("run %s: could not keep the working directory", self.run_id)
            return None, None
        return bucket, prefix


def _is_error(code: int | None) -> bool:
    return code is not None and (code >= 128 or code < 0)


def _product_type(name: str) -> str:
    from shared.products.naming import UnknownProduct, recognise

    try:
        return recognise(name).product_type
    except UnknownProduct:
        return ""


def _now() -> datetime:
    return datetime.now(UTC)


def run_from_environment(ready_json: str, run_id: str | None, settings: Settings) -> int:
    """``refsys execute``: run, report; exit 0 when the run completed, 1 when it failed."""
    from shared import ports

    ready = JobReady.model_validate_json(ready_json)
    publish = ports.sink().publish if settings.sink else None
    run = Run(ready, run_id or ready.event_id(), settings, ports.object_store(), publish)
    previous = signal.signal(signal.SIGTERM, lambda *_: run.stop())
    # The trace of the job.ready it runs: on its log lines, its outcome event and its outputs (object metadata).
    tracing.run_process_in((tracing.from_environment() or tracing.root_for(ready.job_key)).child())
    set_process_fields(function="execute", run_id=run.run_id, job=ready.job_key)
    try:
        outcome = run.execute()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if isinstance(outcome, JobCompleted) else 1
