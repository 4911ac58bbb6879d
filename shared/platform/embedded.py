"""The embedded platform behind ``refsys up``: SeaweedFS, the local broker, every function as a real
functions-framework server and the SQLite catalog, on loopback, wired by the manifests in ``knative/``."""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import requests

from shared.bus.broker import LocalBroker
from shared.bus.manifests import Destination, Topology, load_topology
from shared.platform.ping import PingTimer
from shared.platform.ports import reserve_port
from shared.platform.processes import die_with_parent, signal_group, terminate_groups
from shared.platform.seaweed import SeaweedFS
from shared.platform.supervisor import Supervised, Supervisor
from shared.security.access import OPEN_WARNING
from shared.settings import Settings
from shared.storage.objects import ObjectStore

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KNATIVE_DIR = REPO_ROOT / "knative" / "overlays" / "dev"  # what `refsys up` runs: the dev overlay
ENDPOINTS_FILE = "endpoints.json"
CREDENTIALS_FILE = "s3-credentials.json"
EVENT_SECRET_FILE = "event-secret"  # the bearer token of the platform's event senders (shared/security/senders.py)
# Everything under the data directory is the user's own: products, catalog, queue, keys.
PRIVATE_UMASK = 0o077
LOCK_FILE = "platform.lock"  # flock'ed by the running platform; holds its pid, emptied by a clean stop
# Stop budget (SIGINT/SIGTERM to exit in well under 10 s): deliveries still running after the broker's
# wait go back to pending; functions get a graceful SIGTERM first; SeaweedFS's own graceful stop takes
# ~15 s, but acknowledged writes survive its SIGKILL.
BROKER_STOP_TIMEOUT = 2.0
FUNCTIONS_STOP_TIMEOUT = 3.0
STORAGE_STOP_TIMEOUT = 3.0
NOTIFY_SERVICE = "notify"  # the Service that receives the object store's webhook
QUERY_SERVICES = {
    "catalog": "/products",
    "odata": "/odata/v1",
    "stac": "/stac",
    "web": "/",
    "operations": "",
    "lifecycle": "",
}  # HTTP APIs listed in endpoints.json, with their query path


class PlatformAlreadyRunning(RuntimeError):
    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f" (pid {pid})" if pid else ""
        super().__init__(f"a platform is already running with data directory {data_dir}{holder}")
        self.pid = pid


