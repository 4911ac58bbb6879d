"""Operator commands of ingestion: upload, status, quarantine. They talk to a running platform."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from shared.platform.client import PlatformNotRunning, RunningPlatform


def register(commands: argparse._SubParsersAction, add_data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    upload = commands.add_parser("upload", help="put local products (directories, zips, files) into the inbox")
    upload.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    upload.set_defaults(command=_upload)
    status = commands.add_parser("status", help="say where a product is: inbox, catalog or quarantine")
    status.add_argument("name")
    status.set_defaults(command=_status)
    quarantine = commands.add_parser("quarantine", help="list quarantined deliveries, or release one to ingestion")
    # Real subcommands, not an `action` positional: `release --data-dir D NAME` parses.
    actions = quarantine.add_subparsers(required=True, metavar="ACTION", dest="action")
    listing = actions.add_parser("list", help="list the quarantined deliveries (JSON lines)")
    release = actions.add_parser("release", help="put a fixed delivery back through ingestion")
    release.add_argument("name", help="the product (or object) name")
    for parser in (upload, status, quarantine, listing, release):
        add_data_dir(parser)
    for parser in (listing, release):
        parser.set_defaults(command=_quarantine)


def _platform(args: argparse.Namespace) -> RunningPlatform | None:
    try:
        return RunningPlatform.find(args.data_dir)
    except PlatformNotRunning as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return None


def _upload(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from shared.ingestion.upload import product_files, upload_product

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"refsys: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    platform = _platform(args)
    if platform is None:
        return 2
    store, inbox = platform.object_store(), platform.settings.inbox_bucket
    total = sum(file.stat().st_size for path in args.paths for file, _ in product_files(path))
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("uploading", total=total)
        for path in args.paths:
            progress.update(task, description=path.name[:40])
            keys = upload_product(store, inbox, path, on_bytes=lambda n: progress.advance(task, n))
            progress.console.print(f"{path.name}: {len(keys)} object(s) into {inbox}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from shared.catalog.database import CatalogDatabase
    from shared.ingestion.ledger import InboxLedger
    from shared.ingestion.status import ProductLocator

    platform = _platform(args)
    if platform is None:
        return 2

    def find_cataloged(name: str) -> dict[str, Any] | None:
        answer = requests.get(str(platform.endpoints["catalog"]), params={"name": name}, timeout=10).json()
        products: list[dict[str, Any]] = answer.get("products") or []
        return products[0] if products else None

    ledger = InboxLedger(CatalogDatabase(f"sqlite:///{platform.data_dir / 'catalog.db'}"))
    whereabouts = ProductLocator(platform.object_store(), platform.settings, ledger, find_cataloged).locate(args.name)
    print(whereabouts.message)
    return 0 if whereabouts.known else 1


def _quarantine(args: argparse.Namespace) -> int:
    import json

    from shared.ingestion.quarantine import Quarantine

    platform = _platform(args)
    if platform is None:
        return 2
    quarantine = Quarantine(platform.object_store(), platform.settings)
    if args.action == "list":
        for entry in quarantine.list():
            print(json.dumps({"name": entry.name, "reason": entry.reason, "detail": entry.detail, "time": entry.time}))
        return 0
    try:
        entry = quarantine.release(args.name)
    except LookupError as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 1
    print(f"released {entry.name}: {len(entry.objects)} object(s) back into {platform.settings.inbox_bucket}")
    return 0
