"""Processing events: what the preparation step tells the job launcher."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events import naming
from events.models import EventData


class JobInput(BaseModel):
    """An object the job downloads before running: where it is and where the IPF expects it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    product_type: str
    bucket: str
    key: str = Field(description="Object key, or key prefix ending with '/' for a directory product")
    local_path: str = Field(description="Path in the job's working directory")


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
    image: str
    resources: dict[str, str] = Field(default_factory=dict)

    def event_id(self) -> str:
        # Same job with the same inputs -> same id, whichever delivery or timer tick made it ready.
        return naming.derived_id("job-ready", self.job_key, *sorted(i.name for i in self.inputs))

    def subject(self) -> str:
        return self.job_key

    def routing(self) -> dict[str, str]:
        routing = {naming.MISSION: self.mission} if self.mission else {}
        if self.satellite:
            routing[naming.SATELLITE] = self.satellite
        return routing
