"""The embedded SeaweedFS object store against a real `weed server` (no mocks)."""

from __future__ import annotations

import io
import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from shared.platform.ports import free_port
from shared.platform.seaweed import VOLUMES_PER_BUCKET, SeaweedFS, weed_binary

pytestmark = pytest.mark.integration

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
# Set to rewrite tests/events/seaweedfs-filer-*.json from what the server really sends.
UPDATE_FIXTURES = os.environ.get("REFSYS_UPDATE_EVENT_FIXTURES") == "1"
MiB = 1024 * 1024


def _bucket() -> str:
    # The session server is shared: every test works in buckets of its own.
    return f"test-{uuid.uuid4().hex[:12]}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_weed_binary_found() -> None:
    assert Path(weed_binary()).name == "weed"


def test_free_port_with_grpc_twin() -> None:
    port = free_port(grpc_offset=True)
    assert port + 10000 <= 65535
    assert free_port(grpc_offset=True, avoid={port, port + 10000}) not in {port, port + 10000}


def test_put_get_list_delete(seaweed: SeaweedFS) -> None:
    s3 = seaweed.client()
    bucket = _bucket()
    seaweed.create_buckets([bucket])
    seaweed.create_buckets([bucket])  # idempotent

    s3.put_object(Bucket=bucket, Key="dir/file.txt", Body=b"hello", ContentType="text/plain")
    obj = s3.get_object(Bucket=bucket, Key="dir/file.txt")
    assert obj["Body"].read() == b"hello"
    assert obj["ContentType"] == "text/plain"

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/file.txt"]

    s3.delete_object(Bucket=bucket, Key="dir/file.txt")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="dir/file.txt")
    assert err.value.response["Error"]["Code"] in ("404", "NoSuchKey")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_multipart_upload(seaweed: SeaweedFS) -> None:
    s3 = seaweed.client()
    bucket = _bucket()
    seaweed.create_buckets([bucket])
    data = os.urandom(12 * MiB)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)

    s3.upload_fileobj(io.BytesIO(data), bucket, "big.bin", Config=config)

    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # really went through 3 parts
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data


def test_copy_object(seaweed: SeaweedFS) -> None:
    s3 = seaweed.client()
    bucket, other = _bucket(), _bucket()
    seaweed.create_buckets([bucket, other])
    s3.put_object(Bucket=bucket, Key="src.txt", Body=b"copy me")

    s3.copy_object(Bucket=other, Key="dst.txt", CopySource={"Bucket": bucket, "Key": "src.txt"})

    assert s3.get_object(Bucket=other, Key="dst.txt")["Body"].read() == b"copy me"
    assert s3.get_object(Bucket=bucket, Key="src.txt")["Body"].read() == b"copy me"


def test_user_metadata_survives_a_transfer_manager_upload_and_a_copy(seaweed: SeaweedFS) -> None:
    """A processing run's outputs carry its trace as metadata, read back where ingestion moved them."""
    from boto3.s3.transfer import create_transfer_manager

    s3 = seaweed.client()
    bucket, other = _bucket(), _bucket()
    seaweed.create_buckets([bucket, other])
    with create_transfer_manager(s3, boto3.s3.transfer.TransferConfig()) as manager:
        manager.upload(io.BytesIO(b"traced"), bucket, "out.txt", extra_args={"Metadata": {"traceparent": "t"}}).result()
    assert s3.head_object(Bucket=bucket, Key="out.txt")["Metadata"] == {"traceparent": "t"}
    s3.copy_object(Bucket=other, Key="out.txt", CopySource={"Bucket": bucket, "Key": "out.txt"})
    assert s3.head_object(Bucket=other, Key="out.txt")["Metadata"] == {"traceparent": "t"}


