"""PingSources on the embedded platform tick like Knative's ping adapter."""

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from events import parse_http
from shared.bus.manifests import Destination, PingSource, load_topology
from shared.platform.ping import PING_TYPE, PingTimer, next_tick, ping_event
from tests.conftest import REPO_ROOT

EVERY_FIVE = PingSource("tick", "refsys", "*/5 * * * *", "UTC", "application/json", '{"a": 1}', Destination(uri="x"))


def test_the_inbox_scan_and_the_job_timer_tick_their_functions() -> None:
    sources = {
        source.name: source for source in load_topology(REPO_ROOT / "knative" / "overlays" / "dev").ping_sources()
    }
    scan = sources["inbox-scan"]
    assert scan.sink.ref is not None and scan.sink.ref.name == "scan"
    timer = sources["prepare-timer"]
    assert timer.sink.ref is not None and (timer.sink.ref.name, timer.sink.uri) == ("prepare", "/timer")


def test_next_tick_follows_the_cron_schedule() -> None:
    assert next_tick(EVERY_FIVE, datetime(2024, 5, 1, 12, 3, 10, tzinfo=UTC)) == datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
    in_paris = PingSource("t", "n", "0 9 * * *", "Europe/Paris", "text/plain", "", Destination(uri="x"))
    assert next_tick(in_paris, datetime(2024, 5, 1, 0, 0, tzinfo=UTC)) == datetime(2024, 5, 1, 7, 0, tzinfo=UTC)


def test_a_tick_is_a_ping_cloudevent_posted_to_the_sink() -> None:
    received: list = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(parse_http(dict(self.headers), body))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        PingTimer([EVERY_FIVE], lambda destination: url).fire(EVERY_FIVE, datetime(2024, 5, 1, tzinfo=UTC))
    finally:
        server.shutdown()
    (event,) = received
    assert event["type"] == PING_TYPE
    assert event["source"] == "/apis/v1/namespaces/refsys/pingsources/tick"
    assert event.data == {"a": 1}


def test_ping_events_have_unique_ids() -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    assert ping_event(EVERY_FIVE, when)["id"] != ping_event(EVERY_FIVE, when)["id"]
