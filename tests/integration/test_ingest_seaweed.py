"""Ingestion against a real S3 server (SeaweedFS): object-store requests per product, concurrent deliveries,
and a real ingest function process killed in the middle of a move."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from events import ObjectCreated, ProductIngested, make_event, parse_data, parse_http, to_http
from events.naming import storage_source
from shared.catalog import open_catalog
from shared.catalog.cataloging import Cataloguer
from shared.catalog.database import CatalogDatabase
from shared.catalog.model import ProductQuery
from shared.ingestion.inbox import Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.upload import product_files, upload_product
from shared.platform.ports import free_port
from shared.platform.seaweed import SeaweedFS
from shared.products import bucket_for, recognise, write_product
from shared.runtime import RetryLater
from shared.settings import Settings
from shared.storage.objects import ObjectStore, metered

pytestmark = pytest.mark.integration
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]


def widen(product: Path, total: int, algorithm: str = "MD5", size: int = 512) -> Path:
    """Add listed data objects to a synthetic product until it holds ``total`` objects, manifest included."""
    manifest = product / "manifest.safe"
    have = sum(1 for p in product.rglob("*") if p.is_file())
    rng = random.Random(total)
    entries = []
    (product / "measurement").mkdir(exist_ok=True)
    for i in range(total - have):
        data = rng.randbytes(size)
        path = f"measurement/extra-{i:04d}.dat"
        (product / path).write_bytes(data)
        digest = hashlib.md5(data).hexdigest() if algorithm == "MD5" else hashlib.sha3_256(data).hexdigest()
        entries.append(
            f'<dataObject ID="extra{i}"><byteStream mimeType="application/octet-stream" size="{size}">'
            f'<fileLocation locatorType="URL" href="./{path}"/>'
            f'<checksum checksumName="{algorithm}">{digest}</checksum></byteStream></dataObject>'
        )
    text = manifest.read_text().replace("</dataObjectSection>", "\n".join(entries) + "</dataObjectSection>")
    manifest.write_text(text)
    return product


@pytest.fixture
def settings(seaweed: SeaweedFS, tmp_path: Path) -> Settings:
    tag = uuid.uuid4().hex[:8]  # the SeaweedFS server is shared by the session: buckets of our own
    return Settings(
        s3_endpoint_url=seaweed.s3_endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
        inbox_bucket=f"inbox-{tag}",
        quarantine_bucket=f"quarantine-{tag}",
        bucket_prefix=f"t{tag}-",
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
    )


@pytest.fixture
def inbox(settings: Settings) -> Inbox:
    store = ObjectStore(settings)
    store.ensure_bucket(settings.inbox_bucket)
    return Inbox(store, settings, InboxLedger(CatalogDatabase(settings.catalog_url), lease_s=settings.ingest_lease_s))


def uploaded(inbox: Inbox, product: Path) -> list[ObjectCreated]:
    """Upload the product (manifest last) and make the notification of each object, as the store would."""
    bucket = inbox.settings.inbox_bucket
    upload_product(inbox.store, bucket, product)
    return [
        ObjectCreated(store="seaweedfs", bucket=bucket, key=o.key, size=o.size, etag=o.etag, event_time=START)
        for o in inbox.store.list(bucket, product.name + "/")
    ]


@pytest.mark.parametrize(("objects", "algorithm"), [(10, "MD5"), (100, "MD5"), (1000, "MD5"), (100, "SHA3-256")])
def test_a_product_of_n_objects_costs_at_most_5n_plus_10_requests_from_inbox_to_catalog(
    inbox: Inbox, tmp_path: Path, objects: int, algorithm: str
) -> None:
    product = widen(write_product(tmp_path, "IW_RAW__0S", START, payload_size=512), objects, algorithm)
    events = uploaded(inbox, product)
    assert len(events) == objects
    random.Random(objects).shuffle(events)
    cataloguer = Cataloguer(inbox.store, open_catalog(inbox.settings.catalog_url), inbox.settings)
    with metered() as meter:
        replies = [inbox.on_object_created(event) for event in events]
        (ingested,) = [reply for reply in replies if reply is not None]
        assert isinstance(ingested, ProductIngested)
        cataloguer.on_product_ingested(ingested)
    assert meter.requests <= 5 * objects + 10, f"{meter.requests} requests for {objects} objects"
    assert inbox.store.list(inbox.settings.inbox_bucket, product.name) == []
    target = bucket_for(recognise(product.name).family, prefix=inbox.settings.bucket_prefix)
    assert len(inbox.store.list(target, product.name + "/")) == objects
    # Digests declared as MD5 are the store's single-part ETags; SHA3-256 needs every byte, once. Besides, the
    # manifest is read when it arrives, when the product is moved, and by the catalog (with a few small files),
    # and the catalog reads every object once for the digest of the zip its download is.
    manifest = (product / "manifest.safe").stat().st_size
    hashed = sum(p.stat().st_size for p in (product / "measurement").glob("extra-*")) if algorithm != "MD5" else 0
    whole = sum(p.stat().st_size for p in product.rglob("*") if p.is_file())
    assert hashed <= meter.bytes_read - 3 * manifest - whole < hashed + 16 * 1024


def test_concurrent_and_duplicate_deliveries_ingest_once(inbox: Inbox, tmp_path: Path) -> None:
    product = widen(write_product(tmp_path, "IW_SLC__1S", START, payload_size=512), 60)
    events = uploaded(inbox, product) * 3  # every notification three times, all at once
    random.Random(1).shuffle(events)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(deliver, [inbox] * len(events), events))
    # A duplicate of the claiming notification, delivered while the claim is held, is asked to come back.
    replies += [inbox.on_object_created(event) for event, reply in zip(events, replies, strict=True) if reply is RETRY]
    ingested = [reply for reply in replies if isinstance(reply, ProductIngested)]
    assert ingested and {reply.event_id() for reply in ingested} == {ingested[0].event_id()}
    assert all(reply is None or reply in ingested for reply in replies if reply is not RETRY)
    assert inbox.store.list(inbox.settings.inbox_bucket) == []
    for path, key in product_files(product):
        assert inbox.store.read(ingested[0].bucket, key) == path.read_bytes()


RETRY = object()


def deliver(inbox: Inbox, event: ObjectCreated) -> object:
    try:
        return inbox.on_object_created(event)
    except RetryLater:
        return RETRY


def _function_server(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **{f"REFSYS_{k.upper()}": str(v) for k, v in settings.model_dump(exclude={"sink"}).items() if v is not None},
        "REFSYS_INGEST_PARALLEL_REQUESTS": "1",  # a slow move, to be killed in its middle
        "REFSYS_INGEST_LEASE_S": "3",
        "REFSYS_UNLISTED_FILES_WARN_FAMILIES": "[]",
    }
    command = [sys.executable, "-m", "functions_framework", "--source", str(REPO_ROOT / "functions/ingest/main.py"),
               "--target", "ingest", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    # Its own process group: gunicorn's worker does the work, and is killed with its master.
    server = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except requests.RequestException:
            time.sleep(0.1)
    server.kill()
    raise TimeoutError(f"the ingest function did not answer; see {log}")


def test_an_ingest_function_killed_mid_move_leaves_one_good_copy_after_the_redelivery(
    inbox: Inbox, tmp_path: Path
) -> None:
    product = widen(write_product(tmp_path, "IW_GRDH_1S", START, payload_size=512), 400, "SHA3-256")
    events = uploaded(inbox, product)
    completing = next(e for e in events if e.key.endswith("manifest.safe"))
    for event in events:
        if event is not completing:
            assert inbox.on_object_created(event) is None
    headers, body = to_http(make_event(completing, source=storage_source("seaweedfs", completing.bucket)))
    target = bucket_for(recognise(product.name).family, prefix=inbox.settings.bucket_prefix)
    inbox.store.ensure_bucket(target)
    port = free_port()
    server = _function_server(inbox.settings, port, tmp_path / "ingest.log")
    try:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(requests.post, f"http://127.0.0.1:{port}/", data=body, headers=headers, timeout=120)
            deadline = time.monotonic() + 60
            while len(inbox.store.list(target, product.name + "/")) < 20 and time.monotonic() < deadline:
                time.sleep(0.02)
            os.killpg(server.pid, signal.SIGKILL)  # the function's processes, in the middle of the move
            server.wait()
        left = inbox.store.list(inbox.settings.inbox_bucket, product.name + "/")
        assert 0 < len(left) < 400, "the kill was meant to land in the middle of the move"
        # Another notification meanwhile: the product is claimed by the dead delivery, answered at once.
        other = events[0].model_copy(update={"event_time": datetime.now(UTC)})
        assert inbox.on_object_created(other) is None

        server = _function_server(inbox.settings, port, tmp_path / "ingest.log")
        for _ in range(30):  # the broker's redeliveries: asked to come back until the dead claim expired
            answer = requests.post(f"http://127.0.0.1:{port}/", data=body, headers=headers, timeout=120)
            if answer.status_code != 503:
                break
            time.sleep(0.5)
        assert answer.status_code == 200, answer.text
        assert answer.headers["ce-type"] == ProductIngested.TYPE
        reply = parse_data(parse_http(answer.headers, answer.content))
        assert isinstance(reply, ProductIngested)
        cataloguer = Cataloguer(inbox.store, open_catalog(inbox.settings.catalog_url), inbox.settings)
        cataloguer.on_product_ingested(reply)
        cataloguer.on_product_ingested(reply)  # redelivered
        assert [e.name for e in cataloguer.catalog.search(ProductQuery(names=[product.name]))] == [product.name]
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert inbox.store.list(inbox.settings.inbox_bucket, product.name + "/") == []
    for path, key in product_files(product):  # one good copy of everything
        assert inbox.store.read(target, key) == path.read_bytes()
    assert "Traceback" not in (tmp_path / "ingest.log").read_text()
