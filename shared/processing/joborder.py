"""The ESA generic IPF JobOrder: what an IPF reads to know its configuration, inputs and outputs.

Shape and formats follow the JobOrders the reference fed to real IPFs (samples in
``samples/joborders``): times as ``yyyyMMdd_HHmmssSSSSSS`` (UTC, microseconds), booleans as
``true``/``false``, every list with a ``count`` attribute, one ``Ipf_Proc`` per task in pool order.

Two flavours of the dynamic parameters exist, and IPFs are picky about which they get:

* ``L0`` (S1 AIOP, S3 ACQ, S1 SPP processors): ``Dynamic_Processing_Parameters/Processing_Parameter``,
  followed by an empty ``List_of_Dynamic_Processing_Parameters count="n"``. The empty sibling is a JAXB
  artefact of the reference, kept because it is what those IPFs have always been given.
* ``STANDARD`` (every other level): ``List_of_Dynamic_Processing_Parameters/Dynamic_Processing_Parameter``.
* ``S3`` (tables in the S3 dialect, i.e. S3 IPFs): ``List_of_Config_Files/Config_File`` and
  ``List_of_Dyn_Processing_Parameters/Dyn_Processing_Parameter`` (both with ``count``), and no ``Input``
  without a file type. The reference wrote the STANDARD flavour and had the execution worker rename it
  with ``joborder.xslt`` (dropping empty inputs after RS-555: L0P failed on one); here it is written so.
  S3 ACQ keeps the L0 flavour: its table is in the S1 dialect and its wrapper reads that (sample
  ``joborders/s3/JobOrderEWExample.xml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from xml.etree import ElementTree as ET

from shared.processing.inputs import InputSelection
from shared.processing.tasktable import Destination, FileNameType, TaskTable

# Processors whose IPFs read the L0 flavour (reference: JobOrder classes per level, §5.1).
L0_FLAVOUR_PROCESSORS = frozenset({"AIO_PROCESSOR", "OBS_PRC_01", "MBU_PROC", "S3A_ACQ", "S3B_ACQ", "S3_ACQ"})


class JobOrderFlavour(StrEnum):
    L0 = "L0"
    STANDARD = "STANDARD"
    S3 = "S3"


def flavour_for(table: TaskTable) -> JobOrderFlavour:
    if table.processor_name in L0_FLAVOUR_PROCESSORS or table.processor_name.endswith("_ACQ"):
        return JobOrderFlavour.L0
    if table.dialect == "S3":
        return JobOrderFlavour.S3
    return JobOrderFlavour.STANDARD


def ipf_time(value: datetime) -> str:
    """``20200121_183236000000``: the JobOrder time format (UTC, microseconds)."""
    return value.astimezone(UTC).strftime("%Y%m%d_%H%M%S%f")


@dataclass(frozen=True, slots=True)
class TimeInterval:
    start: datetime
    stop: datetime
    file_name: str


@dataclass(frozen=True, slots=True)
class JobOrderInput:
    file_type: str
    file_name_type: str
    file_names: tuple[str, ...]
    time_intervals: tuple[TimeInterval, ...]


@dataclass(frozen=True, slots=True)
class JobOrderOutput:
    file_type: str
    file_name_type: str
    file_name: str
    mandatory: bool


@dataclass(frozen=True, slots=True)
class IpfProc:
    task_name: str
    task_version: str
    inputs: tuple[JobOrderInput, ...]
    outputs: tuple[JobOrderOutput, ...]


@dataclass(frozen=True, slots=True)
class JobOrder:
    processor_name: str
    version: str
    sensing_start: datetime
    sensing_stop: datetime
    processing_station: str
    procs: tuple[IpfProc, ...]
    config_files: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    stdout_log_level: str = "INFO"
    stderr_log_level: str = "INFO"
    test: bool = False
    breakpoint_enable: bool = False
    flavour: JobOrderFlavour = JobOrderFlavour.STANDARD

    def to_xml(self) -> bytes:
        root = ET.Element("Ipf_Job_Order")
        conf = ET.SubElement(root, "Ipf_Conf")
        _text(conf, "Processor_Name", self.processor_name)
        _text(conf, "Version", self.version)
        _text(conf, "Stdout_Log_Level", self.stdout_log_level)
        _text(conf, "Stderr_Log_Level", self.stderr_log_level)
        _text(conf, "Test", _bool(self.test))
        _text(conf, "Breakpoint_Enable", _bool(self.breakpoint_enable))
        _text(conf, "Processing_Station", self.processing_station)
        sensing = ET.SubElement(conf, "Sensing_Time")
        _text(sensing, "Start", ipf_time(self.sensing_start))
        _text(sensing, "Stop", ipf_time(self.sensing_stop))
        s3 = self.flavour is JobOrderFlavour.S3
        if s3:
            configs = ET.SubElement(conf, "List_of_Config_Files", count=str(len(self.config_files)))
        else:
            configs = ET.SubElement(conf, "Config_Files")
        for name in self.config_files:
            _text(configs, "Config_File" if s3 else "Conf_File_Name", name)
        count = str(len(self.parameters))
        if self.flavour is JobOrderFlavour.L0:
            params = ET.SubElement(conf, "Dynamic_Processing_Parameters")
            item = "Processing_Parameter"
        elif s3:
            params = ET.SubElement(conf, "List_of_Dyn_Processing_Parameters", count=count)
            item = "Dyn_Processing_Parameter"
        else:
            params = ET.SubElement(conf, "List_of_Dynamic_Processing_Parameters", count=count)
            item = "Dynamic_Processing_Parameter"
        for name, value in self.parameters:
            param = ET.SubElement(params, item)
            _text(param, "Name", name)
            _text(param, "Value", value)
        if self.flavour is JobOrderFlavour.L0:
            ET.SubElement(conf, "List_of_Dynamic_Processing_Parameters", count=count)
        procs = ET.SubElement(root, "List_of_Ipf_Procs", count=str(len(self.procs)))
        for proc in self.procs:
            _proc(procs, proc, drop_untyped_inputs=s3)
        ET.indent(root, space="   ")
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    elem = ET.SubElement(parent, tag)
    elem.text = value
    return elem


def _proc(parent: ET.Element, proc: IpfProc, *, drop_untyped_inputs: bool = False) -> None:
    elem = ET.SubElement(parent, "Ipf_Proc")
    _text(elem, "Task_Name", proc.task_name)
    _text(elem, "Task_Version", proc.task_version)
    kept = [i for i in proc.inputs if i.file_type] if drop_untyped_inputs else list(proc.inputs)
    inputs = ET.SubElement(elem, "List_of_Inputs", count=str(len(kept)))
    for i in kept:
        item = ET.SubElement(inputs, "Input")
        _text(item, "File_Type", i.file_type)
        _text(item, "File_Name_Type", i.file_name_type)
        names = ET.SubElement(item, "List_of_File_Names", count=str(len(i.file_names)))
        for name in i.file_names:
            _text(names, "File_Name", name)
        intervals = ET.SubElement(item, "List_of_Time_Intervals", count=str(len(i.time_intervals)))
        for interval in i.time_intervals:
            ti = ET.SubElement(intervals, "Time_Interval")
            _text(ti, "Start", ipf_time(interval.start))
            _text(ti, "Stop", ipf_time(interval.stop))
            _text(ti, "File_Name", interval.file_name)
    outputs = ET.SubElement(elem, "List_of_Outputs", count=str(len(proc.outputs)))
    for o in proc.outputs:
        item = ET.SubElement(outputs, "Output", mandatory=_bool(o.mandatory))
        _text(item, "File_Type", o.file_type)
        _text(item, "File_Name_Type", o.file_name_type)
        _text(item, "File_Name", o.file_name)
    breakpoint_ = ET.SubElement(elem, "Breakpoint")
    ET.SubElement(breakpoint_, "List_of_Brk_Files", count="0")
    _text(breakpoint_, "Enable", "OFF")


def dynamic_parameters(table: TaskTable, overrides: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Task-table defaults overridden by ``overrides``; parameters the table does not declare follow.

    A declared parameter with neither default nor value is left out (the IPF then applies its own).
    """
    values: list[tuple[str, str]] = []
    for param in table.dyn_proc_params:
        value = overrides.get(param.name, param.default)
        if value is not None:
            values.append((param.name, value))
    declared = {p.name for p in table.dyn_proc_params}
    values.extend((name, value) for name, value in overrides.items() if name not in declared)
    return tuple(values)


