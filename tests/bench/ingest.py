"""Ingestion on real product shapes, against the object store's floor, on the embedded platform.

Products: every sample product of the team re-inflated whole that verifies against its own manifest, and the
single-file ones (1 to 243 objects; ``shared.products.reinflate``), plus real-shape S2 MSI L1C products (98
objects, SHA3-256) and S1 IW SLC products (34 objects, MD5) under new names: ``REFSYS_BENCH_S2`` and
``REFSYS_BENCH_S1`` of them (default 20 and 40). ``REFSYS_BENCH_PACED`` (default 20) products, another
mix, for the latency run.

1. Floor: a bare boto3 loop on the platform's SeaweedFS (notifications on, as the pipeline has them), 4
   threads over products, doing what a straightforward ingestion does to the store: upload every object
   (manifest last), list the product, read and digest every object (with the algorithms its manifest
   declares, MD5 when it declares none), copy it, head the copy, delete the original, read the manifest
   again (the catalog). The same loop runs later on a bare SeaweedFS (no notifications).
2. Pipeline: the same products uploaded into the inbox of a fresh platform by 4 threads; from the first
   upload to the last product in the catalog (its publication time); the CPU each process used. Then the
   broker's deliveries: retries (attempts > 1) and dead letters, none in a normal run.
3. Object-store requests: the ingest function's line per product it settles (``<name>: R object-store
   requests, B bytes read``, in ``logs/ingest.log``): requests per object, R / (5N + 10), bytes read per
   byte ingested.
4. Latency: on another fresh platform (so that the samples can come again), after one warm-up product,
   products uploaded one at a time: upload complete -> found by ``?name=`` (polled every 10 ms).
5. Webhook: 1,000 small PUTs (4 threads) against a bare SeaweedFS and against the platform's (filer
   webhook -> notify -> broker), alternated; how fast the notifications reach the broker, and the CPU
   each process spends per PUT.

Uploads, the floors and the polling of the latency run are made by a child process, as a station's
uploader would be: the platform's broker runs in this process, and boto3 threads here would compete with
it for the GIL (a PUT costs boto3 ~2 ms of CPU).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import requests

from shared.ingestion.upload import product_files, upload_product
from shared.platform.embedded import EmbeddedPlatform
from shared.platform.seaweed import SeaweedFS
from shared.products.integrity import LocalDirectory, hash_chunks, verify_product
from shared.products.manifest import ManifestError, read_inventory
from shared.products.naming import recognise
from shared.products.reinflate import reinflate_samples, write_real_shape
from shared.settings import Settings
from shared.storage.objects import ObjectStore, metered

Rows = list[tuple[str, float, float]]
Shape = Literal["S2_L1C", "S1_SLC"]
T = TypeVar("T")

START = datetime(2024, 5, 1, tzinfo=UTC)
THREADS = 4  # uploads in flight, for the pipeline and its floor alike
FLOOR_INBOX, FLOOR_TARGET, PUTS_BUCKET = "bench-floor-inbox", "bench-floor-target", "bench-puts"
PUTS = 1000
POLL_S = 0.5  # catalog polls during the flood (a product's time is its publication time, not the poll's)
STALL_S = 180.0  # the flood gives up when nothing more is cataloged for this long after the uploads
LATENCY_TIMEOUT_S = 60.0


# -- products -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    path: Path
    objects: int  # files, the manifest included
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def of(cls, path: Path) -> Product:
        files = [file for file, _ in product_files(path)]
        return cls(path, len(files), sum(file.stat().st_size for file in files))


def verified_samples(directory: Path) -> list[Path]:
    """Every sample re-inflated whole that verifies against its manifest, and the single-file ones."""
    return [p for p in reinflate_samples(directory) if p.is_file() or verify_product(LocalDirectory(p)).ok]


def real_shapes(directory: Path, s2: int, s1: int, start: datetime, seed: int = 0) -> list[Path]:
    """``s2`` S2 L1C and ``s1`` S1 IW SLC products, interleaved, a minute of sensing apart."""
    s2s: list[tuple[float, Shape]] = [((i + 0.5) / s2, "S2_L1C") for i in range(s2)]
    s1s: list[tuple[float, Shape]] = [((i + 0.5) / s1, "S1_SLC") for i in range(s1)]
    return [
        write_real_shape(directory, kind, start + timedelta(minutes=i), seed=seed + i)
        for i, (_, kind) in enumerate(sorted(s2s + s1s))
    ]


def make_products(directory: Path, s2: int, s1: int, paced: int) -> tuple[list[Product], list[Product], Product]:
    """(the flood's products, the latency run's, its warm-up product)."""
    samples = verified_samples(directory / "samples")
    flood = samples + real_shapes(directory / "flood", s2, s1, START)
    # The latency run: samples of every size (their smallest to their largest), and real shapes.
    by_size = sorted(samples, key=lambda p: Product.of(p).objects)
    few = max(1, paced // 4)
    chosen = [by_size[round(i * (len(by_size) - 1) / max(1, few - 1))] for i in range(few)]
    shapes = real_shapes(directory / "paced", (paced - few + 1) // 2, (paced - few) // 2, START + timedelta(days=30))
    one_by_one = [p for pair in zip(shapes, chosen, strict=False) for p in pair] + shapes[len(chosen) :]
    warm = write_real_shape(directory / "warm", "S1_SLC", START + timedelta(days=60), seed=999)
    return [Product.of(p) for p in flood], [Product.of(p) for p in one_by_one[:paced]], Product.of(warm)


# -- what runs in the child process (the uploader) --------------------------------------------------


@dataclass(frozen=True)
class Store:
    """Where a child process finds an S3 endpoint (picklable)."""

    endpoint: str
    access_key: str
    secret_key: str

    @classmethod
    def of_platform(cls, platform: EmbeddedPlatform) -> Store:
        s = platform.settings
        return cls(platform.seaweed.s3_endpoint, s.s3_access_key or "", s.s3_secret_key or "")

    @classmethod
    def of_seaweed(cls, seaweed: SeaweedFS) -> Store:
        return cls(seaweed.s3_endpoint, seaweed.access_key, seaweed.secret_key)

    def open(self) -> ObjectStore:
        settings = Settings(s3_endpoint_url=self.endpoint, s3_access_key=self.access_key, s3_secret_key=self.secret_key)
        store = ObjectStore(settings)
        _ = store.client  # created once, before the threads and the clock
        return store


def _ready() -> int:
    return os.getpid()


def _threads(work: Callable[[T], Any], items: list[T], threads: int = THREADS) -> list[Any]:
    """``work`` over ``items`` on ``threads`` threads, each item in a copy of this context (its meter)."""
    with ThreadPoolExecutor(threads) as pool:
        return [f.result() for f in [pool.submit(copy_context().run, work, item) for item in items]]


def floor_loop(store: Store, paths: list[Path], threads: int = THREADS) -> tuple[float, int]:
    """Seconds and object-store requests of the bare loop over every product (``threads`` at a time)."""
    objects = store.open()
    client = objects.client
    for bucket in (FLOOR_INBOX, FLOOR_TARGET):
        objects.ensure_bucket(bucket)

    def get(bucket: str, key: str) -> bytes:
        data: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    def ingest(path: Path) -> int:
        keys = upload_product(objects, FLOOR_INBOX, path)  # one PUT each (boto3's own threads: not metered)
        listed = [o.key for o in objects.iter(FLOOR_INBOX, f"{path.name}/" if path.is_dir() else path.name)]
        assert sorted(listed) == sorted(keys), f"{path.name}: listed {len(listed)} of {len(keys)} objects"
        manifest_name = recognise(path.name).manifest_name if path.is_dir() else None
        manifest_key = f"{path.name}/{manifest_name}" if manifest_name else keys[0]
        manifest = get(FLOOR_INBOX, manifest_key)
        hashlib.md5(manifest, usedforsecurity=False)
        try:
            declared = {f"{path.name}/{o.path}": [a for a, _ in o.digests] for o in read_inventory(manifest)}
        except ManifestError:  # single files, and folders without an XFDU manifest
            declared = {}
        for key in listed:
            if key != manifest_key:
                hash_chunks([get(FLOOR_INBOX, key)], declared.get(key) or ["md5"])
        for key in [*sorted(k for k in listed if k != manifest_key), manifest_key]:  # the manifest last
            client.copy_object(Bucket=FLOOR_TARGET, Key=key, CopySource={"Bucket": FLOOR_INBOX, "Key": key})
            client.head_object(Bucket=FLOOR_TARGET, Key=key)
            client.delete_object(Bucket=FLOOR_INBOX, Key=key)
        get(FLOOR_TARGET, manifest_key)
        return len(keys)

    started = time.perf_counter()
    with metered() as meter:
        uploaded = sum(_threads(ingest, paths, threads))
    return time.perf_counter() - started, meter.requests + uploaded


def upload_all(store: Store, bucket: str, paths: list[Path], threads: int = THREADS) -> tuple[dict[str, Any], float]:
    """Upload every product (``threads`` at a time): {name: (upload start, upload end)} (epoch seconds),
    and the uploader's CPU seconds."""
    objects = store.open()
    cpu = time.process_time()

    def upload(path: Path) -> tuple[str, tuple[float, float]]:
        started = time.time()
        upload_product(objects, bucket, path)
        return path.name, (started, time.time())

    return dict(_threads(upload, paths, threads)), time.process_time() - cpu


