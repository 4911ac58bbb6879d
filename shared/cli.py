"""``refsys``: the operator's command line. A thin shell: each domain registers its own commands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(".refsys")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from shared.logs import configure_logging

    configure_logging(args.log_level)
    try:
        code: int = args.command(args)
    except KeyboardInterrupt:
        return 130
    return code


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the ``--data-dir`` option (the domains' ``register()`` call it for their commands).

    Every command parser of ``refsys`` already has it (:class:`_CommandParser`): then this does nothing.
    """
    if not isinstance(parser, _CommandParser):
        parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=_DATA_DIR_HELP)


_DATA_DIR_HELP = f"data directory of the platform (default {DEFAULT_DATA_DIR})"


class _CommandParser(argparse.ArgumentParser):
    """A (sub-)command's parser: accepts ``--data-dir`` wherever it stands after the command's name.

    Each level parses its own arguments, so the option must be known at every level. Not given here,
    it is absent (SUPPRESS) and leaves what an outer level gave, or the top's default, in place: the
    last one given wins and the default applies once. Subparsers of a ``_CommandParser`` are too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=_DATA_DIR_HELP)
        self._intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # A command's own words are parsed intermixed: argparse alone ends a list of positionals at the
        # first option (`upload a --data-dir D b` would leave `b` unrecognized). Not possible for a
        # parser with subcommands, where the words after the subcommand's name are the subparser's.
        if self._intermixing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args calls back here, twice
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _parser() -> argparse.ArgumentParser:
    from shared.ingestion import cli as ingestion
    from shared.lifecycle import cli as lifecycle
    from shared.observability import timeliness
    from shared.operations import cli as operations
    from shared.processing import cli as processing
    from shared.processing import jobs_cli as jobs
    from shared.processing import runs_cli as runs
    from shared.products import cli as products

    parser = argparse.ArgumentParser(prog="refsys", description="Copernicus Reference System on CloudEvents functions")
    parser.add_argument("--log-level", default="WARNING", help="log level of this command (default WARNING)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=_DATA_DIR_HELP)
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_CommandParser)

    up = commands.add_parser("up", help="start the embedded platform on loopback until Ctrl-C (or SIGTERM)")
    up.add_argument("--s3-port", type=int, help="S3 port (default: a free one)")
    up.add_argument("--broker-port", type=int, default=0, help="broker ingress port (default: a free one)")
    up.set_defaults(command=_up)

    demo = commands.add_parser("demo", help="start the platform, ingest synthetic products and query them")
    demo.add_argument("--exit", action="store_true", help="stop when done; exit 0 only if every product was cataloged")
    demo.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the products (default 120)")
    demo.add_argument("--chain", choices=("s1", "s2", "s3"), help="run one processing chain from its uploads instead")
    demo.set_defaults(command=_demo)

    for domain in (products, ingestion, processing, jobs, runs, operations, lifecycle, timeliness):
        domain.register(commands, add_data_dir)
    return parser


def _up(args: argparse.Namespace) -> int:
    from shared.platform.embedded import (
        EmbeddedPlatform,
        PlatformAlreadyRunning,
        interrupt_on_sigterm,
        wait_until_interrupted,
    )

    interrupt_on_sigterm()  # a SIGTERM while starting stops what was started, as Ctrl-C does
    platform = EmbeddedPlatform(args.data_dir, s3_port=args.s3_port, broker_port=args.broker_port)
    try:
        platform.lock()  # before any output: a refusal is one line
    except PlatformAlreadyRunning as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 1
    print("starting SeaweedFS, the broker and the functions...", file=sys.stderr)
    try:
        endpoints = platform.start()
        print(json.dumps(endpoints, indent=2))
        print(f"endpoints written to {args.data_dir / 'endpoints.json'}; Ctrl-C stops", file=sys.stderr)
        wait_until_interrupted()
    finally:
        print("stopping...", file=sys.stderr)
        started = time.monotonic()
        platform.stop()
        print(f"refsys: platform stopped ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from shared.platform.demo import run_demo
    from shared.platform.embedded import PlatformAlreadyRunning

    try:
        if args.chain:
            from shared.platform.demo import run_chain_demo

            return run_chain_demo(args.data_dir, args.chain, exit_when_done=args.exit, timeout=max(args.timeout, 300))
        return run_demo(args.data_dir, exit_when_done=args.exit, timeout=args.timeout)
    except PlatformAlreadyRunning as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
