"""Child server processes (SeaweedFS, functions) that never outlive the platform that started them.

They run in their own sessions (so a Ctrl-C reaches the platform only, which stops them in order),
and a child in its own session is not killed with its parent: orphaned servers were found holding
ports and the SeaweedFS lock of a data directory. So every child asks Linux to SIGKILL it when its
parent dies (``PR_SET_PDEATHSIG``), even when the parent itself was SIGKILLed.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits, not the process: start
children from a thread that lives as long as they should (the main thread in ``refsys up``,
``refsys demo`` and the tests; for restarted children, the supervisor's thread, which stays alive until
the platform has stopped them: :mod:`shared.platform.supervisor`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_SIGKILL = int(signal.SIGKILL)


def _load_prctl() -> Callable[..., int] | None:
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except AttributeError:  # not Linux: children are not tied to their parent there
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


# Resolved here, in the parent: between fork and exec the child only makes the call (no dlopen, no
# import, nothing that could wait on a lock another thread of the parent held at the fork).
_prctl = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child is SIGKILLed when this process dies.

    The signal survives the ``exec``. If this process died between the fork and the ``prctl``, the
    child was already re-parented and the signal would never come: it exits at once instead.
    None (no ``preexec_fn``) where there is no ``prctl``.
    """
    if _prctl is None:
        return None
    prctl, parent = _prctl, os.getpid()

    def setup() -> None:  # runs in the child, between fork and exec
        if prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0) != 0:
            os._exit(126)  # it would not die with us: better not started than orphaned later
        if os.getppid() != parent:
            os._exit(1)

    return setup


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def terminate_groups(processes: Iterable[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """Stop process-group leaders started with ``start_new_session``: SIGTERM to every group at once,
    wait for all together up to ``timeout`` s, then SIGKILL every group (which also sweeps members left
    behind by a leader that exited, e.g. gunicorn workers). Returns the pids that needed the SIGKILL."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = []
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed.append(process.pid)
    for process in running:
        signal_group(process.pid, signal.SIGKILL)
        process.wait()
    return killed
