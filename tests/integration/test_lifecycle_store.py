"""Eviction against real stores: SeaweedFS objects really deleted, the entry kept offline, in SQLite and
PostgreSQL catalogs (the lifecycle's tables beside the catalog in both)."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.lifecycle.state import EVICTED, EVICTING, LifecycleStore
from shared.platform.seaweed import SeaweedFS
from shared.processing.jobs import JobStore
from tests.unit.test_lifecycle_eviction import World, make_world

pytestmark = pytest.mark.integration


@pytest.fixture
def world(seaweed: SeaweedFS, catalog_url: str, tmp_path: Path) -> Iterator[World]:
    # Buckets of this test alone: the SeaweedFS server is shared by the session.
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    yield make_world(
        tmp_path,
        catalog_url,
        s3_endpoint_url=seaweed.s3_endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
        bucket_prefix=prefix,
        inbox_bucket=f"{prefix}inbox",
    )


def test_a_due_product_is_deleted_from_the_store_and_stays_listed_offline(world: World, tmp_path: Path) -> None:
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    olci = world.catalog_product(tmp_path, "OL_1_EFR___", 2)
    stored = world.stored(slice_)
    assert len(stored) > 3 and all(key.startswith(slice_.key) for key in stored)
    assert world.lifecycle().sweep(limit=10) == {"resumed": 0, "evicted": 1, "kept": 0}
    assert world.objects.list(slice_.bucket, slice_.key) == []
    assert world.objects.head(slice_.bucket, f"{slice_.key}manifest.safe") is None
    assert world.stored(olci)  # not due: untouched
    after = world.catalog.get_by_name(slice_.name)
    assert after is not None and after.online is False and after.eviction_time == slice_.eviction_time
    assert after.publication_time == slice_.publication_time and after.footprint == slice_.footprint
    (event,) = world.published
    assert event.data["product"]["product_id"] == slice_.id and event.data["bucket"] == slice_.bucket


def test_the_journal_and_pins_live_beside_the_catalog(catalog_url: str) -> None:
    store, again = LifecycleStore(catalog_url), LifecycleStore(catalog_url)  # created idempotently
    now = datetime.now(UTC).replace(microsecond=0)
    first = store.begin("id-1", "P1", "b", "P1/", now, "rule-a", now)
    assert first.state == EVICTING and first.eviction_time == now
    retried = again.begin("id-1", "P1", "b", "P1/", now + timedelta(days=1), "rule-b", now)
    assert retried == first  # a retry keeps the first EvictionDate and rule: the same event
    assert [e.product_id for e in store.unfinished()] == ["id-1"]
    store.finish("id-1", now)
    assert store.get("id-1").state == EVICTED and list(store.unfinished()) == []  # type: ignore[union-attr]
    renewed = store.begin("id-1", "P1", "b", "P1/", now + timedelta(days=1), "rule-b", now)
    assert renewed.state == EVICTING and renewed.rule == "rule-b"  # back online since: a new eviction
    pin = store.pin("id-2", "P2", "why", now)
    assert store.pin("id-2", "P2", "other", now).reason == "why" == pin.reason
    assert store.pinned_ids() == {"id-2"} and store.unpin("id-2") and not store.unpin("id-2")


def test_the_sweep_pages_through_due_products_past_the_ones_it_keeps(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.lifecycle.eviction.PAGE", 2)  # five due products: three pages
    slices = [world.catalog_product(tmp_path, "IW_GRDH_1S", seed) for seed in range(1, 6)]
    now = datetime.now(UTC)
    jobs = JobStore(world.settings.catalog_url)
    for kept in (slices[0], slices[3]):
        jobs.open_job(f"S1_L2:{kept.name}", "S1_L2", kept.name, now, now + timedelta(hours=1))
    order = [d.entry.name for d in world.lifecycle().due()]
    assert sorted(order) == sorted(s.name for s in slices) and len(set(order)) == 5
    assert world.lifecycle().sweep(limit=10) == {"resumed": 0, "evicted": 3, "kept": 2}
    online = {s.name: world.catalog.get(s.id).online for s in slices}  # type: ignore[union-attr]
    assert online == {s.name: s in (slices[0], slices[3]) for s in slices}
