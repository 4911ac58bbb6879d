"""The three processing chains end to end, from uploads alone, on the embedded platform with the IPF
simulators: every final product is cataloged and its lineage reaches the uploads; no traceback, no 5xx,
no retried delivery."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.observability import tracing
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


def trace_of(event: dict) -> str:
    context = tracing.parse(event.get(tracing.TRACEPARENT))
    assert context is not None, f"an event without trace context: {event['type']} {event.get('subject')}"
    return context.trace_id


def test_one_trace_runs_from_each_upload_through_its_cataloging_to_the_products_made_from_it(
    platform: EmbeddedPlatform,
) -> None:
    with sqlite3.connect(platform.data_dir / "broker.db") as db:
        events = [json.loads(text) for (text,) in db.execute("SELECT event FROM events")]
    lineage = LineageStore(platform.settings.catalog_url)
    traces: dict[str, set[str]] = {}  # product -> trace ids of its object and product events
    for event in events:
        if event["type"].split(".")[2] in ("product", "storage"):
            traces.setdefault(str(tracing.product_of(event.get("subject"))), set()).add(trace_of(event))
    by_id = {event["id"]: event for event in events}
    cataloged = {e["subject"]: e for e in events if e["type"] == "org.refsys.product.cataloged.v1"}
    uploads = [name for name in cataloged if lineage.produced(name) is None]
    assert uploads and len(uploads) < len(cataloged)
    for name in uploads:  # from its first object's notification to its cataloging: one trace
        assert traces[name] == {trace_of(cataloged[name])}, name
    for name in set(cataloged) - set(uploads):
        made = lineage.produced(name)
        assert made is not None
        # The run continues the trace of its job.ready: that of the input whose cataloging made the job
        # ready, or the job's own when a prepare tick did.
        ready = trace_of(by_id[made["run"]])
        assert trace_of(cataloged[name]) == ready, name
        inputs = {trace_of(cataloged[i]) for i in made["inputs"] if i in cataloged}
        assert ready in inputs | {tracing.product_trace(made["job"]).trace_id}, name
    lines = [json.loads(line) for log in (platform.data_dir / "logs").glob("*.log") for line in log.open()
             if line.startswith("{")]  # fmt: skip
    for name in uploads:  # every line about an upload, in every function, names its trace
        about = [line for line in lines if line.get("product") == name]
        assert about and {line.get("trace_id") for line in about} == traces[name], name


def test_every_function_serves_metrics_that_moved(platform: EmbeddedPlatform) -> None:
    handled: dict[str, float] = {}
    for name, server in platform.functions.items():
        text = requests.get(f"{server.url}/metrics", timeout=10).text
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
        handled[name] = sum(s.value for s in samples if s.name == "refsys_events_handled_total")
    assert all(handled[name] > 0 for name in ("ingest", "catalog", "prepare", "launch")), handled
    ingress = urlsplit(platform.broker.ingress_url)
    broker = requests.get(f"{ingress.scheme}://{ingress.netloc}/metrics", timeout=10).text
    backlog = [s for f in text_string_to_metric_families(broker) for s in f.samples if s.name.endswith("deliveries")]
    assert sum(s.value for s in backlog if s.labels["state"] == "delivered") > 0


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
