"""A throwaway PostgreSQL + PostGIS server on loopback, for tests and local experiments.

``initdb`` into a fresh temporary directory, start on a free 127.0.0.1 port with trust auth and
no durability (fsync off), install PostGIS in ``template1`` (so every database created later has
it) and create the database ``refsys``. ``stop()`` shuts it down and deletes everything.

PostgreSQL refuses to run as root. As root, the server runs as an unprivileged user (``postgres``
if it exists, else ``nobody``): the subprocesses switch to it themselves (``subprocess`` ``user=``,
``group=``, ``extra_groups=[]``), the directory is chowned to it and placed where it can reach it.
A PostgreSQL server already running on this machine is never used.
"""

from __future__ import annotations

import atexit
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from shared.platform.ports import free_port

if TYPE_CHECKING:
    import psycopg  # imported lazily at run time: only tests and local runs start a server

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
DATABASE = "refsys"
_BINARIES = ("initdb", "pg_ctl", "postgres")
_DEBIAN_ROOT = Path("/usr/lib/postgresql")  # Debian/Ubuntu: one bin directory per major version
_UNPRIVILEGED_USERS = ("postgres", "nobody")
_START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it

# Test settings: durability off (a crash loses a throwaway cluster, nothing else), small memory,
# TCP on loopback only and no Unix socket (nothing to collide with a system server's socket).
_SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 100
log_min_messages = warning
"""


class PostgresNotInstalled(RuntimeError):
    """The PostgreSQL server binaries or the PostGIS extension are not installed."""


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _BINARIES)


def _major_version(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.name))


def postgres_bindir() -> Path | None:
    """Directory holding initdb, pg_ctl and postgres: ``pg_config --bindir``, then the highest
    ``/usr/lib/postgresql/<version>/bin``, then PATH. None when not installed."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(result.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            log.debug("pg_config --bindir failed", exc_info=True)
    if _DEBIAN_ROOT.is_dir():
        versions = sorted(_DEBIAN_ROOT.iterdir(), key=_major_version, reverse=True)
        candidates.extend(v / "bin" for v in versions if _major_version(v))
    initdb = shutil.which("initdb")
    if initdb:
        # A symlink in PATH: pg_ctl looks for `postgres` beside its real location.
        candidates.extend([Path(initdb).parent, Path(initdb).resolve().parent])
    return next((c for c in candidates if _has_binaries(c)), None)


def _server_account() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in _UNPRIVILEGED_USERS:
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        return account.pw_uid, account.pw_gid
    raise RuntimeError(f"running as root and none of the users {_UNPRIVILEGED_USERS} exists to run PostgreSQL")


def _reachable_by_others(directory: Path) -> bool:
    """Every ancestor searchable by "others": the unprivileged user can reach a directory inside."""
    path = directory.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents))