@dataclass
class FunctionServer:
    name: str
    target: str
    source: Path
    port: int
    serving: dict[str, str]  # WORKERS and THREADS of its Knative Service (shared.server's serving model)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exit_status(self) -> int | None:
        """None while it runs (or before its start), else how its process ended."""
        return self.process.poll() if self.process is not None else None


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
    supervisor: Supervisor = field(init=False)
    _lock: int | None = field(init=False, default=None)  # fd of the flock'ed LOCK_FILE while this one owns DIR
    _dead_pid: int | None = field(init=False, default=None)  # pid left in LOCK_FILE by a platform that died
    _held_ports: list[socket.socket] = field(init=False, default_factory=list)  # the function servers' ports

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.topology = load_topology(self.knative_dir)

    # -- lifecycle --------------------------------------------------------------------------

    def lock(self) -> None:
        """Claim the data directory for this platform, or raise :class:`PlatformAlreadyRunning`
        having changed nothing there. ``start()`` does it first; call it earlier to refuse sooner.

        An exclusive ``flock``: the kernel drops it when this process dies, however it dies, so a
        lock left by a killed platform is free again and there is no stale lock to clean up. A clean
        stop empties the file: a pid still in it names a platform that died (``start()`` recovers).
        """
        if self._lock is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # O_CREAT without O_TRUNC: opening an existing lock file leaves it as it is. Not inherited
        # by the children (Python's fds are close-on-exec): the lock lives exactly as long as we do.
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise PlatformAlreadyRunning(self.data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        self._dead_pid = _read_pid(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock = fd

    def start(self, timeout: float = 90.0) -> dict[str, object]:
        """Start everything and write ``endpoints.json`` once it all answers.

        Call it from a thread that lives as long as the platform (the main thread in ``refsys up`` and
        the tests): the children are killed when the thread that started them exits
        (:mod:`shared.platform.processes`). Last, it starts the supervisor, which restarts a child that
        dies (:mod:`shared.platform.supervisor`). First, it recovers a data directory left by a platform
        that died (one warning line).
        """
        self.lock()  # first: a second platform on this directory must not touch anything of the first
        try:
            # Inherited by every child (SeaweedFS, the functions, the runs): nothing they write is readable by
            # other local users; what an earlier version left readable is made private too.
            os.umask(PRIVATE_UMASK)
            make_private(self.data_dir)
            (self.data_dir / "logs").mkdir(exist_ok=True)
            access_key, secret_key = _credentials(self.data_dir)
            event_secret = _event_secret(self.data_dir)
            if not Settings().oidc_issuer:  # the functions inherit REFSYS_OIDC_* from this environment
                log.warning(OPEN_WARNING)
            for service in self.topology.services.values():
                env = service.env
                # Held while the platform runs: no one else gets the port, not even while its server restarts.
                held = reserve_port()[0]
                self._held_ports.append(held)
                self.functions[service.name] = FunctionServer(
                    name=service.name,
                    target=env.get("FUNCTION_TARGET", service.name),
                    source=REPO_ROOT / env.get("FUNCTION_SOURCE", f"functions/{service.name}/main.py"),
                    port=held.getsockname()[1],
                    serving=serving_environment(env),
                )
            self.seaweed = SeaweedFS(
                self.data_dir / "s3",
                s3_port=self.s3_port,
                access_key=access_key,
                secret_key=secret_key,
                webhook_url=self.functions[NOTIFY_SERVICE].url if NOTIFY_SERVICE in self.functions else None,
                webhook_token=event_secret,
                log_path=self.data_dir / "logs" / "seaweedfs.log",
            )
            self._recover()  # before the broker opens its queue: the line says first what happened
            self.settings = settings = Settings(
                s3_endpoint_url=self.seaweed.s3_endpoint,
                s3_access_key=access_key,
                s3_secret_key=secret_key,
                catalog_url=f"sqlite:///{self.data_dir / 'catalog.db'}",
                log_level=self.log_level,
                # Jobs run as local processes, with the IPF simulators standing in for ESA's processors.
                workdir_root=str(self.data_dir / "runs"),
                task_command=f"{sys.executable} -m shared.processing.simulator",
                # The broker's durable queue is the event archive (no archive function on a laptop).
                event_archive_url=f"sqlite:///{self.data_dir / 'broker.db'}",
                event_secret=event_secret,
                # The STAC API's item assets download through the OData function (on another port here).
                stac_odata_url=self.functions["odata"].url + "/odata/v1" if "odata" in self.functions else None,
                # The map client calls both APIs from the browser (CORS: shared/web/cors.py).
                web_odata_url=self.functions["odata"].url + "/odata/v1" if "odata" in self.functions else None,
                web_stac_url=self.functions["stac"].url + "/stac" if "stac" in self.functions else None,
            )
            # Binds the ingress port (K_SINK of the functions); its threads start after the children are
            # forked, so that no other thread holds a lock while a child runs its preexec_fn.
            self.broker = LocalBroker(
                self.topology,
                self.data_dir / "broker.db",
                self._resolve,
                port=self.broker_port,
                retention_s=settings.archive_retention_days * 86400,
                event_secret=event_secret,
            )
            for server in self.functions.values():
                self._start_function(server, settings)
            self.seaweed.start(timeout=timeout)
            # The ingress socket listens since its construction: anything sent earlier waits in its backlog.
            self.broker.start()
            self.seaweed.create_buckets([settings.inbox_bucket, settings.quarantine_bucket, settings.deadletter_bucket])
            self._wait_until_answering(timeout)
            self.pings = PingTimer(self.topology.ping_sources(), self._resolve, event_secret=event_secret)
            self.pings.start()
            self.supervisor = Supervisor(self._supervised())
            self.supervisor.start()
        except BaseException:
            self.stop()
            raise
        endpoints = self.endpoints()
        (self.data_dir / ENDPOINTS_FILE).write_text(json.dumps(endpoints, indent=2) + "\n")
        return endpoints

    def stop(self, storage_timeout: float = STORAGE_STOP_TIMEOUT) -> None:
        """Stop accepting first (broker), then the functions, then storage; leave nothing running.

        A few seconds: the broker waits ``BROKER_STOP_TIMEOUT`` for running deliveries, the functions
        get ``FUNCTIONS_STOP_TIMEOUT`` after their SIGTERM, SeaweedFS ``storage_timeout`` (its graceful
        stop takes ~15 s; acknowledged writes survive the SIGKILL). A platform that does not own the
        data directory (never started, refused, or already stopped) has nothing to stop and touches nothing.
        """
        if self._lock is None:
            return
        try:
            if hasattr(self, "supervisor"):
                self.supervisor.pause()  # first: nothing is restarted while it all stops
            (self.data_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
            if hasattr(self, "pings"):
                self.pings.stop()
            if hasattr(self, "broker"):
                self.broker.stop(timeout=BROKER_STOP_TIMEOUT)
            processes = [server.process for server in self.functions.values() if server.process is not None]
            for pid in terminate_groups(processes, FUNCTIONS_STOP_TIMEOUT):
                log.warning("function server %d did not stop in %.0f s: killed", pid, FUNCTIONS_STOP_TIMEOUT)
            if hasattr(self, "seaweed"):
                self.seaweed.stop(timeout=storage_timeout)
            os.ftruncate(self._lock, 0)  # stopped cleanly: nothing for the next start to recover
        finally:
            if hasattr(self, "supervisor"):
                self.supervisor.release()  # the children it restarted are stopped: its thread may end
            for held in self._held_ports:
                held.close()
            self._held_ports.clear()
            os.close(self._lock)  # last: the directory is free once nothing of ours runs on it
            self._lock = None

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

    def _recover(self) -> None:
        """Clean up after a platform that died on this data directory, in one line when there was one.

        Its children died with it (``PR_SET_PDEATHSIG``) and the kernel freed its lock; left are its
        endpoints.json, which would point commands at dead ports, and SeaweedFS's state and sockets.
        Its broker queue needs nothing: deliveries it had in flight go back to pending when opened.
        """
        found = self.seaweed.recover_leftovers()
        endpoints = self.data_dir / ENDPOINTS_FILE
        if endpoints.exists():
            endpoints.unlink()
            found.insert(0, ENDPOINTS_FILE)
        if self._dead_pid is not None or found:
            holder = f" (pid {self._dead_pid})" if self._dead_pid is not None else ""
            removed = f": removed {', '.join(found)}" if found else ""
            log.warning("recovered data directory %s left by a platform that died%s%s", self.data_dir, holder, removed)

    def _supervised(self) -> list[Supervised]:
        logs = self.data_dir / "logs"
        children = [
            Supervised(
                name=f"function server {server.name} (port {server.port})",
                log_path=logs / f"{server.name}.log",
                exit_status=server.exit_status,
                restart=functools.partial(self._restart_function, server),
            )
            for server in self.functions.values()
        ]
        children.append(
            Supervised(
                name=f"SeaweedFS (S3 port {self.seaweed.s3_port})",
                log_path=self.seaweed.log_path,
                exit_status=lambda: self.seaweed.returncode,
                restart=self.seaweed.restart,
            )
        )
        return children

    def _restart_function(self, server: FunctionServer) -> None:
        if server.process is not None:
            # gunicorn workers outlive a SIGKILLed master for a moment, holding its port: sweep its group.
            signal_group(server.process.pid, signal.SIGKILL)
        self._start_function(server, self.settings)

    def _start_function(self, server: FunctionServer, settings: Settings) -> None:
        env = function_environment(settings, server.serving, server.name, self.broker.ingress_url)
        log_file = (self.data_dir / "logs" / f"{server.name}.log").open("ab")
        server.process = subprocess.Popen(
            function_command(server.source, server.target, server.port),
            env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=self.data_dir,
            # Own session, so Ctrl-C reaches `refsys up` only and it stops the functions in order; then
            # they must be told to die with it. gunicorn's workers exit when their master dies.
            start_new_session=True, preexec_fn=die_with_parent(),
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


def function_command(source: Path, target: str, port: int) -> list[str]:
    """How the platform starts a function: ``shared.server``, as the Knative Service's container does
    (the benchmarks start functions with it too, so what they measure is what runs)."""
    return [sys.executable, "-m", "shared.server", "--source", str(source), "--target", target,
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip


def serving_environment(service_env: Mapping[str, str]) -> dict[str, str]:
    """The app-server settings of a Service's container (``shared.server``'s serving model), for its local run."""
    from shared.server import DEFAULT_THREADS, DEFAULT_WORKERS

    return {
        "WORKERS": service_env.get("WORKERS", str(DEFAULT_WORKERS)),
        "THREADS": service_env.get("THREADS", str(DEFAULT_THREADS)),
    }


def function_environment(settings: Settings, serving: dict[str, str], name: str, sink: str) -> dict[str, str]:
    """The environment of a function's process: this one's, the settings as ``REFSYS_*``, its serving model."""
    return {
        **os.environ,
        **{f"REFSYS_{k.upper()}": str(v) for k, v in settings.model_dump(exclude={"sink"}).items() if v is not None},
        "K_SINK": sink,
        **serving,
        "K_SERVICE": name,  # as Knative names it: on every log line
        "PYTHONUNBUFFERED": "1",
    }


def _credentials(data_dir: Path) -> tuple[str, str]:
    """S3 keys of this data directory: made once, kept private to the user."""
    path = data_dir / CREDENTIALS_FILE
    if not path.exists():
        path.write_text(json.dumps({"accessKey": "refsys", "secretKey": secrets.token_urlsafe(24)}))
        path.chmod(0o600)
    keys = json.loads(path.read_text())
    return keys["accessKey"], keys["secretKey"]


def _event_secret(data_dir: Path) -> str:
    """The secret the platform's senders show the functions: made once, kept private to the user."""
    path = data_dir / EVENT_SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def make_private(root: Path) -> None:
    """Directories 0700 and files 0600 (0700 if executable) under ``root``, so other users read nothing."""
    for directory, subdirectories, files in os.walk(root):
        os.chmod(directory, 0o700)
        for name in files:
            path = Path(directory, name)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod(0o700 if mode & 0o100 else 0o600)
        subdirectories[:] = [d for d in subdirectories if not Path(directory, d).is_symlink()]


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None  # empty while its holder is between flock and write


def running_pid(data_dir: Path) -> int | None:
    """Pid of the platform running with ``data_dir``, None when there is none or it was killed.

    Read-only (no lock is taken, so a ``refsys up`` starting now cannot be refused because of us): the
    pid in the lock file, if that process is alive. A reused pid reads as running.
    """
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        pid = _read_pid(fd)
    finally:
        os.close(fd)
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return pid


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread, as Ctrl-C does, so that both stop the
    platform in order (a background job of a non-interactive shell starts with SIGINT ignored)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def wait_until_interrupted() -> None:
    """Block until Ctrl-C or SIGTERM."""
    interrupt_on_sigterm()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
