"""``refsys tasktable|select|joborder``: the processing commands (a fixed contract: scripts use them).

* ``refsys tasktable show FILE`` prints the parsed task table as JSON.
* ``refsys select POLICY --start ISO --stop ISO [--t0 S] [--t1 S] --candidates FILE`` prints the JSON
  array of the selected names, in the policy's order.
* ``refsys joborder TASKTABLE --start ISO --stop ISO --inputs FILE [--mode M] [--processor NAME]
  [--alias TYPE=CATALOGTYPE]... [--param NAME=VALUE]...`` prints the JobOrder XML, or exits 2 naming the
  mandatory inputs that are missing.

``joborder`` and the production mode (reference: the worker's product mode must equal the input's
``Mode`` or either is ALWAYS). ``--mode`` is any task-table mode (SLICING, NON_SLICING, NRT, NTC, STC,
ALWAYS); for a table with mode-specific inputs it must be one of the modes they use (S1 L1: SLICING or
NON_SLICING). Without ``--mode``, such a table takes the ``mode`` of its processor in ``processors.yaml``,
else the command refuses, naming the modes: with no mode every variant of an input would be listed. The
processor is the entry whose ``tasktable`` is this file's name (``--processor`` names another); its
``type_aliases`` map task-table file types to the catalog types of ``--inputs`` (``AUX_RES`` ->
``AUX_RESORB``), ``--alias`` adds or overrides one. A table declaring ``Slicing_Flag`` gets TRUE under
SLICING and FALSE under NON_SLICING (a contradicting ``--param`` is refused); an explicit NRT, NTC or
STC ``--mode`` is also passed as ``Processing_Mode`` unless ``--param`` sets it.

Candidate files hold a JSON array of objects with ``name``, ``validityStart``, ``validityStop``,
``creationDate`` (ISO 8601; no offset means UTC) and, for ``joborder``, ``productType`` (the catalog
type). A ``validityStop`` of ``null`` is an open-ended validity (valid until further notice).
Exit codes: 0 done, 2 bad input or missing mandatory inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.processing.config import ConfigError, ProcessorSettings, processing_config
from shared.processing.inputs import input_modes, select_inputs
from shared.processing.joborder import build_job_order
from shared.processing.policies import POLICIES, Candidate, UnknownPolicy, select
from shared.processing.tasktable import InputMode, TaskTable, TaskTableError, load_task_table
from shared.settings import get_settings

TIMELINESS_MODES = frozenset({"NRT", "NTC", "STC"})  # passed on as Processing_Mode
SLICING_FLAG = {InputMode.SLICING.value: "TRUE", InputMode.NON_SLICING.value: "FALSE"}


class CommandError(Exception):
    """Input the command cannot use; printed as ``refsys: <message>``, exit 2."""


def register(
    commands: argparse._SubParsersAction,
    add_data_dir: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the processing commands to ``refsys``. They work on files only: no platform, no data dir."""
    del add_data_dir  # offline commands: nothing to find in a data directory

    tasktable = commands.add_parser("tasktable", help="inspect an ESA task table", description="inspect a task table")
    tasktable.add_argument("action", choices=("show",))
    tasktable.add_argument("file", type=Path, help="task table XML (S1 or S3 dialect)")
    tasktable.set_defaults(command=tasktable_show)

    choose = commands.add_parser(
        "select", help="run a selection policy over candidate entries", description="run a selection policy"
    )
    choose.add_argument("policy", help=f"one of: {', '.join(sorted(POLICIES))}")
    _window_arguments(choose)
    choose.add_argument("--t0", type=float, default=0.0, help="seconds to widen the window before --start")
    choose.add_argument("--t1", type=float, default=0.0, help="seconds to widen the window after --stop")
    choose.add_argument("--candidates", type=Path, required=True, help="JSON array of candidate entries")
    choose.set_defaults(command=select_command)

    joborder = commands.add_parser(
        "joborder", help="select a task table's inputs and print the JobOrder", description="generate a JobOrder"
    )
    joborder.add_argument("tasktable", type=Path)
    _window_arguments(joborder)
    joborder.add_argument("--inputs", type=Path, required=True, help="JSON array of candidate entries")
    joborder.add_argument(
        "--mode",
        type=str.upper,
        choices=[m.value for m in InputMode],
        help="production mode: inputs of other modes are dropped (default: the processor's mode in processors.yaml)",
    )
    joborder.add_argument(
        "--processor", help="processors.yaml entry whose mode and type aliases apply (default: by task-table name)"
    )
    joborder.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="TYPE=CATALOGTYPE",
        help="task-table file type -> product type in --inputs (added to the processor's type_aliases)",
    )
    joborder.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="dynamic processing parameter"
    )
    joborder.add_argument("--workdir", default="/data/localWD/job", help="where the IPF finds its files")
    joborder.add_argument("--processing-station", default="WILE", help="Processing_Station of the JobOrder")
    joborder.set_defaults(command=joborder_command)


def _window_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", required=True, help="window start, ISO 8601")
    parser.add_argument("--stop", required=True, help="window stop, ISO 8601")


