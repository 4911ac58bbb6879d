"""The execution wrapper's data movement against boto3's own transfer manager, on a fresh SeaweedFS.

One input product, SAFE-like: two measurement files of ~49 % of the size each and a few small metadata
files (``REFSYS_BENCH_TRANSFER_GB``, default 5 GB = 5e9 bytes in all; random bytes, written once and put in
a source bucket once; the local copy is then removed). Each round, in a fresh child process per side:

- wrapper: a ``Run`` of a hand-made ``JobReady`` with that product as its one input (a key prefix):
  ``run._download_inputs()`` into its working directory, then ``run._upload([product], progress)`` of the
  downloaded product into the inbox; ``transfer_config(settings.transfer_concurrency)`` and the
  ``ObjectStore`` client, as a processing Job has them;
- baseline: boto3's ``create_transfer_manager(client, TransferConfig())`` (boto3's default config, a client
  with botocore's default config) listing and downloading the same objects, then uploading them again.

A third side, for diagnosis: the baseline's code with the wrapper's ``transfer_config`` (its part size and
threads): where the wrapper misses, it says whether its config or its own code is the cause.

Each side's timings (listing and directory creation included, as the wrapper does them) are taken in the
child; its memory is the child's ``VmHWM`` (its peak resident set since exec), read around each phase and
reset in between through ``/proc/self/clear_refs``. ``ru_maxrss`` is printed too but is not the figure: on
Linux it keeps the forking parent's RSS across exec, so it reads at least this process's RSS. The children
import only what their side needs (not this package's other benchmarks), so that the resident memory is the
side's own. ``REFSYS_BENCH_REPEAT`` rounds (default 3), each side first in turn; between runs the inbox is
emptied, the download removed and the store vacuumed. Targets: wrapper throughput >= 0.9 x the baseline's,
wrapper peak RSS <= 256 MB.

Alone: ``python -m tests.bench transfer``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Only the standard library and boto3 at the top: the child processes import this module (their memory is measured).
import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config

Rows = list[tuple[str, float, float]]

PRODUCT = "S1A_IW_SLC__1SDV_20240501T100000_20240501T100027_053000_066AAA_ABCD.SAFE"
SOURCE_BUCKET, INBOX = "bench-transfer-source", "bench-transfer-inbox"
JOB_WORKDIR = "/data/localWD/bench-transfer"
MB = 1_000_000
CHUNK = 8 * 1024 * 1024
MIN_SIZE = 200 * MB
TARGET_RATIO, TARGET_RSS_MB = 0.9, 256.0
# The small files of the product (path in the SAFE: bytes); the two measurement files share the rest.
SMALL = {
    "annotation/s1a-iw1-slc-vv-20240501t100000-20240501t100027-053000-066aaa-004.xml": 1_800_000,
    "annotation/s1a-iw1-slc-vh-20240501t100000-20240501t100027-053000-066aaa-001.xml": 1_800_000,
    "annotation/calibration/calibration-s1a-iw1-slc-vv-20240501t100000-20240501t100027-053000-066aaa-004.xml": 350_000,
    "annotation/calibration/noise-s1a-iw1-slc-vv-20240501t100000-20240501t100027-053000-066aaa-004.xml": 120_000,
    "preview/quick-look.png": 400_000,
    "support/s1-level-1-product.xsd": 30_000,
    "manifest.safe": 60_000,  # the manifest, uploaded last
}
MEASUREMENTS = (
    "measurement/s1a-iw1-slc-vv-20240501t100000-20240501t100027-053000-066aaa-004.tiff",
    "measurement/s1a-iw1-slc-vh-20240501t100000-20240501t100027-053000-066aaa-001.tiff",
)


@dataclass(frozen=True)
class Endpoint:
    """Where a child finds the store (JSON on its command line)."""

    url: str
    access_key: str
    secret_key: str

    def client(self) -> Any:
        """A client with botocore's default config (path-style only: the store is on an IP address)."""
        return boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, config=Config(s3={"addressing_style": "path"}),
        )  # fmt: skip


@dataclass
class Sample:
    """One side's run (in a child): seconds, bytes, memory in MB."""

    side: str
    download_s: float
    upload_s: float
    bytes: int
    objects: int
    idle_mb: float  # resident after imports and the client, before any transfer
    download_peak_mb: float  # VmHWM over the download (the process's whole peak where it cannot be reset)
    upload_peak_mb: float
    peak_mb: float  # VmHWM over the child's whole life (imports included)
    maxrss_mb: float  # ru_maxrss: on Linux it keeps the parent's RSS at fork across exec, hence VmHWM above
    note: str = ""


