"""Cold start: process spawn to the first *real* answer, per function, against a bare functions-framework
"hello" measured in the same run (the floor any function served by functions-framework pays).

Each function is started with the embedded platform's command and environment (``tests/bench/serving.py``).
The first real answer is, for the query functions (odata, stac, and catalog's ``GET /products``), a query
that opens the store and returns 100 products of a 20,000-entry catalog; for notify, a SeaweedFS webhook
turned into an ``object.created`` event and posted to a sink that answers 202. The other event functions need
SeaweedFS and the broker for an event handled end to end: for them the row is spawn to ``/healthz`` (said so
in its name). The median of ``REFSYS_BENCH_COLD_REPEATS`` (default 5) spawns.
"""

from __future__ import annotations

import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shared.bus.manifests import load_topology
from shared.platform.embedded import KNATIVE_DIR
from shared.platform.ports import free_port
from shared.settings import Settings
from tests.bench import catalog_data
from tests.bench.serving import Client, Served, start, stop

HELLO = "import functions_framework\n\n\n@functions_framework.http\ndef hello(request):\n    return 'hello'\n"
EVENTS = Path(__file__).resolve().parents[1] / "events"
SECRET = "bench-secret"
QUERY_ENTRIES = 20_000
# The first real answer of each function that has one without SeaweedFS and the broker: (method, path, body).
FIRST_ANSWERS: dict[str, tuple[str, str, bytes]] = {
    "odata": ("GET", "/odata/v1/Products?$top=100&$filter=ContentDate/Start%20ge%202024-01-01T00:00:00Z", b""),
    "stac": ("GET", "/stac/search?limit=100", b""),
    "catalog": ("GET", "/products?limit=100", b""),
    "notify": ("POST", "/", (EVENTS / "seaweedfs-filer-create.json").read_bytes()),
}


def first_answer(request: Callable[[], tuple[int, bytes]], spawned: float, process: subprocess.Popen[bytes]) -> float:
    """Seconds from ``spawned`` to the first successful answer (connection refused until the server listens)."""
    while True:
        try:
            status, body = request()
            if status < 300:
                return time.perf_counter() - spawned
            raise RuntimeError(f"first answer {status}: {body[:300]!r}")
        except ConnectionError:
            time.sleep(0.002)
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")


def hello_seconds(workdir: Path) -> float:
    source = workdir / "hello.py"
    source.write_text(HELLO)
    port = free_port()
    command = [sys.executable, "-m", "functions_framework", "--source", str(source), "--target", "hello",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    spawned = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return first_answer(lambda: Client(port).get("/"), spawned, process)
    finally:
        stop(Served("hello", port, process, {}))


def function_seconds(name: str, settings: Settings, workdir: Path) -> float:
    spawned = time.perf_counter()
    function = start(name, settings, workdir / f"{name}.log")
    method, path, body = FIRST_ANSWERS.get(name, ("GET", "/healthz", b""))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"}

    def request() -> tuple[int, bytes]:
        client = Client(function.port)
        try:
            return client.get(path) if method == "GET" else client.post(path, body, headers)
        finally:
            client.close()

    try:
        seconds = first_answer(request, spawned, function.process)
        if name in FIRST_ANSWERS and method == "GET":
            answered = json.loads(request()[1])
            found = answered.get("value") or answered.get("features") or answered.get("products") or []
            assert len(found) == 100, f"{name}'s first answer has {len(found)} products, not 100"
        return seconds
    finally:
        stop(function)


class _Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run(repeats: int | None = None) -> list[tuple[str, float, float]]:
    """(name, median seconds, ratio to the bare hello) per function, the hello first."""
    repeats = repeats or int(os.environ.get("REFSYS_BENCH_COLD_REPEATS", "5"))
    path = catalog_data.sqlite_catalog(QUERY_ENTRIES)
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    settings = Settings(catalog_url=f"sqlite:///{path}", event_secret=SECRET)
    settings.sink = f"http://127.0.0.1:{sink.server_port}/"  # K_SINK, as Knative injects it
    names = sorted(load_topology(KNATIVE_DIR).services)
    samples: dict[str, list[float]] = {name: [] for name in ["hello", *names]}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for _ in range(repeats):  # interleaved: each function and the hello meet the same machine noise
                samples["hello"].append(hello_seconds(workdir))
                for name in names:
                    samples[name].append(function_seconds(name, settings, workdir))
    finally:
        sink.shutdown()
    baseline = statistics.median(samples["hello"])
    rows = [("bare functions-framework hello (baseline)", baseline, 1.0)]
    for name in names:
        seconds = statistics.median(samples[name])
        what = FIRST_ANSWERS[name][1].split("?")[0] if name in FIRST_ANSWERS else "/healthz only"
        rows.append((f"function {name}: first real answer ({what})", seconds, seconds / baseline))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row[0]:70s} {row[1]:8.3f} {row[2]:6.2f}")
