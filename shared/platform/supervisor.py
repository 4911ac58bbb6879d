"""Supervision of the embedded platform's child servers: a dead one is started again, with backoff.

A child that exits (killed, crashed, out of memory) is restarted after ``Backoff.delay`` seconds: 0.5 s
after its first death, doubling on each further one up to 10 s, and back to 0.5 s once it stayed up for
``reset_after`` seconds. One warning per restart names the child, how it ended and its log file.

Threads: ``PR_SET_PDEATHSIG`` (:mod:`shared.platform.processes`) kills a child when the *thread* that
forked it exits. The supervisor thread forks the restarted children itself, so it must live as long as
they may: it stops restarting when ``pause()`` is called, then stays parked (alive) until ``release()``,
which the platform calls only after it has stopped every child. Its restarts therefore never race with
``stop()``, and no restarted child is SIGKILLed early by its forking thread's exit.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Wait before restarting a child that died ``deaths`` times in a row."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 10.0
    # Up for this long after a restart: its next death counts as a first one again.
    reset_after: float = 30.0

    def delay(self, deaths: int) -> float:
        if deaths < 1:
            raise ValueError("deaths starts at 1")
        return float(min(self.maximum, self.initial * self.factor ** (deaths - 1)))


@dataclass(frozen=True)
class Supervised:
    """A child server as the supervisor sees it.

    ``exit_status``: None while it runs, else its ``Popen.returncode`` (negative: killed by that signal).
    ``restart``: start it again (same port, same settings); returns without waiting for it to answer.
    """

    name: str
    log_path: Path
    exit_status: Callable[[], int | None]
    restart: Callable[[], None]


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exited with code {status}"


@dataclass
class _Watch:
    child: Supervised
    up_since: float
    deaths: int = 0  # in a row: reset once it stayed up for Backoff.reset_after
    restart_at: float | None = None  # set while it is dead and waits for its restart


class Supervisor:
    """Watches children every ``interval`` seconds from one thread, restarting the dead ones.

    ``check()`` is one pass and can be driven directly (with a fake ``clock``) in tests.
    """

    def __init__(
        self,
        children: Iterable[Supervised],
        *,
        backoff: Backoff | None = None,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.interval = interval
        self._clock = clock
        now = clock()
        self._watches = [_Watch(child, up_since=now) for child in children]
        self._stopping = threading.Event()
        self._parked = threading.Event()
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._run, name="platform-supervisor", daemon=True)
        self.restarts = 0

    def check(self) -> None:
        """Notice deaths, restart the children whose backoff has passed, forget old deaths."""
        for watch in self._watches:
            now = self._clock()
            if watch.restart_at is None:
                status = watch.child.exit_status()
                if status is None:
                    if watch.deaths and now - watch.up_since >= self.backoff.reset_after:
                        watch.deaths = 0
                    continue
                watch.deaths += 1
                delay = self.backoff.delay(watch.deaths)
                watch.restart_at = now + delay
                log.warning(
                    "%s %s; restarting it in %.1f s (death %d in a row); log: %s",
                    watch.child.name,
                    describe_exit(status),
                    delay,
                    watch.deaths,
                    watch.child.log_path,
                )
            if now < watch.restart_at or self._stopping.is_set():
                continue
            watch.restart_at = None
            watch.up_since = now
            try:
                watch.child.restart()
                self.restarts += 1
            except Exception:
                # Seen as dead again at the next pass, which schedules the next try with a longer wait.
                log.exception("restarting %s failed", watch.child.name)

    # -- thread ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def pause(self, timeout: float = 10.0) -> None:
        """Stop restarting; returns once no restart is under way (the thread stays alive, parked)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._parked.wait(timeout)

    def release(self, timeout: float = 10.0) -> None:
        """Let the thread end: call it once the children it may have forked are stopped."""
        self._stopping.set()
        self._released.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self.check()
                except Exception:  # never let a bug end the thread: its children would die with it
                    log.exception("supervisor pass failed")
                self._stopping.wait(self.interval)
        finally:
            self._parked.set()
            self._released.wait()
