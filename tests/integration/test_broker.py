"""The local broker over real HTTP: routing by the manifests, retries, dead letters, replies, restarts.

Subscribers are tiny stdlib HTTP servers on free loopback ports. Waits are bounded polls; no test
asserts on elapsed time, only on attempt counts, recorded requests and computed schedules.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http

from events.http import parse_http as parse_event
from shared.bus.broker import LocalBroker
from shared.bus.delivery import RetryPlan
from shared.bus.manifests import Destination, load_topology
from shared.bus.queue import EventQueue, NewEvent
from shared.platform.ports import free_port

KNATIVE_DIR = Path(__file__).parents[2] / "knative" / "overlays" / "dev"
REPO_ROOT = Path(__file__).parents[2]
DEADLINE = 15.0


# -- helpers ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def event(self) -> CloudEvent:
        return from_http(self.headers, self.body)


Responder = Callable[[Received], tuple[int, dict[str, str], bytes]]


def accept(_: Received) -> tuple[int, dict[str, str], bytes]:
    return 202, {}, b""


class Recorder:
    """A subscriber: records every request, answers with ``responder`` (per path if a dict)."""

    def __init__(self, responder: Responder | dict[str, Responder] = accept, port: int = 0) -> None:
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with recorder._lock:
                    recorder.requests.append(received)
                respond = responder if callable(responder) else responder.get(self.path, accept)
                status, headers, payload = respond(received)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def resolver(base_url: str) -> Callable[[Destination], str]:
    """Services are reached at <base_url>/<service name><uri path>, all on one recorder."""

    def resolve(destination: Destination) -> str:
        if destination.ref is None:
            return str(destination.uri)
        return f"{base_url}/{destination.ref.name}{destination.uri or ''}"

    return resolve


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def manifests(directory: Path, triggers: str, broker_delivery: str = "") -> Path:
    """A kustomize dir with one Broker `default` (optional delivery) and the given Triggers."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text("namespace: test\nresources:\n  - broker.yaml\n  - triggers.yaml\n")
    broker = "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n"
    if broker_delivery:
        broker += "spec:\n  delivery:\n" + textwrap.indent(textwrap.dedent(broker_delivery), "    ")
    (directory / "broker.yaml").write_text(broker)
    (directory / "triggers.yaml").write_text(textwrap.dedent(triggers))
    return directory


def trigger(
    name: str, event_type: str, service: str, delivery: str = "", annotations: dict[str, str] | None = None
) -> str:
    meta = ""
    if annotations:
        meta = "  annotations:\n" + "".join(f"    {key}: {json.dumps(value)}\n" for key, value in annotations.items())
    text = f"""\
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: {name}
{meta}spec:
  broker: default
  filter:
    attributes:
      type: {event_type}
  subscriber:
    ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: {service}}}
"""
    if delivery:
        text += "  delivery:\n" + textwrap.indent(textwrap.dedent(delivery), "    ")
    return text


PARALLELISM = "rabbitmq.eventing.knative.dev/parallelism"
ORDER = "kafka.eventing.knative.dev/delivery.order"

DLS_DELIVERY = """\
retry: {retry}
backoffPolicy: {policy}
backoffDelay: PT0.01S
deadLetterSink:
  ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: deadletter}}
"""


def start_broker(directory: Path, db: Path, resolve: Callable[[Destination], str]) -> LocalBroker:
    broker = LocalBroker(load_topology(directory), db, resolve, workers=2)
    broker.start()
    return broker


def final(broker: LocalBroker, count: int = 1) -> Callable[[], bool]:
    def done() -> bool:
        stats = broker.stats()
        return stats["pending"] + stats["in-flight"] == 0 and stats["events"] >= count

    return done


class Gauge:
    """A subscriber's answer that measures concurrency: ``peak`` requests were in flight at once.

    Each request takes ``seconds``; until ``hold`` requests were in flight together, requests also
    wait for each other (so a broker able to send ``hold`` at once does, whatever the scheduling).
    """

    def __init__(self, seconds: float = 0.0, hold: int = 0) -> None:
        self.seconds = seconds
        self.hold = hold
        self.in_flight = self.peak = 0
        self._changed = threading.Condition()

    def __call__(self, _: Received) -> tuple[int, dict[str, str], bytes]:
        with self._changed:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self.peak >= self.hold, DEADLINE)
        time.sleep(self.seconds)
        with self._changed:
            self.in_flight -= 1
        return 202, {}, b""