class TemporaryPostgres:
    """A PostgreSQL + PostGIS server in a temporary directory; a context manager.

    ``url`` connects as superuser ``postgres`` (trust auth) to the database ``refsys``.
    """

    def __init__(self, base_dir: Path | None = None, port: int | None = None, settings: str = "") -> None:
        """``settings``: postgresql.conf lines after the test settings (a later line wins)."""
        self._base_dir = base_dir
        self._settings = _SETTINGS + settings
        self._fixed_port = port
        self._port: int | None = None
        self._root: Path | None = None
        self._account: tuple[int, int] | None = None
        self._bindir: Path | None = None

    # -- public ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("TemporaryPostgres is not started")
        return self._port

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self._root is not None:
            raise RuntimeError("TemporaryPostgres already started")
        bindir = postgres_bindir()
        if bindir is None:
            raise PostgresNotInstalled("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
        began = time.monotonic()
        self._bindir = bindir
        self._account = _server_account()
        self._root = self._make_root()
        atexit.register(self.stop)  # a forgotten or interrupted server must not outlive the tests
        try:
            self._initdb()
            self._start_server()
            self._create_databases()
        except BaseException:
            self.stop()
            raise
        log.info(
            "temporary PostgreSQL on port %d ready in %.2f s",
            self.port,
            time.monotonic() - began,
            extra={"data_dir": str(self._root)},
        )

    def stop(self) -> None:
        """Fast shutdown (open sessions are disconnected), then delete the directory."""
        root = self._root
        if root is None:
            return
        atexit.unregister(self.stop)
        pid_file = root / "data" / "postmaster.pid"
        try:
            if pid_file.exists():
                self._pg_ctl("-D", str(root / "data"), "-m", "fast", "-w", "-t", "60", "stop")
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("stopping temporary PostgreSQL failed (%s); killing its postmaster", exc)
            self._kill_postmaster(pid_file)
        finally:
            self._root = None
            self._port = None
            shutil.rmtree(root, ignore_errors=True)

    @staticmethod
    def _kill_postmaster(pid_file: Path) -> None:
        try:
            pid = int(pid_file.read_text().split()[0])  # first line: the postmaster we started
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError) as exc:
            log.warning("could not kill the temporary PostgreSQL: %s", exc)

    def create_database(self, name: str, template: str = "template1") -> str:
        """Create database ``name`` (PostGIS included, from template1) and return its URL."""
        from psycopg import sql

        with self._admin_connection() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            )
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, disconnecting whoever is still connected to it."""
        from psycopg import sql

        with self._admin_connection() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------------

    def _make_root(self) -> Path:
        parent = self._base_dir or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        if self._account is not None and not _reachable_by_others(parent):
            if self._base_dir is not None:
                raise RuntimeError(
                    f"{parent} is not reachable by the unprivileged PostgreSQL user; pick another base_dir"
                )
            parent = Path("/tmp")  # e.g. TMPDIR under /root
        root = Path(tempfile.mkdtemp(prefix="refsys-postgres-", dir=parent))
        if self._account is not None:
            os.chown(root, *self._account)
        return root

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary, as the unprivileged account when we are root."""
        assert self._bindir is not None and self._root is not None
        # PG* variables of the caller (PGPORT, PGDATA, ...) must not steer the throwaway server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(HOME=str(self._root), LC_ALL="C")
        account: dict[str, Any] = {}
        if self._account is not None:
            uid, gid = self._account
            account = {"user": uid, "group": gid, "extra_groups": []}
        command = [str(self._bindir / args[0]), *args[1:]]
        result = subprocess.run(
            command, cwd=self._root, env=env, capture_output=True, text=True, timeout=timeout, check=False, **account
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
        return result

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", *args)

    def _initdb(self) -> None:
        assert self._root is not None
        data = self._root / "data"
        try:
            self._run(
                "initdb", "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed ({exc.returncode}): {exc.stderr.strip()}") from exc
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(self._settings)

    def _start_server(self) -> None:
        assert self._root is not None
        data, logfile = self._root / "data", self._root / "postgres.log"
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._port = self._fixed_port or free_port()
            try:
                self._pg_ctl("-D", str(data), "-l", str(logfile), "-o", f"-p {self._port}", "-w", "-t", "60", "start")
                return
            except subprocess.CalledProcessError as exc:
                tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else exc.stderr
                port_taken = "could not bind" in tail or "already in use" in tail
                if self._fixed_port is not None or attempt == _START_ATTEMPTS or not port_taken:
                    raise RuntimeError(f"PostgreSQL did not start on port {self._port}:\n{tail}") from exc
                log.info("port %d was taken before PostgreSQL bound it; trying another", self._port)

    def _admin_connection(self, database: str = "postgres") -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self.url_for(database), autocommit=True, connect_timeout=10)

    def _create_databases(self) -> None:
        import psycopg

        # In template1, so that every database created afterwards has PostGIS too.
        with self._admin_connection("template1") as conn:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile) as exc:
                raise PostgresNotInstalled(f"PostGIS is not installed for PostgreSQL in {self._bindir}: {exc}") from exc
        self.create_database(DATABASE)
