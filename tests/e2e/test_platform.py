"""The embedded platform end to end: real SeaweedFS, broker, functions-framework servers and catalog."""

import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cloudevents.http import CloudEvent

from events import ObjectCreated, ProductIngested, make_event, to_http
from shared.ingestion.inbox import identity
from shared.ingestion.upload import upload_product
from shared.platform.embedded import EmbeddedPlatform
from shared.platform.ping import ping_event
from shared.products import recognise, write_product
from shared.security.senders import sender_headers

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def publish(platform: EmbeddedPlatform, event: CloudEvent) -> None:
    """Post an event to the broker's ingress as the platform's own publishers do (with its event secret)."""
    headers, body = to_http(event)
    headers.update(sender_headers(platform.settings.event_secret))
    assert requests.post(platform.broker.ingress_url, data=body, headers=headers, timeout=10).status_code == 202


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def query(platform: EmbeddedPlatform, **params: str) -> dict:
    response = requests.get(str(platform.endpoints()["catalog"]), params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def settled(platform: EmbeddedPlatform) -> bool:
    """Nothing waiting or in flight on the broker."""
    stats = platform.broker.stats()
    return stats.get("pending", 0) == 0 and stats.get("in-flight", 0) == 0


def upload(platform: EmbeddedPlatform, directory: Path, product_type: str, seed: int) -> Path:
    product = write_product(directory, product_type, START, seed=seed)
    upload_product(platform.object_store(), platform.settings.inbox_bucket, product)
    return product


def test_endpoints_file_lists_every_endpoint(platform: EmbeddedPlatform) -> None:
    endpoints = json.loads((platform.data_dir / "endpoints.json").read_text())
    assert {"s3", "broker", "catalog", "functions"} <= endpoints.keys()
    assert set(endpoints["functions"]) == set(platform.topology.services)
    assert {"notify", "ingest", "catalog", "deadletter", "scan"} <= set(endpoints["functions"])


def test_an_upload_is_answered_by_a_catalog_query(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    product = upload(platform, tmp_path, "IW_GRDH_1S", seed=1)
    answer = wait_for(lambda: query(platform, name=product.name)["products"], "the product in the catalog")
    (entry,) = answer  # type: ignore[misc]
    assert entry["productType"] == "IW_GRDH_1S"
    assert entry["bucket"] == "rs-s1-l1-slices"
    assert entry["footprint"]["type"] in ("Polygon", "MultiPolygon")
    assert platform.object_store().list(platform.settings.inbox_bucket, product.name) == []


def test_the_same_notification_twice_leaves_one_catalog_entry(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    product = upload(platform, tmp_path, "OL_1_EFR___", seed=2)
    wait_for(lambda: query(platform, name=product.name)["products"], "the product in the catalog")
    manifest_key = f"{product.name}/xfdumanifest.xml"
    size = (product / "xfdumanifest.xml").stat().st_size
    record = {
        "eventName": "ObjectCreated:Put",
        "eventSource": "aws:s3",
        "eventTime": START.isoformat(),
        "s3": {"bucket": {"name": "rs-inbox"}, "object": {"key": manifest_key, "size": size, "eTag": "x"}},
    }
    notify = platform.endpoints()["functions"]["notify"]  # type: ignore[index]
    for _ in range(2):
        sender = sender_headers(platform.settings.event_secret)  # as the store's webhook sends it
        assert requests.post(notify, json={"Records": [record]}, headers=sender, timeout=10).status_code == 202
    wait_for(lambda: settled(platform), "the broker to settle")
    assert query(platform, name=product.name)["count"] == 1


def test_a_product_event_delivered_twice_to_the_broker_is_cataloged_once(
    platform: EmbeddedPlatform, tmp_path: Path
) -> None:
    product = upload(platform, tmp_path, "IW_SLC__1S", seed=3)
    wait_for(lambda: query(platform, name=product.name)["products"], "the product in the catalog")
    before = query(platform, name=product.name)["products"][0]
    # Announce the product again, twice, as a redelivery would: the catalog must change nothing.
    name = recognise(product.name)
    again = ProductIngested(
        product=identity(name),
        bucket=before["bucket"],
        key=before["key"],
        content_length=before["contentLength"],
        checksum=before["checksum"],
        content_type=before["contentType"],
        manifest_key=before["key"] + name.manifest_name,
        inbox_time=before["inboxTime"],
        ingestion_time=before["ingestionTime"],
    )
    for _ in range(2):
        publish(platform, make_event(again, source="/refsys/functions/ingest"))
    wait_for(lambda: settled(platform), "the broker to settle")
    after = query(platform, name=product.name)
    assert after["count"] == 1
    assert after["products"][0] == before


def test_an_unrecognised_upload_is_quarantined(platform: EmbeddedPlatform) -> None:
    store = platform.object_store()
    store.put(platform.settings.inbox_bucket, "notes/readme.txt", b"not a product")
    wait_for(
        lambda: store.read(platform.settings.quarantine_bucket, "notes/readme.txt.reason.json"),
        "the reason document in quarantine",
        # SeaweedFS drops a webhook post that meets a kept-alive connection notify's server just closed (EOF,
        # not retried): the inbox scan finds the object then, once older than its grace, at its next tick.
        timeout=150,
    )
    assert store.read(platform.settings.quarantine_bucket, "notes/readme.txt") == b"not a product"


def test_a_poison_event_reaches_the_dead_letter_store(platform: EmbeddedPlatform) -> None:
    event = make_event(
        ObjectCreated(store="aws", bucket="rs-inbox", key="x", size=1, event_time=START), source="/refsys/test"
    )
    event.data = {"bucket": "rs-inbox"}  # not an ObjectCreated: ingest answers 422
    publish(platform, event)
    output = wait_for(lambda: _deadletters(platform), "the dead letter")
    letter = next(json.loads(line) for line in str(output).splitlines() if json.loads(line)["eventId"] == event["id"])
    assert letter["errorCode"] == "422"
    assert "key" in letter["error"]


def _deadletters(platform: EmbeddedPlatform) -> str:
    run = [sys.executable, "-m", "shared.cli", "deadletter", "list", "--data-dir", str(platform.data_dir)]
    return subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b'{"hello": "world"}'),
        ({"Content-Type": "application/cloudevents+json"}, b"{broken"),
        ({"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s"}, b"{}"),
    ],
)
def test_malformed_input_to_any_endpoint_is_a_4xx_with_a_message(platform: EmbeddedPlatform, headers, body) -> None:
    endpoints = platform.endpoints()
    headers = {**headers, **sender_headers(platform.settings.event_secret)}  # past the sender check: the input's turn
    # The dead-letter sink keeps whatever it gets (202): a letter refused there would be lost.
    functions = {name: url for name, url in endpoints["functions"].items() if name != "deadletter"}  # type: ignore[union-attr]
    urls = [endpoints["broker"], *functions.values()]
    for url in urls:
        target = url + "/events" if url == endpoints["functions"]["catalog"] else url  # type: ignore[index]
        response = requests.post(target, data=body, headers=headers, timeout=10)
        assert 400 <= response.status_code < 500, (url, response.status_code, response.text)
        assert response.text.strip(), url


