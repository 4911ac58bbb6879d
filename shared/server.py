"""The function server: one function of ``functions/`` behind gunicorn, as functions-framework serves it,
with what the framework does not give.

- ``GET /metrics``: the function's Prometheus metrics (``shared.observability.metrics``), summed over its
  workers: with more than one, each worker writes its values to files in a directory of the server's own
  (``PROMETHEUS_MULTIPROC_DIR``, the Prometheus client's multiprocess mode) and a scrape reads them all;
  else a scrape would see only the worker that took it, and counters would jump as workers alternate.
- Every request counted and timed by method and status, and logged as JSON with the function's name.
- A keep-alive longer than the idle timeout of the clients that call functions (Go's HTTP transport keeps
  an idle connection 90 s: SeaweedFS's webhook, Knative's queue-proxy). With functions-framework's 2 s a
  client reused a connection the server had just closed, and that request failed (a webhook POST lost).

``python -m shared.server --target T --source S [--host H] [--port P]``; the target and source default to
``FUNCTION_TARGET`` and ``FUNCTION_SOURCE``, the port to ``PORT`` (8080).

Serving model (stated once here; docs/performance.md has the measurements): gunicorn with ``WORKERS``
processes of ``THREADS`` threads each, set per function in its Knative Service (the embedded platform reads
the same values). A request holds the GIL for most of its time (parsing, JSON, shapely), so threads of one
process share one core; only processes use a second core. The query functions (odata, stac) therefore run
one worker per core of their pod (``WORKERS=2``, the prod limit is 2 CPUs) with 2 threads each, whose
waits (SQLite, PostgreSQL, sockets) overlap; more threads added no throughput and each request in flight
holds a page of up to 4 MB of JSON and its objects (4 threads: 166 MiB per worker after a burst, 2: 117).
``containerConcurrency`` is ``WORKERS x THREADS``, the most one pod serves at once, and the autoscaling
target sits below it. Event functions spend their time waiting on S3 and the broker: one worker, more
threads. The function's module is imported once, before the workers fork; each worker builds its own
ports (catalog pool, clients) at its first request. A worker's catalog pool holds up to
``REFSYS_CATALOG_POOL_SIZE`` connections (4), each with a SQLite page cache of
``REFSYS_CATALOG_SQLITE_CACHE_MIB`` (4); with glibc's allocator bounded (``bound_malloc``) that bounds
its memory.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

KEEPALIVE_SECONDS = 120  # beyond the 90 s Go clients keep an idle connection
METRICS_PATH = "/metrics"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # the Prometheus client's multiprocess mode (more than one worker)
DEFAULT_WORKERS = 1  # a Service that sets no WORKERS (see the module's text)
DEFAULT_THREADS = 4
# mallopt(3) parameters of glibc (see bound_malloc).
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8
MALLOC_ARENAS = 2
MMAP_THRESHOLD_BYTES = 128 * 1024

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class Observed:
    """WSGI middleware: ``/metrics``, and a count and time of every other request."""

    def __init__(self, app: WsgiApp, function: str) -> None:
        # Every request is counted: the metrics (the Prometheus client) are loaded here, once, before the workers
        # fork and after the server chose where their values live (share_metrics_between_workers), rather than by
        # each worker at its first request.
        from shared.observability import metrics

        self.app = app
        self.function = function
        self.metrics = metrics

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH and environ.get("REQUEST_METHOD") == "GET":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            registry = _workers_registry() if os.environ.get(MULTIPROCESS_DIR) else self.metrics.REGISTRY
            body = generate_latest(registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
            return [body]
        started = time.perf_counter()
        status = ["500"]

        def record_status(code: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, *rest)

        try:
            return self.app(environ, record_status)
        finally:
            self.metrics.REQUESTS.labels(self.function, environ.get("REQUEST_METHOD", ""), status[0]).inc()
            self.metrics.REQUEST_TIME.labels(self.function).observe(time.perf_counter() - started)


def _workers_registry() -> Any:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def share_metrics_between_workers() -> None:
    """Multiprocess metrics for more than one worker, in a directory that lives as long as this server.

    Before anything imports the Prometheus client (it picks where values live at import), and before the
    workers fork. Only the server's own process removes the directory when it exits (workers inherit the
    handler)."""
    if int(os.environ["WORKERS"]) <= 1 or os.environ.get(MULTIPROCESS_DIR):
        return
    import atexit
    import shutil
    import tempfile

    directory, server = tempfile.mkdtemp(prefix="refsys-metrics-"), os.getpid()
    os.environ[MULTIPROCESS_DIR] = directory

    def remove() -> None:
        if os.getpid() == server:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)


def create_app(target: str, source: str) -> Any:
    """The function's Flask app (functions-framework's), observed."""
    import functions_framework

    app = functions_framework.create_app(target, source)
    app.wsgi_app = Observed(app.wsgi_app, target)
    return app


def bound_malloc() -> None:
    """glibc's allocator tuned so that a worker gives memory back: at most 2 arenas (not 8 per core, one per
    busy thread), and blocks of 128 KiB and more (a page of 100 products is up to 4 MB of JSON) mapped
    and unmapped as they come and go, instead of glibc raising that threshold to 32 MiB after the first
    such free and keeping them in a fragmented heap. Measured in docs/performance.md (memory)."""
    import ctypes

    try:
        # The C library this process already has loaded (ctypes.util.find_library would run ldconfig: 20-30 ms
        # of every cold start).
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own defaults
        return
    mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default=os.environ.get("FUNCTION_TARGET"))
    parser.add_argument("--source", default=os.environ.get("FUNCTION_SOURCE"))
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args(argv)
    if not args.target or not args.source:
        parser.error("--target and --source (or FUNCTION_TARGET and FUNCTION_SOURCE) are required")

    # functions-framework's gunicorn application reads WORKERS and THREADS itself; ours are the defaults.
    os.environ.setdefault("WORKERS", str(DEFAULT_WORKERS))
    os.environ.setdefault("THREADS", str(DEFAULT_THREADS))
    share_metrics_between_workers()

    from functions_framework._http.gunicorn import GunicornApplication

    from shared.logs import configure_logging
    from shared.settings import get_settings

    configure_logging(get_settings().log_level, function=os.environ.get("K_SERVICE") or args.target)
    bound_malloc()  # before the workers fork: they inherit it
    app = create_app(args.target, args.source)
    # functions-framework's own gunicorn application (its thread count, no request-line limit), our keep-alive.
    GunicornApplication(app, args.host, args.port, False, keepalive=KEEPALIVE_SECONDS, accesslog=None).run()


if __name__ == "__main__":
    main()
