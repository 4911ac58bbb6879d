"""The inbox scan, for stores without notifications: raises what nobody announced, settles stale products."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from moto import mock_aws

from events import ObjectCreated, ProductIngested, ProductRejected, RejectionReason, parse_data
from shared.bus.idempotency import open_processed_events
from shared.catalog.database import CatalogDatabase
from shared.ingestion.inbox import Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.scan import InboxScan
from shared.ingestion.upload import upload_product
from shared.products import write_product
from shared.settings import Settings
from shared.storage.objects import ObjectStore

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ledger(tmp_path: Path) -> InboxLedger:
    return InboxLedger(CatalogDatabase(f"sqlite:///{tmp_path / 'ledger.db'}"))


@pytest.fixture
def scan(tmp_path: Path):
    with mock_aws():
        settings = Settings(
            s3_access_key="testing", s3_secret_key="testing", scan_grace_s=30, incomplete_timeout_s=3600
        )
        store = ObjectStore(settings)
        store.ensure_bucket(settings.inbox_bucket)
        inbox = Inbox(store, settings, ledger(tmp_path))
        published: list = []
        yield InboxScan(inbox, open_processed_events(f"sqlite:///{tmp_path / 'state.db'}"), published.append), published


def test_objects_nobody_announced_are_raised_once(scan, tmp_path: Path) -> None:
    scanner, published = scan
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    keys = upload_product(scanner.inbox.store, scanner.inbox.settings.inbox_bucket, product)
    later = datetime.now(UTC) + timedelta(seconds=60)
    report = scanner.run(now=later)
    assert report.raised == len(keys)
    raised = [parse_data(e) for e in published]
    assert all(isinstance(e, ObjectCreated) and e.store == "scan" for e in raised)
    assert sorted(e.key for e in raised) == sorted(keys)
    published.clear()
    assert scanner.run(now=later).raised == 0  # an unchanged inbox raises nothing
    assert published == []


def test_young_objects_are_left_to_their_notifications(scan, tmp_path: Path) -> None:
    scanner, published = scan
    upload_product(
        scanner.inbox.store, scanner.inbox.settings.inbox_bucket, write_product(tmp_path, "IW_SLC__1S", START)
    )
    assert scanner.run(now=datetime.now(UTC)).raised == 0
    assert published == []


def test_a_product_incomplete_past_the_timeout_is_quarantined_with_what_is_missing(scan, tmp_path: Path) -> None:
    scanner, published = scan
    product = write_product(tmp_path, "OL_1_EFR___", START)
    member = next(p for p in sorted(product.rglob("*")) if p.is_file() and p.name != "xfdumanifest.xml")
    member.unlink()
    upload_product(scanner.inbox.store, scanner.inbox.settings.inbox_bucket, product)
    report = scanner.run(now=datetime.now(UTC) + timedelta(hours=2))
    assert report.settled == 1
    (rejected,) = [e for e in map(parse_data, published) if isinstance(e, ProductRejected)]
    assert rejected.reason is RejectionReason.INCOMPLETE
    assert member.name in rejected.detail
    assert scanner.inbox.store.list(scanner.inbox.settings.inbox_bucket) == []


def test_a_stale_product_that_is_complete_is_ingested(scan, tmp_path: Path) -> None:
    scanner, published = scan
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    upload_product(scanner.inbox.store, scanner.inbox.settings.inbox_bucket, product)
    scanner.run(now=datetime.now(UTC) + timedelta(hours=2))
    assert any(isinstance(e, ProductIngested) for e in map(parse_data, published))


def test_objects_whose_notification_was_counted_are_not_raised_again(scan, tmp_path: Path) -> None:
    scanner, published = scan
    inbox = scanner.inbox
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    (product / "manifest.safe").unlink()  # the product waits for its manifest
    keys = upload_product(inbox.store, inbox.settings.inbox_bucket, product)
    counted = keys[:3]
    for obj in inbox.store.list(inbox.settings.inbox_bucket):
        if obj.key in counted:
            event = ObjectCreated(store="seaweedfs", bucket=inbox.settings.inbox_bucket, key=obj.key,
                                  size=obj.size, etag=obj.etag, event_time=START)  # fmt: skip
            assert inbox.on_object_created(event) is None
    scanner.run(now=datetime.now(UTC) + timedelta(seconds=60))
    assert sorted(parse_data(e).key for e in published) == sorted(set(keys) - set(counted))


def test_a_scanned_copy_of_the_completing_notification_does_not_announce_the_product_again(
    scan, tmp_path: Path
) -> None:
    scanner, _ = scan
    inbox = scanner.inbox
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    upload_product(inbox.store, inbox.settings.inbox_bucket, product)
    events = [
        ObjectCreated(store="seaweedfs", bucket=inbox.settings.inbox_bucket,
                      key=o.key, size=o.size, etag=o.etag, event_time=START)
        for o in inbox.store.list(inbox.settings.inbox_bucket)
    ]  # fmt: skip
    replies = [inbox.on_object_created(event) for event in events]
    completing = next(e for e, r in zip(events, replies, strict=True) if isinstance(r, ProductIngested))
    # The scan listed the inbox before the move: its event for that object has the same id, another store.
    scanned = completing.model_copy(update={"store": "scan"})
    assert scanned.event_id() == completing.event_id()
    assert inbox.on_object_created(scanned) is None
    assert isinstance(inbox.on_object_created(completing), ProductIngested)  # a true redelivery: announced again
