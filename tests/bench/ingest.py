"""Ingestion throughput and latency on the embedded platform, against the raw floor: a bare boto3 loop
doing the same object operations (upload, read the manifest, list, checksum reads, copy, verify,
delete, read the manifest again to catalog) on the same SeaweedFS, one product after another."""

from __future__ import annotations

import hashlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from shared.ingestion.upload import product_files, upload_product
from shared.platform.embedded import EmbeddedPlatform
from shared.products import write_product
from shared.storage.objects import ObjectStore

START = datetime(2024, 5, 1, tzinfo=UTC)


def make_products(directory: Path, count: int) -> list[Path]:
    return [
        write_product(directory, "IW_GRDH_1S", START + timedelta(minutes=i), seed=i, payload_size=1024)
        for i in range(count)
    ]


def floor(store: ObjectStore, products: list[Path]) -> float:
    """Seconds for the bare object operations of ingesting and cataloging every product, in a plain loop."""
    store.ensure_bucket("bench-inbox")
    store.ensure_bucket("bench-target")
    started = time.perf_counter()
    for product in products:
        keys = upload_product(store, "bench-inbox", product)
        manifest_key = f"{product.name}/manifest.safe"
        store.read("bench-inbox", manifest_key)
        listed = store.list("bench-inbox", product.name + "/")
        for obj in listed:
            if obj.key != manifest_key:
                hashlib.md5(store.read("bench-inbox", obj.key) or b"", usedforsecurity=False)
                store.copy("bench-inbox", obj.key, "bench-target", obj.key)
                store.head("bench-target", obj.key)
                store.delete("bench-inbox", obj.key)
        store.copy("bench-inbox", manifest_key, "bench-target", manifest_key)
        store.delete("bench-inbox", manifest_key)
        store.read("bench-target", manifest_key)
        assert len(keys) == len(listed)
    return time.perf_counter() - started


def pipeline(platform: EmbeddedPlatform, products: list[Path], timeout: float) -> tuple[float, list[float]]:
    """Seconds from the first upload until every product is cataloged, and each product's latency."""
    store, inbox = platform.object_store(), platform.settings.inbox_bucket
    uploaded: dict[str, float] = {}

    def upload(product: Path) -> None:
        upload_product(store, inbox, product)
        uploaded[product.name] = time.time()

    started = time.time()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(upload, products))
    catalog = str(platform.endpoints()["catalog"])
    cataloged: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(cataloged) < len(products) and time.monotonic() < deadline:
        offset = 0
        while page := _page(catalog, offset):
            for entry in page:
                published = datetime.fromisoformat(entry["publicationTime"].replace("Z", "+00:00"))
                cataloged[entry["name"]] = published.timestamp()
            offset += len(page)
        time.sleep(0.5)
    if len(cataloged) < len(products):
        raise RuntimeError(f"only {len(cataloged)} of {len(products)} products cataloged in {timeout:.0f} s")
    latencies = [cataloged[name] - uploaded[name] for name in uploaded]
    return max(cataloged.values()) - started, latencies


def _page(catalog: str, offset: int) -> list[dict[str, str]]:
    response = requests.get(catalog, params={"limit": 1000, "offset": offset}, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"catalog answered {response.status_code}: {response.text[:300]}")
    products: list[dict[str, str]] = response.json()["products"]
    return products


def paced_latency(platform: EmbeddedPlatform, products: list[Path]) -> list[float]:
    """Upload -> cataloged for products sent one at a time into an idle pipeline (no queueing)."""
    store, inbox = platform.object_store(), platform.settings.inbox_bucket
    catalog = str(platform.endpoints()["catalog"])
    latencies = []
    for product in products:
        upload_product(store, inbox, product)
        uploaded = time.perf_counter()
        while not requests.get(catalog, params={"name": product.name}, timeout=30).json()["products"]:
            time.sleep(0.01)
        latencies.append(time.perf_counter() - uploaded)
    return latencies


def run(workdir: Path, count: int = 1000, paced: int = 20) -> list[tuple[str, float, float]]:
    products = make_products(workdir / "products", count + paced)
    products, one_by_one = products[:count], products[count:]
    objects = sum(1 for p in products for _ in product_files(p))
    platform = EmbeddedPlatform(workdir / "platform")
    platform.start()
    try:
        bare = floor(platform.object_store(), products)
        total, latencies = pipeline(platform, products, timeout=max(600.0, count * 2.0))
        idle = sorted(paced_latency(platform, one_by_one))
    finally:
        platform.stop(storage_timeout=5.0)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return [
        (f"bare boto3 loop, {count} products / {objects} objects (products/s, floor)", count / bare, 1.0),
        ("pipeline: upload -> notify -> ingest -> catalog (products/s)", count / total, bare / total),
        ("flood latency upload -> cataloged, p50 (s; queueing included)", p50, 0.0),
        ("flood latency upload -> cataloged, p99 (s; queueing included)", p99, 0.0),
        (f"one product at a time, {paced} products: latency p50 (s)", statistics.median(idle), 0.0),
        (f"one product at a time, {paced} products: latency max (s)", idle[-1], 0.0),
    ]
