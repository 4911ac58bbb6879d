"""Processing events: a job is ready (preparation -> launch), and how its run ended (wrapper -> everyone)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events import naming
from events.models import EventData


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobInput(_Part):
    """An object the job downloads before running: where it is and where the IPF expects it."""

    name: str
    product_type: str
    bucket: str
    key: str = Field(description="Object key, or key prefix ending with '/' for a directory product")
    local_path: str = Field(description="Path in the job's working directory")


class JobTask(_Part):
    """One task of the task table: run as ``<binary> <JobOrder>`` in the working directory."""

    name: str
    version: str = ""
    binary: str = Field(description="The task table's File_Name")


class JobOutput(_Part):
    """A product type the job hands on for ingestion (task-table outputs with a DB destination)."""

    file_type: str
    mandatory: bool
    pattern: str = Field(description="Regular expression product names of this output match")


class JobReady(EventData):
    """A job has every input it can get: complete, or timed out with what was there (``missing`` says what not)."""

    TYPE: ClassVar[str] = naming.event_type("job", "ready")

    job_key: str = Field(description="What the job processes: processor + session / slice / window")
    processor: str = Field(description="Configured processor name (processors.yaml)")
    task_table: str
    processor_name: str = Field(description="Processor_Name of the task table")
    processor_version: str
    mission: str | None = None
    satellite: str | None = None
    window_start: AwareDatetime
    window_stop: AwareDatetime
    timed_out: bool = Field(description="True when the job went ahead at its timeout without everything")
    missing: tuple[str, ...] = Field((), description="Inputs still missing when it went ahead")
    job_order: str = Field(description="The IPF JobOrder XML")
    workdir: str
    inputs: tuple[JobInput, ...]
    pools: tuple[tuple[JobTask, ...], ...] = Field((), description="Pools in order; the tasks of a pool run together")
    outputs: tuple[JobOutput, ...] = ()
    image: str
    resources: dict[str, str] = Field(default_factory=dict)
    max_time_s: int | None = Field(None, description="Longest the whole run may take (Job activeDeadlineSeconds)")

    def event_id(self) -> str:
        # Same job with the same inputs -> same id, whichever delivery or timer tick made it ready.
        return naming.derived_id("job-ready", self.job_key, *sorted(i.name for i in self.inputs))

    def subject(self) -> str:
        return self.job_key

    def routing(self) -> dict[str, str]:
        routing = {naming.MISSION: self.mission} if self.mission else {}
        if self.satellite:
            routing[naming.SATELLITE] = self.satellite
        routing[naming.PROCESSOR] = self.processor
        return routing


class TaskRun(_Part):
    """How one task ended: its exit code judged by the generic IPF interface, and how long it took."""

    name: str
    exit_code: int | None = Field(description="None: never started, or stopped before it ended")
    seconds: float = Field(ge=0)


class ProducedProduct(_Part):
    name: str
    product_type: str
    bucket: str = Field(description="The inbox: outputs are ingested like any product")
    key: str = Field(description="Object key, or key prefix ending with '/' for a directory product")
    size: int = Field(ge=0)


class _JobOutcome(EventData):
    """What every outcome of a run says about the run it ends."""

    run_id: str = Field(description="The job.ready event id the run started from")
    job_key: str
    processor: str
    task_table: str
    processor_name: str
    processor_version: str
    mission: str | None = None
    satellite: str | None = None
    inputs: tuple[str, ...] = Field(description="Names of the input products")
    tasks: tuple[TaskRun, ...] = ()
    started: AwareDatetime
    finished: AwareDatetime

    def subject(self) -> str:
        return self.job_key

    def routing(self) -> dict[str, str]:
        routing = {naming.PROCESSOR: self.processor}
        if self.mission:
            routing[naming.MISSION] = self.mission
        if self.satellite:
            routing[naming.SATELLITE] = self.satellite
        return routing


class JobCompleted(_JobOutcome):
    """A run ended well (warnings allowed): its outputs are in the inbox, on their way to the catalog."""

    TYPE: ClassVar[str] = naming.event_type("job", "completed")

    outputs: tuple[ProducedProduct, ...]
    warnings: tuple[str, ...] = Field((), description="Tasks that exited 1..127, and outputs left out")
    durations: dict[str, float] = Field(description="Seconds: download, processing, upload, total")
    bytes_downloaded: int = Field(ge=0)
    bytes_uploaded: int = Field(ge=0)

    def event_id(self) -> str:
        return naming.derived_id("job-completed", self.run_id)


class FailureReason(StrEnum):
    TASK_ERROR = "task-error"  # a task exited >= 128 (or was killed by a signal)
    MISSING_OUTPUT = "missing-output"  # a mandatory output was not produced
    INPUT_UNAVAILABLE = "input-unavailable"  # an input could not be downloaded
    UPLOAD_FAILED = "upload-failed"
    TERMINATED = "terminated"  # SIGTERM: the run was stopped
    DEADLINE_EXCEEDED = "deadline-exceeded"
    OUT_OF_MEMORY = "out-of-memory"
    EVICTED = "evicted"
    IMAGE_UNAVAILABLE = "image-unavailable"
    DIED = "died"  # the runner ended without a word (killed, crashed)
    LAUNCH_FAILED = "launch-failed"


class JobFailed(_JobOutcome):
    """A run ended badly; nothing of it was handed on. ``workdir_key`` keeps its working directory."""

    TYPE: ClassVar[str] = naming.event_type("job", "failed")

    reason: FailureReason
    message: str
    exit_code: int | None = None
    task: str | None = Field(None, description="The task that failed, when one did")
    log_tail: tuple[str, ...] = Field((), description="The last lines the tasks logged")
    workdir_bucket: str | None = None
    workdir_key: str | None = Field(None, description="Key prefix of the kept working directory")

    def event_id(self) -> str:
        return naming.derived_id("job-failed", self.run_id)