def event(event_type: str, **extensions: Any) -> CloudEvent:
    attrs = {"type": event_type, "source": "/tests/broker", "datacontenttype": "application/json", **extensions}
    return CloudEvent(attrs, {"key": "S2A_MSIL1C.zip"})


# -- acceptance: routing follows the manifests ------------------------------------------------------
def test_routing_follows_manifests(tmp_path: Path) -> None:
    shutil.copytree(KNATIVE_DIR.parents[1], tmp_path / "knative")
    changed = tmp_path / "knative" / "overlays" / "dev"
    ingest = tmp_path / "knative" / "base" / "triggers" / "ingest.yaml"
    assert "bucket: rs-inbox" in ingest.read_text()
    ingest.write_text(ingest.read_text().replace("bucket: rs-inbox", "bucket: other-inbox"))

    original_sub, changed_sub = Recorder(), Recorder()
    original = start_broker(KNATIVE_DIR, tmp_path / "original.db", resolver(original_sub.url))
    modified = start_broker(changed, tmp_path / "changed.db", resolver(changed_sub.url))
    try:
        created = "org.refsys.storage.object.created.v1"
        for bucket in ("rs-inbox", "other-inbox"):
            same = event(created, bucket=bucket, id=f"obj-{bucket}")
            original.publish(same)
            modified.publish(same)
        ingested = event("org.refsys.product.ingested.v1", mission="S2A", id="product-1")
        original.publish(ingested)
        modified.publish(ingested)
        wait_until(final(original, 3), "original broker to settle")
        wait_until(final(modified, 3), "changed broker to settle")

        def routed(sub: Recorder) -> list[tuple[str, str]]:
            return sorted((r.path, r.event()["id"]) for r in sub.requests)

        assert routed(original_sub) == [("/catalog/events", "product-1"), ("/ingest", "obj-rs-inbox")]
        assert routed(changed_sub) == [("/catalog/events", "product-1"), ("/ingest", "obj-other-inbox")]
        assert [d["trigger"] for d in original.deliveries("obj-other-inbox")] == []
        assert [d["trigger"] for d in modified.deliveries("obj-other-inbox")] == ["ingest-inbox-objects"]
        assert original.stats()["delivered"] == modified.stats()["delivered"] == 2
    finally:
        original.stop()
        modified.stop()
        original_sub.close()
        changed_sub.close()


# -- retries and dead letters -----------------------------------------------------------------------
def test_retryable_failure_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    def busy(_: Received) -> tuple[int, dict[str, str], bytes]:
        return 503, {"Content-Type": "text/plain"}, b"busy, try later"

    subscriber = Recorder({"/ingest": busy})
    retry = 3
    directory = manifests(
        tmp_path / "m", trigger("ingest", "created", "ingest", DLS_DELIVERY.format(retry=retry, policy="exponential"))
    )
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))
    try:
        sent = event("created", mission="S1A")
        broker.publish(sent)
        wait_until(final(broker), "the delivery to finish")

        attempts = subscriber.at("/ingest")
        assert len(attempts) == retry + 1
        assert {r.event()["id"] for r in attempts} == {sent["id"]}
        assert all(r.headers["prefer"] == "reply" for r in attempts)
        assert all("ce-knativebrokerttl" not in r.headers for r in attempts)
        assert attempts[0].headers["content-type"] == "application/json"
        # The waits the broker used between those attempts (computed, never timed):
        plan = RetryPlan.from_spec(broker.topology.delivery_for(broker.topology.triggers["ingest"]))
        assert plan.schedule() == pytest.approx([0.01, 0.02, 0.04])

        [dead] = subscriber.at("/deadletter")
        dead_event = dead.event()
        assert (dead_event["id"], dead_event["type"], dead_event["source"]) == (sent["id"], "created", sent["source"])
        assert dead_event["mission"] == "S1A"
        assert dead_event.data == sent.data
        assert int(dead_event["knativeerrorcode"]) == 503
        assert dead_event["knativeerrordest"] == f"{subscriber.url}/ingest"
        assert base64.b64decode(dead_event["knativeerrordata"]) == b"busy, try later"

        [row] = broker.deliveries(sent["id"])
        assert (row["state"], row["attempts"], row["dls_attempts"]) == ("dead-lettered", retry + 1, 1)
        assert broker.stats()["dead-lettered"] == 1
    finally:
        broker.stop()
        subscriber.close()