def one_at_a_time(store: Store, bucket: str, catalog: str, paths: list[Path]) -> list[float]:
    """Each product uploaded alone, then ``?name=`` polled every 10 ms: upload complete -> searchable (s)."""
    objects = store.open()
    session = requests.Session()
    latencies = []
    for path in paths:
        upload_product(objects, bucket, path)
        uploaded = time.perf_counter()
        while not session.get(catalog, params={"name": path.name}, timeout=30).json()["products"]:
            if time.perf_counter() - uploaded > LATENCY_TIMEOUT_S:
                raise RuntimeError(f"{path.name} not in the catalog {LATENCY_TIMEOUT_S:.0f} s after its upload")
            time.sleep(0.01)
        latencies.append(time.perf_counter() - uploaded)
    return latencies


def put_loop(store: Store, prefix: str, count: int = PUTS, threads: int = THREADS) -> tuple[float, float]:
    """PUTs/s of ``count`` 1 KiB objects, ``threads`` at a time, and the client's CPU seconds."""
    client = store.open().client
    body = b"x" * 1024

    def put(i: int) -> None:
        client.put_object(Bucket=PUTS_BUCKET, Key=f"{prefix}/{i:05d}", Body=body)

    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, range(count)))
    return count / (time.perf_counter() - started), time.process_time() - cpu


