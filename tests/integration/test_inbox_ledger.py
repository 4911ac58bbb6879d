"""The inbox ledger on both databases: completeness, one claim at a time, leases that expire, fencing."""

import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.catalog.database import CatalogDatabase
from shared.ingestion.ledger import InboxLedger, ProductState

pytestmark = pytest.mark.integration
ROOT = ""  # set for each test


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> InboxLedger:
    url = (
        f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    return InboxLedger(CatalogDatabase(str(url)), lease_s=10.0)


@pytest.fixture(autouse=True)
def root(monkeypatch: pytest.MonkeyPatch) -> None:
    # A PostgreSQL database is shared by the session: a product of this test's own.
    monkeypatch.setattr(sys.modules[__name__], "ROOT", f"S1A_IW_GRDH_1SDV_{uuid.uuid4().hex}.SAFE")


def arrive(ledger: InboxLedger, *paths: tuple[str, int]) -> None:
    for path, size in paths:
        ledger.arrived(ROOT, ROOT, path, size)


def test_a_product_is_complete_when_every_listed_object_arrived_with_its_size(ledger: InboxLedger) -> None:
    arrive(ledger, ("a.tiff", 10), ("manifest.safe", 5))
    product = ledger.product(ROOT)
    assert product is not None and product.state is ProductState.ARRIVING
    assert not ledger.complete(product)  # the manifest was not read yet
    ledger.record_inventory(ROOT, "etag-1", [("a.tiff", 10), ("b.tiff", 20), ("c.xml", None)])
    arrive(ledger, ("b.tiff", 19), ("c.xml", 3))
    product = ledger.product(ROOT)
    assert product is not None and product.listed == 3
    assert not ledger.complete(product) and ledger.missing(ROOT) == ["b.tiff"]
    arrive(ledger, ("b.tiff", 20))  # the right size, uploaded again
    assert ledger.complete(product) and ledger.missing(ROOT) == []
    assert ledger.arrived_count(ROOT) == 4
    assert ledger.find(ROOT) == ledger.product(ROOT)


def test_one_claim_at_a_time_and_a_dead_claim_expires(ledger: InboxLedger) -> None:
    arrive(ledger, ("a.tiff", 1))
    first = ledger.claim(ROOT, "event-1", now=1000.0)
    assert first is not None
    assert ledger.claim(ROOT, "event-2", now=1005.0) is None  # held
    assert ledger.claim(ROOT, "event-1", now=1005.0) is None  # even by a duplicate of the claiming event
    product = ledger.product(ROOT)
    assert product is not None and product.held(1005.0) and not product.held(1011.0)
    second = ledger.claim(ROOT, "event-2", now=1011.0)  # the lease was not renewed: taken over
    assert second is not None and second.token != first.token
    assert not ledger.renew(first)  # the first holder is fenced
    assert not ledger.settle(first, ProductState.INGESTED, {"by": "first"})
    assert ledger.settle(second, ProductState.INGESTED, {"by": "second"})
    settled = ledger.product(ROOT)
    assert settled is not None and settled.settled and settled.outcome == {"by": "second"}
    assert settled.owner_event == "event-2" and ledger.arrived_count(ROOT) == 0


def test_a_settled_product_delivered_again_starts_a_new_round_once(ledger: InboxLedger) -> None:
    arrive(ledger, ("a.tiff", 1))
    ledger.record_inventory(ROOT, "etag-1", [("a.tiff", 1)])
    claim = ledger.claim(ROOT, "event-1")
    assert claim is not None and ledger.settle(claim, ProductState.QUARANTINED, {})
    assert ledger.restart(ROOT)
    assert not ledger.restart(ROOT)  # a concurrent caller: already arriving
    product = ledger.product(ROOT)
    assert product is not None and product.state is ProductState.ARRIVING
    assert product.listed is None and product.outcome is None and not ledger.complete(product)


def test_a_released_claim_lets_the_next_delivery_claim(ledger: InboxLedger) -> None:
    arrive(ledger, ("a.tiff", 1))
    claim = ledger.claim(ROOT, "event-1")
    assert claim is not None
    ledger.release(claim)
    assert ledger.claim(ROOT, "event-2") is not None


def test_concurrent_deliveries_of_the_manifest_record_one_inventory(ledger: InboxLedger) -> None:
    arrive(ledger, ("manifest.safe", 5))
    listed: list[tuple[str, int | None]] = [(f"measurement/{i:03d}.tiff", i) for i in range(200)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: ledger.record_inventory(ROOT, "etag-1", listed), range(12)))
    product = ledger.product(ROOT)
    assert product is not None and product.listed == 200 and len(ledger.missing(ROOT)) == 200