@pytest.mark.parametrize(
    ("access_key", "secret_key"),
    [("refsys", "wrong-secret"), ("nobody", "refsys-secret")],
)
def test_wrong_credentials_refused(seaweed: SeaweedFS, access_key: str, secret_key: str) -> None:
    bucket = _bucket()
    seaweed.create_buckets([bucket])
    intruder = boto3.client(
        "s3",
        endpoint_url=seaweed.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    for call in (
        lambda: intruder.list_buckets(),
        lambda: intruder.put_object(Bucket=bucket, Key="x", Body=b"x"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] in (
            "AccessDenied",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
        )


def test_presigned_url_signature_is_checked(seaweed: SeaweedFS) -> None:
    s3 = seaweed.client()
    bucket = _bucket()
    seaweed.create_buckets([bucket])
    s3.put_object(Bucket=bucket, Key="p.txt", Body=b"presigned")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p.txt"}, ExpiresIn=300)

    assert requests.get(url, timeout=10).content == b"presigned"
    assert requests.get(f"{seaweed.s3_endpoint}/{bucket}/p.txt", timeout=10).status_code == 403
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered, timeout=10).status_code == 403


# -- webhook notifications -------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """A loopback HTTP server recording the JSON bodies POSTed to it."""
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.put(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/seaweedfs", received
    finally:
        server.shutdown()
        server.server_close()


def _wait_for_event(
    received: queue.Queue[dict[str, Any]], event_type: str, key: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[tuple[str, str]] = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = received.get(timeout=left)
        except queue.Empty:
            break
        seen.append((event.get("event_type", "?"), event.get("key", "?")))
        if event.get("event_type") == event_type and event.get("key") == key:
            return event
    pytest.fail(f"no {event_type} notification for {key}; got {seen}")


def _check_against_fixture(event: dict[str, Any], name: str) -> None:
    path = EVENTS_DIR / name
    if UPDATE_FIXTURES:
        path.write_text(json.dumps(event, indent=2) + "\n")
    fixture = json.loads(path.read_text())
    # Same shape as the saved real payload (values like inode and timestamps differ per run).
    assert event.keys() == fixture.keys()
    assert event["message"].keys() == fixture["message"].keys()


def test_webhook_notifications(tmp_path: Path, webhook: tuple[str, queue.Queue[dict[str, Any]]]) -> None:
    url, received = webhook
    server = SeaweedFS(tmp_path / "seaweedfs", webhook_url=url)
    server.start()
    try:
        s3 = server.client()
        server.create_buckets(["bucket"])
        s3.put_object(Bucket="bucket", Key="dir/file.txt", Body=b"hello", ContentType="text/plain")

        created = _wait_for_event(received, "create", "/buckets/bucket/dir/file.txt")
        entry = created["message"]["new_entry"]
        assert entry["name"] == "file.txt"
        assert entry["attributes"]["file_size"] == 5
        assert created["message"]["new_parent_path"] == "/buckets/bucket/dir"
        _check_against_fixture(created, "seaweedfs-filer-create.json")

        s3.delete_object(Bucket="bucket", Key="dir/file.txt")
        deleted = _wait_for_event(received, "delete", "/buckets/bucket/dir/file.txt")
        assert deleted["message"]["old_entry"]["name"] == "file.txt"
        assert "new_entry" not in deleted["message"]
        _check_against_fixture(deleted, "seaweedfs-filer-delete.json")
    finally:
        server.stop(timeout=3.0)  # graceful stop is covered below; spare the ~15 s drain here


# -- lifecycle -------------------------------------------------------------------------------------


def test_data_survives_restart_and_stop_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "seaweedfs"
    first = SeaweedFS(data_dir)
    first.start()
    pgid = first.pid
    assert pgid is not None
    first.create_buckets(["keep"])
    first.client().put_object(Bucket="keep", Key="a/b.txt", Body=b"durable")
    first.stop()  # graceful (SIGTERM)
    assert not _group_alive(pgid)
    first.stop()  # idempotent

    second = SeaweedFS(data_dir)  # same data, new ports
    assert second.s3_endpoint != first.s3_endpoint
    second.start()
    pgid = second.pid
    assert pgid is not None
    try:
        s3 = second.client()
        assert s3.get_object(Bucket="keep", Key="a/b.txt")["Body"].read() == b"durable"
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["keep"]
    finally:
        second.stop(timeout=0.5)  # forces the SIGKILL path
    assert not _group_alive(pgid)
    assert (data_dir / "seaweedfs.log").stat().st_size > 0


def test_a_new_bucket_grows_few_volumes(seaweed: SeaweedFS) -> None:
    """Volumes are capped by free disk: buckets that grew SeaweedFS's 7 each ran the test session out of
    volumes with 26 GB free, and every write to a new bucket failed."""
    s3 = seaweed.client()
    bucket = _bucket()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    layout = requests.get(f"{seaweed.master_url}/vol/status", timeout=10).json()["Volumes"]["DataCenters"]
    volumes = [
        volume
        for racks in layout.values()
        for nodes in racks.values()
        for node_volumes in nodes.values()
        for volume in node_volumes or []
        if volume["Collection"] == bucket
    ]
    assert len(volumes) == VOLUMES_PER_BUCKET
