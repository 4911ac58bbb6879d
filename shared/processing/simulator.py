"""IPF simulator (``refsys-ipf-simulator``): a stand-in for ESA's Sentinel-1, -2 and -3 processors.

It honours the generic IPF interface as a real processor does: called as ``<task binary> <JobOrder>``
(or ``refsys-ipf-simulator <task binary> <JobOrder>``, what the wrapper runs for a binary that is not
installed; a symlink named like the task binary works too), in the working directory, it

* reads the JobOrder and finds its own ``Ipf_Proc`` (task name from ``IPF_TASK_NAME``, which the wrapper
  sets, else the binary's name);
* checks that every input file the JobOrder names exists (exit 128 if one does not);
* logs in the IPF log format (``<time> <host> <processor> <version> [<pid>]: [I] ...``) on stdout;
* takes its time (``Simulator_Duration_S`` dynamic parameter, else ``REFSYS_SIMULATOR_SECONDS``, default
  0.2 s) and exits with ``Simulator_Exit_Code`` / ``REFSYS_SIMULATOR_EXIT_CODE`` when told to (an exit
  code of 128 or more writes no output, as a crashing IPF would not);
* writes its outputs with the product factory: valid names, manifests, the inputs' footprint and the
  job's sensing window. Intermediate (PROC) outputs are folders named by their file type; a ``LIST``
  output is the ``<working directory>.LIST`` file naming the products made.

Which optional outputs a simulated processor makes (a real one makes those its data allow): Sentinel-1
types of the acquisition mode of its inputs (``Simulator_Mode``, default IW, for a session); Sentinel-3
level-2 types of the resolution of its inputs (full or reduced); the others always. A type declared by
several tasks is made by the last. L0 assembly cuts its segments into slices of
``Simulator_Slice_S`` seconds (default 25, as IW slices).
"""

from __future__ import annotations

import math
import os
import re
import socket
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.processing.tasktable import NOT_PRODUCTS
from shared.products.factory import make_product, supported
from shared.products.naming import UnknownProduct, recognise
from shared.products.xml import parse_xml

# Acquisition modes of Sentinel-1 product types (besides S1..S6, stripmap).
S1_MODES = frozenset({"IW", "EW", "WV", "SM", "RF", "EN", "AN", "ZS", "ZE", "ZI", "ZW", "GP", "HK"})


@dataclass(frozen=True)
class _Proc:
    task: str
    inputs: tuple[tuple[str, tuple[str, ...]], ...]  # (file type, file names)
    outputs: tuple[tuple[str, bool], ...]  # (file type, mandatory)


@dataclass(frozen=True)
class _Order:
    processor: str
    version: str
    start: datetime
    stop: datetime
    parameters: dict[str, str]
    procs: tuple[_Proc, ...]


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d_%H%M%S%f").replace(tzinfo=UTC)


def read_job_order(path: Path) -> _Order:
    root = parse_xml(path.read_bytes())
    conf = root.find("Ipf_Conf")
    if conf is None:
        raise ValueError(f"{path}: no Ipf_Conf")
    parameters = {
        (p.findtext("Name") or ""): (p.findtext("Value") or "")
        for p in conf.iter()
        if p.find("Name") is not None and p.find("Value") is not None
    }
    procs = []
    for proc in root.iter("Ipf_Proc"):
        inputs = tuple(
            (i.findtext("File_Type") or "", tuple(n.text or "" for n in i.iter("File_Name")))
            for i in proc.iter("Input")
        )
        outputs = tuple(
            (o.findtext("File_Type") or "", (o.get("mandatory") or "false") == "true") for o in proc.iter("Output")
        )
        procs.append(_Proc(proc.findtext("Task_Name") or "", inputs, outputs))
    return _Order(
        conf.findtext("Processor_Name") or "",
        conf.findtext("Version") or "",
        _time(conf.findtext("Sensing_Time/Start") or ""),
        _time(conf.findtext("Sensing_Time/Stop") or ""),
        parameters,
        tuple(procs),
    )