# -- the children --------------------------------------------------------------------------------------


def _status(field: str) -> float:
    """A ``/proc/self/status`` figure in MB (0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return 0.0


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _maxrss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return kb * (1 if sys.platform == "darwin" else 1024) / MB


def _measure(side: str, download: Any, upload: Any) -> Sample:
    idle, before = _status("VmRSS"), _status("VmHWM")
    resettable = _reset_peak()
    started = time.perf_counter()
    size, objects = download()
    download_s = time.perf_counter() - started
    download_peak = _status("VmHWM")
    _reset_peak()
    started = time.perf_counter()
    uploaded = upload()
    upload_s = time.perf_counter() - started
    if uploaded != size:
        raise RuntimeError(f"{side}: uploaded {uploaded} bytes of the {size} downloaded")
    note = "" if resettable else "VmHWM not resettable: peaks are the process's"
    upload_peak = _status("VmHWM")
    peak = max(before, download_peak, upload_peak)
    return Sample(side, download_s, upload_s, size, objects, idle, download_peak, upload_peak, peak, _maxrss_mb(), note)


def wrapper_side(endpoint: Endpoint, root: Path) -> Sample:
    """The wrapper's own code path: ``Run._download_inputs`` then ``Run._upload``."""
    from datetime import UTC, datetime

    from events.processing import JobInput, JobReady
    from shared.processing.execution import Run, _Progress
    from shared.settings import Settings
    from shared.storage.objects import ObjectStore

    settings = Settings(
        s3_endpoint_url=endpoint.url, s3_access_key=endpoint.access_key, s3_secret_key=endpoint.secret_key,
        inbox_bucket=INBOX, workdir_root=str(root),
    )  # fmt: skip
    store = ObjectStore(settings)
    _ = store.client  # created once, off the clock (the wrapper's client is made before it runs too)
    store.ensure_bucket(INBOX)  # known to exist: _upload's check costs no request on the clock
    now = datetime.now(UTC)
    ready = JobReady(
        job_key=f"bench-transfer:{PRODUCT}", processor="bench", task_table="BENCH.xml", processor_name="BENCH",
        processor_version="1.0", mission="S1", satellite="A", window_start=now, window_stop=now, timed_out=False,
        job_order="<Ipf_Job_Order/>", workdir=JOB_WORKDIR, image="refsys/bench",
        inputs=(JobInput(name=PRODUCT, product_type="IW_SLC__1S", bucket=SOURCE_BUCKET, key=f"{PRODUCT}/",
                         local_path=f"{JOB_WORKDIR}/{PRODUCT}"),),
    )  # fmt: skip
    run = Run(ready, "bench-transfer", settings, store)
    run.workdir.mkdir(parents=True, exist_ok=True)
    product = run.workdir / PRODUCT
    progress = _Progress(started=now)

    def download() -> tuple[int, int]:
        size = run._download_inputs()
        return size, sum(1 for p in product.rglob("*") if p.is_file())

    def upload() -> int:
        run._upload([product], progress)
        return progress.bytes_uploaded

    sample = _measure("wrapper", download, upload)
    sample.note = (sample.note + f" concurrency {settings.transfer_concurrency}").strip()
    return sample


def baseline_side(endpoint: Endpoint, root: Path, config: TransferConfig | None = None) -> Sample:
    """boto3's transfer manager with its default config: list, download every object, upload them back."""
    config = config or TransferConfig()
    client = endpoint.client()
    client.head_bucket(Bucket=INBOX)  # the connection and credentials resolved off the clock, as the wrapper's
    product = root / PRODUCT

    def download() -> tuple[int, int]:
        keys = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=SOURCE_BUCKET, Prefix=f"{PRODUCT}/")
            for o in page.get("Contents", [])
        ]
        paths = [root / key for key in keys]
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        with create_transfer_manager(client, config) as manager:
            futures = [manager.download(SOURCE_BUCKET, key, str(path)) for key, path in zip(keys, paths, strict=True)]
            for future in futures:
                future.result()
        return sum(p.stat().st_size for p in paths), len(paths)

    def upload() -> int:
        files = sorted(p for p in product.rglob("*") if p.is_file())
        with create_transfer_manager(client, config) as manager:
            futures = [manager.upload(str(f), INBOX, f"{PRODUCT}/{f.relative_to(product).as_posix()}") for f in files]
            for future in futures:
                future.result()
        return sum(f.stat().st_size for f in files)

    return _measure("baseline", download, upload)


