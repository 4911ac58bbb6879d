"""Faults with real processes during a 50-product flood: kill -9 of a function server, of SeaweedFS, of the
whole platform. Each ends with every product cataloged once and nothing dead-lettered, with no operator action:
the supervisor restarts what died, the broker's retries outlast the restart, and the broker's durable queue and
the inbox scan carry the work across a platform crash."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError

from shared.bus.queue import State
from shared.ingestion.upload import upload_product
from shared.operations.deadletters import DeadLetters
from shared.platform.client import RunningPlatform
from shared.platform.embedded import EmbeddedPlatform
from shared.products import write_product
from shared.settings import Settings
from shared.storage.objects import ObjectStore
from tests.e2e.test_platform import START, wait_for
from tests.e2e.test_up import Process, alive, descendants

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]

FLOOD = 50
# 12 to 28 objects each (about 900 in all), as real S1 and S2 products come; none that a task table consumes,
# so that the flood exercises ingestion and cataloging only.
TYPES = ("IW_SLC__1S", "IW_GRDH_1S", "S2MSI1C", "EW_GRDM_1S")
# The end of the work: the inbox scan ticks every minute, and picks up what a killed SeaweedFS never notified.
SETTLE_S = 150.0


def flood(directory: Path, day: int) -> list[Path]:
    """50 distinct products (their own sensing day per test, so no two tests share a name)."""
    start = START + timedelta(days=day)
    return [
        write_product(directory, TYPES[i % len(TYPES)], start + timedelta(minutes=i), seed=1000 * day + i)
        for i in range(FLOOD)
    ]


class Uploader:
    """Uploads the products with 4 threads, as a station would: an upload that fails is tried again."""

    def __init__(self, store: Callable[[], ObjectStore], bucket: str, products: list[Path]) -> None:
        self._store, self._bucket = store, bucket
        self._todo = list(products)
        self._lock = threading.Lock()
        self.failures = 0
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(4)]

    def start(self) -> Uploader:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float = SETTLE_S) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self._threads), "the uploads did not finish"

    def _work(self) -> None:
        store = self._store()
        deadline = time.monotonic() + SETTLE_S
        while True:
            with self._lock:
                if not self._todo:
                    return
                product = self._todo.pop(0)
            while True:
                try:
                    upload_product(store, self._bucket, product)
                    break
                except (BotoCoreError, ClientError, OSError):
                    self.failures += 1
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
                    store = self._store()


def catalog_names(catalog_url: str) -> list[str]:
    """Every name in the catalog, page after page (a catalog of another process: no EmbeddedPlatform here)."""
    names: list[str] = []
    while True:
        answer = requests.get(catalog_url, params={"limit": 1000, "offset": len(names)}, timeout=30)
        assert answer.status_code == 200, answer.text
        page = [entry["name"] for entry in answer.json()["products"]]
        if not page:
            return names
        names += page


def all_cataloged_once(catalog: Callable[[], list[str]], products: list[Path]) -> None:
    names = {product.name for product in products}
    found: list[str] = []

    def complete() -> bool:
        found[:] = catalog()
        return names <= set(found)

    wait_for(complete, "every product in the catalog", SETTLE_S)
    twice = sorted(name for name, count in Counter(found).items() if count > 1)
    assert twice == [], "cataloged twice"


def nothing_dead_lettered(store: ObjectStore, settings: Settings, stats: dict[str, int]) -> None:
    assert stats["dead-lettered"] == 0 and stats["dead"] == 0, stats
    assert DeadLetters(store, settings.deadletter_bucket).pending() == []
    assert store.list(settings.inbox_bucket) == [], "products left in the inbox"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[EmbeddedPlatform]:
    """A platform of its own: a fault must not reach another test."""
    running = EmbeddedPlatform(tmp_path / "platform")
    running.start()
    yield running
    running.stop(storage_timeout=3.0)


def kill_during_flood(platform: EmbeddedPlatform, products: list[Path], kill: Callable[[], None]) -> Uploader:
    uploads = Uploader(platform.object_store, platform.settings.inbox_bucket, products).start()
    # In the thick of it: products uploading, being ingested and cataloged.
    wait_for(lambda: len(catalog_names(str(platform.endpoints()["catalog"]))) >= 5, "the first products cataloged")
    kill()
    return uploads


def settled_cleanly(platform: EmbeddedPlatform, products: list[Path], uploads: Uploader) -> None:
    uploads.join()
    all_cataloged_once(lambda: catalog_names(str(platform.endpoints()["catalog"])), products)

    def broker_idle() -> bool:
        stats = platform.broker.stats()
        return stats["pending"] == 0 and stats["in-flight"] == 0

    wait_for(broker_idle, "the broker to settle", SETTLE_S)
    nothing_dead_lettered(platform.object_store(), platform.settings, platform.broker.stats())


def test_a_function_server_killed_during_a_flood_is_restarted_and_the_work_resumes(
    platform: EmbeddedPlatform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    products = flood(tmp_path / "products", day=1)
    ingest = platform.functions["ingest"]
    killed = ingest.process
    assert killed is not None

    def kill() -> None:
        os.killpg(killed.pid, signal.SIGKILL)  # gunicorn master and workers

    uploads = kill_during_flood(platform, products, kill)
    wait_for(lambda: ingest.process is not killed, "ingest restarted")
    settled_cleanly(platform, products, uploads)
    ingest_deliveries = [d for d in platform.broker.deliveries() if d["trigger"] == "ingest-inbox-objects"]
    assert any(d["attempts"] > 1 for d in ingest_deliveries)  # some did meet the outage, and were retried
    (line,) = [r.getMessage() for r in caplog.records if "function server ingest" in r.getMessage()]
    assert "killed by SIGKILL" in line and str(platform.data_dir / "logs" / "ingest.log") in line
    assert ingest.url == platform.endpoints()["functions"]["ingest"]  # type: ignore[index]


def test_seaweedfs_killed_during_a_flood_is_restarted_and_the_work_resumes(
    platform: EmbeddedPlatform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    products = flood(tmp_path / "products", day=2)
    killed = platform.seaweed.pid
    assert killed is not None

    uploads = kill_during_flood(platform, products, lambda: os.killpg(killed, signal.SIGKILL))
    wait_for(lambda: platform.seaweed.pid != killed, "SeaweedFS restarted")
    settled_cleanly(platform, products, uploads)
    assert uploads.failures > 0  # the uploads did meet the outage
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("SeaweedFS (S3 port")]
    assert "killed by SIGKILL" in line


def start_up(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], set[Process]]:
    """`refsys up` in a subprocess, its stderr to a file: a flood logs more than a pipe holds (test_up's
    start_up reads its pipe only at the end)."""
    endpoints = data_dir / "endpoints.json"
    before = endpoints.stat().st_mtime_ns if endpoints.exists() else None
    with log.open("ab") as stderr:
        up = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "up", "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )

    def written() -> bool:
        return endpoints.exists() and endpoints.stat().st_mtime_ns != before

    wait_for(lambda: written() or up.poll() is not None, "endpoints.json", 120)
    assert up.poll() is None, log.read_text()
    return up, descendants(up.pid)


def ports_of(data_dir: Path) -> list[int]:
    endpoints = json.loads((data_dir / "endpoints.json").read_text())
    urls = [endpoints["s3"], endpoints["broker"], *endpoints["functions"].values()]
    return [int(url.split(":")[2].split("/")[0]) for url in urls]


def free(port: int) -> bool:
    """Nothing listens on it (SO_REUSEADDR: connections of the dead servers in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def broker_stats(data_dir: Path) -> dict[str, int]:
    """Deliveries per state, read from the queue of a broker that runs in another process (read-only)."""
    with sqlite3.connect(f"file:{data_dir / 'broker.db'}?mode=ro", uri=True) as db:
        counts = dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
    return {state.value: int(counts.get(state.value, 0)) for state in State}


def test_the_whole_platform_killed_during_a_flood_recovers_at_its_next_start(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "up.log"
    products = flood(tmp_path / "products", day=3)
    up, children = start_up(data_dir, log)
    first = up.pid
    try:
        running = RunningPlatform.find(data_dir)
        ports = ports_of(data_dir)
        # Uploaded whole before the kill: the next platform has another S3 port, which a station would be told.
        Uploader(running.object_store, running.settings.inbox_bucket, products).start().join()
        wait_for(lambda: len(catalog_names(running.endpoints["catalog"])) >= 5, "the first products cataloged")
        up.kill()
        up.wait()
        wait_for(lambda: not alive(children), "every process of the platform to die with it", 15)
        assert all(free(port) for port in ports)
    finally:
        if up.poll() is None:
            up.kill()
    assert broker_stats(data_dir)["pending"] + broker_stats(data_dir)["in-flight"] > 0, "killed too late"

    up, children = start_up(data_dir, log)
    try:
        running = RunningPlatform.find(data_dir)
        all_cataloged_once(lambda: catalog_names(running.endpoints["catalog"]), products)
        idle = wait_for(
            lambda: (stats := broker_stats(data_dir))["pending"] + stats["in-flight"] == 0 and stats,
            "the broker to settle",
            SETTLE_S,
        )
        nothing_dead_lettered(running.object_store(), running.settings, idle)  # type: ignore[arg-type]
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
        wait_for(lambda: not alive(children), "no process of the platform left", 15)
    finally:
        if up.poll() is None:
            up.kill()
    recovered = [line for line in log.read_text().splitlines() if "recovered data directory" in line]
    assert len(recovered) == 1, recovered
    assert f"left by a platform that died (pid {first})" in recovered[0]
    assert "endpoints.json" in recovered[0]