# -- the platform side ------------------------------------------------------------------------------


@dataclass
class Flood:
    floor_s: float = 0.0
    floor_requests: int = 0
    total_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process during the pipeline run
    retries: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    settled: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name: (lines, requests, bytes read)


def run_flood(workdir: Path, products: list[Product], child: ProcessPoolExecutor) -> Flood:
    result = Flood()
    paths = [p.path for p in products]
    platform = EmbeddedPlatform(workdir / "platform")
    platform.start()
    try:
        store = Store.of_platform(platform)
        result.floor_s, result.floor_requests = child.submit(floor_loop, store, paths).result()
        _wait_quiet(platform)  # the floor's notifications are through before the pipeline starts
        catalog = str(platform.endpoints()["catalog"])
        before = _platform_cpu(platform)
        uploads: Future[tuple[dict[str, Any], float]] = child.submit(
            upload_all, store, platform.settings.inbox_bucket, paths
        )
        cataloged = _wait_cataloged(catalog, {p.name for p in products}, uploads)
        stamps, uploader_cpu = uploads.result()
        result.cpu = _minus(_platform_cpu(platform), before) | {"uploader": uploader_cpu}
        started = min(start for start, _ in stamps.values())
        result.total_s = max(cataloged.values()) - started
        result.latencies = sorted(cataloged[name] - stamps[name][1] for name in stamps)
        result.retries, result.dead = _troubles(platform)
        result.stats = platform.broker.stats()
    finally:
        platform.stop()
    result.settled = settled_lines(platform.data_dir / "logs" / "ingest.log")
    return result


@dataclass
class Idle:
    latencies: list[float] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    bare_puts: list[float] = field(default_factory=list)
    webhook_puts: list[float] = field(default_factory=list)
    notified: list[float] = field(default_factory=list)  # notifications stored by the broker per second
    bare_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process, summed over the rounds
    webhook_cpu: dict[str, float] = field(default_factory=dict)
    bare_floor_s: float = 0.0