def test_the_scan_function_runs_a_scan_on_a_tick(platform: EmbeddedPlatform) -> None:
    (source,) = [s for s in platform.topology.ping_sources() if s.name == "inbox-scan"]
    headers, body = to_http(ping_event(source, START))
    scan = platform.endpoints()["functions"]["scan"]  # type: ignore[index]
    headers.update(sender_headers(platform.settings.event_secret))  # as the platform's PingTimer sends it
    assert requests.post(scan, data=body, headers=headers, timeout=60).status_code == 202


def test_bad_catalog_queries_say_what_is_wrong(platform: EmbeddedPlatform) -> None:
    catalog = str(platform.endpoints()["catalog"])
    for params, says in [
        ({"limit": "many"}, "limit"),
        ({"start": "yesterday"}, "start"),
        ({"colour": "red"}, "colour"),
    ]:
        response = requests.get(catalog, params=params, timeout=10)
        assert response.status_code == 400
        assert says in response.json()["error"]["message"]


def test_the_odata_api_finds_and_serves_an_ingested_product(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    product = upload(platform, tmp_path, "IW_GRDH_1S", seed=11)
    odata = str(platform.endpoints()["odata"])
    query = {"$filter": f"Name eq '{product.name}' and Collection/Name eq 'SENTINEL-1'", "$count": "true"}
    answer = wait_for(
        lambda: requests.get(f"{odata}/Products", params=query, timeout=10).json().get("value"),
        "the product in the OData API",
    )
    (entry,) = answer  # type: ignore[misc]
    assert entry["Name"] == product.name and entry["Online"] is True
    download = requests.get(f"{odata}/Products({entry['Id']})/$value", timeout=30)  # follows 307 -> zip stream
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = set(archive.namelist())
    assert f"{product.name}/manifest.safe" in names
    bad = requests.get(f"{odata}/Products", params={"$filter": "Name eq"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["message"]