def test_non_retryable_status_goes_to_the_dead_letter_sink_at_once(tmp_path: Path, recorder: Recorder) -> None:
    subscriber = Recorder({"/ingest": lambda _: (400, {}, b"poison")})
    directory = manifests(
        tmp_path / "m", trigger("ingest", "created", "ingest", DLS_DELIVERY.format(retry=5, policy="exponential"))
    )
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))
    try:
        sent = event("created")
        broker.publish(sent)
        wait_until(final(broker), "the delivery to finish")
        assert len(subscriber.at("/ingest")) == 1
        [dead] = subscriber.at("/deadletter")
        assert dead.event()["id"] == sent["id"]
        assert int(dead.event()["knativeerrorcode"]) == 400
        assert broker.deliveries(sent["id"])[0]["attempts"] == 1
    finally:
        broker.stop()
        subscriber.close()


def test_ok_text_body_is_a_failure_and_retried(tmp_path: Path) -> None:
    # What a functions-framework @cloud_event function answers on success.
    subscriber = Recorder({"/ingest": lambda _: (200, {"Content-Type": "text/html"}, b"OK")})
    directory = manifests(
        tmp_path / "m", trigger("ingest", "created", "ingest", DLS_DELIVERY.format(retry=2, policy="linear"))
    )
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))
    try:
        sent = event("created")
        broker.publish(sent)
        wait_until(final(broker), "the delivery to finish")
        assert len(subscriber.at("/ingest")) == 3
        [dead] = subscriber.at("/deadletter")
        assert int(dead.event()["knativeerrorcode"]) == 502
        assert base64.b64decode(dead.event()["knativeerrordata"]) == b"OK"
    finally:
        broker.stop()
        subscriber.close()


def test_without_delivery_spec_a_failure_is_kept_as_dead(tmp_path: Path) -> None:
    subscriber = Recorder({"/ingest": lambda _: (500, {}, b"")})
    directory = manifests(tmp_path / "m", trigger("ingest", "created", "ingest"))
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))
    try:
        sent = event("created")
        broker.publish(sent)
        wait_until(final(broker), "the delivery to finish")
        assert len(subscriber.requests) == 1
        [row] = broker.deliveries(sent["id"])
        assert (row["state"], row["attempts"], row["last_status"]) == ("dead", 1, 500)
    finally:
        broker.stop()
        subscriber.close()


def test_failing_dead_letter_sink_is_retried_then_kept_as_dead(tmp_path: Path) -> None:
    subscriber = Recorder({"/ingest": lambda _: (400, {}, b""), "/deadletter": lambda _: (503, {}, b"")})
    directory = manifests(
        tmp_path / "m", trigger("ingest", "created", "ingest", DLS_DELIVERY.format(retry=2, policy="exponential"))
    )
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))
    try:
        sent = event("created")
        broker.publish(sent)
        wait_until(final(broker), "the delivery to finish")
        assert len(subscriber.at("/ingest")) == 1
        assert len(subscriber.at("/deadletter")) == 3
        [row] = broker.deliveries(sent["id"])
        assert (row["state"], row["dls_attempts"]) == ("dead", 3)
        assert broker.stats()["dead"] == 1
    finally:
        broker.stop()
        subscriber.close()


# -- replies ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_reply_is_routed_to_the_trigger_of_its_type(tmp_path: Path, mode: str) -> None:
    def reply(received: Received) -> tuple[int, dict[str, str], bytes]:
        answer = CloudEvent(
            {"type": "product.ingested", "source": "/ingest", "datacontenttype": "application/json", "mission": "S2A"},
            {"from": received.event()["id"]},
        )
        headers, body = to_binary(answer) if mode == "binary" else to_structured(answer)
        return 200, headers, body

    subscriber = Recorder({"/ingest": reply})
    directory = manifests(
        tmp_path / "m",
        trigger("ingest", "object.created", "ingest") + trigger("catalog", "product.ingested", "catalog"),
    )
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))
    try:
        sent = event("object.created")
        broker.publish(sent)
        wait_until(final(broker, 2), "the reply to be delivered")
        [catalog] = subscriber.at("/catalog")
        got = catalog.event()
        assert got["type"] == "product.ingested"
        assert got["mission"] == "S2A"
        assert got.data == {"from": sent["id"]}
        assert [d["state"] for d in broker.deliveries()] == ["delivered", "delivered"]
        assert [d["trigger"] for d in broker.deliveries()] == ["ingest", "catalog"]
    finally:
        broker.stop()
        subscriber.close()


