"""Selection policies over 100,000 auxiliary entries, in memory and as catalog queries, against a plain scan.

The baseline is the least any policy must do: one pass over the entries testing intersection with
the window. The ratio says what each policy costs on top of that scan (sorting, grouping, picking).
The query form runs against a SQLite catalog of the same entries (plus 100,000 of another type, so the
type filter matters); set ``REFSYS_BENCH_POSTGRES_URL`` to an empty PostgreSQL+PostGIS database to
measure it there too. Target: at most 50 ms per selection.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.catalog import CatalogEntry, open_catalog
from shared.processing.policies import POLICIES, Candidate, select
from shared.processing.queries import CatalogSelection
from tests.integration.test_processing_queries import entry

ENTRIES = 100_000
REPEATS = 5
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def auxiliary_entries(count: int = ENTRIES, seed: int = 5) -> list[Candidate]:
    """Orbit-like files: one every 10 minutes, valid ~100 minutes, some reprocessed (same validity, newer)."""
    rng = random.Random(seed)
    entries = []
    for n in range(count):
        slot = n if rng.random() > 0.1 else max(0, n - 1)  # a tenth duplicate the previous validity
        start = EPOCH + timedelta(minutes=10 * slot)
        stop = start + timedelta(minutes=100 + rng.randint(0, 10))
        created = stop + timedelta(hours=rng.randint(1, 48))
        entries.append(Candidate(f"S1A_OPER_AUX_RESORB_{n:06d}", start, stop, created, "AUX_RES"))
    rng.shuffle(entries)  # catalog order is not time order
    return entries


def _median_seconds(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def run() -> list[tuple[str, float, float]]:
    """Rows of (what, median seconds per selection, ratio to the plain scan measured in this run)."""
    entries = auxiliary_entries()
    middle = EPOCH + timedelta(minutes=10 * ENTRIES // 2)
    start, stop = middle, middle + timedelta(minutes=3)

    def plain_scan() -> list[Candidate]:
        return [c for c in entries if c.validity_start < stop and c.validity_stop > start]

    baseline = _median_seconds(plain_scan)
    rows = [("plain scan (baseline)", baseline, 1.0)]
    for policy in POLICIES:

        def in_memory(policy: str = policy) -> list[Candidate]:
            return select(policy, entries, start, stop, 60.0, 60.0)

        seconds = _median_seconds(in_memory)
        rows.append((f"{policy} (in memory)", seconds, seconds / baseline))
    return rows


def _catalog_entries(entries: list[Candidate]) -> Iterator[CatalogEntry]:
    # The same entries, and as many of another type: the query must not pay for other types' rows.
    for c in [
        *entries,
        *(replace(c, name=c.name.replace("RESORB", "POEORB"), product_type="AUX_POE") for c in entries),
    ]:
        yield entry(c)  # the same aux entry the query/pure agreement test loads


def run_queries(url: str, label: str) -> list[tuple[str, float, float]]:
    """Rows of (what, median seconds per selection, ratio to the in-memory plain scan) for the query form."""
    entries = auxiliary_entries()
    store = open_catalog(url)
    try:
        store.upsert_many(_catalog_entries(entries))
    finally:
        store.close()
    middle = EPOCH + timedelta(minutes=10 * ENTRIES // 2)
    start, stop = middle, middle + timedelta(minutes=3)
    baseline = _median_seconds(lambda: [c for c in entries if c.validity_start < stop and c.validity_stop > start])
    selection = CatalogSelection(url)
    rows = []
    try:
        for policy in POLICIES:
            selection.select(policy, "AUX_RES", start, stop, 60.0, 60.0)  # warm: connection, page cache

            def query(policy: str = policy) -> list[Candidate]:
                return selection.select(policy, "AUX_RES", start, stop, 60.0, 60.0)

            seconds = _median_seconds(query)
            rows.append((f"{policy} ({label} query)", seconds, seconds / baseline))
        # The preparation step passes the unit: "this satellite or mission-wide" is one more condition.
        for policy in ("ValIntersect", "LatestValCover", "ClosestStopValidity"):

            def by_unit(policy: str = policy) -> list[Candidate]:
                return selection.select(policy, "AUX_RES", start, stop, 60.0, 60.0, satellite="A")

            by_unit()
            seconds = _median_seconds(by_unit)
            rows.append((f"{policy} satellite=A ({label} query)", seconds, seconds / baseline))
    finally:
        selection.close()
    return rows


def run_all() -> list[tuple[str, float, float]]:
    rows = run()
    with tempfile.TemporaryDirectory() as workdir:
        rows += run_queries(f"sqlite:///{Path(workdir) / 'catalog.db'}", "SQLite")
    postgres = os.environ.get("REFSYS_BENCH_POSTGRES_URL")
    if postgres:
        rows += run_queries(postgres, "PostGIS")
    return rows


if __name__ == "__main__":
    for name, seconds, ratio in run_all():
        print(f"{name:45s} {seconds * 1000:8.2f} ms  x{ratio:5.2f}")
