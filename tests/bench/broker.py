"""Local broker throughput: events through ingress -> durable queue -> Trigger -> subscriber, against
the same events POSTed straight to the same subscriber (the floor: one HTTP hop, no queue)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from events import ObjectCreated, make_event, to_http
from shared.bus.broker import LocalBroker
from shared.bus.manifests import load_topology

MANIFESTS = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: bench
resources: [broker.yaml]
---
"""

BROKER = """\
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: sink}
spec:
  broker: default
  filter: {attributes: {type: org.refsys.storage.object.created.v1}}
  subscriber: {uri: "SUBSCRIBER"}
  delivery: {retry: 3, backoffPolicy: exponential, backoffDelay: PT0.1S}
"""


class _Counter(BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Counter.lock:
            _Counter.received += 1
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run(workdir: Path, events: int = 500) -> list[tuple[str, float, float]]:
    subscriber = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=subscriber.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{subscriber.server_address[1]}/"
    bodies = [
        to_http(make_event(ObjectCreated(store="bench", bucket="b", key=f"k{i}", size=i,
                                         event_time=datetime.now(UTC)), source="/bench"))
        for i in range(events)
    ]  # fmt: skip
    session = requests.Session()

    started = time.perf_counter()
    for headers, body in bodies:
        session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    direct = time.perf_counter() - started

    (workdir / "kustomization.yaml").write_text(MANIFESTS.split("---")[0])
    (workdir / "broker.yaml").write_text(BROKER.replace("SUBSCRIBER", url))
    _Counter.received = 0
    broker = LocalBroker(load_topology(workdir), workdir / "broker.db", lambda d: d.uri or "")
    broker.start()
    try:
        started = time.perf_counter()
        for headers, body in bodies:
            session.post(broker.ingress_url, data=body, headers=headers, timeout=10).raise_for_status()
        while _Counter.received < events:
            time.sleep(0.001)
        through_broker = time.perf_counter() - started
    finally:
        broker.stop()
        subscriber.shutdown()
    return [
        ("direct POST to the subscriber (baseline)", events / direct, 1.0),
        ("through the local broker (stored, routed, delivered)", events / through_broker, direct / through_broker),
    ]
