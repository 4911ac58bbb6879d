"""The ingest step against an S3 API (moto): verify, move, quarantine, resume, and never duplicate."""

import hashlib
import json
import random
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from events import ObjectCreated, ProductIngested, ProductRejected, RejectionReason
from shared.catalog.database import CatalogDatabase
from shared.ingestion.inbox import Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.notifications import object_events
from shared.ingestion.upload import product_files, upload_product
from shared.products import bucket_for, recognise, write_product
from shared.runtime import Reject
from shared.settings import Settings
from shared.storage.objects import ObjectStore, metered

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ledger(tmp_path: Path) -> InboxLedger:
    return InboxLedger(CatalogDatabase(f"sqlite:///{tmp_path / 'ledger.db'}"))


@pytest.fixture
def inbox(tmp_path: Path):
    with mock_aws():
        settings = Settings(s3_access_key="testing", s3_secret_key="testing")
        store = ObjectStore(settings)
        store.ensure_bucket(settings.inbox_bucket)
        yield Inbox(store, settings, ledger(tmp_path))


@pytest.fixture
def product(tmp_path: Path) -> Path:
    return write_product(tmp_path, "IW_GRDH_1S", START, payload_size=2048)


def notification(inbox: Inbox, key: str) -> ObjectCreated:
    head = inbox.store.head(inbox.settings.inbox_bucket, key)
    assert head is not None
    return ObjectCreated(
        store="aws", bucket=inbox.settings.inbox_bucket, key=key, size=head.size, etag=head.etag, event_time=START
    )


def deliver_all(inbox: Inbox, product: Path) -> tuple[list[ObjectCreated], list[object]]:
    keys = upload_product(inbox.store, inbox.settings.inbox_bucket, product)
    events = [notification(inbox, key) for key in keys]
    return events, [inbox.on_object_created(event) for event in events]


def family_bucket(product: Path) -> str:
    return bucket_for(recognise(product.name).family)


def test_a_complete_product_is_moved_and_announced_once(inbox: Inbox, product: Path) -> None:
    _, replies = deliver_all(inbox, product)
    ingested = [r for r in replies if r is not None]
    assert len(ingested) == 1
    (event,) = ingested
    assert isinstance(event, ProductIngested)
    assert event.product.name == product.name
    assert event.bucket == family_bucket(product)
    assert inbox.store.list(inbox.settings.inbox_bucket) == []
    moved = {o.key for o in inbox.store.list(event.bucket)}
    assert moved == {f"{product.name}/{p.relative_to(product).as_posix()}" for p in product.rglob("*") if p.is_file()}
    assert event.content_length == sum(p.stat().st_size for p in product.rglob("*") if p.is_file())


def test_a_redelivered_notification_announces_the_same_event_and_others_stay_quiet(inbox: Inbox, product: Path) -> None:
    events, replies = deliver_all(inbox, product)
    completing = next(e for e, r in zip(events, replies, strict=True) if r is not None)
    first = next(r for r in replies if r is not None)
    again = inbox.on_object_created(completing)
    assert isinstance(again, ProductIngested) and isinstance(first, ProductIngested)
    assert again.event_id() == first.event_id()
    assert all(inbox.on_object_created(e) is None for e in events if e is not completing)


def test_without_its_manifest_a_product_waits(inbox: Inbox, product: Path) -> None:
    (product / "manifest.safe").unlink()
    _, replies = deliver_all(inbox, product)
    assert replies and all(r is None for r in replies)
    assert len(inbox.store.list(inbox.settings.inbox_bucket)) == len(replies)


def test_a_missing_member_keeps_the_product_waiting(inbox: Inbox, product: Path) -> None:
    member = next(p for p in sorted(product.rglob("*")) if p.is_file() and p.name != "manifest.safe")
    member.unlink()
    _, replies = deliver_all(inbox, product)
    assert all(r is None for r in replies)


