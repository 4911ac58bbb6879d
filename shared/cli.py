"""``refsys``: the operator's command line. A thin shell: each domain registers its own commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

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
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="data directory of the platform (default .refsys)"
    )


def _parser() -> argparse.ArgumentParser:
    from shared.ingestion import cli as ingestion
    from shared.processing import cli as processing
    from shared.processing import jobs_cli as jobs
    from shared.products import cli as products

    parser = argparse.ArgumentParser(prog="refsys", description="Copernicus Reference System on CloudEvents functions")
    parser.add_argument("--log-level", default="WARNING", help="log level of this command (default WARNING)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the embedded platform on loopback until Ctrl-C")
    up.add_argument("--s3-port", type=int, help="S3 port (default: a free one)")
    up.add_argument("--broker-port", type=int, default=0, help="broker ingress port (default: a free one)")
    up.set_defaults(command=_up)

    demo = commands.add_parser("demo", help="start the platform, ingest synthetic products and query them")
    demo.add_argument("--exit", action="store_true", help="stop when done; exit 0 only if every product was cataloged")
    demo.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the products (default 120)")
    demo.set_defaults(command=_demo)

    deadletter = commands.add_parser("deadletter", help="list dead-lettered events, or restart them")
    deadletter.add_argument("action", choices=("list", "restart"))
    deadletter.add_argument("ids", nargs="*", help="event ids to restart (restart: all when none given)")
    deadletter.set_defaults(command=_deadletter)

    for parser_ in (up, demo, deadletter):
        add_data_dir(parser_)
    for domain in (products, ingestion, processing, jobs):
        domain.register(commands, add_data_dir)
    return parser


def _up(args: argparse.Namespace) -> int:
    from shared.platform.embedded import EmbeddedPlatform, wait_until_interrupted

    platform = EmbeddedPlatform(args.data_dir, s3_port=args.s3_port, broker_port=args.broker_port)
    print("starting SeaweedFS, the broker and the functions...", file=sys.stderr)
    try:
        endpoints = platform.start()
        print(json.dumps(endpoints, indent=2))
        print(f"endpoints written to {args.data_dir / 'endpoints.json'}; Ctrl-C stops", file=sys.stderr)
        wait_until_interrupted()
    finally:
        print("stopping...", file=sys.stderr)
        platform.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from shared.platform.demo import run_demo

    return run_demo(args.data_dir, exit_when_done=args.exit, timeout=args.timeout)


def _deadletter(args: argparse.Namespace) -> int:
    from shared.bus.publisher import SinkPublisher
    from shared.operations.deadletters import DeadLetters
    from shared.platform.client import PlatformNotRunning, RunningPlatform

    try:
        platform = RunningPlatform.find(args.data_dir)
    except PlatformNotRunning as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 2
    letters = DeadLetters(platform.object_store(), platform.settings.deadletter_bucket)
    pending = letters.pending()
    if args.action == "list":
        for letter in pending:
            print(json.dumps(letter.summary()))
        return 0
    chosen = [letter for letter in pending if not args.ids or letter.event["id"] in args.ids]
    unknown = set(args.ids) - {letter.event["id"] for letter in chosen}
    broker = SinkPublisher(str(platform.endpoints["broker"]))
    for letter in chosen:
        letters.restart(letter, broker)
        print(f"restarted {letter.event['id']} ({letter.event['type']})")
    for event_id in sorted(unknown):
        print(f"refsys: no dead letter with id {event_id}", file=sys.stderr)
    return 2 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
