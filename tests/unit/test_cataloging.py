"""The catalog step: a redelivered announcement changes nothing, and never undoes what happened since."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from moto import mock_aws

from shared.catalog import open_catalog
from shared.catalog.cataloging import Cataloguer
from shared.ingestion.inbox import Arrival, Inbox
from shared.ingestion.upload import upload_product
from shared.products import write_product
from shared.settings import Settings
from shared.storage.objects import ObjectStore

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ingested(tmp_path: Path):
    with mock_aws():
        settings = Settings(s3_access_key="testing", s3_secret_key="testing")
        store = ObjectStore(settings)
        store.ensure_bucket(settings.inbox_bucket)
        inbox = Inbox(store, settings)
        product = write_product(tmp_path, "IW_GRDH_1S", START)
        keys = upload_product(store, settings.inbox_bucket, product)
        replies = [inbox.ingest(product.name, Arrival(key, START)) for key in keys]
        (event,) = [r for r in replies if r is not None]
        yield Cataloguer(store, open_catalog("sqlite:///:memory:")), event


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
    cataloguer.catalog.upsert(replace(stored, online=False, eviction_time=START))  # evicted since
    again = cataloguer.on_product_ingested(event)
    after = cataloguer.catalog.get(event.product.product_id)
    assert after is not None and after.online is False and after.eviction_time == START
    assert again.publication_time == first.publication_time == after.publication_time
