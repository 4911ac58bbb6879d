"""ESA IPF task tables, parsed natively in both dialects into typed models.

A task table declares what a processor (IPF) needs: its pools of tasks, each task's inputs (with ordered
alternatives saying where and how to find them) and outputs. Two dialects are in use:

* S1 (and the generic ESA one): ``List_of_Cfg_Files/Cfg_Files``, ``List_of_Dyn_ProcParam``, ``Output/Type``;
* S3: ``List_of_Cfg_Files/Cfg_File``, ``List_of_Dyn_ProcParams``, ``Output/File_Type``.

The reference ran an XSLT over S3 tables to rename them into the S1 dialect before parsing; here each
element accepts both of its names, so both dialects parse directly and a mixed table still parses.
Errors name the element (by path) that is missing or malformed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from shared.products.xml import XmlError, children_named, local_name, parse_xml

# Known retrieval modes, in the reference's spelling. "Custom" needs a customClass.
RETRIEVAL_MODES: frozenset[str] = frozenset(
    {
        "ValCover",
        "LatestValCover",
        "ValIntersect",
        "ValIntersectWithoutDuplicates",
        "LatestValIntersect",
        "LatestValidity",
        "ClosestStartValidity",
        "ClosestStopValidity",
        "LatestStartValidity",
        "LatestStopValidity",
        "LatestValCoverClosest",
        "LatestValidityClosest",
        "FullCoverage",
        "BestCentredCover",
        "LargestOverlap",
        "LatestValCoverLatestValidity",
        "Custom",
    }
)

# The one custom policy seen in ESA tables; the reference rewrote it to ValIntersect at startup.
_CUSTOM_EQUIVALENTS = {"PolicyIntersectMinNumber": "ValIntersect"}


# Outputs some task tables declare with a DB destination that are not products: the .LIST file, reports.
NOT_PRODUCTS = frozenset({"LIST", "RPT"})


class TaskTableError(ValueError):
    """The task table is not well-formed or misses/garbles an element; the message names the element."""


class Origin(StrEnum):
    DB = "DB"  # from the catalog
    PROC = "PROC"  # produced by an earlier task of the same job
    LOG = "LOG"  # a log of an earlier task (S3 PUG)


class FileNameType(StrEnum):
    PHYSICAL = "Physical"
    DIRECTORY = "Directory"
    REGEXP = "Regexp"
    LOGICAL = "Logical"
    STEM = "Stem"


class Destination(StrEnum):
    DB = "DB"  # archived and cataloged
    PROC = "PROC"  # intermediate, for a later task only
    DBPROC = "DBPROC"  # both


class InputMode(StrEnum):
    """Which production mode an input applies to; ALWAYS matches every mode."""

    ALWAYS = "ALWAYS"
    SLICING = "SLICING"
    NON_SLICING = "NON_SLICING"
    NRT = "NRT"
    NTC = "NTC"
    STC = "STC"

    def applies_to(self, mode: str | None) -> bool:
        return mode is None or self is InputMode.ALWAYS or self.value == mode.upper() or mode.upper() == "ALWAYS"


@dataclass(frozen=True, slots=True)
class Alternative:
    order: int
    origin: Origin
    retrieval_mode: str
    t0: float  # seconds the window is widened before its start
    t1: float  # seconds the window is widened after its stop (negative shrinks, as in S3 SR1)
    file_type: str
    file_name_type: FileNameType
    custom_class: str | None = None
    min_results: int | None = None
    max_results: int | None = None

    @property
    def policy(self) -> str:
        """The selection policy to run: the retrieval mode, or the built-in equivalent of a known Custom class."""
        if self.retrieval_mode != "Custom":
            return self.retrieval_mode
        simple = (self.custom_class or "").rsplit(".", 1)[-1]
        return _CUSTOM_EQUIVALENTS[simple]


@dataclass(frozen=True, slots=True)
class Input:
    """A task input. A reference (``<Input ref="X"/>``) has only ``ref``: it reuses input ``X``'s result."""

    id: str | None = None
    ref: str | None = None
    mode: InputMode = InputMode.ALWAYS
    mandatory: bool = True
    alternatives: tuple[Alternative, ...] = ()

    @property
    def file_types(self) -> tuple[str, ...]:
        return tuple(a.file_type for a in self.alternatives)


