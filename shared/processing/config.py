"""Which processors the preparation step serves: a folder of task tables plus ``processors.yaml``.

Adding a processor is configuration: drop its task table into the folder and describe it in the YAML
(trigger rule, main input types, timeouts, image, resources). The default set ships in
``shared/processing/config/``; ``load_processing_config(folder)`` reads another folder of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.processing.tasktable import TaskTable, load_task_table

DEFAULT_CONFIG_DIR = Path(__file__).parent / "config"
PROCESSORS_FILE = "processors.yaml"
TASK_TABLES_DIR = "tasktables"


class TriggerRule(StrEnum):
    SESSION = "session"  # S1 AIOP / S3 ACQ: an EDRS session, complete when both channels are
    SLICE = "slice"  # S1 L1/L2: one job per L0 slice
    COVERAGE = "coverage"  # S3: one job per main product, complete when the covering types cover its window
    SEGMENT = "segment"  # S1 L0ASP: one job per datatake, complete when each polarisation's segments chain
    DATASTRIP = "datastrip"  # S2 L1: one job per L0 datastrip, complete when its granules cover it


class ProcessorSettings(BaseModel):
    """One entry of ``processors.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Stable job-key prefix; never rename")
    tasktable: str
    trigger: TriggerRule
    main_types: tuple[str, ...] = Field(min_length=1)
    mission: str | None = None
    mode: str | None = None
    type_aliases: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(ge=0)
    minimal_wait_s: float = Field(0, ge=0)
    optional_wait_s: float = Field(0, ge=0)
    gap_tolerance_s: float = Field(0, ge=0, description="coverage, datastrip: largest gap accepted")
    coverage_types: tuple[str, ...] = Field(
        (), description="coverage: catalog types that must cover the window (default: the main types)"
    )
    detectors: int = Field(0, ge=0, description="datastrip: detectors whose granules must each cover it")
    granule_duration_s: float = Field(0, ge=0, description="datastrip: sensing time one granule spans")
    processing_station: str = "WILE"
    image: str
    resources: dict[str, str] = Field(default_factory=dict)
    max_time_s: int | None = Field(
        None, gt=0, description="Longest a run may take (default: the task table's Max_Time)"
    )
    parameters: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _datastrip_types(self) -> ProcessorSettings:
        if self.trigger is TriggerRule.DATASTRIP and len(self.main_types) != 2:
            raise ValueError("a datastrip processor names two main types: the datastrip's, then the granules'")
        return self


class _ProcessorsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    processors: tuple[ProcessorSettings, ...]


@dataclass(frozen=True)
class Processor:
    """A configured processor: its settings and its parsed task table."""

    settings: ProcessorSettings
    table: TaskTable
    table_file: str

    @property
    def name(self) -> str:
        return self.settings.name

    def catalog_type(self, file_type: str) -> str:
        return self.settings.type_aliases.get(file_type, file_type)

    def consumed_types(self) -> frozenset[str]:
        """Catalog product types whose arrival can create or complete one of this processor's jobs."""
        s = self.settings
        return frozenset((*s.main_types, *s.coverage_types)) | {self.catalog_type(t) for t in self.table.file_types()}

    @property
    def covering_types(self) -> tuple[str, ...]:
        return self.settings.coverage_types or self.settings.main_types


@dataclass(frozen=True)
class ProcessingConfig:
    processors: tuple[Processor, ...]

    def consumed_types(self) -> frozenset[str]:
        return frozenset(t for p in self.processors for t in p.consumed_types())

    def by_name(self, name: str) -> Processor:
        for p in self.processors:
            if p.name == name:
                return p
        raise KeyError(f"no processor {name!r} configured")


class ConfigError(ValueError):
    pass


def load_processing_config(folder: Path = DEFAULT_CONFIG_DIR) -> ProcessingConfig:
    """Read ``folder/processors.yaml`` and the task tables it names (in ``folder/tasktables/``)."""
    path = folder / PROCESSORS_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _ProcessorsFile.model_validate(raw)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    names = [p.name for p in parsed.processors]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: processor names must be unique, got {names}")
    processors = tuple(
        Processor(settings, load_task_table(folder / TASK_TABLES_DIR / settings.tasktable), settings.tasktable)
        for settings in parsed.processors
    )
    return ProcessingConfig(processors)


@lru_cache(maxsize=4)
def processing_config(folder: str | None = None) -> ProcessingConfig:
    """The configuration of this process (cached: task tables are parsed once)."""
    return load_processing_config(Path(folder) if folder else DEFAULT_CONFIG_DIR)