def wrapper_config_side(endpoint: Endpoint, root: Path) -> Sample:
    """Diagnosis: the baseline's code with the wrapper's ``transfer_config``: what the config alone costs."""
    from shared.processing.execution import transfer_config
    from shared.settings import Settings

    return baseline_side(endpoint, root, transfer_config(Settings().transfer_concurrency))


# wrapper and baseline are the figures; boto3+config (the baseline's code, the wrapper's config) says which of
# the wrapper's code and its config makes a difference.
SIDES = {"wrapper": wrapper_side, "baseline": baseline_side, "boto3+config": wrapper_config_side}


def _child(argv: list[str]) -> None:
    side, endpoint, root = argv
    sample = SIDES[side](Endpoint(**json.loads(endpoint)), Path(root))
    print(json.dumps(asdict(sample)))


# -- the parent ------------------------------------------------------------------------------------


def write_product(directory: Path, size: int) -> Path:
    """The SAFE-like product, ``size`` bytes of random data (never sparse: every byte written)."""
    product = directory / PRODUCT
    small = sum(SMALL.values())
    measurement = (size - small) // len(MEASUREMENTS)
    files = {**SMALL, **dict.fromkeys(MEASUREMENTS, measurement)}
    for name, length in files.items():
        path = product / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            left = length
            while left:
                left -= f.write(os.urandom(min(CHUNK, left)))
    return product


