"""The processing chains: time from upload to the final products, broken down by step, on the embedded platform.

Each chain (``refsys chain s3``, ``s2``, ``s1``: the real object counts of each product type, payloads small)
runs on a fresh platform with the IPF simulators taking ``REFSYS_SIMULATOR_SECONDS`` (default here 1 s) per
task. Baseline, measured in the same run: the processors' own time along the chain, i.e. per stage the
longest ``processing`` duration its runs report (the runs of a stage go side by side). The ratio of the whole
chain to it is what the system adds around the processors: ingestion, cataloging, preparation, launch,
transfers. First, upload -> the first job ready (uploads, ingestion, cataloging, preparation of the inputs);
then per step: ready -> run started (launch), the run's download / processing / upload, run end ->
its outputs cataloged (ingestion and catalog), as medians over the step's runs.

Alone: ``python -m tests.bench chains``.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from shared.catalog.store import open_catalog
from shared.platform.client import RunningPlatform
from shared.platform.embedded import EmbeddedPlatform
from shared.processing.chains import chain_anchor, chains, run_chain
from shared.processing.jobs import JobStore
from shared.processing.launch import RunStore

SIMULATED_TASK_S = os.environ.get("REFSYS_SIMULATOR_SECONDS", "1")

Rows = list[tuple[str, float, float]]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _first_ready(platform: EmbeddedPlatform, processors: tuple[str, ...]) -> datetime:
    jobs = JobStore(platform.settings.catalog_url)
    try:
        return min(j.updated_at for j in jobs.list(limit=10_000) if j.processor in processors)
    finally:
        jobs.close()


def _steps(platform: EmbeddedPlatform, stages: tuple[tuple[str, ...], ...]) -> tuple[Rows, float]:
    """Per processor: medians of its runs' steps; and the chain's processor time (sum of each stage's longest)."""
    url = platform.settings.catalog_url
    jobs, runs, catalog = JobStore(url), RunStore(url), open_catalog(url)
    rows: Rows = []
    longest: dict[str, float] = {}
    try:
        for processor in (p for stage in stages for p in stage):
            launch, download, processing, upload, cataloged = [], [], [], [], []
            for job in (j for j in jobs.list(limit=10_000) if j.processor == processor):
                for run in runs.of_job(job.key):
                    outcome = run["outcome"] or {}
                    if run["state"] != "completed":
                        continue
                    launch.append((_time(run["startedAt"]) - job.updated_at).total_seconds())
                    download.append(outcome["durations"]["download"])
                    processing.append(outcome["durations"]["processing"])
                    upload.append(outcome["durations"]["upload"])
                    entries = [catalog.get_by_name(o["name"]) for o in outcome["outputs"]]
                    published = [e.publication_time for e in entries if e is not None]
                    if published:
                        cataloged.append((max(published) - _time(run["endedAt"])).total_seconds())
            if not processing:
                continue
            longest[processor] = max(processing)
            for step, values in (
                ("ready -> run started", launch),
                ("download", download),
                ("processing", processing),
                ("upload", upload),
                ("run end -> outputs cataloged", cataloged),
            ):
                if values:
                    rows.append((f"  {processor} ({len(processing)} runs): {step} (s)", statistics.median(values), 0))
    finally:
        jobs.close()
        catalog.close()
    return rows, sum(max(longest.get(p, 0.0) for p in stage) for stage in stages)


def run(workdir: Path) -> Rows:
    os.environ["REFSYS_SIMULATOR_SECONDS"] = SIMULATED_TASK_S  # inherited by the platform's runs
    rows: Rows = []
    for mission in ("s3", "s2", "s1"):
        platform = EmbeddedPlatform(workdir / mission)
        platform.start()
        try:
            chain = chains(chain_anchor())[mission]
            started, wall = time.monotonic(), datetime.now(UTC)
            finals = run_chain(RunningPlatform.find(platform.data_dir), mission, wait=True, timeout=900)
            total = time.monotonic() - started
            steps, own = _steps(platform, chain.stages)
            inputs = (_first_ready(platform, chain.stages[0]) - wall).total_seconds()
            rows.append((f"{mission}: upload to {len(finals)} final products (s)", total, total / own))
            rows.append((f"{mission}: processors' own time along the chain (s, baseline)", own, 1.0))
            rows.append((f"  {mission}: upload -> first job ready (s)", inputs, 0))
            rows.extend(steps)
        finally:
            platform.stop(storage_timeout=3.0)
    return rows
