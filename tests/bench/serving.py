"""A function served as the platform serves it, and a keep-alive client over loopback, for the benchmarks.

``served(name, ...)`` starts the function with the embedded platform's own command and environment
(``shared.platform.embedded.function_command`` / ``function_environment``), so the app server, its workers
and threads are those of the function's Knative Service; it waits for ``/healthz`` and stops the whole
process group at the end.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.bus.manifests import load_topology
from shared.platform.embedded import (
    KNATIVE_DIR,
    REPO_ROOT,
    function_command,
    function_environment,
    serving_environment,
)
from shared.platform.ports import free_port
from shared.settings import Settings


@dataclass
class Served:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    serving: dict[str, str]

    def pids(self) -> list[int]:
        """The app server's master and its workers."""
        return [self.process.pid, *_children(self.process.pid)]

    def worker_rss_mib(self) -> list[float]:
        """Resident memory of each worker (MiB): what one function process holds."""
        return [_rss_mib(pid) for pid in _children(self.process.pid)]

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and its workers so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total


def service_of(name: str) -> tuple[Path, str, dict[str, str]]:
    service = load_topology(KNATIVE_DIR).services[name]
    env = service.env
    return REPO_ROOT / env["FUNCTION_SOURCE"], env.get("FUNCTION_TARGET", name), serving_environment(env)


def start(name: str, settings: Settings, log_path: Path, serving: dict[str, str] | None = None) -> Served:
    """Spawn the function (without waiting): its command and environment are the platform's."""
    source, target, default_serving = service_of(name)
    chosen = {**default_serving, **(serving or {})}
    port = free_port()
    env = function_environment(settings, chosen, name, settings.sink or "http://127.0.0.1:9/")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            function_command(source, target, port),
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent, start_new_session=True,
        )  # fmt: skip
    return Served(name, port, process, chosen)


def stop(served: Served) -> None:
    try:
        os.killpg(served.process.pid, signal.SIGTERM)
        served.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(served.process.pid, signal.SIGKILL)
        served.process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def served(
    name: str, settings: Settings, log_path: Path, serving: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[Served]:
    function = start(name, settings, log_path, serving)
    try:
        wait_answering(function, "/healthz", timeout)
        yield function
    finally:
        stop(function)


def wait_answering(function: Served, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if function.process.poll() is not None:
            raise RuntimeError(f"function {function.name} exited with {function.process.returncode}")
        try:
            status, _ = Client(function.port).get(path)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"function {function.name} not answering {path} after {timeout} s")
        time.sleep(0.005)


class Client:
    """One keep-alive HTTP/1.1 connection (http.client: the lightest client, the machine has 2 cores)."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self._connection.request("GET", path)
            response = self._connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self._connection.close()  # the server closed an idle connection: once more on a new one
            self._connection.request("GET", path)
            response = self._connection.getresponse()
        return response.status, response.read()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self._connection.request("POST", path, body=body, headers=headers)
        response = self._connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._connection.close()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
