"""The three processing chains end to end, from uploads alone, on the embedded platform with the IPF
simulators: every final product is cataloged and its lineage reaches the uploads; no traceback, no 5xx,
no retried delivery."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from shared.platform.client import RunningPlatform
from shared.platform.embedded import EmbeddedPlatform
from shared.processing.chains import run_chain
from shared.processing.lineage import LineageStore
from tests.e2e.test_platform import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]

# What each chain ends with, and the processors its lineage passes through (from the final level down).
EXPECTED = {
    "s1": ({"IW_OCN__2S"}, ["IW_RAW__0_OCN__2", "L0_ASSEMBLY_SLICING_PROC", "AIO_PROCESSOR"]),
    "s2": ({"MSI_L1C_DS", "MSI_L1C_TL"}, ["S2_MSI_L1"]),
    "s3": ({"OL_2_LFR___", "OL_2_WFR___"}, ["S3A_OL2", "S3A_OL1"]),
}


def processors_down(tree: dict) -> list[str]:
    """The processors along the first produced input at each level."""
    chain = []
    while tree["processor"]:
        chain.append(tree["processor"])
        tree = next((i for i in tree["inputs"] if i["processor"]), {"processor": None})
    return chain


def leaves(tree: dict) -> set[str]:
    return {tree["name"]} if not tree["inputs"] else set().union(*(leaves(i) for i in tree["inputs"]))


@pytest.mark.parametrize("mission", ["s3", "s2", "s1"])
def test_a_chain_runs_from_uploads_to_its_final_level_with_lineage(platform: EmbeddedPlatform, mission: str) -> None:
    finals = run_chain(RunningPlatform.find(platform.data_dir), mission, wait=True, timeout=240)
    types, processors = EXPECTED[mission]
    assert finals and {t for t in types if any(t in n for n in finals)} == types
    lineage = LineageStore(platform.settings.catalog_url)
    for name in finals:
        tree = lineage.tree(name)
        assert processors_down(tree) == processors, json.dumps(tree)[:2000]
        assert all(leaf not in finals for leaf in leaves(tree))
    # OData tells what made a product and what it was made from.
    odata = str(platform.endpoints()["odata"])
    entity = requests.get(f"{odata}/Products", params={"$filter": f"Name eq '{finals[0]}'", "$expand": "Attributes"},
                          timeout=10).json()["value"][0]  # fmt: skip
    attributes = {a["Name"]: a["Value"] for a in entity["Attributes"]}
    assert attributes["processorName"] == processors[0] and attributes["processingJob"]
    inputs = requests.get(f"{odata}/Products({entity['Id']})/Inputs", timeout=10).json()["value"]
    assert {i["Name"] for i in inputs} == set(lineage.produced(finals[0])["inputs"])  # type: ignore[index]


def test_lineage_command_prints_the_tree(platform: EmbeddedPlatform) -> None:
    with sqlite3.connect(platform.data_dir / "catalog.db") as db:
        (name,) = db.execute("SELECT product_name FROM product_lineage ORDER BY product_name LIMIT 1").fetchone()
    run = subprocess.run(
        [sys.executable, "-m", "shared.cli", "lineage", name, "--data-dir", str(platform.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    tree = json.loads(run.stdout)
    assert tree["name"] == name and tree["job"] and tree["inputs"]
    assert set(tree) == {"name", "job", "processor", "version", "taskTable", "inputs"}


def test_no_traceback_no_5xx_no_retry(platform: EmbeddedPlatform) -> None:
    for log in (platform.data_dir / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"a traceback in {log.name}: {text[text.find('Traceback') - 500 :][:3000]}"
    # The last products announced may still be on their way to the catalog (not retried: in flight).
    wait_for(lambda: platform.broker.stats()["pending"] + platform.broker.stats()["in-flight"] == 0, "an idle broker")
    deliveries = platform.broker.deliveries()
    retried = [d for d in deliveries if d["attempts"] != 1 or d["state"] != "delivered"]
    assert not retried, f"deliveries not made at the first attempt: {retried[:5]}"
    assert all(d["last_status"] < 500 for d in deliveries)
    with sqlite3.connect(platform.data_dir / "catalog.db") as db:
        states = dict(db.execute("SELECT state, count(*) FROM processing_runs GROUP BY state").fetchall())
    assert set(states) == {"completed"}, states


def test_jobs_manifest_prints_a_job_for_a_ready_job(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    with sqlite3.connect(platform.data_dir / "catalog.db") as db:
        (key,) = db.execute("SELECT job_key FROM processing_jobs WHERE state = 'ready' LIMIT 1").fetchone()
    run = subprocess.run(
        [sys.executable, "-m", "shared.cli", "jobs", "manifest", key, "--data-dir", str(platform.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout)
    assert job["kind"] == "Job" and job["metadata"]["annotations"]["refsys.io/job-key"] == key
