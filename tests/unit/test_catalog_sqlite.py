"""The catalog model and the SQLite backend, without servers (the shared suite is in tests/integration)."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import shapely
import shapely.geometry

from shared.catalog import (
    PRODUCT_NAMESPACE,
    CatalogEntry,
    CatalogUnavailable,
    ProductQuery,
    attribute_value_type,
    open_catalog,
    product_id,
)
from shared.catalog.migrations import load_migrations
from shared.catalog.model import format_utc
from shared.catalog.sqlite import SqliteCatalog

T0 = datetime(2023, 8, 23, 12, 0, tzinfo=UTC)


def make_entry(name: str, **changes: Any) -> CatalogEntry:
    fields: dict[str, Any] = {
        "id": product_id(name),
        "name": name,
        "mission": "S2",
        "satellite": "B",
        "product_type": "MSI_L1C_TL",
        "level": "L1",
        "family": "S2_L1C_TL",
        "bucket": "rs-s2-l1c-tl",
        "key": f"{name}/",
        "content_length": 10,
        "checksum": None,
        "content_type": "application/octet-stream",
        "validity_start": T0,
        "validity_stop": T0 + timedelta(seconds=5),
        "footprint": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        "attributes": {"cloudCover": 3.5, "tileId": "31TCJ"},
        "publication_time": T0,
        "modification_time": T0,
    }
    fields.update(changes)
    return CatalogEntry(**fields)


# -- model -------------------------------------------------------------------------------------


def test_product_id_is_a_uuid5_of_the_name_in_the_fixed_namespace() -> None:
    name = "S2B_MSIL1C_20230823T103629_N0509_R008_T31TCJ_20230823T124038.SAFE"
    assert product_id(name) == str(uuid.uuid5(PRODUCT_NAMESPACE, name)) == product_id(name)
    # Pinned: a changed namespace would silently give every cataloged product a new id.
    assert product_id(name) == "ad7a9b19-9f41-55a4-96c1-2df83f03d2e1"
    assert product_id(name) != product_id(name + "x")


def test_entry_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="validity_start"):
        make_entry("P", validity_start=datetime(2023, 1, 1))
    with pytest.raises(ValueError, match="beginningDateTime"):
        make_entry("P", attributes={"beginningDateTime": datetime(2023, 1, 1)})


def test_entry_refuses_attributes_a_store_cannot_keep() -> None:
    with pytest.raises(ValueError, match="finite"):
        make_entry("P", attributes={"cloudCover": math.nan})
    with pytest.raises(TypeError):
        make_entry("P", attributes={"list": [1, 2]})


def test_entry_normalises_footprint_tuples_to_lists() -> None:
    entry = make_entry("P", footprint={"type": "Point", "coordinates": (1.0, 2.0)})
    assert entry.footprint == {"type": "Point", "coordinates": [1.0, 2.0]}


@pytest.mark.parametrize(
    ("value", "value_type"),
    [(True, "Boolean"), (1, "Integer"), (1.0, "Double"), ("x", "String"), (T0, "DateTimeOffset")],
)
def test_attribute_value_types_are_the_prip_ones(value: Any, value_type: str) -> None:
    assert attribute_value_type(value) == value_type


@pytest.mark.parametrize(
    "value",
    [
        datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 6, 1, 2, 30, tzinfo=timezone(timedelta(hours=2, minutes=30))),
    ],
)
def test_stored_times_are_fixed_width_utc_with_microseconds(value: datetime) -> None:
    text = format_utc(value)
    assert len(text) == 27 and text.endswith("Z")
    assert text == value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_query_refuses_inverted_range_negative_paging_and_a_lone_name() -> None:
    with pytest.raises(ValueError, match="after"):
        ProductQuery(start=T0, stop=T0 - timedelta(seconds=1))
    with pytest.raises(ValueError, match="negative"):
        ProductQuery(offset=-1)
    with pytest.raises(TypeError, match="sequence"):
        ProductQuery(names="S1A_X")


# -- URLs --------------------------------------------------------------------------------------


def test_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_catalog("sqlite:///data/catalog.db")
    store.close()
    assert (tmp_path / "data" / "catalog.db").is_file()


def test_absolute_sqlite_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'abs.db'}"
    assert url.startswith("sqlite:////")
    open_catalog(url).close()
    assert (tmp_path / "abs.db").is_file()


@pytest.mark.parametrize("url", ["mysql://host/db", "catalog.db", "sqlite:///", "sqlite://host/x.db"])
def test_unusable_urls_are_value_errors(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        open_catalog(url)


class RecordingBackend:
    """A backend registered under its own scheme: built from the URL alone, as every backend is."""

    def __init__(self, url: str) -> None:
        self.url = url


def test_backends_are_found_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.catalog import store

    monkeypatch.setitem(store.BACKENDS, "recording", f"{__name__}:RecordingBackend")
    opened = open_catalog("recording://somewhere/db")
    assert isinstance(opened, RecordingBackend) and opened.url == "recording://somewhere/db"


# -- in-memory store ---------------------------------------------------------------------------


def test_memory_store_round_trip_and_idempotent_upsert() -> None:
    store = open_catalog("sqlite:///:memory:")
    entry = make_entry("P")
    assert store.upsert(entry) is True
    assert store.upsert(entry) is False
    assert store.get(entry.id) == entry
    assert store.search(ProductQuery(intersects={"type": "Point", "coordinates": [0.5, 0.25]})) == [entry]
    store.close()


def test_memory_store_is_shared_by_threads() -> None:
    store = open_catalog("sqlite:///:memory:")
    threads = [threading.Thread(target=store.upsert, args=(make_entry(f"P{i}"),)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count(ProductQuery()) == 10
    store.close()
    with pytest.raises(CatalogUnavailable):
        store.count(ProductQuery())


# -- file store --------------------------------------------------------------------------------


def test_file_store_uses_wal_and_records_its_migrations(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    open_catalog(f"sqlite:///{path}").close()
    open_catalog(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute("SELECT component, version FROM schema_migrations").fetchall()
    # Every migration recorded once (a new migration must not break this test).
    assert rows == [("catalog", m.version) for m in load_migrations("sqlite")]


def test_bulk_batches_checkpoint_so_the_wal_holds_one_batch(tmp_path: Path) -> None:
    """Checkpoints run beside the writer, and the next batch waits for one: the WAL starts again
    from its beginning instead of growing by a batch each time."""
    store = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    wal = tmp_path / "catalog.db-wal"
    sizes = []
    try:
        for batch in range(8):
            store.upsert_many(make_entry(f"S2B_BULK_{batch}_{i:05d}") for i in range(4000))
            sizes.append(wal.stat().st_size)
        assert store.count(ProductQuery(limit=1)) == 32_000
        # Single entries after that: a checkpoint per 4 MiB of WAL again, not one per commit.
        checkpoints = []
        checkpoint = store._checkpoint
        store._checkpointer._checkpoint = lambda: (checkpoints.append(1), checkpoint())  # type: ignore[method-assign]
        for i in range(100):
            store.upsert(make_entry(f"S2B_ONE_{i:03d}"))
        assert len(checkpoints) <= 1, len(checkpoints)
    finally:
        store.close()
    assert sizes[0] > 4 * 1024 * 1024  # a batch crosses the checkpoint threshold
    assert sizes[-1] < 3 * sizes[0], sizes  # eight batches without a checkpoint would be eight times


def test_grid_indexes_serve_areas_and_time_ranges_with_and_without_a_type(tmp_path: Path) -> None:
    from shared.catalog.filters import Selection
    from shared.catalog.odata.filter import parse_filter
    from shared.catalog.sqlfilter import SQLITE, compile_selection

    path = tmp_path / "catalog.db"
    open_catalog(f"sqlite:///{path}").close()
    area = "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))')"
    since = "ContentDate/Start ge 2024-01-01T00:00:00Z and "
    typed = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        "att/OData.CSC.StringAttribute/Value eq 'T') and " + since
    )
    with sqlite3.connect(path) as conn:
        for text, index in (
            (area, "products_cell (footprint_cell=?)"),
            (since + area, "products_cell (footprint_cell=? AND validity_start>?)"),  # a time range per cell
            (typed + area, "products_attr_type_cell (attr_product_type=? AND footprint_cell=? AND validity_start>?)"),
        ):
            compiled = compile_selection(Selection(where=parse_filter(text)), SQLITE, defer_exact=True)
            plan = conn.execute("EXPLAIN QUERY PLAN SELECT p.pk FROM products p" + compiled.where, compiled.params)
            assert any(index in row[3] for row in plan), text


def test_a_footprint_cut_at_the_antimeridian_has_a_wrapped_box_and_is_found_from_both_sides(tmp_path: Path) -> None:
    from shared.catalog.filters import Selection
    from shared.catalog.grid import WORLD_CELL
    from shared.catalog.odata.filter import parse_filter

    path = tmp_path / "catalog.db"
    store = open_catalog(f"sqlite:///{path}")
    cut = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[179, 10], [180, 10], [180, 20], [179, 20], [179, 10]]],
            [[[-180, 10], [-179, 10], [-179, 12], [-180, 12], [-180, 10]]],
        ],
    }
    wide = {  # cut too, but 100 degrees wide once wrapped: the world cell, with the plain box
        "type": "MultiPolygon",
        "coordinates": [
            [[[130, 10], [131, 10], [131, 11], [130, 10]]],
            [[[-131, 10], [-130, 10], [-130, 11], [-131, 10]]],
        ],
    }
    edge = {"type": "LineString", "coordinates": [[180, 2], [180, 4]]}  # on the antimeridian, not cut
    store.upsert_many([make_entry(n, footprint=f) for n, f in (("CUT", cut), ("WIDE", wide), ("EDGE", edge))])
    try:
        with sqlite3.connect(path) as conn:
            rows = {
                name: row
                for name, *row in conn.execute(
                    "SELECT name, footprint_cell, min_lon, max_lon, min_lat, max_lat FROM products"
                )
            }
        assert rows["CUT"] == [1_017_005, 179, 181, 10, 20]  # 20 degrees high: level 1, column 17, row 5
        assert rows["WIDE"] == [WORLD_CELL, -131, 131, 10, 11]
        for area, wanted in (
            ("POLYGON((-179.5 11, -170 11, -170 15, -179.5 15, -179.5 11))", ["CUT"]),  # the western part
            ("POLYGON((-179.5 12.5, -170 12.5, -170 15, -179.5 15, -179.5 12.5))", []),  # north of it
            ("POLYGON((170 15, 179.5 15, 179.5 30, 170 30, 170 15))", ["CUT"]),  # the eastern part
            ("POLYGON((175 0, -175 0, -175 30, 175 30, 175 0))", ["CUT", "EDGE"]),  # across the antimeridian
            ("POINT(-179 11)", ["CUT"]),
            ("POLYGON((-131 0, -100 0, -100 30, -131 30, -131 0))", ["WIDE"]),
            # Planar, as PostGIS compares: a line at 180 does not meet an area from -180.
            ("POLYGON((-180 0, -170 0, -170 5, -180 5, -180 0))", []),
            ("POLYGON((170 0, 180 0, 180 5, 170 5, 170 0))", ["EDGE"]),
        ):
            where = parse_filter(f"OData.CSC.Intersects(area=geography'SRID=4326;{area}')")
            assert store.find_counted(Selection(where=where)) == ([store.get_by_name(n) for n in wanted], len(wanted))
            assert store.count_where(where) == len(wanted), area
            if "175 0, -175 0" not in area:  # the store's own query reads a GeoJSON area as drawn
                found = store.search(ProductQuery(intersects=shapely.geometry.mapping(shapely.from_wkt(area))))
                assert [e.name for e in found] == wanted, area
    finally:
        store.close()


def test_unreadable_file_makes_the_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(CatalogUnavailable):
        SqliteCatalog(f"sqlite:///{path}")


def _open_and_upsert(args: tuple[str, int]) -> bool:
    url, number = args
    store = open_catalog(url)
    try:
        return store.upsert(make_entry(f"P{number % 3}"))
    finally:
        store.close()


def test_processes_opening_one_file_concurrently_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with ProcessPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_open_and_upsert, [(url, n) for n in range(12)]))
    assert results.count(True) == 3  # three distinct entries, each inserted once
    store = open_catalog(url)
    assert store.count(ProductQuery()) == 3
    store.close()


# -- bulk upsert and query paths (migration 0003) ------------------------------------------------


def test_an_entry_stored_as_older_json_text_is_unchanged_when_upserted_again(tmp_path: Path) -> None:
    # Before canonical_json used orjson the stored text differed for these values (1e-05, "\u00e9").
    path = tmp_path / "catalog.db"
    store = open_catalog(f"sqlite:///{path}")
    footprint = {"type": "Polygon", "coordinates": [[[0, 0], [1e-05, 0], [1e-05, 1], [0, 0]]]}
    entry = make_entry("OLD_TEXT", footprint=footprint, attributes={"cloudCover": 1e-05, "site": "Kiruna-é"})
    store.upsert(entry)
    older = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE products SET footprint = ?, attributes = ?",
            (
                older.encode(footprint),
                older.encode(json.loads(conn.execute("SELECT attributes FROM products").fetchone()[0])),
            ),
        )
        assert "1e-05" in conn.execute("SELECT footprint || attributes FROM products").fetchone()[0]
    later = T0 + timedelta(days=1)
    try:
        assert store.upsert(dataclasses.replace(entry, modification_time=later)) is False
        assert store.upsert_many([dataclasses.replace(entry, modification_time=later)]) == 0
        assert store.get_by_name("OLD_TEXT") == entry  # modification date kept
        changed = dataclasses.replace(
            entry, attributes={"cloudCover": 2e-05, "site": "Kiruna-é"}, modification_time=later
        )
        assert store.upsert(changed) is True
        assert store.get_by_name("OLD_TEXT") == changed
    finally:
        store.close()


def test_bulk_upsert_mixes_new_unchanged_and_changed_entries() -> None:
    store = open_catalog("sqlite:///:memory:")
    try:
        kept, changed = make_entry("KEPT"), make_entry("CHANGED")
        assert store.upsert_many([kept, changed]) == 2
        moved = {"type": "Polygon", "coordinates": [[[50, 50], [51, 50], [51, 51], [50, 50]]]}
        batch = [kept, dataclasses.replace(changed, content_length=11, footprint=moved), make_entry("NEW")]
        assert store.upsert_many(batch) == 2  # the unchanged entry is not counted
        assert store.get_by_name("CHANGED") == batch[1]
        assert store.get_by_name("NEW") == batch[2]
        # The changed footprint replaced the old one in the spatial index and in the exact test.
        moved_area = {"type": "Polygon", "coordinates": [[[49, 49], [52, 49], [52, 52], [49, 52], [49, 49]]]}
        assert [e.name for e in store.search(ProductQuery(intersects=moved_area))] == ["CHANGED"]
    finally:
        store.close()


def test_bulk_upsert_with_an_id_twice_keeps_the_later_entry() -> None:
    store = open_catalog("sqlite:///:memory:")
    try:
        first = make_entry("TWICE")
        assert store.upsert_many([first, dataclasses.replace(first, content_length=99)]) == 2
        stored = store.get_by_name("TWICE")
        assert stored is not None and stored.content_length == 99
    finally:
        store.close()


def test_bulk_upsert_name_conflict_names_the_entry_and_writes_nothing() -> None:
    store = open_catalog("sqlite:///:memory:")
    try:
        store.upsert(make_entry("TAKEN"))
        impostor = dataclasses.replace(make_entry("TAKEN"), id=str(uuid.uuid4()))
        with pytest.raises(ValueError, match="TAKEN"):
            store.upsert_many([make_entry("INNOCENT"), impostor])
        assert store.get_by_name("INNOCENT") is None
    finally:
        store.close()


def test_product_type_attribute_filter_reads_only_string_attributes() -> None:
    from shared.catalog.filters import Selection, matches
    from shared.catalog.odata.filter import parse_filter

    store = open_catalog("sqlite:///:memory:")
    try:
        entries = [
            make_entry("STRING", attributes={"productType": "X"}),
            make_entry("NUMBER", attributes={"productType": 7}),
            make_entry("ABSENT", attributes={}),
            make_entry("OTHER", attributes={"productType": "Y"}),
        ]
        store.upsert_many(entries)
        att = "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and {})"
        for condition in (
            "att/OData.CSC.StringAttribute/Value eq 'X'",
            "att/OData.CSC.StringAttribute/Value ne 'X'",
            "not (att/OData.CSC.StringAttribute/Value eq 'X')",
            "startswith(att/OData.CSC.StringAttribute/Value,'Y')",
            "att/OData.CSC.IntegerAttribute/Value eq 7",
        ):
            where = parse_filter(att.format(condition))
            found = {e.name for e in store.find(Selection(where=where))}
            assert found == {e.name for e in entries if matches(where, e)}, condition
            assert store.count_where(where) == len(found)
    finally:
        store.close()


def test_spatial_paging_applies_after_the_exact_test() -> None:
    from shared.catalog.filters import Selection
    from shared.catalog.odata.filter import parse_filter

    store = open_catalog("sqlite:///:memory:")
    try:
        # Boxes all meet the query's box; only the triangles' lower halves meet the query triangle.
        near = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1], [0, 0]]]}
        far = {"type": "Polygon", "coordinates": [[[1, 1], [0.9, 1], [1, 0.9], [1, 1]]]}
        store.upsert_many([make_entry(f"P{i:03d}", footprint=near if i % 3 else far) for i in range(60)])
        where = parse_filter("OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 0, 1 0, 0 1, 0 0))')")
        expected = [f"P{i:03d}" for i in range(60) if i % 3]
        assert store.count_where(where) == len(expected)
        pages = [store.find(Selection(where=where, limit=7, offset=offset)) for offset in range(0, 60, 7)]
        assert [e.name for page in pages for e in page] == expected
    finally:
        store.close()


def _catalog_before_migration_0004(path: Path, entries: list[CatalogEntry]) -> None:
    """A catalog file as migrations 0001 to 0003 left it, its footprints' part boxes in the R*Tree."""
    from shared.catalog.migrations import COMPONENT
    from shared.catalog.model import parse_geometry
    from shared.catalog.sqlite import _split_statements
    from shared.catalog.sqlite_rows import CONTENT_COLUMNS, part_boxes, prepare_rows

    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL,"
        " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
    )
    for migration in load_migrations("sqlite")[:3]:
        for statement in _split_statements(migration.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?, '2024-01-01T00:00:00.000000Z')",
            (COMPONENT, migration.version, migration.name),
        )
    columns = (*CONTENT_COLUMNS, "publication_time", "modification_time", "footprint_wkb")
    insert = f"INSERT INTO products (pk, {', '.join(columns)}) VALUES (?{', ?' * len(columns)})"
    for pk, (entry, row) in enumerate(prepare_rows(entries), start=1):
        conn.execute(insert, (pk, *row[: len(columns)]))
        for box in part_boxes(parse_geometry(entry.footprint, entry.name)) if entry.footprint else []:
            part = conn.execute("INSERT INTO footprint_parts (product_pk) VALUES (?)", (pk,)).lastrowid
            conn.execute("INSERT INTO footprint_index VALUES (?, ?, ?, ?, ?)", (part, *box))
    conn.commit()
    conn.close()


