"""``make bench``: every benchmark, each against its own baseline measured in the same run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.bench import broker, cold_start, ingest


def main() -> None:
    console = Console()
    with console.status("cold start of each function..."):
        starts = cold_start.run()
    table = Table(title="Cold start: process start to first answered request (median of 5)")
    table.add_column("process")
    table.add_column("seconds", justify="right")
    table.add_column("ratio to baseline", justify="right")
    for name, seconds, ratio in starts:
        table.add_row(name, f"{seconds:.3f}", f"{ratio:.1f}")
    console.print(table)

    with console.status("local broker throughput..."), tempfile.TemporaryDirectory() as workdir:
        rates = broker.run(Path(workdir))
    table = Table(title="Local broker: 500 events, one Trigger, a subscriber answering 202")
    table.add_column("path")
    table.add_column("events/s", justify="right")
    table.add_column("ratio to baseline", justify="right")
    for name, rate, ratio in rates:
        table.add_row(name, f"{rate:.0f}", f"{ratio:.2f}")
    console.print(table)

    count = int(os.environ.get("REFSYS_BENCH_PRODUCTS", "1000"))
    with console.status(f"ingesting {count} products..."), tempfile.TemporaryDirectory() as workdir:
        rows = ingest.run(Path(workdir), count)
    table = Table(title="Ingestion on the embedded platform (SeaweedFS, local broker, functions)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("ratio to floor", justify="right")
    for name, value, ratio in rows:
        table.add_row(name, f"{value:.2f}", f"{ratio:.2f}" if ratio else "")
    console.print(table)


if __name__ == "__main__":
    main()