def test_ttl_stops_a_reply_loop(tmp_path: Path) -> None:
    def echo(received: Received) -> tuple[int, dict[str, str], bytes]:
        headers, body = to_binary(CloudEvent({"type": "loop", "source": "/echo"}, None))
        return 200, headers, body or b""

    subscriber = Recorder({"/echo": echo})
    directory = manifests(tmp_path / "m", trigger("echo", "loop", "echo"))
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))
    try:
        headers, body = to_binary(CloudEvent({"type": "loop", "source": "/t", "knativebrokerttl": "5"}, None))
        assert requests.post(broker.ingress_url, headers=headers, data=body, timeout=10).status_code == 202
        wait_until(lambda: broker.stats()["dropped"] == 1, "the loop guard")
        wait_until(final(broker, 4), "the loop to settle")
        # TTL 5 arrives -> 4, then each reply one less: 4, 3, 2, 1 delivered; the reply at 0 is dropped.
        assert len(subscriber.requests) == 4
        for ttl in ("1", "0"):
            headers, body = to_binary(CloudEvent({"type": "loop", "source": "/t", "knativebrokerttl": ttl}, None))
            assert requests.post(broker.ingress_url, headers=headers, data=body, timeout=10).status_code == 202
        assert broker.stats()["dropped"] == 3
        assert broker.stats()["events"] == 4
    finally:
        broker.stop()
        subscriber.close()