def test_a_member_that_differs_from_the_manifest_is_quarantined_with_its_name(inbox: Inbox, product: Path) -> None:
    member = next(p for p in sorted(product.rglob("*")) if p.is_file() and p.name != "manifest.safe")
    data = bytearray(member.read_bytes())
    data[0] ^= 0xFF  # same size, other content
    member.write_bytes(bytes(data))
    _, replies = deliver_all(inbox, product)
    rejected = [r for r in replies if r is not None]
    assert len(rejected) == 1 and isinstance(rejected[0], ProductRejected)
    assert rejected[0].reason is RejectionReason.CHECKSUM_MISMATCH
    assert member.name in rejected[0].detail
    assert inbox.store.list(inbox.settings.inbox_bucket) == []
    reason = json.loads(inbox.store.read(inbox.settings.quarantine_bucket, rejected[0].quarantine_key) or b"")
    assert reason["reason"] == "checksum-mismatch"
    assert any(o.key.endswith(member.name) for o in inbox.store.list(inbox.settings.quarantine_bucket))


def test_a_corrupt_manifest_is_quarantined(inbox: Inbox, product: Path) -> None:
    (product / "manifest.safe").write_text("<xfdu:XFDU><unclosed>")
    _, replies = deliver_all(inbox, product)
    (rejected,) = [r for r in replies if r is not None]
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.CORRUPT_MANIFEST


def test_an_unrecognised_object_is_quarantined_never_deleted(inbox: Inbox) -> None:
    inbox.store.put(inbox.settings.inbox_bucket, "holiday-photo.jpg", b"jpeg")
    reply = inbox.on_object_created(notification(inbox, "holiday-photo.jpg"))
    assert isinstance(reply, ProductRejected) and reply.reason is RejectionReason.UNRECOGNISED
    assert inbox.store.read(inbox.settings.quarantine_bucket, "holiday-photo.jpg") == b"jpeg"


def test_a_move_interrupted_by_a_crash_is_resumed(inbox: Inbox, product: Path) -> None:
    keys = upload_product(inbox.store, inbox.settings.inbox_bucket, product)
    events = [notification(inbox, key) for key in keys]
    target = family_bucket(product)
    inbox.store.ensure_bucket(target)
    # The crash happened after two members had been moved and a third copied but not yet deleted;
    # the manifest moves last, so it is still here.
    members = [k for k in keys if not k.endswith("manifest.safe")]
    for key in members[:3]:
        inbox.store.copy(inbox.settings.inbox_bucket, key, target, key)
    for key in members[:2]:
        inbox.store.delete(inbox.settings.inbox_bucket, key)
    replies = [inbox.on_object_created(e) for e in events]
    assert sum(isinstance(r, ProductIngested) for r in replies) == 1
    assert inbox.store.list(inbox.settings.inbox_bucket) == []
    assert len(inbox.store.list(target)) == len(keys)
    for path, key in product_files(product):  # one good copy of everything
        assert inbox.store.read(target, key) == path.read_bytes()


def test_an_event_for_another_bucket_is_refused(inbox: Inbox) -> None:
    event = ObjectCreated(store="aws", bucket="elsewhere", key="x", size=1, event_time=START)
    with pytest.raises(Reject, match="inbox"):
        inbox.on_object_created(event)


@pytest.mark.parametrize("seed", range(5))
def test_objects_arriving_in_random_order_are_ingested_once_after_the_last(
    inbox: Inbox, product: Path, seed: int
) -> None:
    files = sorted(product_files(product))
    random.Random(seed).shuffle(files)
    replies = []
    for path, key in files:  # each object's notification is handled as soon as it lands
        inbox.store.client.upload_file(str(path), inbox.settings.inbox_bucket, key)
        replies.append(inbox.on_object_created(notification(inbox, key)))
    assert all(reply is None for reply in replies[:-1])
    assert isinstance(replies[-1], ProductIngested)


def test_aws_records_from_moto_s3_to_sqs_drive_the_ingestion(inbox: Inbox, product: Path) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="inbox-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    inbox.store.client.put_bucket_notification_configuration(
        Bucket=inbox.settings.inbox_bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    keys = upload_product(inbox.store, inbox.settings.inbox_bucket, product)
    events = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            events += object_events(json.loads(message["Body"]))  # the s3:TestEvent gives none
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(e.key for e in events) == sorted(keys)
    replies = [inbox.on_object_created(e) for e in events]
    assert sum(isinstance(r, ProductIngested) for r in replies) == 1


def test_the_same_product_uploaded_twice_is_announced_under_the_same_id(inbox: Inbox, product: Path) -> None:
    _, first = deliver_all(inbox, product)
    _, second = deliver_all(inbox, product)
    (a,) = [r for r in first if r is not None]
    (b,) = [r for r in second if r is not None]
    assert isinstance(b, ProductIngested) and b.event_id() == a.event_id()
    assert inbox.store.list(inbox.settings.inbox_bucket) == []