def _handled(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (CommandError, ConfigError, TaskTableError, UnknownPolicy, OSError) as exc:
            print(f"refsys: {exc}", file=sys.stderr)
            return 2

    handler.__name__ = run.__name__
    handler.__doc__ = run.__doc__
    return handler


@_handled
def tasktable_show(args: argparse.Namespace) -> int:
    print(json.dumps(load_task_table(args.file).to_json(), indent=2))
    return 0


@_handled
def select_command(args: argparse.Namespace) -> int:
    start, stop = parse_time(args.start, "--start"), parse_time(args.stop, "--stop")
    chosen = select(args.policy, read_candidates(args.candidates), start, stop, args.t0, args.t1)
    print(json.dumps([c.name for c in chosen]))
    return 0


@_handled
def joborder_command(args: argparse.Namespace) -> int:
    table = load_task_table(args.tasktable)
    start, stop = parse_time(args.start, "--start"), parse_time(args.stop, "--stop")
    parameters = dict(_pair(p, "--param", "NAME=VALUE") for p in args.param)
    processor = configured_processor(args.tasktable.name, args.processor)
    mode = production_mode(table, args.tasktable.name, args.mode, processor)
    aliases = {
        **(processor.type_aliases if processor else {}),
        **dict(_pair(a, "--alias", "TYPE=CATALOGTYPE") for a in args.alias),
    }
    _set_slicing_flag(table, mode, parameters)
    selection = select_inputs(table, read_candidates(args.inputs), start, stop, mode=mode, type_aliases=aliases)
    if not selection.complete:
        print(f"refsys: mandatory inputs missing: {', '.join(selection.missing)}", file=sys.stderr)
        return 2
    if args.mode in TIMELINESS_MODES and "Processing_Mode" not in parameters:
        parameters["Processing_Mode"] = args.mode
    order = build_job_order(
        table, selection, start, stop, args.workdir, processing_station=args.processing_station, parameters=parameters
    )
    sys.stdout.write(order.to_xml().decode())
    return 0


def configured_processor(table_file: str, name: str | None) -> ProcessorSettings | None:
    """The processors.yaml entry named ``name``, else the one whose task table is ``table_file`` (if any)."""
    config = processing_config(get_settings().processing_config_dir)
    if name is not None:
        try:
            return config.by_name(name).settings
        except KeyError:
            known = ", ".join(p.name for p in config.processors)
            raise CommandError(f"--processor {name!r} is not configured; known: {known}") from None
    matches = [p.settings for p in config.processors if p.table_file == table_file]
    if len({(s.mode, tuple(sorted(s.type_aliases.items()))) for s in matches}) > 1:
        names = ", ".join(s.name for s in matches)
        raise CommandError(
            f"{table_file} is the task table of several processors ({names}): choose one with --processor"
        )
    return matches[0] if matches else None


def production_mode(
    table: TaskTable, table_file: str, requested: str | None, processor: ProcessorSettings | None
) -> str | None:
    """The mode the inputs are filtered by; None when the table has no mode-specific input and none is asked."""
    modes = input_modes(table)
    if requested is not None:
        if modes and requested not in modes:
            raise CommandError(
                f"--mode {requested} matches none of the production modes of {table_file}'s inputs"
                f" ({', '.join(modes)}): choose one of them"
            )
        return requested
    if not modes:
        return None
    if processor is None or processor.mode is None:
        where = ""
    elif processor.mode.upper() in modes:
        return processor.mode.upper()
    else:
        where = f" (processor {processor.name} is configured with mode {processor.mode})"
    raise CommandError(
        f"{table_file} has inputs for production modes {', '.join(modes)}{where}: choose one with --mode"
    )


def _set_slicing_flag(table: TaskTable, mode: str | None, parameters: dict[str, str]) -> None:
    """Keep a declared ``Slicing_Flag`` consistent with a SLICING / NON_SLICING production mode."""
    expected = SLICING_FLAG.get(mode or "")
    if expected is None or not any(p.name == "Slicing_Flag" for p in table.dyn_proc_params):
        return
    given = parameters.get("Slicing_Flag")
    if given is not None and given.upper() != expected:
        raise CommandError(f"--param Slicing_Flag={given} contradicts --mode {mode} (Slicing_Flag={expected})")
    parameters["Slicing_Flag"] = expected


def _pair(text: str, option: str, shape: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise CommandError(f"{option} {text!r} is not {shape}")
    return name, value


def parse_time(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"{what} {text!r} is not an ISO 8601 time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_candidates(path: Path) -> list[Candidate]:
    try:
        data: Any = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path.name} is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise CommandError(f"{path.name} must hold a JSON array of candidate entries")
    candidates = []
    for n, item in enumerate(data):
        where = f"{path.name}[{n}]"
        if not isinstance(item, dict):
            raise CommandError(f"{where} is not an object")
        missing = [k for k in ("name", "validityStart", "validityStop", "creationDate") if k not in item]
        if missing:
            raise CommandError(f"{where} lacks {', '.join(missing)}")
        stop = item["validityStop"]  # null: valid until further notice
        candidates.append(
            Candidate(
                name=str(item["name"]),
                validity_start=parse_time(str(item["validityStart"]), f"{where}.validityStart"),
                validity_stop=None if stop is None else parse_time(str(stop), f"{where}.validityStop"),
                creation_date=parse_time(str(item["creationDate"]), f"{where}.creationDate"),
                product_type=str(item.get("productType", "")),
            )
        )
    return candidates
