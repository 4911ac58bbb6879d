"""Subscriptions end to end: a subscriber on loopback gets one notification per matching product, exactly once,
though its endpoint was down for the first and the whole platform was restarted in between; a PULL subscription
reads and acknowledges what waited for it across the restart."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from events import make_event
from shared.catalog import open_catalog
from shared.catalog.announce import cataloged
from shared.platform.embedded import EmbeddedPlatform
from shared.subscriptions.delivery import SEQUENCE_HEADER
from tests.e2e.test_platform import publish, settled, upload, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]


class Subscriber:
    """A subscriber's NotificationEndpoint on loopback: keeps what it accepted; answers 503 while ``down``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.down = True
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if subscriber.down:
                    subscriber.refused += 1
                    self.send_response(503)
                else:
                    subscriber.received.append({"body": body, "headers": dict(self.headers)})
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notifications"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def names(self) -> list[str]:
        return [r["body"]["ProductName"] for r in self.received]


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    running = Subscriber()
    yield running
    running.server.shutdown()


def odata(platform: EmbeddedPlatform) -> str:
    return str(platform.endpoints()["odata"])


def subscription(platform: EmbeddedPlatform, subscription_id: str) -> dict[str, Any]:
    answer = requests.get(f"{odata(platform)}/Subscriptions({subscription_id})", timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_subscriber_gets_each_matching_product_once_across_an_outage_and_a_restart(
    tmp_path: Path, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFSYS_SUBSCRIPTIONS_RETRY_BASE_S", "1")  # the functions inherit it
    data_dir = tmp_path / "data"
    platform = EmbeddedPlatform(data_dir)
    platform.start()
    try:
        created = requests.post(f"{odata(platform)}/Subscriptions", timeout=10, json={
            "FilterParam": "Collection/Name eq 'SENTINEL-1'",
            "NotificationEndpoint": subscriber.url,
            "NotificationEpUsername": "hook",
            "NotificationEpPassword": "s3cret",
            "SubscriptionEvent": ["created"],
        })  # fmt: skip
        assert created.status_code == 201, created.text
        push = created.json()["Id"]
        pull = requests.post(f"{odata(platform)}/Subscriptions", json={
            "FilterParam": "Collection/Name eq 'SENTINEL-3'"}, timeout=10).json()["Id"]  # fmt: skip

        first = upload(platform, tmp_path / "products", "IW_GRDH_1S", seed=31)
        other = upload(platform, tmp_path / "products", "OL_1_EFR___", seed=32)  # SENTINEL-3: not for the push one
        wait_for(lambda: subscription(platform, push)["@refsys.LastDeliveryError"], "a refused push", 120)
        wait_for(lambda: subscription(platform, pull)["CurrentQueueLength"] == 1, "the S3 product queued", 120)
        # The broker delivers the same product.cataloged again: still one notification waiting.
        catalog = open_catalog(platform.settings.catalog_url)
        entry = catalog.get_by_name(first.name)
        catalog.close()
        assert entry is not None
        publish(platform, make_event(cataloged(entry), source="/refsys/functions/catalog"))
        wait_for(lambda: settled(platform), "the broker to settle")
        assert subscription(platform, push)["CurrentQueueLength"] == 1
    finally:
        platform.stop(storage_timeout=3.0)

    subscriber.down = False
    platform = EmbeddedPlatform(data_dir)
    platform.start()
    try:
        assert subscription(platform, push)["CurrentQueueLength"] == 1  # the outbox outlived the platform
        second = upload(platform, tmp_path / "products", "IW_SLC__1S", seed=33)
        wait_for(lambda: len(subscriber.received) >= 2, "both S1 products pushed", 150)
        wait_for(lambda: settled(platform), "the broker to settle")
        assert subscriber.names() == [first.name, second.name]  # once each, in the order they came
        sequences = [int(r["headers"][SEQUENCE_HEADER]) for r in subscriber.received]
        assert sequences == sorted(sequences)
        expected = "Basic " + base64.b64encode(b"hook:s3cret").decode()
        assert {r["headers"]["Authorization"] for r in subscriber.received} == {expected}
        body = subscriber.received[0]["body"]
        assert body["SubscriptionId"] == push and body["SubscriptionEvent"] == "created"
        assert body["value"]["Name"] == first.name and body["value"]["Online"] is True
        assert subscription(platform, push)["@refsys.LastDeliveryError"] is None

        read = requests.get(f"{odata(platform)}/Subscriptions({pull})/Read", params={"$top": 20}, timeout=10).json()
        assert [n["ProductName"] for n in read] == [other.name]
        acked = requests.post(f"{odata(platform)}/Subscriptions({pull})/Ack", params={"$ackid": read[0]["AckId"]},
                              timeout=10).json()  # fmt: skip
        assert (acked["AckMessagesNum"], acked["CurrentQueueLength"]) == (1, 0)
        assert subscriber.names() == [first.name, second.name]  # nothing more came meanwhile
    finally:
        platform.stop(storage_timeout=3.0)