def test_migrations_fill_the_boxes_and_cells_of_existing_rows_and_retire_the_rtree(tmp_path: Path) -> None:
    from shared.catalog.filters import Selection
    from shared.catalog.odata.filter import parse_filter

    path = tmp_path / "catalog.db"
    boxes = [(i * 10.0, i * 10.0 + 2.5, -5.0, 5.0) for i in range(5)]
    entries = [
        make_entry(
            f"P{i}",
            footprint={"type": "Polygon", "coordinates": [[[a, c], [b, c], [b, d], [a, d], [a, c]]]},
            attributes={"productType": "T"},
        )
        for i, (a, b, c, d) in enumerate(boxes)
    ]
    _catalog_before_migration_0004(path, entries)
    store = open_catalog(f"sqlite:///{path}")
    try:
        with sqlite3.connect(path) as conn:
            filled = conn.execute("SELECT min_lon, max_lon, min_lat, max_lat FROM products ORDER BY name").fetchall()
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not {"footprint_index", "footprint_parts"} & tables
        for got, want in zip(filled, boxes, strict=True):  # the R*Tree's 32-bit boxes, rounded outwards
            assert all(g <= w for g, w in zip(got[::2], want[::2], strict=True))
            assert all(g >= w for g, w in zip(got[1::2], want[1::2], strict=True))
            assert all(math.isclose(g, w, abs_tol=1e-5) for g, w in zip(got, want, strict=True))
        for typed in (
            "",
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'T') and ",
        ):
            where = parse_filter(
                f"{typed}OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((5 -1, 21 -1, 21 1, 5 1, 5 -1))')"
            )
            assert [e.name for e in store.find(Selection(where=where))] == ["P1", "P2"]
            assert store.count_where(where) == 2
    finally:
        store.close()