def test_the_same_name_with_other_content_is_a_conflict_kept_aside(inbox: Inbox, product: Path) -> None:
    deliver_all(inbox, product)
    manifest = product / "manifest.safe"
    manifest.write_bytes(manifest.read_bytes().replace(b"</xfdu:XFDU>", b"<!-- reprocessed --></xfdu:XFDU>"))
    _, replies = deliver_all(inbox, product)
    (rejected,) = [r for r in replies if r is not None]
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.CONFLICT
    assert inbox.store.read(family_bucket(product), f"{product.name}/manifest.safe") != manifest.read_bytes()
    assert inbox.store.read(inbox.settings.quarantine_bucket, f"{product.name}/manifest.safe") == manifest.read_bytes()


def zipped(product: Path) -> Path:
    archive = product.with_name(product.name + ".zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for path, key in product_files(product):
            zf.write(path, key)
    return archive


def test_a_zipped_product_that_verifies_is_ingested_as_one_object(inbox: Inbox, product: Path) -> None:
    archive = zipped(product)
    (key,) = upload_product(inbox.store, inbox.settings.inbox_bucket, archive)
    reply = inbox.on_object_created(notification(inbox, key))
    assert isinstance(reply, ProductIngested)
    assert reply.content_type == "application/zip"
    assert inbox.store.head(reply.bucket, key) is not None


def test_a_zipped_product_with_a_flipped_byte_is_quarantined_naming_the_file(inbox: Inbox, product: Path) -> None:
    member = next(p for p in sorted(product.rglob("*.tiff")) if p.is_file())
    data = bytearray(member.read_bytes())
    data[-1] ^= 0x01
    member.write_bytes(bytes(data))
    (key,) = upload_product(inbox.store, inbox.settings.inbox_bucket, zipped(product))
    reply = inbox.on_object_created(notification(inbox, key))
    assert isinstance(reply, ProductRejected) and reply.reason is RejectionReason.CHECKSUM_MISMATCH
    assert member.name in reply.detail


def sha256_product(product: Path) -> None:
    """Declare SHA-256 instead of MD5 for every member, as some producers do."""
    manifest = product / "manifest.safe"
    text = manifest.read_text()
    for path in product.rglob("*"):
        if path.is_file() and path != manifest:
            md5 = hashlib.md5(path.read_bytes()).hexdigest()
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            text = text.replace(
                f'<checksum checksumName="MD5">{md5}</checksum>',
                f'<checksum checksumName="SHA-256">{sha256}</checksum>',
            )
    manifest.write_text(text)


def test_sha256_digests_the_store_checked_at_upload_are_used_without_reading_the_objects(
    inbox: Inbox, product: Path
) -> None:
    sha256_product(product)
    bucket = inbox.settings.inbox_bucket
    for path, key in product_files(product):  # uploaded with S3 additional checksums, checked by the server
        inbox.store.client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ChecksumAlgorithm="SHA256")
    events = [notification(inbox, o.key) for o in inbox.store.list(bucket)]
    with metered() as meter:
        replies = [inbox.on_object_created(event) for event in events]
    assert sum(isinstance(r, ProductIngested) for r in replies) == 1
    manifest_reads = 2 * (product / "manifest.safe").stat().st_size
    assert meter.bytes_read == manifest_reads  # no member read: their digests were the store's


def test_a_flipped_byte_under_sha256_is_found_by_reading_when_the_store_holds_no_such_checksum(
    inbox: Inbox, product: Path
) -> None:
    sha256_product(product)
    member = next(p for p in sorted(product.rglob("*.tiff")))
    data = bytearray(member.read_bytes())
    data[3] ^= 0x10
    member.write_bytes(bytes(data))
    _, replies = deliver_all(inbox, product)
    (rejected,) = [r for r in replies if r is not None]
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.CHECKSUM_MISMATCH
    assert f"{member.name} (SHA256 differs)" in rejected.detail


