"""The bench's large PostGIS catalog, multiplied server-side from a seed (``tests/bench/postgis_fill.py``): its
rows read back through the store as entries that the store's writer would have stored."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import shapely

from shared.catalog import CatalogEntry, CatalogStore, ProductQuery, product_id
from tests.bench import catalog_data, postgis_fill

pytestmark = pytest.mark.integration

SEED, COUNT = 200, 2000
T0, YEAR_S = catalog_data.T0, catalog_data.YEAR_S


@pytest.fixture
def filled(catalog_url: str, catalog_store: CatalogStore) -> dict[str, CatalogEntry]:
    postgis_fill.fill(catalog_url, catalog_store, COUNT, seed=SEED)
    entries = catalog_store.search(ProductQuery(limit=COUNT + 1))
    return {e.name: e for e in entries}


def _index(name: str) -> int:
    return int(name.split("_B")[-1].split(".")[0])


def _shape(footprint: dict[str, Any] | None) -> shapely.Geometry:
    assert footprint is not None
    return shapely.geometry.shape(footprint)


def _is_split(geometry: shapely.Geometry) -> bool:
    return geometry.bounds[0] == -180 and geometry.bounds[2] == 180


@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_each_copy_is_its_seed_entry_moved_in_time_and_place(filled: dict[str, CatalogEntry]) -> None:
    seeds = list(catalog_data.synthetic_entries(SEED))
    assert sorted(_index(name) for name in filled) == list(range(COUNT))
    for name, entry in filled.items():
        j = _index(name)
        seed = seeds[j % SEED]
        assert name == seed.name.replace(f"_B{j % SEED:09d}", f"_B{j:09d}")
        assert entry.id == product_id(name) and entry.key == f"{name}/" and entry.checksum == f"{j:032x}"
        same = ("mission", "satellite", "product_type", "level", "family", "bucket", "content_type", "online")
        assert [getattr(entry, f) for f in same] == [getattr(seed, f) for f in same]
        assert entry.publication_time == T0 + timedelta(seconds=YEAR_S, milliseconds=j) == entry.modification_time
        # Where entry j of synthetic_entries(COUNT) would be: j / COUNT of the year, give or take an hour.
        assert entry.validity_start is not None and entry.validity_stop is not None
        assert abs(entry.validity_start - (T0 + timedelta(seconds=j * YEAR_S / COUNT))) <= timedelta(hours=1)
        assert entry.validity_stop - entry.validity_start == seed.validity_stop - seed.validity_start  # type: ignore[operator]
        orbits = {k for k in seed.attributes if "orbit" in k.lower() and isinstance(seed.attributes[k], int)}
        varied = {"beginningDateTime", "endingDateTime", "cloudCover"} | orbits
        assert entry.attributes.keys() == seed.attributes.keys()
        assert {k: v for k, v in entry.attributes.items() if k not in varied} == {
            k: v for k, v in seed.attributes.items() if k not in varied
        }
        if "beginningDateTime" in seed.attributes:
            assert entry.attributes["beginningDateTime"] == entry.validity_start
            assert entry.attributes["endingDateTime"] == entry.validity_stop
        for orbit in orbits:
            assert entry.attributes[orbit] == seed.attributes[orbit] + j // 14 - (j % SEED) // 14  # type: ignore[operator]
        # The same shape (a translation and a cut at ±180 keep its planar area), elsewhere.
        moved, original = _shape(entry.footprint), _shape(seed.footprint)
        assert moved.area == pytest.approx(original.area, rel=1e-6)
    assert len({str(e.footprint) for e in filled.values()}) == COUNT  # each copy somewhere else


@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_footprints_are_stored_as_the_writer_stores_them(
    catalog_url: str, catalog_store: CatalogStore, filled: dict[str, CatalogEntry]
) -> None:
    # Written again as read, no entry changes: every content column (the GeoJSON, the attributes) holds the
    # text the writer makes of its value.
    assert catalog_store.upsert_many(list(filled.values())) == 0
    with psycopg.connect(catalog_url) as conn:
        rows = conn.execute(
            "SELECT name, ST_AsBinary(footprint_geom), min_lon, max_lon, min_lat, max_lat FROM products"
        ).fetchall()
    split = 0
    for name, wkb, *box in rows:
        geometry, given = shapely.from_wkb(wkb), _shape(filled[name].footprint)
        assert shapely.is_valid(geometry) and shapely.equals_exact(geometry, given, tolerance=1e-9)
        assert tuple(box) == (geometry.bounds[0], geometry.bounds[2], geometry.bounds[1], geometry.bounds[3])
        assert box[0] >= -180 and box[1] <= 180 and box[2] >= -90 and box[3] <= 90
        # No edge runs the long way round: what crosses ±180 is split there (RFC 7946 §3.1.9).
        for polygon in shapely.get_parts(geometry):
            for ring in (polygon.exterior, *polygon.interiors):
                assert all(abs(b[0] - a[0]) < 180 for a, b in itertools.pairwise(ring.coords))
        if _is_split(geometry):
            assert filled[name].footprint["type"] == "MultiPolygon"  # type: ignore[index]
            split += 1
    assert split > 0  # ~4 % of them: some of the 2,000 cross ±180


@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_an_area_query_finds_each_moved_footprint_where_it_is(
    catalog_store: CatalogStore, filled: dict[str, CatalogEntry]
) -> None:
    sample = [(n, e) for n, e in filled.items() if _index(n) % 20 == 0 or _is_split(_shape(e.footprint))]
    for name, entry in sample:
        for part in shapely.get_parts(_shape(entry.footprint)):  # each side of a split footprint
            x, y = part.representative_point().coords[0]
            area = shapely.geometry.mapping(shapely.box(x - 0.01, y - 0.01, x + 0.01, y + 0.01))
            found = catalog_store.search(ProductQuery(intersects=area, product_type=entry.product_type, limit=COUNT))
            assert name in {e.name for e in found}