@pytest.mark.parametrize("with_wkb", [True, False], ids=["wkb", "rows-before-migration-0003"])
def test_count_tests_exactly_only_the_footprints_at_the_areas_edges(tmp_path: Path, with_wkb: bool) -> None:
    from shared.catalog.filters import Selection
    from shared.catalog.odata.filter import parse_filter

    path = tmp_path / "catalog.db"
    store = open_catalog(f"sqlite:///{path}")
    try:
        # Inside the area; across its edge but meeting it; across its box's corner but not meeting it.
        inside = {"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]]}
        across = {"type": "Polygon", "coordinates": [[[9, 1], [11, 1], [11, 2], [9, 1]]]}
        outside = {"type": "Polygon", "coordinates": [[[9.5, 11], [11, 11], [11, 9.5], [9.5, 11]]]}
        footprints = [inside, across, outside] * 4
        store.upsert_many(
            make_entry(f"P{i:02d}", footprint=f, attributes={"productType": "T"}) for i, f in enumerate(footprints)
        )
        if not with_wkb:  # the exact tests read the GeoJSON of rows that have no WKB
            with sqlite3.connect(path) as conn:
                conn.execute("UPDATE products SET footprint_wkb = NULL")
        rectangle = "POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))"
        triangle = "POLYGON((0 0, 10 0, 0 10, 0 0))"  # the third kind meets neither
        for area in (rectangle, triangle):
            for typed in (
                "",
                "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
                "att/OData.CSC.StringAttribute/Value eq 'T') and ",
            ):
                where = parse_filter(f"{typed}OData.CSC.Intersects(area=geography'SRID=4326;{area}')")
                expected = [f"P{i:02d}" for i, f in enumerate(footprints) if f is not outside]
                assert store.count_where(where) == len(expected)
                page = store.find(Selection(where=where, limit=3, offset=1))
                assert [e.name for e in page] == expected[1:4]
                counted = store.find_counted(Selection(where=where, limit=3, offset=1))
                assert ([e.name for e in counted[0]], counted[1]) == (expected[1:4], len(expected))
    finally:
        store.close()


def test_bulk_upsert_takes_an_open_ring_that_shapely_reads() -> None:
    # GEOS's GeoJSON reader refuses a ring that is not closed; shapely's (parse_geometry) closes it.
    store = open_catalog("sqlite:///:memory:")
    try:
        open_ring = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}
        assert store.upsert_many([make_entry("OPEN", footprint=open_ring), make_entry("CLOSED")]) == 2
        found = store.search(ProductQuery(intersects={"type": "Point", "coordinates": [0.5, 0.9]}))
        assert [e.name for e in found] == ["OPEN"]
    finally:
        store.close()
