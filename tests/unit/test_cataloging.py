"""The catalog step: a redelivered announcement changes nothing, and never undoes what happened since."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from moto import mock_aws

from events import ProductCataloged, ProductIngested, ProductRejected, RejectionReason
from shared.catalog import open_catalog
from shared.catalog.cataloging import Cataloguer
from shared.catalog.database import CatalogDatabase
from shared.catalog.model import product_id
from shared.ingestion.inbox import Arrival, Inbox, identity
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.upload import upload_product
from shared.products import bucket_for, recognise, write_product
from shared.runtime import Reject
from shared.settings import Settings
from shared.storage.objects import ObjectStore

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ledger(tmp_path: Path) -> InboxLedger:
    return InboxLedger(CatalogDatabase(f"sqlite:///{tmp_path / 'ledger.db'}"))


@pytest.fixture
def ingested(tmp_path: Path):
    with mock_aws():
        settings = Settings(s3_access_key="testing", s3_secret_key="testing")
        store = ObjectStore(settings)
        store.ensure_bucket(settings.inbox_bucket)
        inbox = Inbox(store, settings, ledger(tmp_path))
        product = write_product(tmp_path, "IW_GRDH_1S", START)
        keys = upload_product(store, settings.inbox_bucket, product)
        replies = [inbox.ingest(product.name, Arrival(key, START)) for key in keys]
        (event,) = [r for r in replies if r is not None]
        yield Cataloguer(store, open_catalog("sqlite:///:memory:"), settings), event


def test_a_product_is_cataloged_with_metadata_from_its_manifest(ingested) -> None:
    cataloguer, event = ingested
    reply = cataloguer.on_product_ingested(event)
    entry = cataloguer.catalog.get(event.product.product_id)
    assert entry is not None and entry.validity_start == START == reply.validity_start
    assert entry.footprint is not None and entry.attributes["platformShortName"] == "SENTINEL-1"


def test_a_redelivery_changes_nothing_and_keeps_an_eviction(ingested) -> None:
    cataloguer, event = ingested
    first = cataloguer.on_product_ingested(event)
    stored = cataloguer.catalog.get(event.product.product_id)
    assert stored is not None
    cataloguer.catalog.upsert(replace(stored, online=False, eviction_time=START))  # evicted since: objects gone
    objects = cataloguer.store.list(stored.bucket, stored.key)
    kept = {o.key: cataloguer.store.read(stored.bucket, o.key) for o in objects}
    for o in objects:
        cataloguer.store.delete(stored.bucket, o.key)
    again = cataloguer.on_product_ingested(event)
    after = cataloguer.catalog.get(event.product.product_id)
    assert after is not None and after.online is False and after.eviction_time == START
    assert again.publication_time == first.publication_time == after.publication_time
    # Delivered again (ingestion put its objects back): online again, for its retention rule's time from now.
    for key, body in kept.items():
        cataloguer.store.put(stored.bucket, key, body or b"")
    cataloguer.on_product_ingested(event)
    back = cataloguer.catalog.get(event.product.product_id)
    assert back is not None and back.online is True and back.publication_time == first.publication_time
    assert back.eviction_time is None or back.eviction_time > START


def zero_byte_orbit_file(cataloguer) -> ProductIngested:
    """A zero-byte orbit file in its family bucket, and its announcement."""
    name = "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF"
    product = recognise(name)
    bucket = bucket_for(product.family)
    cataloguer.store.ensure_bucket(bucket)
    cataloguer.store.put(bucket, name, b"")
    return ProductIngested(
        product=identity(product),
        bucket=bucket,
        key=name,
        content_length=0,
        content_type="application/octet-stream",
        ingestion_time=START,
    )


def test_a_product_whose_metadata_cannot_be_read_is_quarantined_with_the_file_and_the_reason(ingested) -> None:
    cataloguer, _ = ingested
    event = zero_byte_orbit_file(cataloguer)
    name, bucket = event.product.name, event.bucket
    reply = cataloguer.on_product_ingested(event)
    assert isinstance(reply, ProductRejected) and reply.reason is RejectionReason.METADATA_UNREADABLE
    assert name in reply.detail
    assert cataloguer.catalog.get(product_id(name)) is None
    assert cataloguer.store.head(bucket, name) is None
    quarantined = cataloguer.store.head(cataloguer.settings.quarantine_bucket, name)
    assert quarantined is not None and quarantined.size == 0


def test_a_redelivered_announcement_of_a_quarantined_product_gets_the_same_rejection(ingested) -> None:
    # It used to answer RetryLater (its file was gone: moved to quarantine by the first delivery) until
    # it was dead-lettered, and `refsys status` could not find the product.
    cataloguer, _ = ingested
    event = zero_byte_orbit_file(cataloguer)
    name, bucket = event.product.name, event.bucket
    first = cataloguer.on_product_ingested(event)
    assert cataloguer.store.head(bucket, name) is None  # moved to quarantine
    again = cataloguer.on_product_ingested(event)
    assert isinstance(again, ProductRejected) and again == first
    assert again.event_id() == first.event_id()


@pytest.mark.parametrize(
    "change",
    [
        {"bucket": "rs-quarantine"},
        {"key": "S1A%2F..%2Fevil.txt"},
        {"key": "../{name}/"},
        {"key": "elsewhere/{name}/x/"},
        {"manifest_key": "evil.xml"},
    ],
)
def test_an_announcement_that_is_not_what_ingestion_says_is_refused_and_changes_nothing(ingested, change) -> None:
    cataloguer, event = ingested
    cataloguer.on_product_ingested(event)
    before = cataloguer.catalog.get(event.product.product_id)
    forged = event.model_copy(update={k: v.format(name=event.product.name) for k, v in change.items()})
    with pytest.raises(Reject):
        cataloguer.on_product_ingested(forged)
    assert cataloguer.catalog.get(event.product.product_id) == before


def test_an_announcement_under_an_inbox_prefix_is_cataloged(ingested) -> None:
    cataloguer, event = ingested
    store, bucket = cataloguer.store, event.bucket
    for obj in store.list(bucket, event.key):
        store.copy(bucket, obj.key, bucket, f"delivery/{obj.key}")
    prefixed = event.model_copy(
        update={"key": f"delivery/{event.key}", "manifest_key": f"delivery/{event.manifest_key}"}
    )
    assert isinstance(cataloguer.on_product_ingested(prefixed), ProductCataloged)
