"""``make bench``: every benchmark, each against its own baseline measured in the same run.

``python -m tests.bench [NAME...]`` runs only the benchmarks named (cold_start, broker, selection, catalog,
ingest, transfer, chains, subscriptions); without names, all of them.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.bench import broker, catalog, chains, cold_start, ingest, selection, subscriptions, transfer

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


# name: (title, unit, measure), in the order `make bench` runs them
BENCHMARKS: dict[str, tuple[str, str, Callable[[], Rows]]] = {
    "cold_start": ("Cold start: spawn to first real answer (median of 5)", "seconds", cold_start.run),
    "broker": ("Local broker: 500 events, one Trigger, a subscriber answering 202", "events/s", in_tmp(broker.run)),
    "selection": ("Selection policies over 100,000 auxiliary entries", "seconds", selection.run_all),
    "catalog": ("Catalog OData queries over HTTP against hand-written SQL; clients; memory", "value", catalog.run),
    "ingest": ("Ingestion of real product shapes on the embedded platform", "value", in_tmp(ingest.run)),
    "transfer": ("Execution wrapper's download + upload against boto3's own", "value", in_tmp(transfer.run)),
    "chains": ("Processing chains from upload to final products, by step", "value", in_tmp(chains.run)),
    "subscriptions": ("Subscription matching per cataloged product vs none", "value", subscriptions.run),
}


def main(names: list[str] | None = None) -> None:
    names = names or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    console = Console()
    for name in names:
        show(console, *BENCHMARKS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