class _Log:
    def __init__(self, order: _Order) -> None:
        self.prefix = f"{socket.gethostname()} {order.processor} {order.version} [{os.getpid():012d}]"

    def __call__(self, level: str, message: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        sys.stdout.write(f"{now} {self.prefix}: [{level}] {message}\n")
        sys.stdout.flush()


def _setting(order: _Order, parameter: str, env: str, default: str) -> str:
    return order.parameters.get(parameter) or os.environ.get(env) or default


@dataclass(frozen=True)
class _Input:
    path: Path
    product_type: str
    satellite: str | None


def _input_products(order: _Order) -> list[_Input]:
    """The input products the JobOrder names that are there, recognised by their names."""
    paths = sorted({Path(n) for p in order.procs for _, names in p.inputs for n in names if n.startswith("/")})
    return [_Input(p, *identity) for p in paths if p.exists() and (identity := _identity(p)) is not None]


def _identity(path: Path) -> tuple[str, str | None] | None:
    try:
        product = recognise(path.name)
    except UnknownProduct:
        return None
    return product.product_type, product.satellite


def _footprint(inputs: Sequence[Path]) -> tuple[tuple[float, float], ...] | None:
    from shared.products.describe import describe

    for path in inputs:
        try:
            geometry = describe(path).metadata.footprint
        except Exception:
            continue
        if not geometry:
            continue
        ring = geometry["coordinates"][0] if geometry["type"] == "Polygon" else geometry["coordinates"][0][0]
        return tuple((float(lon), float(lat)) for lon, lat in ring)
    return None


def _relevant(file_type: str, mandatory: bool, input_types: set[str], mode: str) -> bool:
    if mandatory:
        return True
    if file_type[:2] in S1_MODES or re.fullmatch(r"S[1-6]", file_type[:2]):
        modes = {t[:2] for t in input_types if "_RAW__" in t or "_SLC_" in t} or {mode}
        return file_type[:2] in modes
    if file_type.startswith("OL_2_"):
        return any(t.startswith("OL_1_") and t[6] == file_type[6] for t in input_types)
    return True


def _made_here(order: _Order, proc: _Proc, inputs: Sequence[_Input]) -> list[tuple[str, bool]]:
    """The product types this task makes: relevant ones the factory knows, declared by no later task."""
    later = order.procs[order.procs.index(proc) + 1 :]
    later_types = {t for p in later for t, _ in p.outputs}
    input_types = {i.product_type for i in inputs}
    mode = order.parameters.get("Simulator_Mode", "IW")
    return [
        (t, m)
        for t, m in proc.outputs
        if t not in later_types and t not in NOT_PRODUCTS and supported(t) and _relevant(t, m, input_types, mode)
    ]


def _write_outputs(order: _Order, proc: _Proc, workdir: Path, log: _Log, inputs: Sequence[_Input]) -> list[Path]:
    satellite = next((i.satellite for i in inputs if i.satellite and i.satellite != "_"), "A")
    footprint = _footprint([i.path for i in inputs if not i.product_type.startswith("AUX")])
    seed = zlib.crc32(workdir.name.encode())
    made: list[Path] = []
    for file_type, _ in _made_here(order, proc, inputs):
        for start, stop, options in _pieces(order, file_type, [i.path for i in inputs]):
            path = make_product(
                workdir, file_type, start, stop, satellite=satellite, seed=seed, footprint=footprint, options=options
            )
            log("I", f"output {path.name} written")
            made.append(path)
    return made


def _pieces(
    order: _Order, file_type: str, inputs: Sequence[Path]
) -> list[tuple[datetime, datetime, dict[str, object]]]:
    """The products of one output type: (start, stop, factory options) each."""
    start, stop = order.start, order.stop
    if "_RAW__0" not in file_type:
        return [(start, stop, {})]
    datatake = _datatake(inputs)
    options: dict[str, object] = {} if datatake is None else {"datatake": datatake}
    segments_in = any("_RAW__0S" in p.name for p in inputs)
    if not segments_in:  # an L0 processor working on a session: one segment per polarisation, whole window
        if not file_type.endswith("0S"):
            return [(start, stop, options)]
        segment = {**options, "slicing": "segment", "consolidation": "FULL"}
        return [(start, stop, {**segment, "polarisation": p}) for p in ("VV", "VH")]
    if not file_type.endswith("0S"):  # annotations, calibration, noise: one per datatake
        return [(start, stop, options)]
    length = float(order.parameters.get("Simulator_Slice_S", "25"))
    total = max(1, math.ceil((stop - start).total_seconds() / length - 0.2))
    step = (stop - start) / total
    return [
        (
            start + step * i,
            start + step * (i + 1),
            {**options, "slicing": "slice", "slice_number": i + 1, "total_slices": total},
        )
        for i in range(total)
    ]


def _datatake(inputs: Sequence[Path]) -> int | None:
    for path in inputs:
        try:
            value = recognise(path.name).name_field("datatake_id")
        except UnknownProduct:
            continue
        if value:
            return int(value, 16)
    return None


def _write_list(workdir: Path, log: _Log, inputs: Sequence[_Input]) -> Path:
    taken = {i.path.name for i in inputs}
    names = sorted(p.name for p in workdir.iterdir() if p.name not in taken and _identity(p) is not None)
    path = workdir / f"{workdir.name}.LIST"
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    log("I", f"{path.name}: {len(names)} products listed")
    return path


def simulate(job_order: Path, task: str, workdir: Path) -> int:
    order = read_job_order(job_order)
    log = _Log(order)
    proc = next((p for p in order.procs if p.task == task), None)
    if proc is None:
        log("E", f"task {task} is not in the JobOrder")
        return 128
    log("I", f"{task} simulated: sensing {order.start.isoformat()} .. {order.stop.isoformat()}")
    for file_type, names in proc.inputs:
        for name in names:
            if name.startswith("/") and not Path(name).exists():
                log("E", f"input {file_type} missing: {name}")
                return 128
            if not name.startswith("/") and not (workdir / name).exists():
                log("W", f"intermediate input {name} not found (produced by no earlier task)")
    time.sleep(float(_setting(order, "Simulator_Duration_S", "REFSYS_SIMULATOR_SECONDS", "0.2")))
    code = int(_setting(order, "Simulator_Exit_Code", "REFSYS_SIMULATOR_EXIT_CODE", "0"))
    if code >= 128:
        log("E", f"{task} told to fail: exit {code}")
        return code
    for file_type, _ in proc.outputs:
        if not supported(file_type) and file_type not in NOT_PRODUCTS:
            (workdir / file_type).mkdir(exist_ok=True)  # an intermediate product for later tasks
            (workdir / file_type / "data.bin").write_bytes(b"\0" * 64)
    inputs = _input_products(order)
    _write_outputs(order, proc, workdir, log, inputs)
    if any(t == "LIST" for t, _ in proc.outputs):
        _write_list(workdir, log, inputs)
    if code:
        log("W", f"{task} told to warn: exit {code}")
    log("I", f"{task} done")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write("usage: refsys-ipf-simulator [TASK_BINARY] JOBORDER\n")
        return 128
    job_order = Path(args[-1])
    binary = args[0] if len(args) > 1 else sys.argv[0]
    task = os.environ.get("IPF_TASK_NAME") or Path(binary).name
    return simulate(job_order, task, Path.cwd())


if __name__ == "__main__":
    raise SystemExit(main())
