"""Cold start of each function: process start to first answered request, against a bare Python HTTP
server started the same way (the floor any Python function pays)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import requests

from shared.bus.manifests import load_topology
from shared.platform.embedded import KNATIVE_DIR, REPO_ROOT
from shared.platform.ports import free_port

BARE_SERVER = (
    "import http.server, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers()\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
)


def time_to_first_answer(command: list[str], url: str, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if requests.get(url, timeout=1).status_code < 500:
                    return time.perf_counter() - started
            except requests.ConnectionError:
                time.sleep(0.005)
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}")
    finally:
        process.terminate()
        process.wait()


def run(repeats: int = 5) -> list[tuple[str, float, float]]:
    """(name, median seconds, ratio to the bare server) per function, the bare server first."""

    def median(command: list[str], path: str) -> float:
        samples = []
        for _ in range(repeats):
            port = free_port()
            concrete = [part.replace("{port}", str(port)) for part in command]
            samples.append(time_to_first_answer(concrete, f"http://127.0.0.1:{port}{path}"))
        return statistics.median(samples)

    baseline = median([sys.executable, "-c", BARE_SERVER, "{port}"], "/")
    rows = [("bare Python HTTP server (baseline)", baseline, 1.0)]
    for service in load_topology(KNATIVE_DIR).services.values():
        source = REPO_ROOT / service.env["FUNCTION_SOURCE"]
        command = [sys.executable, "-m", "functions_framework", "--source", str(source),
                   "--target", service.env["FUNCTION_TARGET"], "--host", "127.0.0.1", "--port", "{port}"]  # fmt: skip
        seconds = median(command, "/healthz")
        rows.append((f"function {service.name}", seconds, seconds / baseline))
    return rows
