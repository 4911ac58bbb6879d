"""A reserved port is the child's alone: nobody else is handed it, the child binds it, and binds it again
after a restart."""

import socket

from shared.platform.ports import reserve_port


def test_a_reserved_port_is_handed_to_no_one_else_and_the_child_can_bind_it_again_and_again() -> None:
    (held,) = reserve_port()
    port = held.getsockname()[1]
    try:
        handed_out = set()
        for _ in range(2000):  # what free_port elsewhere (another platform) asks the kernel for
            with socket.socket() as other:
                other.bind(("127.0.0.1", 0))
                handed_out.add(other.getsockname()[1])
        assert port not in handed_out
        for _ in range(2):  # the server, then the server restarted
            with socket.socket() as server:
                server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn and Go do
                server.bind(("127.0.0.1", port))
                server.listen()
        with socket.socket() as stranger:
            try:
                stranger.bind(("127.0.0.1", port))
            except OSError:
                pass
            else:
                raise AssertionError("a process without SO_REUSEADDR took the reserved port")
    finally:
        held.close()


def test_a_server_with_a_grpc_twin_gets_both_ports_held() -> None:
    held = reserve_port(grpc_offset=True)
    try:
        port, twin = (s.getsockname()[1] for s in held)
        assert twin == port + 10000
        with socket.socket() as stranger:
            try:
                stranger.bind(("127.0.0.1", twin))
            except OSError:
                pass
            else:
                raise AssertionError("the twin port was not held")
    finally:
        for s in held:
            s.close()