def build_job_order(
    table: TaskTable,
    selection: InputSelection,
    start: datetime,
    stop: datetime,
    workdir: str,
    *,
    processing_station: str,
    parameters: Mapping[str, str] | None = None,
    output_patterns: Mapping[str, str] | None = None,
    stdout_log_level: str = "INFO",
    stderr_log_level: str = "INFO",
    test: bool | None = None,
    flavour: JobOrderFlavour | None = None,
) -> JobOrder:
    """The JobOrder for ``selection`` (from :func:`select_inputs`), files placed under ``workdir``.

    ``output_patterns`` gives the regular expression of a Regexp output by file type (default
    ``^.*<FileType>.*$``, as the reference).
    """
    base = workdir.rstrip("/")
    patterns = output_patterns or {}
    procs: list[IpfProc] = []
    for task_selection in selection.tasks:
        inputs: list[JobOrderInput] = []
        for selected in task_selection.inputs:
            alt = selected.alternative
            if selected.from_processing:
                # Produced inside the job: named by its file type over the job window, never downloaded.
                interval = TimeInterval(start, stop, alt.file_type)
                inputs.append(JobOrderInput(alt.file_type, alt.file_name_type.value, (alt.file_type,), (interval,)))
                continue
            names = tuple(f"{base}/{c.name}" for c in selected.entries)
            intervals = tuple(
                TimeInterval(c.validity_start, c.validity_stop, f"{base}/{c.name}") for c in selected.entries
            )
            inputs.append(JobOrderInput(alt.file_type, alt.file_name_type.value, names, intervals))
        outputs = tuple(
            JobOrderOutput(
                file_type=o.file_type,
                file_name_type=o.file_name_type.value,
                file_name=_output_location(base, o.file_type, o.file_name_type, patterns),
                mandatory=o.mandatory,
            )
            for o in task_selection.task.outputs
        )
        procs.append(IpfProc(task_selection.task.name, task_selection.task.version, tuple(inputs), outputs))
    return JobOrder(
        processor_name=table.processor_name,
        version=table.version,
        sensing_start=start,
        sensing_stop=stop,
        processing_station=processing_station,
        procs=tuple(procs),
        config_files=tuple(c.file_name for c in table.config_files),
        parameters=dynamic_parameters(table, parameters or {}),
        stdout_log_level=stdout_log_level,
        stderr_log_level=stderr_log_level,
        test=table.test if test is None else test,
        flavour=flavour or flavour_for(table),
    )


def _output_location(base: str, file_type: str, kind: FileNameType, patterns: Mapping[str, str]) -> str:
    if kind is FileNameType.REGEXP:
        return f"{base}/{patterns.get(file_type, f'^.*{file_type}.*$')}"
    if kind is FileNameType.DIRECTORY:
        return base
    return f"{base}/"


def database_outputs(table: TaskTable) -> Sequence[str]:
    """File types the job uploads and catalogs (DB or DBPROC destinations)."""
    return [o.file_type for t in table.tasks for o in t.outputs if o.destination is not Destination.PROC]
