"""``refsys execute|lineage|chain``: processing runs.

* ``refsys execute [--job-file F] [--run-id ID]`` is the execution wrapper, what a processing Job runs:
  the ``job.ready`` payload from ``--job-file`` or ``REFSYS_JOB_READY``, the run id from ``--run-id`` or
  ``REFSYS_RUN_ID`` (default: the job.ready event id). Exit 0 when the run completed, 1 when it failed
  (both reported); anything else means it could not report.
* ``refsys lineage NAME`` prints how a product was made, as a JSON tree down to the uploads.
* ``refsys chain s1|s2|s3 [--wait]`` uploads one chain's inputs into the running platform; with
  ``--wait``, prints the names of the chain's final products once they are cataloged, one per line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path


def register(
    commands: argparse._SubParsersAction,
    add_data_dir: Callable[[argparse.ArgumentParser], None],
) -> None:
    execute = commands.add_parser("execute", help="run a ready job (the execution wrapper of processing Jobs)")
    execute.add_argument("--job-file", type=Path, help="job.ready payload (JSON); default: $REFSYS_JOB_READY")
    execute.add_argument("--run-id", help="run id; default: $REFSYS_RUN_ID, else the job.ready event id")
    execute.set_defaults(command=execute_command)

    lineage = commands.add_parser("lineage", help="how a product was made: jobs, processors, inputs (JSON tree)")
    lineage.add_argument("name", help="product name")
    lineage.add_argument("--catalog-url", help="catalog database (default: the platform's in --data-dir)")
    add_data_dir(lineage)
    lineage.set_defaults(command=lineage_command)

    chain = commands.add_parser("chain", help="upload one processing chain's inputs into the running platform")
    chain.add_argument("mission", choices=("s1", "s2", "s3"))
    chain.add_argument("--wait", action="store_true", help="wait for the final level; print its products' names")
    chain.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)")
    add_data_dir(chain)
    chain.set_defaults(command=chain_command)


def execute_command(args: argparse.Namespace) -> int:
    from shared.processing.execution import run_from_environment
    from shared.settings import get_settings

    text = args.job_file.read_text(encoding="utf-8") if args.job_file else os.environ.get("REFSYS_JOB_READY")
    if not text:
        print("refsys: no job: give --job-file or set REFSYS_JOB_READY", file=sys.stderr)
        return 2
    return run_from_environment(text, args.run_id or os.environ.get("REFSYS_RUN_ID"), get_settings())


def lineage_command(args: argparse.Namespace) -> int:
    from shared.processing.lineage import LineageStore

    url = args.catalog_url or f"sqlite:///{args.data_dir / 'catalog.db'}"
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        print(f"refsys: no catalog at {url}", file=sys.stderr)
        return 2
    print(json.dumps(LineageStore(url).tree(args.name), indent=2))
    return 0


def chain_command(args: argparse.Namespace) -> int:
    from shared.platform.client import PlatformNotRunning, RunningPlatform
    from shared.processing.chains import ChainTimeout, run_chain

    try:
        platform = RunningPlatform.find(args.data_dir)
    except PlatformNotRunning as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 2
    try:
        finals = run_chain(platform, args.mission, wait=args.wait, timeout=args.timeout)
    except ChainTimeout as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 1
    for name in finals:
        print(name)
    return 0
