"""The embedded platform lets in only who belongs: events need the platform's secret, storage needs its
keys, and nothing under the data directory is readable by other local users."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
import requests

from shared.platform.embedded import EmbeddedPlatform
from shared.platform.ports import GRPC_OFFSET
from shared.security.senders import sender_headers

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]
CLOUDEVENT = {"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t", "ce-source": "/s"}


EVENT_PATHS = {"catalog": "/events", "operations": "/tick", "lifecycle": "/tick", "subscriptions": "/events"}


def test_every_function_refuses_an_event_without_the_platforms_secret(platform: EmbeddedPlatform) -> None:
    functions: dict[str, str] = platform.endpoints()["functions"]  # type: ignore[assignment]
    for name, url in functions.items():
        for authorization in ({}, {"Authorization": "Bearer not-the-secret"}):
            response = requests.post(url, data=b"{}", headers={**CLOUDEVENT, **authorization}, timeout=10)
            # Functions with an API beside their events take them at /events or /tick only (odata, stac, web: none).
            if name in ("catalog", "odata", "operations", "stac", "web", "lifecycle", "subscriptions"):
                path = EVENT_PATHS.get(name)
                if path is None:
                    continue
                response = requests.post(url + path, data=b"{}", headers={**CLOUDEVENT, **authorization}, timeout=10)
            assert response.status_code == 401, (name, response.status_code, response.text)
            assert response.json()["error"]["code"] == "Unauthorized"
    secret = (platform.data_dir / "event-secret").read_text().strip()
    assert platform.settings.event_secret == secret
    ingest = requests.post(
        functions["ingest"], data=b"{}", headers={**CLOUDEVENT, **sender_headers(secret)}, timeout=10
    )
    assert ingest.status_code == 422  # past the check: an unexpected event type


def test_the_broker_takes_events_only_from_the_platforms_publishers(platform: EmbeddedPlatform) -> None:
    event = {**CLOUDEVENT, "ce-type": "org.refsys.security.probe.v1", "ce-id": "probe-1"}  # no Trigger wants it
    url = platform.broker.ingress_url

    def stored(event_id: str) -> int:
        with sqlite3.connect(platform.data_dir / "broker.db") as db:
            return int(db.execute("SELECT count(*) FROM events WHERE id = ?", (event_id,)).fetchone()[0])

    for authorization in ({}, {"Authorization": "Bearer not-the-secret"}, {"Authorization": "Basic cmVmc3lzOng="}):
        assert requests.post(url, data=b"{}", headers={**event, **authorization}, timeout=10).status_code == 401
    assert stored("probe-1") == 0  # refused ones are not even archived
    secret = sender_headers(platform.settings.event_secret)
    assert requests.post(url, data=b"{}", headers={**event, **secret}, timeout=10).status_code == 202
    assert stored("probe-1") == 1


def test_storage_answers_only_s3_with_its_keys(platform: EmbeddedPlatform) -> None:
    store = platform.object_store()
    bucket = "rs-security-probe"  # no bucket of the pipeline: nothing reacts to it
    store.ensure_bucket(bucket)
    store.put(bucket, "kept.txt", b"private")
    weed = json.loads((platform.seaweed.data_dir / "weed.json").read_text())
    s3 = {platform.seaweed.s3_port, platform.seaweed.s3_port + GRPC_OFFSET}
    refused = 0
    for port in sorted(set(weed["ports"]) - s3):  # master, volume and filer, with their gRPC ports
        for method, body in (("GET", None), ("PUT", b"evil"), ("DELETE", None)):
            try:
                response = requests.request(
                    method, f"http://127.0.0.1:{port}/buckets/{bucket}/kept.txt", data=body, timeout=5
                )
            except requests.ConnectionError:
                continue  # a gRPC port: no HTTP/1 there
            assert response.status_code in (400, 401, 404), (port, method, response.status_code, response.text)
            refused += response.status_code == 401
    assert refused >= 3  # the filer refused each of GET, PUT and DELETE for want of a signed token
    anonymous = requests.get(f"{platform.seaweed.s3_endpoint}/{bucket}/kept.txt", timeout=5)
    assert anonymous.status_code == 403
    assert store.read(bucket, "kept.txt") == b"private"  # S3 with the keys: unchanged


def test_nothing_under_the_data_directory_is_readable_by_others(platform: EmbeddedPlatform) -> None:
    paths = [path for path in [platform.data_dir, *Path(platform.data_dir).rglob("*")] if not path.is_symlink()]
    # Directories 0700: nothing below them can even be reached by another user.
    assert [str(path) for path in paths if path.is_dir() and stat.S_IMODE(path.stat().st_mode) != 0o700] == []
    # weed chmods its volume-info files (.vif: version and replication, no data) to 0644 itself.
    open_files = [
        str(p) for p in paths if p.is_file() and p.suffix != ".vif" and stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert open_files == []
    for name in ("catalog.db", "broker.db", "s3-credentials.json", "event-secret"):
        assert stat.S_IMODE((platform.data_dir / name).stat().st_mode) == 0o600, name