@dataclass(frozen=True, slots=True)
class Output:
    destination: Destination
    mandatory: bool
    file_type: str
    file_name_type: FileNameType


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    version: str  # may be "" (seen in a real S3 table)
    file_name: str  # the executable
    critical: bool = True
    criticality_level: int | None = None
    number_of_cpus: int | None = None
    inputs: tuple[Input, ...] = ()
    outputs: tuple[Output, ...] = ()


@dataclass(frozen=True, slots=True)
class Pool:
    """Tasks run in parallel inside a pool; pools run one after the other."""

    tasks: tuple[Task, ...]
    detached: bool = False
    killing_signal: int | None = None


@dataclass(frozen=True, slots=True)
class ConfigFile:
    file_name: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class DynProcParam:
    name: str
    type: str
    default: str | None = None


@dataclass(frozen=True, slots=True)
class TaskTable:
    processor_name: str
    version: str
    test: bool
    pools: tuple[Pool, ...]
    config_files: tuple[ConfigFile, ...] = ()
    dyn_proc_params: tuple[DynProcParam, ...] = ()
    min_disk_space_mb: int | None = None
    max_time_s: int | None = None
    sensing_time_flag: bool | None = None
    dialect: str = "S1"  # "S1" or "S3": which element names the file used
    inputs_by_id: dict[str, Input] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tasks(self) -> tuple[Task, ...]:
        """Every task of every pool, in execution order (the JobOrder has one Ipf_Proc per task)."""
        return tuple(t for p in self.pools for t in p.tasks)

    def resolve(self, task_input: Input) -> Input:
        """The input a reference points at (an input that is not a reference is itself)."""
        if task_input.ref is None:
            return task_input
        return self.inputs_by_id[task_input.ref]

    def file_types(self) -> frozenset[str]:
        """Every product type an input alternative asks the catalog for (what triggers this table)."""
        return frozenset(
            a.file_type
            for t in self.tasks
            for i in t.inputs
            for a in self.resolve(i).alternatives
            if a.origin is Origin.DB
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["inputs_by_id"]
        return data


# ---------------------------------------------------------------------------------------------- parsing


def load_task_table(path: Path) -> TaskTable:
    return parse_task_table(path.read_bytes(), what=path.name)


def parse_task_table(data: bytes, *, what: str = "task table") -> TaskTable:
    try:
        root = parse_xml(data, what=what)
    except XmlError as exc:
        raise TaskTableError(str(exc)) from exc
    return _Parser(what).task_table(root)


class _Parser:
    def __init__(self, what: str) -> None:
        self.what = what
        self.s3_names = False

    def error(self, path: str, problem: str) -> TaskTableError:
        return TaskTableError(f"{self.what}: {path}: {problem}")

    # --- element access, each naming the element on failure

    def child(self, elem: Element, path: str, *names: str) -> Element:
        found = self.optional_child(elem, path, *names)
        if found is None:
            raise self.error(f"{path}/{names[0]}", "missing")
        return found

    def optional_child(self, elem: Element, path: str, *names: str) -> Element | None:
        for name in names:
            found = children_named(elem, name)
            if len(found) > 1:
                raise self.error(f"{path}/{name}", f"appears {len(found)} times, expected once")
            if found:
                if name != names[0]:
                    self.s3_names = True
                return found[0]
        return None

    def text(self, elem: Element, path: str, *names: str) -> str:
        value = self.optional_text(elem, path, *names)
        if value is None:
            raise self.error(f"{path}/{names[0]}", "missing or empty")
        return value

    def optional_text(self, elem: Element, path: str, *names: str) -> str | None:
        found = self.optional_child(elem, path, *names)
        if found is None or found.text is None or not found.text.strip():
            return None
        return found.text.strip()

    def boolean(self, elem: Element, path: str, name: str, default: bool | None = None) -> bool:
        value = self.optional_text(elem, path, name)
        if value is None:
            if default is None:
                raise self.error(f"{path}/{name}", "missing or empty")
            return default
        lowered = value.lower()
        if lowered in ("yes", "true"):
            return True
        if lowered in ("no", "false"):
            return False
        raise self.error(f"{path}/{name}", f"{value!r} is not Yes/No/true/false")

    def number(self, elem: Element, path: str, name: str, *, required: bool = False) -> float | None:
        value = self.optional_text(elem, path, name)
        if value is None:
            if required:
                raise self.error(f"{path}/{name}", "missing or empty")
            return None
        try:
            return float(value)
        except ValueError:
            raise self.error(f"{path}/{name}", f"{value!r} is not a number") from None

    def integer(self, elem: Element, path: str, name: str) -> int | None:
        value = self.optional_text(elem, path, name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise self.error(f"{path}/{name}", f"{value!r} is not an integer") from None

    def choice(self, enum: type[StrEnum], elem: Element, path: str, *names: str) -> Any:
        value = self.text(elem, path, *names)
        for member in enum:
            if member.value.lower() == value.lower():
                return member
        allowed = "|".join(m.value for m in enum)
        raise self.error(f"{path}/{names[0]}", f"{value!r} is not one of {allowed}")

    def items(
        self, elem: Element, path: str, list_names: tuple[str, ...], item_names: tuple[str, ...]
    ) -> list[Element]:
        """The items of a ``List_of_X`` (absent list: none).

        ``count`` attributes are not checked: real ESA tables get them wrong (IW_RAW__0_OCN__2 says 6 pools
        and has 7), and the elements are what the IPF reads.
        """
        container = self.optional_child(elem, path, *list_names)
        if container is None:
            return []
        found = [c for c in container if local_name(c.tag) in item_names]
        for name in item_names[1:]:
            if children_named(container, name):
                self.s3_names = True
        return found

    # --- the model

    def task_table(self, root: Element) -> TaskTable:
        path = local_name(root.tag)
        if path != "Ipf_Task_Table":
            raise self.error(path, "root element is not Ipf_Task_Table")
        config_files = tuple(
            ConfigFile(
                file_name=self.text(c, f"{path}/List_of_Cfg_Files/Cfg_Files[{n}]", "File_Name"),
                version=self.optional_text(c, f"{path}/List_of_Cfg_Files/Cfg_Files[{n}]", "Version"),
            )
            for n, c in enumerate(self.items(root, path, ("List_of_Cfg_Files",), ("Cfg_Files", "Cfg_File")), 1)
        )
        params = tuple(
            self.dyn_proc_param(p, f"{path}/List_of_Dyn_ProcParam/Dyn_ProcParam[{n}]")
            for n, p in enumerate(
                self.items(root, path, ("List_of_Dyn_ProcParam", "List_of_Dyn_ProcParams"), ("Dyn_ProcParam",)), 1
            )
        )
        pool_elems = self.items(root, path, ("List_of_Pools",), ("Pool",))
        if not pool_elems:
            raise self.error(f"{path}/List_of_Pools", "missing or has no Pool")
        pools = tuple(self.pool(p, f"{path}/List_of_Pools/Pool[{n}]") for n, p in enumerate(pool_elems, 1))
        min_disk = self.number(root, path, "Min_Disk_Space")
        max_time = self.number(root, path, "Max_Time")
        flag = self.optional_text(root, path, "Sensing_Time_flag")
        table = TaskTable(
            processor_name=self.text(root, path, "Processor_Name"),
            version=self.text(root, path, "Version"),
            test=self.boolean(root, path, "Test", default=False),
            pools=pools,
            config_files=config_files,
            dyn_proc_params=params,
            min_disk_space_mb=None if min_disk is None else int(min_disk),
            max_time_s=None if max_time is None else int(max_time),
            sensing_time_flag=None if flag is None else self.boolean(root, path, "Sensing_Time_flag"),
            dialect="S3" if self.s3_names else "S1",
        )
        self.link_references(table)
        return table

    def dyn_proc_param(self, elem: Element, path: str) -> DynProcParam:
        return DynProcParam(
            name=self.text(elem, path, "Param_Name"),
            type=self.optional_text(elem, path, "Param_Type") or "String",
            default=self.optional_text(elem, path, "Param_Default"),
        )

    def pool(self, elem: Element, path: str) -> Pool:
        task_elems = self.items(elem, path, ("List_of_Tasks",), ("Task",))
        if not task_elems:
            raise self.error(f"{path}/List_of_Tasks", "missing or has no Task")
        signal = self.number(elem, path, "Killing_Signal")
        return Pool(
            tasks=tuple(self.task(t, f"{path}/List_of_Tasks/Task[{n}]") for n, t in enumerate(task_elems, 1)),
            detached=self.boolean(elem, path, "Detached", default=False),
            killing_signal=None if signal is None else int(signal),
        )

    def task(self, elem: Element, path: str) -> Task:
        name = self.text(elem, path, "Name")
        path = f"{path}({name})"
        return Task(
            name=name,
            # Present but empty in a real table (S3 SY2 06.23, task SY2_VGP_BP): the JobOrder then carries it empty.
            version=self.optional_text(elem, path, "Version") or "",
            file_name=self.text(elem, path, "File_Name"),
            critical=self.boolean(elem, path, "Critical", default=True),
            criticality_level=self.integer(elem, path, "Criticality_Level"),
            number_of_cpus=self.integer(elem, path, "Number_of_CPUs"),
            inputs=tuple(
                self.input(i, f"{path}/List_of_Inputs/Input[{n}]")
                for n, i in enumerate(self.items(elem, path, ("List_of_Inputs",), ("Input",)), 1)
            ),
            outputs=tuple(
                self.output(o, f"{path}/List_of_Outputs/Output[{n}]")
                for n, o in enumerate(self.items(elem, path, ("List_of_Outputs",), ("Output",)), 1)
            ),
        )

    def input(self, elem: Element, path: str) -> Input:
        ref = elem.get("ref")
        if ref is not None:
            if len(elem):
                raise self.error(path, f'ref="{ref}" input must be empty')
            return Input(ref=ref.strip())
        alternatives = tuple(
            self.alternative(a, f"{path}/List_of_Alternatives/Alternative[{n}]")
            for n, a in enumerate(self.items(elem, path, ("List_of_Alternatives",), ("Alternative",)), 1)
        )
        if not alternatives:
            raise self.error(f"{path}/List_of_Alternatives", "missing or has no Alternative")
        return Input(
            id=(elem.get("id") or "").strip() or None,
            mode=self.choice(InputMode, elem, path, "Mode"),
            mandatory=self.boolean(elem, path, "Mandatory"),
            # Order says the preference; the document order is not trusted.
            alternatives=tuple(sorted(alternatives, key=lambda a: a.order)),
        )

    def alternative(self, elem: Element, path: str) -> Alternative:
        mode = self.text(elem, path, "Retrieval_Mode")
        if mode not in RETRIEVAL_MODES:
            raise self.error(f"{path}/Retrieval_Mode", f"unknown retrieval mode {mode!r}")
        custom_class = self.optional_text(elem, path, "customClass")
        if mode == "Custom" and (custom_class or "").rsplit(".", 1)[-1] not in _CUSTOM_EQUIVALENTS:
            raise self.error(f"{path}/customClass", f"unsupported custom policy {custom_class!r}")
        min_results = self.integer(elem, path, "minResults")
        max_results = self.integer(elem, path, "maxResults")
        order = self.integer(elem, path, "Order")
        return Alternative(
            order=1 if order is None else order,
            origin=self.choice(Origin, elem, path, "Origin"),
            retrieval_mode=mode,
            t0=self.number(elem, path, "T0", required=True) or 0.0,
            t1=self.number(elem, path, "T1", required=True) or 0.0,
            file_type=self.text(elem, path, "File_Type"),
            file_name_type=self.choice(FileNameType, elem, path, "File_Name_Type"),
            custom_class=custom_class,
            min_results=min_results,
            max_results=max_results,
        )

    def output(self, elem: Element, path: str) -> Output:
        return Output(
            destination=self.choice(Destination, elem, path, "Destination"),
            mandatory=self.boolean(elem, path, "Mandatory"),
            file_type=self.text(elem, path, "Type", "File_Type"),
            file_name_type=self.choice(FileNameType, elem, path, "File_Name_Type"),
        )

    def link_references(self, table: TaskTable) -> None:
        for pool in table.pools:
            for task in pool.tasks:
                for task_input in task.inputs:
                    if task_input.id is not None:
                        if task_input.id in table.inputs_by_id:
                            raise self.error(f"Input[@id={task_input.id}]", "id declared twice")
                        table.inputs_by_id[task_input.id] = task_input
        for pool in table.pools:
            for task in pool.tasks:
                for task_input in task.inputs:
                    if task_input.ref is not None and task_input.ref not in table.inputs_by_id:
                        raise self.error(f"Task({task.name})/Input[@ref={task_input.ref}]", "refers to no Input id")
