"""Hostile object keys on the embedded platform: a key HTTP headers cannot carry blocks nothing."""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from events import to_http
from shared.ingestion.upload import upload_product
from shared.platform.embedded import EmbeddedPlatform
from shared.platform.ping import ping_event
from shared.products import write_product
from shared.security.senders import sender_headers

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def wait_for(condition: Callable[[], object], what: str, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_a_key_with_a_newline_and_non_latin_1_characters_is_quarantined_and_the_rest_flows(
    platform: EmbeddedPlatform, tmp_path: Path
) -> None:
    store, config = platform.object_store(), platform.settings
    odd = "drop/Île\n中 50%.txt"
    store.put(config.inbox_bucket, odd, b"not a product")
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    upload_product(store, config.inbox_bucket, product)
    # The scan raises what notifications missed: with the odd key in the inbox it must keep working.
    (source,) = [s for s in platform.topology.ping_sources() if s.name == "inbox-scan"]
    scan = platform.endpoints()["functions"]["scan"]  # type: ignore[index]
    headers, body = to_http(ping_event(source, START))
    headers.update(sender_headers(config.event_secret))
    assert requests.post(scan, data=body, headers=headers, timeout=60).status_code == 202

    catalog = str(platform.endpoints()["catalog"])
    wait_for(
        lambda: requests.get(catalog, params={"name": product.name}, timeout=10).json()["products"],
        "the normal product in the catalog",
        timeout=150,
    )
    wait_for(
        lambda: store.read(config.quarantine_bucket, f"{odd}.reason.json"),
        "the odd key quarantined as unrecognised",
        timeout=150,  # its notification, or the scan at a later tick once older than its grace
    )
    assert store.read(config.quarantine_bucket, odd) == b"not a product"
    assert store.head(config.inbox_bucket, odd) is None
    assert requests.post(scan, data=body, headers=headers, timeout=60).status_code == 202
