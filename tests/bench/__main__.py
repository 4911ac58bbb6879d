"""``make bench``: every benchmark, each against its own baseline measured in the same run."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.bench import broker, catalog, cold_start, ingest, selection

Rows = list[tuple[str, float, float]]


def show(console: Console, title: str, unit: str, measure: Callable[[], Rows]) -> None:
    with console.status(f"{title}..."):
        rows = measure()
    table = Table(title=title)
    table.add_column("measure")
    table.add_column(unit, justify="right")
    table.add_column("ratio to baseline", justify="right")
    for name, value, ratio in rows:
        table.add_row(name, f"{value:.4g}", f"{ratio:.2f}" if ratio else "")
    console.print(table)


def in_tmp(run: Callable[[Path], Rows]) -> Callable[[], Rows]:
    def measure() -> Rows:
        with tempfile.TemporaryDirectory() as workdir:
            return run(Path(workdir))

    return measure


def main() -> None:
    console = Console()
    products = int(os.environ.get("REFSYS_BENCH_PRODUCTS", "1000"))
    show(console, "Cold start: process start to first answered request (median of 5)", "seconds", cold_start.run)
    show(console, "Local broker: 500 events, one Trigger, a subscriber answering 202", "events/s", in_tmp(broker.run))
    show(console, "Selection policies over 100,000 auxiliary entries", "seconds", selection.run_all)
    show(console, "Catalog OData queries against hand-written SQL", "value", catalog.run)
    show(
        console,
        f"Ingestion of {products} products on the embedded platform",
        "value",
        in_tmp(lambda workdir: ingest.run(workdir, products)),
    )


if __name__ == "__main__":
    main()
