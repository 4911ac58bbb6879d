"""The function server with more than one worker: /metrics counts what every worker did."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.platform.embedded import REPO_ROOT, function_command
from shared.platform.ports import free_port

REQUESTS = 40


def _odata_requests(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "refsys_http_requests_total" and sample.labels["function"] == "odata"
    )


def test_a_scrape_counts_the_requests_of_every_worker(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "WORKERS": "2",
        "THREADS": "2",
        "REFSYS_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
        "REFSYS_LOG_LEVEL": "WARNING",
        "TMPDIR": str(tmp_path),  # where the server makes its metrics directory: this test's own
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = function_command(REPO_ROOT / "functions" / "odata" / "main.py", "odata", port)
    server = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        for _ in range(REQUESTS - 1):  # a new connection each time: both workers take some
            answer = requests.get(f"{url}/odata/v1/Products?$top=1", timeout=10, headers={"Connection": "close"})
            assert answer.status_code == 200, answer.text
        scrapes = [requests.get(f"{url}/metrics", timeout=10, headers={"Connection": "close"}) for _ in range(6)]
        # /healthz once (the first answered probe) and the queries; scrapes are not counted.
        assert {_odata_requests(s.text) for s in scrapes} == {REQUESTS}
        assert len(list(tmp_path.glob("refsys-metrics-*"))) == 1, "the workers share one metrics directory"
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert not list(tmp_path.glob("refsys-metrics-*")), "the metrics directory is left"
