"""The operators' commands: dead letters, replays of the event archive, reprocessing.

They talk to the running platform's ``operations`` API (``endpoints.json``), as an operator's tools would talk
to the cluster's: no keys to the stores are needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from shared.operations import deadletters_cli
from shared.security.cli import add_token_option, auth_headers

AddDataDir = Callable[[argparse.ArgumentParser], None]


def register(commands: argparse._SubParsersAction, add_data_dir: AddDataDir) -> None:
    def add_options(parser: argparse.ArgumentParser) -> None:  # where the API is, and who asks
        add_data_dir(parser)
        add_token_option(parser)

    deadletters_cli.register(commands, add_options)

    replay = commands.add_parser(
        "replay",
        help="publish archived events again (new ids, replay=true, replayof=<original id>)",
        description="Select archived events and publish them again, so the work they caused is done again. "
        '--dry-run prints {"matched": N, "byType": {...}} and changes nothing.',
    )
    add_options(replay)
    replay.add_argument("--type", action="append", default=[], metavar="TYPE", help="event type (repeatable)")
    replay.add_argument("--source", action="append", default=[], metavar="SOURCE", help="event source (repeatable)")
    replay.add_argument("--since", help="received at or after (ISO 8601)")
    replay.add_argument("--until", help="received before (ISO 8601)")
    replay.add_argument("--subject", help="subject glob, e.g. 'S1A_IW_RAW__0S*'")
    replay.add_argument("--product", help="product name glob (events of the product and of its objects)")
    replay.add_argument(
        "--attribute", action="append", default=[], metavar="NAME=VALUE", help="routing attribute (repeatable)"
    )
    replay.add_argument("--include-replays", action="store_true", help="also select events that are replays")
    _rerun_options(replay)
    replay.set_defaults(command=_replay)

    reprocess = commands.add_parser(
        "reprocess",
        help="announce cataloged products again so that they are processed again with today's processors",
        description="Select cataloged products with an OData $filter and announce them again: preparation and "
        "processing run again, making new products whose lineage names the reprocessing.",
    )
    add_options(reprocess)
    reprocess.add_argument("--filter", help="OData $filter, e.g. \"startswith(Name,'S1A_IW_RAW__0S')\"")
    _rerun_options(reprocess)
    reprocess.set_defaults(command=_reprocess)


def _rerun_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="count what would be sent; change nothing")
    parser.add_argument("--rate", type=float, help="events per second at most (default: the platform's)")
    parser.add_argument("--resume", metavar="ID", help="go on with a rerun that was cut short")
    parser.add_argument("--list", action="store_true", help="list the reruns of this kind")


def _replay(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    for key, value in (("types", args.type), ("sources", args.source), ("since", args.since),
                       ("until", args.until), ("subject", args.subject), ("product", args.product)):  # fmt: skip
        if value:
            body[key] = value
    attributes = {}
    for pair in args.attribute:
        name, sep, value = pair.partition("=")
        if not sep:
            print(f"refsys: --attribute {pair!r}: NAME=VALUE expected", file=sys.stderr)
            return 2
        attributes[name] = value
    if attributes:
        body["attributes"] = attributes
    if args.include_replays:
        body["includeReplays"] = True
    return _rerun(args, "replays", body)


def _reprocess(args: argparse.Namespace) -> int:
    if not (args.filter or args.resume or args.list):
        print("refsys: reprocess needs --filter (or --resume ID, --list)", file=sys.stderr)
        return 2
    return _rerun(args, "reprocessings", {"filter": args.filter} if args.filter else {})


def _rerun(args: argparse.Namespace, collection: str, body: dict[str, Any]) -> int:
    import requests

    from shared.platform.client import PlatformNotRunning, RunningPlatform

    try:
        base = str(RunningPlatform.find(args.data_dir).endpoints["operations"]).rstrip("/") + f"/{collection}"
    except PlatformNotRunning as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 2
    headers = auth_headers(args)
    if args.list:
        return _show(requests.get(base, headers=headers, timeout=30))
    rate = {"rate": args.rate} if args.rate else {}
    if args.dry_run:
        if args.resume:
            print("refsys: --dry-run counts a new selection; it cannot be used with --resume", file=sys.stderr)
            return 2
        return _show(requests.post(base, json={**body, **rate, "dryRun": True}, headers=headers, timeout=600))
    url, payload = (f"{base}/{args.resume}/resume", rate) if args.resume else (base, {**body, **rate})
    with requests.post(url, json=payload, headers=headers, stream=True, timeout=(10, None)) as response:
        if response.status_code != 200:
            return _show(response)
        return _follow(_lines(response.iter_lines()))


def _lines(raw: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    for line in raw:
        if line.strip():
            yield json.loads(line)


def _follow(lines: Iterator[dict[str, Any]]) -> int:
    """Show a rerun's progress (a bar on stderr) and print its final record; 1 if it did not finish."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    first = next(lines)
    last, error = first, None
    print(f"{first['kind']} {first['id']}: {first['matched']} to send", file=sys.stderr)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, console=_stderr_console()) as progress:
        task = progress.add_task(first["id"], total=first["matched"], completed=first["published"])
        for line in lines:
            if "error" in line:
                error = line["error"]
            elif "published" in line:
                progress.update(task, completed=line["published"])
            if "state" in line:
                last = line
    print(json.dumps(last))
    if error or last.get("state") != "done":
        print(f"refsys: {error or 'cut short'}; go on with --resume {first['id']}", file=sys.stderr)
        return 1
    return 0


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _show(response: Any) -> int:
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text, file=sys.stderr)
    return 0 if response.ok else 2
