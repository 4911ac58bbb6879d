"""``refsys status``: every place a product can be is named, with what an operator needs to act."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from moto import mock_aws

from events import ObjectCreated, ProductCataloged, ProductIngested, make_event
from shared.catalog.database import CatalogDatabase
from shared.ingestion.inbox import Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.status import ProductLocator
from shared.ingestion.upload import upload_product
from shared.operations.deadletters import DeadLetters
from shared.products import write_product
from shared.settings import Settings
from shared.storage.objects import ObjectStore

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path):
    with mock_aws():
        settings = Settings(s3_access_key="testing", s3_secret_key="testing", incomplete_timeout_s=600)
        store = ObjectStore(settings)
        store.ensure_bucket(settings.inbox_bucket)
        ledger = InboxLedger(CatalogDatabase(f"sqlite:///{tmp_path / 'ledger.db'}"))
        cataloged: dict[str, dict[str, Any]] = {}
        yield Inbox(store, settings, ledger), ProductLocator(store, settings, ledger, cataloged.get), cataloged


def deliver(inbox: Inbox, keys: list[str]) -> list[object]:
    replies = []
    for key in keys:
        head = inbox.store.head(inbox.settings.inbox_bucket, key)
        assert head is not None
        event = ObjectCreated(
            store="aws", bucket=inbox.settings.inbox_bucket, key=key, size=head.size, etag=head.etag, event_time=START
        )
        replies.append(inbox.on_object_created(event))
    return replies


def test_a_product_still_arriving_names_what_is_missing_and_when_it_times_out(world, tmp_path: Path) -> None:
    inbox, locator, _ = world
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    missing = next(p for p in sorted(product.rglob("*.tiff")))
    missing.unlink()
    keys = upload_product(inbox.store, inbox.settings.inbox_bucket, product)
    deliver(inbox, keys)
    where = locator.locate(product.name)
    assert where.place == "inbox"
    assert missing.name in where.message and "1 of 11 listed still missing" in where.message
    assert "quarantined as incomplete at" in where.message


def test_a_product_without_its_manifest_says_so(world, tmp_path: Path) -> None:
    inbox, locator, _ = world
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    (product / "manifest.safe").unlink()
    deliver(inbox, upload_product(inbox.store, inbox.settings.inbox_bucket, product))
    where = locator.locate(product.name)
    assert where.place == "inbox" and "manifest has not arrived" in where.message


def test_a_claimed_product_is_being_ingested(world, tmp_path: Path) -> None:
    inbox, locator, _ = world
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    upload_product(inbox.store, inbox.settings.inbox_bucket, product)
    inbox.ledger.register(product.name, product.name)
    assert inbox.ledger.claim(product.name, "event-42") is not None
    where = locator.locate(product.name)
    assert where.place == "being-ingested" and "event-42" in where.message


def test_quarantined_cataloged_and_unknown_products(world, tmp_path: Path) -> None:
    inbox, locator, cataloged = world
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    (product / "manifest.safe").write_text("<xfdu:XFDU><unclosed>")
    deliver(inbox, upload_product(inbox.store, inbox.settings.inbox_bucket, product))
    where = locator.locate(product.name)
    assert where.place == "quarantined" and "corrupt-manifest" in where.message

    cataloged["S1A_OTHER"] = {"bucket": "rs-s1-l1-slices", "id": "x", "publicationTime": "2024-05-01T12:00:00Z"}
    assert locator.locate("S1A_OTHER").place == "cataloged"
    assert not locator.locate("S2B_NOTHING_LIKE_IT").known


def test_an_ingested_product_whose_announcement_was_dead_lettered_names_the_event_to_restart(
    world, tmp_path: Path
) -> None:
    inbox, locator, _ = world
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    replies = deliver(inbox, upload_product(inbox.store, inbox.settings.inbox_bucket, product))
    (ingested,) = [reply for reply in replies if isinstance(reply, ProductIngested)]
    assert locator.locate(product.name).place == "ingested"
    event = make_event(ingested, source="/refsys/functions/ingest")
    letter = CloudEvent({**event.get_attributes(), "knativeerrorcode": "422"}, event.data)
    kept = DeadLetters(inbox.store, inbox.settings.deadletter_bucket).keep(letter)
    where = locator.locate(product.name)
    assert where.place == "dead-lettered" and where.dead_letters == (kept.id,)
    assert f"refsys deadletter restart {kept.id}" in where.message


def test_a_notification_dead_lettered_at_ingest_shows_the_product_as_dead_lettered(world, tmp_path: Path) -> None:
    inbox, locator, _ = world
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    keys = upload_product(inbox.store, inbox.settings.inbox_bucket, product)
    head = inbox.store.head(inbox.settings.inbox_bucket, keys[0])
    assert head is not None
    created = ObjectCreated(
        store="aws", bucket=inbox.settings.inbox_bucket, key=keys[0], size=head.size, event_time=START
    )
    event = make_event(created, source="/refsys/storage/aws/rs-inbox")
    attributes = {**event.get_attributes(), "knativeerrorcode": 0, "knativeerrordest": "http://ingest.refsys/"}
    kept = DeadLetters(inbox.store, inbox.settings.deadletter_bucket).keep(CloudEvent(attributes, event.data))
    where = locator.locate(product.name)
    assert where.place == "dead-lettered" and "to ingest" in where.message
    assert f"refsys deadletter restart {kept.id}" in where.message


def test_a_cataloged_product_whose_preparation_was_dead_lettered_says_both(world, tmp_path: Path) -> None:
    inbox, locator, cataloged = world
    product = write_product(tmp_path, "IW_GRDH_1S", START)
    replies = deliver(inbox, upload_product(inbox.store, inbox.settings.inbox_bucket, product))
    (ingested,) = [reply for reply in replies if isinstance(reply, ProductIngested)]
    done = ProductCataloged(
        product=ingested.product,
        bucket=ingested.bucket,
        key=ingested.key,
        content_length=ingested.content_length,
        validity_start=START,
        validity_stop=START,
        publication_time=START,
    )
    event = make_event(done, source="/refsys/functions/catalog")
    attributes = {**event.get_attributes(), "knativeerrorcode": 500, "knativeerrordest": "http://prepare.refsys/"}
    kept = DeadLetters(inbox.store, inbox.settings.deadletter_bucket).keep(CloudEvent(attributes, event.data))
    cataloged[product.name] = {"bucket": "rs-s1-l1-slices", "id": "x", "publicationTime": "2024-05-01T12:00:00Z"}
    where = locator.locate(product.name)
    assert where.place == "cataloged" and where.dead_letters == (kept.id,)
    assert "to prepare" in where.message and f"refsys deadletter restart {kept.id}" in where.message
