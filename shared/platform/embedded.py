"""The embedded platform behind ``refsys up``: SeaweedFS, the local broker, every function as a real
functions-framework server and the SQLite catalog, on loopback, wired by the manifests in ``knative/``."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import requests

from shared.bus.broker import LocalBroker
from shared.bus.manifests import Destination, Topology, load_topology
from shared.platform.ping import PingTimer
from shared.platform.ports import free_port
from shared.platform.seaweed import SeaweedFS
from shared.settings import Settings
from shared.storage.objects import ObjectStore

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KNATIVE_DIR = REPO_ROOT / "knative"
ENDPOINTS_FILE = "endpoints.json"
CREDENTIALS_FILE = "s3-credentials.json"
NOTIFY_SERVICE = "notify"  # the Service that receives the object store's webhook
QUERY_SERVICES = {
    "catalog": "/products",
    "odata": "/odata/v1",
}  # HTTP APIs listed in endpoints.json, with their query path


@dataclass
class FunctionServer:
    name: str
    target: str
    source: Path
    port: int
    threads: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class EmbeddedPlatform:
    data_dir: Path
    knative_dir: Path = KNATIVE_DIR
    s3_port: int | None = None
    broker_port: int = 0
    log_level: str = "INFO"
    topology: Topology = field(init=False)
    seaweed: SeaweedFS = field(init=False)
    broker: LocalBroker = field(init=False)
    functions: dict[str, FunctionServer] = field(init=False, default_factory=dict)
    settings: Settings = field(init=False)
    pings: PingTimer = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.topology = load_topology(self.knative_dir)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> dict[str, object]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        (self.data_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
        access_key, secret_key = _credentials(self.data_dir)
        for service in self.topology.services.values():
            env = service.env
            self.functions[service.name] = FunctionServer(
                name=service.name,
                target=env.get("FUNCTION_TARGET", service.name),
                source=REPO_ROOT / env.get("FUNCTION_SOURCE", f"functions/{service.name}/main.py"),
                port=free_port(),
                threads=env.get("THREADS", "4"),
            )
        try:
            self.broker = LocalBroker(self.topology, self.data_dir / "broker.db", self._resolve, port=self.broker_port)
            self.broker.start()
            self.seaweed = SeaweedFS(
                self.data_dir / "s3",
                s3_port=self.s3_port,
                access_key=access_key,
                secret_key=secret_key,
                webhook_url=self.functions[NOTIFY_SERVICE].url if NOTIFY_SERVICE in self.functions else None,
                log_path=self.data_dir / "logs" / "seaweedfs.log",
            )
            self.settings = settings = Settings(
                s3_endpoint_url=self.seaweed.s3_endpoint,
                s3_access_key=access_key,
                s3_secret_key=secret_key,
                catalog_url=f"sqlite:///{self.data_dir / 'catalog.db'}",
                log_level=self.log_level,
            )
            for server in self.functions.values():
                self._start_function(server, settings)
            self.seaweed.start(timeout=timeout)
            self.seaweed.create_buckets([settings.inbox_bucket, settings.quarantine_bucket, settings.deadletter_bucket])
            self._wait_until_answering(timeout)
            self.pings = PingTimer(self.topology.ping_sources(), self._resolve)
            self.pings.start()
        except BaseException:
            self.stop()
            raise
        endpoints = self.endpoints()
        (self.data_dir / ENDPOINTS_FILE).write_text(json.dumps(endpoints, indent=2) + "\n")
        return endpoints

    def stop(self, storage_timeout: float = 30.0) -> None:
        """Stop accepting first (broker), then the functions, then storage; leave nothing running.

        SeaweedFS drains for about 15 s before it exits; it is killed after ``storage_timeout``.
        """
        (self.data_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
        if hasattr(self, "pings"):
            self.pings.stop()
        if hasattr(self, "broker"):
            self.broker.stop()
        for server in self.functions.values():
            _terminate(server.process, name=server.name)
        if hasattr(self, "seaweed"):
            self.seaweed.stop(timeout=storage_timeout)

    def __enter__(self) -> EmbeddedPlatform:
        self.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self.stop()

    def object_store(self) -> ObjectStore:
        return ObjectStore(self.settings)

    def endpoints(self) -> dict[str, object]:
        urls: dict[str, object] = {"s3": self.seaweed.s3_endpoint, "broker": self.broker.ingress_url}
        for name, path in QUERY_SERVICES.items():
            if name in self.functions:
                urls[name] = self.functions[name].url + path
        urls["functions"] = {name: server.url for name, server in self.functions.items()}
        return urls

    # -- internals ----------------------------------------------------------------------------

    def _resolve(self, destination: Destination) -> str:
        if destination.ref is None:
            if not destination.uri:
                raise ValueError("a Destination needs a ref or a uri")
            return destination.uri
        server = self.functions.get(destination.ref.name)
        if server is None:
            raise LookupError(f"no local function for {destination.ref.kind} {destination.ref.name!r}")
        return server.url + (destination.uri or "")

    def _start_function(self, server: FunctionServer, settings: Settings) -> None:
        env = {
            **os.environ,
            **{
                f"REFSYS_{k.upper()}": str(v) for k, v in settings.model_dump(exclude={"sink"}).items() if v is not None
            },
            "K_SINK": self.broker.ingress_url,
            "THREADS": server.threads,
            "PYTHONUNBUFFERED": "1",
        }
        log_file = (self.data_dir / "logs" / f"{server.name}.log").open("ab")
        server.process = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--source", str(server.source), "--target", server.target,
             "--host", "127.0.0.1", "--port", str(server.port)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True,
        )  # fmt: skip
        log_file.close()

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {name: server.url + "/healthz" for name, server in self.functions.items()}
        broker = urlsplit(self.broker.ingress_url)
        pending["broker"] = f"{broker.scheme}://{broker.netloc}/healthz"
        while pending:
            for name, url in list(pending.items()):
                server = self.functions.get(name)
                if server and server.process and server.process.poll() is not None:
                    raise RuntimeError(f"function {name} exited; see {self.data_dir / 'logs' / (name + '.log')}")
                try:
                    if requests.get(url, timeout=1).status_code == 200:
                        del pending[name]
                except requests.RequestException:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not answering after {timeout:.0f} s: {', '.join(sorted(pending))}")
            time.sleep(0.1)


def _credentials(data_dir: Path) -> tuple[str, str]:
    """S3 keys of this data directory: made once, kept private to the user."""
    path = data_dir / CREDENTIALS_FILE
    if not path.exists():
        path.write_text(json.dumps({"accessKey": "refsys", "secretKey": secrets.token_urlsafe(24)}))
        path.chmod(0o600)
    keys = json.loads(path.read_text())
    return keys["accessKey"], keys["secretKey"]


def _terminate(process: subprocess.Popen[bytes] | None, *, name: str, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0f s; killing it", name, timeout)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def wait_until_interrupted() -> None:
    """Block until Ctrl-C or SIGTERM."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