def _in_child(side: str, endpoint: Endpoint, root: Path) -> Sample:
    command = [sys.executable, "-m", "tests.bench.transfer", side, json.dumps(asdict(endpoint)), str(root)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        raise RuntimeError(f"{side} side failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return Sample(**json.loads(done.stdout.strip().splitlines()[-1]))


def _empty(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _vacuum(seaweed: Any) -> None:
    """Give the deleted objects' space back (SeaweedFS only marks them deleted); best effort."""
    url = f"http://{seaweed.host}:{seaweed._master_port}/vol/vacuum?garbageThreshold=0.01"
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            response.read()
    except OSError as exc:
        print(f"transfer: vacuum failed ({exc}); the store keeps the deleted data until its own vacuum")


def _size(workdir: Path) -> int:
    wanted = int(float(os.environ.get("REFSYS_BENCH_TRANSFER_GB", "5")) * 1e9)
    # On disk at once: the source bucket, a downloaded copy, the inbox copy (and the product written first).
    free = shutil.disk_usage(workdir).free
    if free >= 3 * wanted:
        return wanted
    scaled = int(free / 3 * 0.9)
    if scaled < MIN_SIZE:
        raise RuntimeError(f"transfer: {free / 1e9:.1f} GB free under {workdir}: not enough for the benchmark")
    print(
        f"transfer: NOTE only {free / 1e9:.1f} GB free under {workdir}, less than 3 x {wanted / 1e9:.1f} GB: "
        f"scaled down to {scaled / 1e9:.2f} GB"
    )
    return scaled


def run(workdir: Path) -> Rows:
    from shared.platform.seaweed import SeaweedFS

    size, repeat = _size(workdir), int(os.environ.get("REFSYS_BENCH_REPEAT", "3"))
    seaweed = SeaweedFS(workdir / "s3", log_path=workdir / "seaweedfs.log")
    seaweed.start()
    samples: dict[str, list[Sample]] = {side: [] for side in SIDES}
    try:
        endpoint = Endpoint(seaweed.s3_endpoint, seaweed.access_key, seaweed.secret_key)
        seaweed.create_buckets([SOURCE_BUCKET, INBOX])
        client = seaweed.client()
        started = time.perf_counter()
        product = write_product(workdir / "source", size)
        with create_transfer_manager(client, TransferConfig()) as manager:
            for file in sorted(p for p in product.rglob("*") if p.is_file()):
                manager.upload(str(file), SOURCE_BUCKET, f"{PRODUCT}/{file.relative_to(product).as_posix()}")
        shutil.rmtree(workdir / "source")  # the bucket holds it now: the sides' downloads are the local copies
        print(
            f"transfer: {PRODUCT}, {len(SMALL) + len(MEASUREMENTS)} objects, {size / MB:,.0f} MB "
            f"(2 x {(size - sum(SMALL.values())) // 2 / MB:,.0f} MB measurements), written and stored in "
            f"{time.perf_counter() - started:.0f} s; {repeat} rounds on {os.cpu_count()} cores"
        )
        for i in range(repeat):
            order = list(SIDES)[i % len(SIDES) :] + list(SIDES)[: i % len(SIDES)]  # each side first in turn
            for side in order:
                root = workdir / f"{side}-{i}"
                sample = _in_child(side, endpoint, root)
                if sample.bytes != size:
                    raise RuntimeError(f"{side}: moved {sample.bytes} bytes of {size}")
                samples[side].append(sample)
                shutil.rmtree(root)
                _empty(client, INBOX)
                _vacuum(seaweed)
                print(
                    f"  round {i + 1} {side:12}: download {sample.download_s:6.1f} s "
                    f"({size / MB / sample.download_s:6.0f} MB/s), upload {sample.upload_s:6.1f} s "
                    f"({size / MB / sample.upload_s:6.0f} MB/s); RSS idle {sample.idle_mb:.0f} MB, peak download "
                    f"{sample.download_peak_mb:.0f} / upload {sample.upload_peak_mb:.0f} / life {sample.peak_mb:.0f} "
                    f"MB (ru_maxrss {sample.maxrss_mb:.0f}) {sample.note}"
                )
    finally:
        seaweed.stop(timeout=3.0)
    return _rows(samples, size)


def _rows(samples: dict[str, list[Sample]], size: int) -> Rows:
    def rate(side: str, seconds: Any) -> float:
        return statistics.median(size / MB / seconds(s) for s in samples[side])

    def peak(side: str) -> float:
        return max(s.peak_mb for s in samples[side])

    phases = {
        "download": lambda s: s.download_s,
        "upload": lambda s: s.upload_s,
        "download + upload": lambda s: (s.download_s + s.upload_s) / 2,  # both ways: 2 x size moved
    }
    config = _config()
    rows: Rows = []
    ratios = {}
    for phase, seconds in phases.items():
        base, wrapped = rate("baseline", seconds), rate("wrapper", seconds)
        ratios[phase] = wrapped / base
        rows.append((f"{phase}, baseline: boto3 TransferManager, default TransferConfig (MB/s, median)", base, 1.0))
        rows.append((f"{phase}, wrapper: Run ({config}) (MB/s, median)", wrapped, wrapped / base))
        diagnosis = rate("boto3+config", seconds)
        rows.append(
            (f"  {phase}, diagnosis: TransferManager with the wrapper's config (MB/s)", diagnosis, diagnosis / base)
        )
    base_rss, wrapped_rss = peak("baseline"), peak("wrapper")
    rows.append(("peak RSS, baseline child (MB, VmHWM, max of rounds)", base_rss, 1.0))
    rows.append((f"peak RSS, wrapper child (MB, VmHWM, max of rounds; target <= {TARGET_RSS_MB:.0f})",
                 wrapped_rss, wrapped_rss / base_rss))  # fmt: skip
    diagnosis = peak("boto3+config")
    rows.append(
        ("  peak RSS, diagnosis: TransferManager with the wrapper's config (MB)", diagnosis, diagnosis / base_rss)
    )
    for side in SIDES:
        idle = statistics.median(s.idle_mb for s in samples[side])
        rows.append((f"RSS of the {side} child before any transfer (MB, imports and client)", idle, 0.0))
    verdict = ", ".join(f"{phase} {r:.2f}" for phase, r in ratios.items())
    misses = [p for p, r in ratios.items() if r < TARGET_RATIO]
    print(f"transfer: wrapper / baseline throughput: {verdict} (target >= {TARGET_RATIO}): "
          + (f"MISSED for {', '.join(misses)}" if misses else "met"))  # fmt: skip
    print(f"transfer: wrapper peak RSS {wrapped_rss:.0f} MB (target <= {TARGET_RSS_MB:.0f} MB): "
          + ("met" if wrapped_rss <= TARGET_RSS_MB else "MISSED"))  # fmt: skip
    return rows


def _config() -> str:
    """The wrapper's transfer settings, as ``transfer_config`` makes them (parts, threads)."""
    from shared.processing.execution import transfer_config
    from shared.settings import Settings

    concurrency = Settings().transfer_concurrency
    c = transfer_config(concurrency)
    return f"{c.multipart_chunksize // 2**20} MiB parts, {c.max_concurrency} threads"


if __name__ == "__main__":
    _child(sys.argv[1:])
