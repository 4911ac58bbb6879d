"""``refsys tasktable|select|joborder``: the processing commands (a fixed contract: scripts use them).

* ``refsys tasktable show FILE`` prints the parsed task table as JSON.
* ``refsys select POLICY --start ISO --stop ISO [--t0 S] [--t1 S] --candidates FILE`` prints the JSON
  array of the selected names, in the policy's order.
* ``refsys joborder TASKTABLE --start ISO --stop ISO --inputs FILE [--mode M] [--param NAME=VALUE]...``
  prints the JobOrder XML, or exits 2 naming the mandatory inputs that are missing.

Candidate files hold a JSON array of objects with ``name``, ``validityStart``, ``validityStop``,
``creationDate`` (ISO 8601; no offset means UTC) and, for ``joborder``, ``productType``.
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

from shared.processing.inputs import select_inputs
from shared.processing.joborder import build_job_order
from shared.processing.policies import POLICIES, Candidate, UnknownPolicy, select
from shared.processing.tasktable import TaskTableError, load_task_table


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
    joborder.add_argument("--mode", choices=("NRT", "NTC", "STC"), help="production mode (inputs of others dropped)")
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
        except (CommandError, TaskTableError, UnknownPolicy, OSError) as exc:
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
    selection = select_inputs(table, read_candidates(args.inputs), start, stop, mode=args.mode)
    if not selection.complete:
        print(f"refsys: mandatory inputs missing: {', '.join(selection.missing)}", file=sys.stderr)
        return 2
    parameters = dict(_parameter(p) for p in args.param)
    if args.mode and "Processing_Mode" not in parameters:
        parameters["Processing_Mode"] = args.mode
    order = build_job_order(
        table, selection, start, stop, args.workdir, processing_station=args.processing_station, parameters=parameters
    )
    sys.stdout.write(order.to_xml().decode())
    return 0


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise CommandError(f"--param {text!r} is not NAME=VALUE")
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
        candidates.append(
            Candidate(
                name=str(item["name"]),
                validity_start=parse_time(str(item["validityStart"]), f"{where}.validityStart"),
                validity_stop=parse_time(str(item["validityStop"]), f"{where}.validityStop"),
                creation_date=parse_time(str(item["creationDate"]), f"{where}.creationDate"),
                product_type=str(item.get("productType", "")),
            )
        )
    return candidates
