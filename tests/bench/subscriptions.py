"""Matching cost per catalog event against 1,000 subscriptions, each with a filter of its own.

``python -m tests.bench.subscriptions [N]``: N subscriptions (default 1000) on a SQLite catalog database, filters
mixing collection, productType attribute, time, name and Intersects (as CDSE's examples do); each event reads
the subscriptions, evaluates every filter on the entry and queues the matches. The baseline is the same
events against no subscription (the catalog read and the queries' fixed cost).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from shared.catalog import open_catalog
from shared.catalog.announce import cataloged
from shared.subscriptions.matching import Occurrence, matching
from shared.subscriptions.model import Event, parse_create
from shared.subscriptions.service import SubscriptionService
from shared.subscriptions.store import SubscriptionStore
from tests.unit.test_subscriptions import T0, entry

EVENTS = 200


def filters(count: int, rng: random.Random) -> list[str]:
    made = []
    for i in range(count):
        west, south = rng.uniform(-170, 150), rng.uniform(-60, 50)
        box = f"{west} {south},{west + 20} {south},{west + 20} {south + 20},{west} {south + 20},{west} {south}"
        made.append(rng.choice([
            f"Collection/Name eq 'SENTINEL-1' and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq "
            f"'productType' and att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S') and OData.CSC.Intersects("
            f"area=geography'SRID=4326;POLYGON(({box}))')",
            f"Collection/Name eq 'SENTINEL-2' and ContentDate/Start gt {(T0 - timedelta(days=i)).isoformat()}",
            f"contains(Name,'_{i:04d}') or Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq "
            f"'orbitNumber' and att/OData.CSC.IntegerAttribute/Value eq {i})",
        ]))  # fmt: skip
    return made


def per_event_ms(service: SubscriptionService, events: int) -> tuple[float, float]:
    """Median ms per event: the whole handling, and the evaluation of the filters alone."""
    catalog = service.catalog()
    timings, evaluations = [], []
    for i in range(events):
        mission = ("S1", "S2", "S3")[i % 3]  # a mixed stream, as the catalog gets
        attributes = {"productType": "IW_GRDH_1S", "orbitNumber": i}
        product = entry(f"{mission}A_IW_GRDH_1SDV_{i:04d}.SAFE", attributes=attributes)
        catalog.upsert(product)
        subscriptions = service.store.live()
        started = time.perf_counter()
        matching(Occurrence(product, Event.CREATED, ""), subscriptions)
        evaluations.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        service.on_event(cataloged(product))
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), statistics.median(evaluations)


def run(count: int = 1000) -> list[tuple[str, float, float]]:
    """Milliseconds per event (median) without subscriptions and with ``count``, the second as a ratio."""
    rng = random.Random(18)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as workdir:
        for label, n in (("no subscription", 0), (f"{count} subscriptions", count)):
            url = f"sqlite:///{Path(workdir) / f'{n}.db'}"
            catalog = open_catalog(url)
            store = SubscriptionStore(url)
            for text in filters(n, rng):
                store.create(parse_create({"FilterParam": text}), "")
            service = SubscriptionService(store, lambda catalog=catalog: catalog)  # type: ignore[misc]
            whole, evaluation = per_event_ms(service, EVENTS)
            queued = sum(store.queue_lengths(s.id for s in store.list_for(None, 100_000, 0)).values())
            catalog.close()
            base = rows[0][1] if rows else 0.0
            rows.append((f"{label}: ms per event", whole, whole / base if base else 0.0))
            if n:
                rows.append((f"{label}: ms evaluating filters", evaluation, 0.0))
                rows.append((f"{label}: notifications queued per event", queued / EVENTS, 0.0))
    return rows


if __name__ == "__main__":
    for name, value, ratio in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000):
        print(f"{name}: {value:.3g}" + (f" ({ratio:.1f}x the baseline)" if ratio else ""))
