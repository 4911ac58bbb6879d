"""`refsys up` as a person runs it, and a platform restart that must lose no queued event."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from events import ProductIngested
from shared.ingestion.upload import upload_product
from shared.platform.embedded import EmbeddedPlatform
from shared.products import write_product
from tests.e2e.test_platform import START, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]


def processes_using(directory: Path) -> list[int]:
    """Processes whose working directory or command line is inside `directory`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmdline:
            found.append(int(proc.name))
    return found


def test_up_serves_until_ctrl_c_then_leaves_nothing_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    up = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "up", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (data_dir / "endpoints.json").exists() or up.poll() is not None, "endpoints.json", 120)
        assert up.poll() is None, up.stderr.read() if up.stderr else ""
        endpoints = json.loads((data_dir / "endpoints.json").read_text())
        assert requests.get(endpoints["catalog"], timeout=10).json()["count"] == 0
        assert processes_using(data_dir)
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=120) == 0
    finally:
        if up.poll() is None:
            up.kill()
    assert not (data_dir / "endpoints.json").exists()
    assert processes_using(data_dir) == []


def test_a_restart_in_the_middle_loses_no_queued_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = EmbeddedPlatform(data_dir)
    first.start()
    try:
        # With the catalog function down, ingest's announcement waits in the broker's queue.
        catalog = first.functions["catalog"].process
        assert catalog is not None
        os.killpg(catalog.pid, signal.SIGKILL)
        catalog.wait()
        product = write_product(tmp_path, "IW_GRDH_1S", START, seed=7)
        upload_product(first.object_store(), first.settings.inbox_bucket, product)
        wait_for(
            lambda: any(
                d["type"] == ProductIngested.TYPE and d["state"] == "pending" and d["attempts"] >= 1
                for d in first.broker.deliveries()
            ),
            "the product.ingested delivery to fail once and wait for its retry",
        )
    finally:
        first.stop(storage_timeout=3.0)

    second = EmbeddedPlatform(data_dir)
    second.start()
    try:
        catalog_url = str(second.endpoints()["catalog"])
        answer = wait_for(
            lambda: requests.get(catalog_url, params={"name": product.name}, timeout=10).json()["products"],
            "the product cataloged after the restart",
        )
        assert len(answer) == 1  # type: ignore[arg-type]
    finally:
        second.stop(storage_timeout=3.0)