def run_idle(
    workdir: Path,
    products: list[Product],
    paced: list[Product],
    warm: Product,
    child: ProcessPoolExecutor,
    rounds: int = 2,
) -> Idle:
    """On a fresh platform and a bare SeaweedFS beside it: latency, the webhook's cost, the floor without it."""
    result = Idle()
    platform = EmbeddedPlatform(workdir / "platform")
    platform.start()
    bare: SeaweedFS | None = None
    try:
        bare = _bare_seaweed(workdir / "bare-s3")
        store, inbox = Store.of_platform(platform), platform.settings.inbox_bucket
        catalog = str(platform.endpoints()["catalog"])
        child.submit(one_at_a_time, store, inbox, catalog, [warm.path]).result()  # first requests of every step
        result.latencies = child.submit(one_at_a_time, store, inbox, catalog, [p.path for p in paced]).result()
        result.retries, result.dead = _troubles(platform)

        bare.create_buckets([PUTS_BUCKET])
        platform.seaweed.create_buckets([PUTS_BUCKET])
        _wait_quiet(platform)
        for i in range(rounds):  # alternated: the machine's noise shifts both alike
            before = _group_cpu({"seaweedfs": bare.pid})
            rate, client_cpu = child.submit(put_loop, Store.of_seaweed(bare), f"r{i}").result()
            result.bare_puts.append(rate)
            used = _minus(_group_cpu({"seaweedfs": bare.pid}), before) | {"client": client_cpu}
            result.bare_cpu = _plus(result.bare_cpu, used)

            events, before = platform.broker.stats()["events"], _platform_cpu(platform)
            started = time.monotonic()
            rate, client_cpu = child.submit(put_loop, store, f"r{i}").result()
            result.webhook_puts.append(rate)
            stored, last = _wait_quiet(platform, until=events + PUTS)
            result.notified.append((stored - events) / (last - started))
            used = _minus(_platform_cpu(platform), before) | {"client": client_cpu}
            result.webhook_cpu = _plus(result.webhook_cpu, used)

        result.bare_floor_s, _ = child.submit(floor_loop, Store.of_seaweed(bare), [p.path for p in products]).result()
    finally:
        platform.stop()
        if bare is not None:
            bare.stop(timeout=3.0)
    return result


def _bare_seaweed(directory: Path, attempts: int = 3) -> SeaweedFS:
    """A started SeaweedFS without notifications. Its ports are chosen free, then bound by weed: under load a
    gRPC port (S3 port + 10,000) was taken meanwhile (weed exits: "bind: address already in use"), so try
    again on other ports."""
    for attempt in range(1, attempts + 1):
        seaweed = SeaweedFS(directory, log_path=directory.with_suffix(".log"))
        try:
            seaweed.start()
        except RuntimeError as exc:
            if attempt == attempts or "address already in use" not in str(exc):
                raise
            print(f"bare SeaweedFS did not start (a port was taken meanwhile); trying other ports: {exc!s:.100}")
            continue
        return seaweed
    raise AssertionError("unreachable")


def _wait_cataloged(catalog: str, names: set[str], uploads: Future[Any]) -> dict[str, float]:
    """{name: publication time (epoch s)} once every product is in the catalog."""
    cataloged: dict[str, float] = {}
    session = requests.Session()
    progress = time.monotonic()
    while True:
        if uploads.done() and uploads.exception() is not None:
            raise RuntimeError("the uploads failed") from uploads.exception()
        offset, seen = 0, len(cataloged)
        while page := _page(session, catalog, offset):
            for entry in page:
                published = datetime.fromisoformat(entry["publicationTime"].replace("Z", "+00:00"))
                cataloged[entry["name"]] = published.timestamp()
            offset += len(page)
        if names <= cataloged.keys():
            return {name: cataloged[name] for name in names}
        if len(cataloged) > seen or not uploads.done():
            progress = time.monotonic()
        elif time.monotonic() - progress > STALL_S:
            missing = sorted(names - cataloged.keys())
            raise RuntimeError(f"{len(missing)} products not cataloged {STALL_S:.0f} s after the last: {missing[:10]}")
        time.sleep(POLL_S)


def _page(session: requests.Session, catalog: str, offset: int) -> list[dict[str, str]]:
    response = session.get(catalog, params={"limit": 1000, "offset": offset}, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"catalog answered {response.status_code}: {response.text[:300]}")
    products: list[dict[str, str]] = response.json()["products"]
    return products


def _wait_quiet(
    platform: EmbeddedPlatform, until: int = 0, quiet_s: float = 1.0, timeout: float = 120.0
) -> tuple[int, float]:
    """(events the broker stored, when the last came: ``time.monotonic()``), once they reach ``until`` and
    stop growing for ``quiet_s`` (the filer's webhook backlog drained) and no delivery is pending or in flight."""
    deadline, last, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        stats = platform.broker.stats()
        if stats["events"] != last or stats["pending"] or stats["in-flight"]:
            last, since = stats["events"], time.monotonic()
        elif last >= until and time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.05)
    return last, since


