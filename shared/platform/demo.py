"""``refsys demo`` (and ``make run``): synthetic Sentinel products go from an upload into the inbox to an
answer from the catalog's HTTP API, followed on screen."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.ingestion.upload import product_files, upload_product
from shared.platform.embedded import EmbeddedPlatform, interrupt_on_sigterm, wait_until_interrupted
from shared.products import write_product

# One product of each kind the factory makes, across satellite units.
DEMO_PRODUCTS: tuple[tuple[str, str], ...] = (
    ("IW_GRDH_1S", "A"),
    ("IW_SLC__1S", "B"),
    ("IW_RAW__0S", "C"),
    ("OL_1_EFR___", "A"),
    ("S2MSI1C", "B"),
)


def run_demo(data_dir: Path, *, exit_when_done: bool, timeout: float = 120.0, console: Console | None = None) -> int:
    console = console or Console()

    def show(platform: EmbeddedPlatform, endpoints: dict[str, object]) -> bool:
        with tempfile.TemporaryDirectory(prefix="refsys-demo-") as workdir:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
            products = [
                write_product(Path(workdir), product_type, start + timedelta(minutes=i), satellite=unit, seed=i)
                for i, (product_type, unit) in enumerate(DEMO_PRODUCTS)
            ]
            cataloged = _upload_and_follow(platform, products, str(endpoints["catalog"]), timeout, console)
        _summary(console, endpoints, cataloged, [p.name for p in products], data_dir)
        return len(cataloged) == len(products)

    return _on_a_platform(data_dir, console, show, exit_when_done)


def run_chain_demo(data_dir: Path, chain: str, *, exit_when_done: bool, timeout: float = 300.0) -> int:
    """Start a platform, run one processing chain from its uploads, show its final products and their lineage.

    Exit 0 only when the final level is cataloged with a lineage that reaches the uploads.
    """
    from shared.platform.client import RunningPlatform
    from shared.processing.chains import ChainTimeout, run_chain
    from shared.processing.lineage import LineageStore

    console = Console()

    def show(platform: EmbeddedPlatform, endpoints: dict[str, object]) -> bool:
        with console.status(f"chain {chain}: uploading, ingesting, processing..."):
            try:
                finals = run_chain(RunningPlatform.find(data_dir), chain, wait=True, timeout=timeout)
            except ChainTimeout as exc:
                console.print(f"[red]{exc}[/]")
                return False
        lineage = LineageStore(platform.settings.catalog_url)
        table = Table(title=f"chain {chain}: {len(finals)} final products")
        for column in ("product", "made by", "from"):
            table.add_column(column)
        for name in finals:
            made = lineage.produced(name) or {}
            table.add_row(name, f"{made.get('processor')} {made.get('version')}", str(len(made.get("inputs", []))))
        console.print(table)
        console.print(f"Lineage: refsys lineage {finals[0]} --data-dir {data_dir}")
        return True

    return _on_a_platform(data_dir, console, show, exit_when_done)


def _on_a_platform(
    data_dir: Path,
    console: Console,
    show: Callable[[EmbeddedPlatform, dict[str, object]], bool],
    exit_when_done: bool,
) -> int:
    """Start a platform on ``data_dir``, ``show`` something on it; then stop (exit 0 if it went well) or run on."""
    platform = EmbeddedPlatform(data_dir)
    platform.lock()  # raises PlatformAlreadyRunning before anything is shown or touched
    interrupt_on_sigterm()  # a SIGTERM while starting stops what was started, as Ctrl-C does
    with console.status("starting SeaweedFS, the broker and the functions..."):
        endpoints = platform.start()
    try:
        ok = show(platform, endpoints)
        if exit_when_done:
            return 0 if ok else 1
        console.print("[bold]Platform running.[/] Ctrl-C stops it.")
        wait_until_interrupted()
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        with console.status("stopping..."):
            platform.stop()


def _upload_and_follow(
    platform: EmbeddedPlatform, products: list[Path], catalog_url: str, timeout: float, console: Console
) -> dict[str, dict[str, object]]:
    store = platform.object_store()
    inbox = platform.settings.inbox_bucket
    total_bytes = sum(f.stat().st_size for p in products for f, _ in product_files(p))
    cataloged: dict[str, dict[str, object]] = {}
    columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        uploading = progress.add_task("uploaded", total=total_bytes)
        following = progress.add_task("cataloged", total=len(products))
        for product in products:
            upload_product(store, inbox, product, on_bytes=lambda n: progress.advance(uploading, n))
        deadline = time.monotonic() + timeout
        while len(cataloged) < len(products) and time.monotonic() < deadline:
            for product in products:
                if product.name not in cataloged:
                    answer = requests.get(catalog_url, params={"name": product.name}, timeout=5).json()
                    if answer["products"]:
                        cataloged[product.name] = answer["products"][0]
            progress.update(following, completed=len(cataloged))
            time.sleep(0.2)
    return cataloged


def _summary(
    console: Console, endpoints: dict[str, object], cataloged: dict[str, dict[str, object]], names: list[str],
    data_dir: Path,
) -> None:  # fmt: skip
    table = Table(title=f"{len(cataloged)} of {len(names)} products cataloged")
    for column in ("product", "type", "family bucket", "validity start"):
        table.add_column(column)
    for name in names:
        entry = cataloged.get(name)
        if entry is None:
            table.add_row(name, "[red]not cataloged[/]", "", "")
        else:
            table.add_row(name, str(entry["productType"]), str(entry["bucket"]), str(entry["validityStart"]))
    console.print(table)
    catalog = endpoints["catalog"]
    console.print(f"Catalog query:   curl '{catalog}?mission=S1'")
    console.print(f"One product:     curl '{catalog}?name={names[0]}'")
    console.print(f"OData (PRIP):    curl '{endpoints['odata']}/Products?$filter=startswith(Name,%27S1%27)&$top=5'")
    if "web" in endpoints:
        console.print(f"Map client:      {endpoints['web']}   (open it in a browser: docs/web.md)")
    console.print(f"S3 endpoint:     {endpoints['s3']}   (keys in {data_dir / 's3-credentials.json'})")
    console.print(f"Broker ingress:  {endpoints['broker']}")
    console.print(f"Logs:            {data_dir / 'logs'}")