def test_a_checksum_of_an_unknown_algorithm_is_a_clear_quarantine_reason(inbox: Inbox, product: Path) -> None:
    manifest = product / "manifest.safe"
    manifest.write_text(manifest.read_text().replace('checksumName="MD5"', 'checksumName="BLAKE3"', 1))
    _, replies = deliver_all(inbox, product)
    (rejected,) = [r for r in replies if r is not None]
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.UNSUPPORTED_CHECKSUM
    assert "BLAKE3" in rejected.detail


def test_a_file_the_manifest_does_not_list_is_quarantined_with_its_name(inbox: Inbox, product: Path) -> None:
    (product / "measurement" / "stray.tiff").write_bytes(b"not listed")
    _, replies = deliver_all(inbox, product)
    (rejected,) = [r for r in replies if r is not None]
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.UNLISTED_FILES
    assert "measurement/stray.tiff" in rejected.detail
    assert inbox.store.list(inbox.settings.inbox_bucket) == []


def test_families_known_to_add_files_only_warn(inbox: Inbox, product: Path, tmp_path: Path) -> None:
    (product / "measurement" / "stray.tiff").write_bytes(b"not listed")
    family = recognise(product.name).family
    lenient = Inbox(
        inbox.store, inbox.settings.model_copy(update={"unlisted_files_warn_families": [family]}), inbox.ledger
    )
    _, replies = deliver_all(lenient, product)
    (ingested,) = [r for r in replies if r is not None]
    assert isinstance(ingested, ProductIngested)
    assert inbox.store.head(ingested.bucket, f"{product.name}/measurement/stray.tiff") is not None


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "a/./b", "x" * 1025])
def test_a_key_no_inbox_object_can_have_is_refused_without_asking_the_store(inbox: Inbox, key: str) -> None:
    event = ObjectCreated(store="aws", bucket=inbox.settings.inbox_bucket, key=key, size=1, event_time=START)
    with pytest.raises(Reject, match="object key"):
        inbox.on_object_created(event)


def test_a_key_with_a_newline_and_non_latin_1_characters_is_quarantined_as_unrecognised(inbox: Inbox) -> None:
    key = "drop/Île\n中.txt"
    inbox.store.put(inbox.settings.inbox_bucket, key, b"x")
    rejected = inbox.on_object_created(notification(inbox, key))
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.UNRECOGNISED
    assert inbox.store.read(inbox.settings.quarantine_bucket, key) == b"x"


def test_late_members_of_an_ingested_product_are_settled_at_once(inbox: Inbox, product: Path) -> None:
    deliver_all(inbox, product)
    members = sorted(p for p in product.rglob("*") if p.is_file() and p.name != "manifest.safe")
    same, other = (f"{product.name}/{p.relative_to(product).as_posix()}" for p in members[:2])
    inbox.store.put(inbox.settings.inbox_bucket, same, members[0].read_bytes())
    inbox.store.put(inbox.settings.inbox_bucket, other, b"not what was ingested")
    assert inbox.on_object_created(notification(inbox, same)) is None
    rejected = inbox.on_object_created(notification(inbox, other))
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.CONFLICT
    assert inbox.store.list(inbox.settings.inbox_bucket) == []  # nothing left to go "incomplete" an hour later
    assert inbox.store.read(inbox.settings.quarantine_bucket, other) == b"not what was ingested"
    assert inbox.store.read(family_bucket(product), other) == members[1].read_bytes()


def test_late_members_of_a_conflicting_delivery_follow_it_into_quarantine(inbox: Inbox, product: Path) -> None:
    deliver_all(inbox, product)
    manifest = product / "manifest.safe"
    manifest.write_bytes(manifest.read_bytes().replace(b"</xfdu:XFDU>", b"<!-- reprocessed --></xfdu:XFDU>"))
    manifest_key = f"{product.name}/manifest.safe"
    inbox.store.put(inbox.settings.inbox_bucket, manifest_key, manifest.read_bytes())
    conflict = inbox.on_object_created(notification(inbox, manifest_key))
    assert isinstance(conflict, ProductRejected) and conflict.reason is RejectionReason.CONFLICT
    late = next(p for p in product.rglob("*.tiff"))
    late_key = f"{product.name}/{late.relative_to(product).as_posix()}"
    inbox.store.put(inbox.settings.inbox_bucket, late_key, late.read_bytes() + b"!")
    rejected = inbox.on_object_created(notification(inbox, late_key))
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.CONFLICT
    assert inbox.store.list(inbox.settings.inbox_bucket) == []