def _troubles(platform: EmbeddedPlatform) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(deliveries tried more than once, deliveries dead-lettered or dead)."""
    rows = platform.broker.deliveries()
    retried = [r for r in rows if r["attempts"] > 1 or r["dls_attempts"] > 0]
    dead = [r for r in rows if r["state"] in ("dead-lettered", "dead") or r["target"] == "deadletter"]
    return retried, dead


def _platform_cpu(platform: EmbeddedPlatform) -> dict[str, float]:
    """CPU seconds used so far by each process of the platform, the broker's being this process (with the
    benchmark's polls of the catalog and the broker)."""
    groups = {"seaweedfs": platform.seaweed.pid} | {
        name: server.process.pid for name, server in platform.functions.items() if server.process is not None
    }
    times = os.times()
    return _group_cpu(groups) | {"broker": times.user + times.system}


def _group_cpu(groups: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds used so far by the processes of each process group (Linux /proc; nothing elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(groups, 0.0)
    names = {pgid: name for name, pgid in groups.items() if pgid is not None}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        name = names.get(int(fields[2]))  # its process group
        if name is not None:
            used[name] += (int(fields[11]) + int(fields[12])) / tick
    return used


def _minus(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}


def _plus(total: dict[str, float], more: dict[str, float]) -> dict[str, float]:
    return {name: total.get(name, 0.0) + more.get(name, 0.0) for name in total.keys() | more.keys()}


def settled_lines(log: Path) -> dict[str, tuple[int, int, int]]:
    """{product: (lines, requests, bytes read)} from the ingest function's log lines."""
    found: dict[str, tuple[int, int, int]] = {}
    for line in _lines(log):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and {"product", "requests", "bytes_read"} <= entry.keys():
            lines, requests_, read = found.get(entry["product"], (0, 0, 0))
            found[entry["product"]] = (lines + 1, requests_ + entry["requests"], read + entry["bytes_read"])
    return found


def _lines(path: Path) -> Iterator[str]:
    if path.exists():
        with path.open(errors="replace") as f:
            yield from f


# -- the figures --------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def run(workdir: Path, s2: int | None = None, s1: int | None = None, paced: int | None = None) -> Rows:
    s2 = _env("REFSYS_BENCH_S2", 20) if s2 is None else s2
    s1 = _env("REFSYS_BENCH_S1", 40) if s1 is None else s1
    paced = _env("REFSYS_BENCH_PACED", 20) if paced is None else paced
    products, one_by_one, warm = make_products(workdir / "products", s2, s1, paced)
    count, objects, size = len(products), sum(p.objects for p in products), sum(p.size for p in products)
    print(
        f"ingestion: {count} products ({count - s2 - s1} samples of {min(p.objects for p in products)} to "
        f"{max(p.objects for p in products)} objects, {s2} S2 L1C of 98, {s1} S1 IW SLC of 34), "
        f"{objects} objects, {size / 1e6:.1f} MB; latency run: {len(one_by_one)} products"
    )
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        child.submit(_ready).result()  # the uploader's interpreter started and its imports done, off the clock
        flood = run_flood(workdir / "flood", products, child)
        idle = run_idle(workdir / "idle", products, one_by_one, warm, child)

    _report_flood(flood, products)
    _report_idle(idle)
    logged = {p.name: p for p in products if p.name in flood.settled}
    requests_ = sum(flood.settled[name][1] for name in logged)
    worst = max((flood.settled[n][1] / (5 * p.objects + 10) for n, p in logged.items()), default=0.0)
    read = sum(flood.settled[name][2] for name in logged)
    bare, hooked = statistics.median(idle.bare_puts), statistics.median(idle.webhook_puts)
    notified = statistics.median(idle.notified)
    floor, bare_floor, pipeline = count / flood.floor_s, count / idle.bare_floor_s, count / flood.total_s
    return [
        (f"floor: bare boto3 loop, {count} products, platform's SeaweedFS (products/s)", floor, 1.0),
        (f"  same, {objects} objects, {size / 1e6:.0f} MB (objects/s)", objects / flood.floor_s, 1.0),
        ("  same loop on a bare SeaweedFS, no webhook (products/s)", bare_floor, bare_floor / floor),
        ("pipeline upload -> cataloged (products/s)", pipeline, pipeline / floor),
        ("  same (objects/s)", objects / flood.total_s, pipeline / floor),
        ("  against the floor on a bare SeaweedFS (products/s)", pipeline, pipeline / bare_floor),
        ("flood latency upload -> cataloged, p50 (s; queueing included)", _percentile(flood.latencies, 0.5), 0.0),
        ("flood latency upload -> cataloged, p99 (s; queueing included)", _percentile(flood.latencies, 0.99), 0.0),
        ("flood: deliveries retried (attempts > 1)", len(flood.retries), 0.0),
        ("flood: deliveries dead-lettered or dead", len(flood.dead), 0.0),
        (f"one product at a time, {len(idle.latencies)}: latency p50 (s)", _percentile(idle.latencies, 0.5), 0.0),
        (f"one product at a time, {len(idle.latencies)}: latency p99 (s)", _percentile(idle.latencies, 0.99), 0.0),
        ("floor: object-store requests per object (uploads included)", flood.floor_requests / objects, 0.0),
        (
            f"ingest: object-store requests per object ({len(logged)} products logged, uploads not included)",
            requests_ / max(1, sum(p.objects for p in logged.values())),
            0.0,
        ),
        ("ingest: max over products of requests / (5N + 10)", worst, 0.0),
        ("ingest: bytes read per byte ingested", read / max(1, sum(p.size for p in logged.values())), 0.0),
        (f"{PUTS} PUTs, {THREADS} threads, bare SeaweedFS (PUTs/s)", bare, 1.0),
        ("  same, platform's SeaweedFS: webhook -> notify -> broker (PUTs/s)", hooked, hooked / bare),
        ("  its notifications stored by the broker (/s)", notified, notified / bare),
    ]


def _report_flood(flood: Flood, products: list[Product]) -> None:
    objects = sum(p.objects for p in products)
    print(f"pipeline {flood.total_s:.1f} s against the floor's {flood.floor_s:.1f} s")
    print(
        f"pipeline CPU per object (ms; {flood.total_s * 1000 / objects:.2f} ms of wall time per object on "
        f"{os.cpu_count()} cores): {_per(flood.cpu, objects)}"
    )
    print(f"broker after the flood: {json.dumps(flood.stats)}")
    _report_troubles("flood", flood.retries, flood.dead)
    unlogged = [p.name for p in products if p.name not in flood.settled]
    if unlogged:
        print(f"{len(unlogged)} products have no 'object-store requests' line in ingest.log: {', '.join(unlogged)}")
    twice = [name for name, (lines, _, _) in flood.settled.items() if lines > 1]
    if twice:
        print(f"products with more than one such line (summed): {', '.join(twice)}")
    by_ratio = sorted(
        ((flood.settled[p.name][1], p) for p in products if p.name in flood.settled),
        key=lambda rp: rp[0] / (5 * rp[1].objects + 10),
    )
    for requests_, product in by_ratio[-3:]:
        bound = 5 * product.objects + 10
        print(f"  {product.name}: {requests_} requests for {product.objects} objects (5N + 10 = {bound})")


def _report_idle(idle: Idle) -> None:
    _report_troubles("latency run", idle.retries, idle.dead)
    print("one at a time, latencies (s): " + " ".join(f"{s:.2f}" for s in idle.latencies))
    rounds = zip(idle.bare_puts, idle.webhook_puts, idle.notified, strict=True)
    print(
        "PUTs/s bare / webhook / notifications stored per round: "
        + "; ".join(f"{b:.0f} / {w:.0f} / {n:.0f}" for b, w, n in rounds)
    )
    puts = PUTS * len(idle.bare_puts)
    print(f"CPU per PUT (ms), bare SeaweedFS: {_per(idle.bare_cpu, puts)}")
    print(f"CPU per PUT (ms), webhook on: {_per(idle.webhook_cpu, puts)}")


def _per(cpu: dict[str, float], count: int) -> str:
    shares = sorted(((seconds * 1000 / count, name) for name, seconds in cpu.items()), reverse=True)
    total = sum(ms for ms, _ in shares)
    return f"{total:.2f} in all: " + ", ".join(f"{name} {ms:.2f}" for ms, name in shares if ms >= 0.01)


def _report_troubles(run: str, retried: list[dict[str, Any]], dead: list[dict[str, Any]]) -> None:
    print(f"{run}: {len(retried)} deliveries retried, {len(dead)} dead-lettered or dead")
    for row in (retried + dead)[:20]:
        print(f"  {row}")
