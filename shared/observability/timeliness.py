"""``refsys timeliness``: how long products take, per product type, from the times the catalog keeps.

Stages (seconds, as percentiles over the products cataloged since a time):

- ``sensing_to_inbox``: from the end of sensing (validity stop) to the product's arrival in the inbox;
- ``inbox_to_catalog``: from its arrival to its publication in the catalog;
- ``catalog_to_output``: for a product made by processing, from the publication of its last input to its own.

The same delays are metrics of the catalog function (``refsys_timeliness_seconds``) as products are cataloged;
this command reads them after the fact, from any catalog, the reference's timeliness KPIs beside them in mind
(e.g. 3 h for S3 NRT products, ``production-common.md`` §3.6).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the catalog is imported by the command itself: `refsys` starts fast whatever it runs
    from shared.catalog.model import CatalogEntry
    from shared.catalog.store import CatalogStore

STAGES = ("sensing_to_inbox", "inbox_to_catalog", "catalog_to_output")
PERCENTILES = (50, 90, 99)
_PAGE = 1000

Delays = dict[str, dict[str, list[float]]]  # product type -> stage -> seconds


def register(commands: argparse._SubParsersAction, add_data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser("timeliness", help="delays per product type: sensing, inbox, catalog, outputs")
    parser.add_argument("--since", type=_time, help="products published since (ISO 8601; default: all)")
    parser.add_argument("--png", type=Path, help="also draw the percentiles into this PNG file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--catalog-url", help="catalog database (default: the platform's in --data-dir)")
    add_data_dir(parser)
    parser.set_defaults(command=command)


def command(args: argparse.Namespace) -> int:
    from shared.catalog.store import open_catalog
    from shared.processing.lineage import LineageStore

    url = args.catalog_url or f"sqlite:///{args.data_dir / 'catalog.db'}"
    catalog = open_catalog(url)
    try:
        report = summarise(delays(catalog, LineageStore(url).inputs_of_all(), args.since))
    finally:
        catalog.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    if args.png:
        draw(report, args.png)
    return 0


def delays(catalog: CatalogStore, inputs: dict[str, list[str]], since: datetime | None = None) -> Delays:
    """Every stage's delays of the products published since ``since``, per product type."""
    published = {entry.name: entry for entry in _entries(catalog, since)}
    found: Delays = {}

    def add(entry: CatalogEntry, stage: str, start: datetime | None, end: datetime | None) -> None:
        if start is not None and end is not None:
            stages = found.setdefault(entry.product_type, {s: [] for s in STAGES})
            stages[stage].append(max((end - start).total_seconds(), 0.0))

    for entry in published.values():
        add(entry, "sensing_to_inbox", entry.validity_stop, entry.inbox_time)
        add(entry, "inbox_to_catalog", entry.inbox_time, entry.publication_time)
        sources = [published.get(name) or catalog.get_by_name(name) for name in inputs.get(entry.name, ())]
        if sources and all(sources):
            add(entry, "catalog_to_output", max(s.publication_time for s in sources if s), entry.publication_time)
    return found


def summarise(found: Delays) -> dict[str, dict[str, dict[str, float]]]:
    """Per product type and stage: count, the percentiles (nearest rank) and the maximum, in seconds."""
    report: dict[str, dict[str, dict[str, float]]] = {}
    for product_type in sorted(found):
        for stage, values in found[product_type].items():
            if values:
                ordered = sorted(values)
                figures = {f"p{p}": ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)] for p in PERCENTILES}
                report.setdefault(product_type, {})[stage] = {"count": len(ordered), **figures, "max": ordered[-1]}
    return report


def draw(report: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    """A bar chart of each stage's median, with the 90th percentile as a whisker, per product type."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    types = list(report)
    figure, axes = plt.subplots(figsize=(max(6.0, 0.9 * len(types) + 2), 4.5))
    width = 0.8 / len(STAGES)
    for i, stage in enumerate(STAGES):
        positions = [t + (i - 1) * width for t in range(len(types))]
        medians = [report[t].get(stage, {}).get("p50", 0.0) / 60 for t in types]
        spreads = [(report[t].get(stage, {}).get("p90", 0.0) / 60) - m for t, m in zip(types, medians, strict=True)]
        axes.bar(positions, medians, width, yerr=[[0] * len(types), spreads], label=stage.replace("_", " "))
    axes.set_xticks(range(len(types)), types, rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("minutes (median; whisker: 90th percentile)")
    axes.set_title("refsys timeliness per product type")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _entries(catalog: CatalogStore, since: datetime | None) -> Iterator[CatalogEntry]:
    from shared.catalog.filters import Compare, Prop, Selection, SortKey

    where = Compare(Prop.PUBLICATION, "ge", since) if since is not None else None
    order = (SortKey(Prop.PUBLICATION), SortKey(Prop.NAME))
    after: tuple[Any, ...] | None = None
    while page := catalog.find(Selection(where=where, order=order, limit=_PAGE, after=after)):
        yield from page
        after = (page[-1].publication_time, page[-1].name)


def _print_table(report: dict[str, dict[str, dict[str, float]]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Timeliness (minutes)")
    for column in ("product type", "stage", "count", *(f"p{p}" for p in PERCENTILES), "max"):
        table.add_column(column, justify="left" if column in ("product type", "stage") else "right")
    for product_type, stages in report.items():
        for stage, figures in stages.items():
            minutes = [f"{figures[k] / 60:.1f}" for k in (*(f"p{p}" for p in PERCENTILES), "max")]
            table.add_row(product_type, stage, str(int(figures["count"])), *minutes)
    Console().print(table)


def _time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
