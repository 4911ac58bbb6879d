"""The function server: one function of ``functions/`` behind gunicorn, as functions-framework serves it,
with what the framework does not give.

- ``GET /metrics``: the process's Prometheus metrics (``shared.observability.metrics``).
- Every request counted and timed by method and status, and logged as JSON with the function's name.
- A keep-alive longer than the idle timeout of the clients that call functions (Go's HTTP transport keeps
  an idle connection 90 s: SeaweedFS's webhook, Knative's queue-proxy). With functions-framework's 2 s a
  client reused a connection the server had just closed, and that request failed (a webhook POST lost).

``python -m shared.server --target T --source S [--host H] [--port P]``; the target and source default to
``FUNCTION_TARGET`` and ``FUNCTION_SOURCE``, the port to ``PORT`` (8080), the threads to ``THREADS``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

KEEPALIVE_SECONDS = 120  # beyond the 90 s Go clients keep an idle connection
METRICS_PATH = "/metrics"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class Observed:
    """WSGI middleware: ``/metrics``, and a count and time of every other request."""

    def __init__(self, app: WsgiApp, function: str) -> None:
        self.app = app
        self.function = function

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        from shared.observability.metrics import REGISTRY, REQUEST_TIME, REQUESTS

        if environ.get("PATH_INFO") == METRICS_PATH and environ.get("REQUEST_METHOD") == "GET":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            body = generate_latest(REGISTRY)
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
            REQUESTS.labels(self.function, environ.get("REQUEST_METHOD", ""), status[0]).inc()
            REQUEST_TIME.labels(self.function).observe(time.perf_counter() - started)


def create_app(target: str, source: str) -> Any:
    """The function's Flask app (functions-framework's), observed."""
    import functions_framework

    app = functions_framework.create_app(target, source)
    app.wsgi_app = Observed(app.wsgi_app, target)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default=os.environ.get("FUNCTION_TARGET"))
    parser.add_argument("--source", default=os.environ.get("FUNCTION_SOURCE"))
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args(argv)
    if not args.target or not args.source:
        parser.error("--target and --source (or FUNCTION_TARGET and FUNCTION_SOURCE) are required")

    from functions_framework._http.gunicorn import GunicornApplication

    from shared.logs import configure_logging
    from shared.settings import get_settings

    configure_logging(get_settings().log_level, function=os.environ.get("K_SERVICE") or args.target)
    app = create_app(args.target, args.source)
    # functions-framework's own gunicorn application (its thread count, no request-line limit), our keep-alive.
    GunicornApplication(app, args.host, args.port, False, keepalive=KEEPALIVE_SECONDS, accesslog=None).run()


if __name__ == "__main__":
    main()
