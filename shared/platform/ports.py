"""Free loopback TCP ports for child servers (SeaweedFS, PostgreSQL, functions)."""

from __future__ import annotations

import socket
from collections.abc import Collection

# SeaweedFS opens a gRPC listener at http_port + 10000.
GRPC_OFFSET = 10000
_MAX_PORT = 65535


def _is_free(host: str, port: int) -> bool:
    # No SO_REUSEADDR: a port in TIME_WAIT counts as busy, which errs on the safe side.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, grpc_offset: bool = False, avoid: Collection[int] = ()) -> int:
    """Return a TCP port that is free on ``host`` right now.

    With ``grpc_offset`` also ``port + 10000`` must be free. Neither may be in ``avoid``
    (ports already handed out for the same server, twins included), so several ports picked
    in a row cannot collide.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))  # let the kernel pick a currently unused port
            port: int = s.getsockname()[1]
        if port in avoid:
            continue
        if not grpc_offset:
            return port
        twin = port + GRPC_OFFSET
        if twin > _MAX_PORT or twin in avoid:
            continue
        if _is_free(host, twin):
            return port
    raise RuntimeError(f"no free TCP port found on {host}")


def reserve_port(host: str = "127.0.0.1", *, grpc_offset: bool = False) -> list[socket.socket]:
    """A port held for a child server: a socket bound to it with SO_REUSEADDR and never listening (with
    ``grpc_offset``, its twin ``port + 10000`` held too: the first socket's port is the one to use).

    While they are open the kernel hands the port to no one else (``free_port`` elsewhere, an outgoing
    connection), yet the child may bind it (SO_REUSEADDR, as gunicorn and Go set it) and listen, and bind
    it again after a restart. ``free_port`` alone leaves a window between its check and the child's bind in
    which another process may take the port: two platforms starting together got the same one.
    """
    for _ in range(200):
        held = [_hold(host, 0)]
        port = held[0].getsockname()[1]
        if not grpc_offset:
            return held
        twin = port + GRPC_OFFSET
        # A plain bind first: it fails on a port anyone holds, reserved (SO_REUSEADDR) ones included.
        if twin <= _MAX_PORT and _is_free(host, twin):
            try:
                held.append(_hold(host, twin))
                return held
            except OSError:
                pass
        held[0].close()
    raise RuntimeError(f"no free TCP port found on {host}")


def _hold(host: str, port: int) -> socket.socket:
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind((host, port))
    except BaseException:
        held.close()
        raise
    return held
