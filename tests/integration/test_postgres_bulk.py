"""Bulk upsert (``upsert_many``) edge cases, on both backends; and the PostgreSQL bulk path's own
ways (ids COPYed straight into the table, the others merged through a staging table)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from shared.catalog import CatalogEntry, CatalogStore, ProductQuery
from shared.catalog import postgres_rows as postgres_store
from tests.integration.test_catalog_store import T0, box, make_entry

pytestmark = pytest.mark.integration

# A bow tie: self-intersecting at (1, 1), readable but not a valid polygon.
BOW_TIE = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
LATER = T0 + timedelta(days=1)
only_postgres = pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)


def later(entry: CatalogEntry, **changes: Any) -> CatalogEntry:
    """The entry redelivered with new bookkeeping times (and ``changes``)."""
    return dataclasses.replace(entry, publication_time=LATER, modification_time=LATER, **changes)


def test_batch_mixing_new_unchanged_and_changed_entries(catalog_store: CatalogStore) -> None:
    kept, changed = make_entry("KEPT"), make_entry("CHANGED", footprint=None)
    assert catalog_store.upsert_many([kept, changed]) == 2
    batch = [later(kept), later(changed, content_length=11, footprint=box(50, 50, 51, 51)), make_entry("NEW")]
    assert catalog_store.upsert_many(batch) == 2  # the unchanged entry is not counted
    assert catalog_store.get_by_name("KEPT") == kept  # untouched: modification time kept
    # Changed: new content and modification time, publication time kept.
    assert catalog_store.get_by_name("CHANGED") == dataclasses.replace(
        batch[1], publication_time=changed.publication_time
    )
    assert catalog_store.get_by_name("NEW") == batch[2]
    assert [e.name for e in catalog_store.search(ProductQuery(intersects=box(49, 49, 52, 52)))] == ["CHANGED"]


def test_an_id_twice_in_a_batch_compares_the_later_with_the_earlier(catalog_store: CatalogStore) -> None:
    first, other = make_entry("TWICE"), make_entry("OTHER")
    assert catalog_store.upsert_many([first, other, later(first, content_length=99)]) == 3
    stored = catalog_store.get_by_name("TWICE")
    assert stored is not None and stored.content_length == 99 and stored.publication_time == first.publication_time
    # Existing and unchanged, then changed, then the same again: one change.
    again = later(first, content_length=7)
    assert catalog_store.upsert_many([later(first, content_length=99), again, other, again]) == 1
    stored = catalog_store.get_by_name("TWICE")
    assert stored is not None and stored.content_length == 7 and stored.modification_time == LATER
    assert catalog_store.upsert_many([other, other]) == 0


def test_self_intersecting_footprint_is_kept_as_given_and_searched_made_valid(catalog_store: CatalogStore) -> None:
    entry = make_entry("BOW_TIE", footprint=BOW_TIE)
    assert catalog_store.upsert_many([entry, make_entry("PLAIN")]) == 2
    assert catalog_store.get_by_name("BOW_TIE") == entry
    for lobe in (box(0.1, 0.9, 0.2, 1.1), box(1.8, 0.9, 1.9, 1.1)):  # the left and the right triangle
        assert [e.name for e in catalog_store.search(ProductQuery(intersects=lobe))] == ["BOW_TIE"]
    assert catalog_store.search(ProductQuery(intersects=box(0.9, 0.1, 1.1, 0.2))) == []  # between the lobes


def test_unusable_footprint_in_a_batch_names_the_entry_and_writes_nothing(catalog_store: CatalogStore) -> None:
    # Past the first chunks of rows, so the ones before it may already be on their way to the server.
    batch = [make_entry(f"P{i:04d}") for i in range(1_200)]
    batch.append(make_entry("BAD", footprint={"type": "Polygon", "coordinates": [[[0, 0]]]}))
    with pytest.raises(ValueError, match="footprint of BAD"):
        catalog_store.upsert_many(batch)
    assert catalog_store.count(ProductQuery()) == 0
    assert catalog_store.upsert_many(batch[:-1]) == 1_200


def test_name_taken_by_another_id_names_the_entry_and_writes_nothing(catalog_store: CatalogStore) -> None:
    catalog_store.upsert(make_entry("TAKEN"))
    impostor = dataclasses.replace(make_entry("TAKEN", content_length=1), id=str(uuid.uuid4()))
    for batch in ([make_entry("INNOCENT"), impostor], [make_entry("INNOCENT"), later(make_entry("TAKEN")), impostor]):
        with pytest.raises(ValueError, match="TAKEN"):
            catalog_store.upsert_many(batch)
        assert catalog_store.get_by_name("INNOCENT") is None
    stored = catalog_store.get_by_name("TAKEN")
    assert stored is not None and stored.id == make_entry("TAKEN").id


@only_postgres
def test_geometry_is_2d_and_valid(catalog_url: str, catalog_store: CatalogStore) -> None:
    with_height = {"type": "Polygon", "coordinates": [[[0, 0, 5], [1, 0, 5], [1, 1, 5], [0, 1, 5], [0, 0, 5]]]}
    catalog_store.upsert_many([make_entry("HEIGHT", footprint=with_height), make_entry("BOW_TIE", footprint=BOW_TIE)])
    with psycopg.connect(catalog_url) as conn:
        rows = conn.execute(
            "SELECT name, ST_NDims(footprint_geom), ST_IsValid(footprint_geom), ST_SRID(footprint_geom),"
            " ST_Area(footprint_geom) FROM products ORDER BY name"
        ).fetchall()
    assert rows == [("BOW_TIE", 2, True, 4326, 2.0), ("HEIGHT", 2, True, 4326, 1.0)]


@only_postgres
def test_ids_inserted_meanwhile_by_another_writer_are_merged(
    catalog_store: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, changed = make_entry("KEPT"), make_entry("CHANGED")
    catalog_store.upsert_many([kept, changed])
    # As if another writer inserted them between the look-up of existing ids and the COPY.
    monkeypatch.setattr(postgres_store, "_EXISTING", postgres_store._EXISTING + " AND false")
    batch = [later(kept), later(changed, content_length=3), make_entry("NEW")]
    assert catalog_store.upsert_many(batch) == 2
    assert catalog_store.get_by_name("KEPT") == kept
    assert catalog_store.get_by_name("CHANGED") == dataclasses.replace(
        batch[1], publication_time=changed.publication_time
    )
    assert catalog_store.get_by_name("NEW") == batch[2]