# -- durability -------------------------------------------------------------------------------------
def test_restart_delivers_every_event(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: connection refused
    directory = manifests(
        tmp_path / "m",
        trigger("ingest", "created", "ingest", "retry: 10000\nbackoffPolicy: linear\nbackoffDelay: PT0.01S\n"),
    )
    resolve = resolver(f"http://127.0.0.1:{port}")
    db = tmp_path / "q.db"
    sent: set[str] = set()

    first = start_broker(directory, db, resolve)
    try:
        for i in range(20):
            ev = event("created", id=f"event-{i}")
            headers, body = to_binary(ev) if i % 2 else to_structured(ev)
            response = requests.post(first.ingress_url, headers=headers, data=body, timeout=10)
            assert response.status_code == 202, response.text
            sent.add(ev["id"])
        wait_until(lambda: all(d["attempts"] >= 1 for d in first.deliveries()), "failed first attempts")
    finally:
        first.stop()

    subscriber = Recorder(port=port)
    second = LocalBroker(load_topology(directory), db, resolve, workers=2)
    try:
        stats = second.stats()
        assert (stats["pending"], stats["in-flight"], stats["delivered"]) == (20, 0, 0)
        second.start()
        wait_until(lambda: second.stats()["delivered"] == 20, "every event to be delivered")
        assert {r.event()["id"] for r in subscriber.requests} == sent
    finally:
        second.stop()
        subscriber.close()


def test_in_flight_deliveries_of_a_crashed_broker_are_redelivered(tmp_path: Path, recorder: Recorder) -> None:
    directory = manifests(tmp_path / "m", trigger("ingest", "created", "ingest"))
    db = tmp_path / "q.db"
    crash = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from shared.bus.queue import EventQueue, NewEvent
        queue = EventQueue(Path({str(db)!r}))
        record = {{"specversion": "1.0", "id": "crashed-1", "source": "/t", "type": "created"}}
        queue.enqueue(NewEvent(record, "default", ["ingest"]))
        assert queue.claim(time.time()) is not None
        os._exit(1)  # die with the delivery in flight
    """)
    subprocess.run([sys.executable, "-c", crash], cwd=REPO_ROOT, check=False, timeout=60)

    broker = LocalBroker(load_topology(directory), db, resolver(recorder.url))
    try:
        assert broker.stats()["pending"] == 1  # in-flight went back to pending on open
        broker.start()
        wait_until(lambda: broker.stats()["delivered"] == 1, "the redelivery")
        assert [r.event()["id"] for r in recorder.requests] == ["crashed-1"]
    finally:
        broker.stop()


def test_stop_puts_unfinished_deliveries_back_to_pending(tmp_path: Path) -> None:
    release = threading.Event()

    def slow(_: Received) -> tuple[int, dict[str, str], bytes]:
        release.wait(DEADLINE)
        return 202, {}, b""

    subscriber = Recorder({"/ingest": slow})
    directory = manifests(tmp_path / "m", trigger("ingest", "created", "ingest"))
    db = tmp_path / "q.db"
    first = start_broker(directory, db, resolver(subscriber.url))
    try:
        first.publish(event("created", id="slow-1"))
        wait_until(lambda: len(subscriber.requests) == 1, "the delivery to start")
        first.stop(timeout=0.1)  # the subscriber is still busy with it
    finally:
        release.set()

    second = LocalBroker(load_topology(directory), db, resolver(subscriber.url))
    try:
        assert second.stats()["pending"] == 1
        second.start()
        wait_until(lambda: second.stats()["delivered"] == 1, "the redelivery")
        # At-least-once: the subscriber saw the event twice.
        assert [r.event()["id"] for r in subscriber.requests] == ["slow-1", "slow-1"]
    finally:
        second.stop()
        subscriber.close()


def test_delivery_of_a_removed_trigger_is_kept_as_dead(tmp_path: Path, recorder: Recorder) -> None:
    db = tmp_path / "q.db"
    queue = EventQueue(db)
    record = {"specversion": "1.0", "id": "orphan-1", "source": "/t", "type": "created"}
    queue.enqueue(NewEvent(record, "default", ["a-trigger-since-deleted"]))
    queue.close()

    directory = manifests(tmp_path / "m", trigger("ingest", "created", "ingest"))
    broker = start_broker(directory, db, resolver(recorder.url))
    try:
        wait_until(final(broker), "the orphan delivery to settle")
        [row] = broker.deliveries("orphan-1")
        assert row["state"] == "dead"
        assert "no longer in the manifests" in row["last_error"]
        assert recorder.requests == []
    finally:
        broker.stop()


# -- per-Trigger queues and concurrency -------------------------------------------------------------
def test_a_flood_on_one_trigger_does_not_delay_another(tmp_path: Path) -> None:
    subscriber = Recorder({"/slow": Gauge(seconds=0.05)})
    directory = manifests(tmp_path / "m", trigger("flooded", "a", "slow") + trigger("other", "b", "fast"))
    broker = LocalBroker(load_topology(directory), tmp_path / "q.db", resolver(subscriber.url), workers=2)
    try:
        # All queued before the workers start: a single oldest-first queue would send B's after A's 200.
        for i in range(200):
            broker.publish(event("a", id=f"a-{i}"))
        for i in range(5):
            broker.publish(event("b", id=f"b-{i}"))
        broker.start()
        wait_until(lambda: broker.stats()["per_trigger"]["other"]["delivered"] == 5, "B's deliveries")
        paths = [r.path for r in subscriber.requests]
        last_b = max(i for i, path in enumerate(paths) if path == "/fast")
        assert paths[:last_b].count("/slow") < 100, "B waited behind half of A's queue"
        stats = broker.stats()
        assert stats["per_trigger"]["flooded"]["delivered"] < 100
        assert stats["per_trigger"]["other"] == {
            "pending": 0,
            "in-flight": 0,
            "delivered": 5,
            "dead-lettered": 0,
            "dead": 0,
        }
        assert stats["pending"] + stats["in-flight"] + stats["delivered"] == 205
    finally:
        broker.stop()
        subscriber.close()


def test_an_ordered_trigger_delivers_one_at_a_time_in_order(tmp_path: Path) -> None:
    gauge = Gauge(seconds=0.005)
    failed: list[str] = []

    def once_busy(received: Received) -> tuple[int, dict[str, str], bytes]:
        answer = gauge(received)
        if received.headers["ce-id"] == "e-3" and not failed:
            failed.append("e-3")
            return 503, {}, b""
        return answer

    subscriber = Recorder({"/ingest": once_busy})
    retry = "retry: 3\nbackoffPolicy: linear\nbackoffDelay: PT0.05S\n"
    directory = manifests(tmp_path / "m", trigger("ingest", "created", "ingest", retry, {ORDER: "ordered"}))
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))  # default: 2 workers
    try:
        for i in range(30):
            broker.publish(event("created", id=f"e-{i}"))
        wait_until(lambda: broker.stats()["delivered"] == 30, "every delivery")
        assert gauge.peak == 1
        ids = [r.headers["ce-id"] for r in subscriber.requests]
        # The event that failed once holds back the next ones until its retry succeeded.
        assert ids == ["e-0", "e-1", "e-2", "e-3", "e-3", *(f"e-{i}" for i in range(4, 30))]
    finally:
        broker.stop()
        subscriber.close()


@pytest.mark.parametrize(("annotations", "parallelism"), [({PARALLELISM: "3"}, 3), ({}, 2), ({PARALLELISM: "1"}, 1)])
def test_parallelism_bounds_the_requests_in_flight(
    tmp_path: Path, annotations: dict[str, str], parallelism: int
) -> None:
    gauge = Gauge(seconds=0.005, hold=parallelism)
    subscriber = Recorder({"/ingest": gauge})
    directory = manifests(tmp_path / "m", trigger("ingest", "created", "ingest", annotations=annotations))
    broker = start_broker(directory, tmp_path / "q.db", resolver(subscriber.url))  # default: 2 workers
    try:
        for i in range(30):
            broker.publish(event("created", id=f"e-{i}"))
        wait_until(lambda: broker.stats()["delivered"] == 30, "every delivery")
        assert gauge.peak == parallelism
    finally:
        broker.stop()
        subscriber.close()


# -- ingress ----------------------------------------------------------------------------------------
@pytest.fixture
def ingress(tmp_path: Path, recorder: Recorder) -> Iterator[LocalBroker]:
    directory = manifests(tmp_path / "m", trigger("ingest", "created", "ingest"))
    broker = start_broker(directory, tmp_path / "q.db", resolver(recorder.url))
    yield broker
    broker.stop()


def test_ingress_url_is_shaped_like_the_mt_broker(ingress: LocalBroker) -> None:
    assert ingress.ingress_url.startswith("http://127.0.0.1:")
    assert ingress.ingress_url.endswith("/test/default")


@pytest.mark.parametrize("path", ["/test/default", "/"])
def test_ingress_accepts_binary_and_structured(ingress: LocalBroker, recorder: Recorder, path: str) -> None:
    base = ingress.ingress_url.rsplit("/test/default", 1)[0]
    binary = {
        "ce-specversion": "1.0",
        "ce-id": "b-1",
        "ce-source": "/t",
        "ce-type": "created",
        "Content-Type": "text/plain",
    }
    assert requests.post(base + path, headers=binary, data=b"hello", timeout=10).status_code == 202
    structured = {
        "specversion": "1.0",
        "id": "s-1",
        "source": "/t",
        "type": "created",
        "datacontenttype": "application/json",
        "data": {"a": 1},
    }
    response = requests.post(
        base + path, data=json.dumps(structured), headers={"Content-Type": "application/cloudevents+json"}, timeout=10
    )
    assert response.status_code == 202
    wait_until(lambda: ingress.stats()["delivered"] == 2, "both deliveries")
    by_id = {r.headers["ce-id"]: r for r in recorder.requests}
    assert by_id["b-1"].body == b"hello"
    assert by_id["b-1"].headers["content-type"] == "text/plain"
    assert json.loads(by_id["s-1"].body) == {"a": 1}
    assert by_id["s-1"].headers["content-type"] == "application/json"


def test_ingress_accepts_a_chunked_body(ingress: LocalBroker, recorder: Recorder) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "c-1",
        "ce-source": "/t",
        "ce-type": "created",
        "Content-Type": "application/octet-stream",
    }
    chunks = iter([b"\x00\x01", b"\xff" * 5000])  # a generator body is sent chunked
    assert requests.post(ingress.ingress_url, headers=headers, data=chunks, timeout=10).status_code == 202
    wait_until(lambda: ingress.stats()["delivered"] == 1, "the delivery")
    assert recorder.requests[0].body == b"\x00\x01" + b"\xff" * 5000


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"Content-Type": "application/json"}, b'{"Records": []}', "not a CloudEvent"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t"}, b"", "ce-type"),
        ({"Content-Type": "application/cloudevents+json"}, b"{not json", "not valid JSON"),
        (
            {"Content-Type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "id": "1", "source": "/t"}',
            "type",
        ),
        ({}, b"", "not a CloudEvent"),
    ],
)
def test_ingress_rejects_malformed_events(
    ingress: LocalBroker, headers: dict[str, str], body: bytes, message: str
) -> None:
    response = requests.post(ingress.ingress_url, headers=headers, data=body, timeout=10)
    assert response.status_code == 400
    assert message in response.text
    assert ingress.stats()["events"] == 0


def test_ingress_methods_and_paths(ingress: LocalBroker) -> None:
    base = ingress.ingress_url.rsplit("/test/default", 1)[0]
    assert requests.get(ingress.ingress_url, timeout=10).status_code == 405
    assert requests.put(ingress.ingress_url, data=b"x", timeout=10).status_code == 405
    assert requests.get(base + "/healthz", timeout=10).status_code == 200
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t", "ce-type": "created"}
    assert requests.post(base + "/test/other", headers=headers, timeout=10).status_code == 404


def test_unmatched_events_are_kept_but_not_delivered(ingress: LocalBroker, recorder: Recorder) -> None:
    ingress.publish(event("nobody.listens"))
    assert ingress.stats()["events"] == 1
    assert ingress.deliveries() == []


def test_a_kept_alive_connection_the_subscriber_closed_costs_no_retry(tmp_path: Path) -> None:
    """gunicorn closes a connection idle for 2 s; a request racing that close is sent again, not retried later."""
    answered: list[str] = []

    class ClosingIdle(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn serves

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.served = getattr(self, "served", 0) + 1
            if self.served > 1:  # this connection sat idle: the server closes it instead of answering
                self.close_connection = True
                return
            answered.append(self.path)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), ClosingIdle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    delivery = DLS_DELIVERY.format(retry=3, policy="linear")
    directory = manifests(tmp_path / "m", trigger("ingest", "created", "ingest", delivery, {ORDER: "ordered"}))
    broker = start_broker(directory, tmp_path / "q.db", resolver(f"http://127.0.0.1:{server.server_address[1]}"))
    try:
        for n in range(3):
            broker.publish(event("created", id=f"e{n}"))
            wait_until(final(broker, n + 1), f"delivery {n}")
        rows = [row for n in range(3) for row in broker.deliveries(f"e{n}")]
        assert [(r["state"], r["attempts"]) for r in rows] == [("delivered", 1)] * 3
        assert answered == ["/ingest"] * 3
    finally:
        broker.stop()
        server.shutdown()
        server.server_close()


def test_hostile_bodies_at_the_ingress_get_a_4xx_and_odd_subjects_reach_the_subscriber(
    tmp_path: Path, recorder: Recorder
) -> None:
    directory = manifests(tmp_path / "k", trigger("t", "org.example.odd", "ingest"))
    broker = start_broker(directory, tmp_path / "q.db", resolver(recorder.url))
    try:
        deep = b"[" * 100_000 + b"]" * 100_000
        structured = {"Content-Type": "application/cloudevents+json"}
        response = requests.post(broker.ingress_url, headers=structured, data=deep, timeout=10)
        assert response.status_code == 400 and "nested deeper" in response.text
        wrong_type = {"specversion": "1.0", "id": "1", "source": "/s", "type": ["a"]}
        response = requests.post(broker.ingress_url, headers=structured, data=json.dumps(wrong_type), timeout=10)
        assert response.status_code == 400 and "type" in response.text
        # A subject HTTP cannot carry as it is: percent-encoded on the way in and out, read back as it was.
        subject = "inbox/Île 50%\nnew line ∆"
        event = CloudEvent({"type": "org.example.odd", "source": "/s", "subject": subject}, {"a": 1})
        headers, body = to_structured(event)
        assert requests.post(broker.ingress_url, headers=headers, data=body, timeout=10).status_code == 202
        wait_until(lambda: len(recorder.requests) == 1, "the delivery")
        (received,) = recorder.requests
        assert parse_event(received.headers, received.body)["subject"] == subject
    finally:
        broker.stop()
