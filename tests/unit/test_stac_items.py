"""STAC items and collections of catalog entries validate against the STAC 1.1 schemas and the
schemas of every extension they declare, and say what the mapping table says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shared.catalog.model import CatalogEntry, ProductTypeSummary
from shared.catalog.stac.collections import CollectionRef, collection_json, type_collection_id
from shared.catalog.stac.items import item_json
from shared.products.stac import EXTENSIONS, MAPPING
from tests.fixtures.catalog import sample_entries
from tests.stac_schemas import errors

ROOT = "https://example.test/stac"
ODATA = "https://example.test/odata/v1"


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> list[CatalogEntry]:
    return sample_entries(tmp_path_factory.mktemp("samples"))


def test_every_sample_item_validates_with_the_extensions_it_declares(entries: list[CatalogEntry]) -> None:
    assert len(entries) > 40
    for entry in entries:
        item = item_json(entry, ROOT, ODATA)
        assert errors(item) == [], entry.name


def test_only_sentinel_1_items_are_sar_items(entries: list[CatalogEntry]) -> None:
    s3 = [e for e in entries if e.mission == "S3" and e.attributes.get("operationalMode") == "EO"]
    assert s3, "OLCI/SLSTR samples say operationalMode EO"
    for entry in s3:
        item = item_json(entry, ROOT, ODATA)
        assert EXTENSIONS["sar"] not in item["stac_extensions"]
        assert not any(key.startswith("sar:") for key in item["properties"]), entry.name
    grd = next(e for e in entries if e.product_type == "IW_GRDH_1S")
    item = item_json(grd, ROOT, ODATA)
    assert EXTENSIONS["sar"] in item["stac_extensions"]
    assert item["properties"]["sar:instrument_mode"] == "IW"
    assert item["properties"]["sar:polarizations"] == ["VV", "VH"]


def test_an_item_shows_each_mapped_attribute_under_its_stac_name(entries: list[CatalogEntry]) -> None:
    entry = next(e for e in entries if e.product_type == "IW_GRDH_1S")
    properties = item_json(entry, ROOT, ODATA)["properties"]
    for mapped in MAPPING:
        if mapped.attribute in entry.attributes and mapped.filterable:
            value = entry.attributes[mapped.attribute]
            shown = properties[mapped.name]
            assert mapped.to_attribute(shown) == (value if not hasattr(value, "isoformat") else shown), mapped
    assert properties["sat:orbit_state"] == entry.attributes["orbitDirection"].lower()
    assert properties["created"].startswith(entry.publication_time.strftime("%Y-%m-%dT%H:%M:%S"))


def test_an_items_id_is_the_product_name_and_its_links_and_assets_point_where_it_is_served(
    entries: list[CatalogEntry],
) -> None:
    entry = dataclasses.replace(entries[0], quicklooks=("a/preview/quick-look.png", "a/b_PVI.jp2"))
    item = item_json(entry, ROOT, ODATA)
    assert item["id"] == entry.name
    collection = type_collection_id(entry.mission, entry.product_type)
    assert item["collection"] == collection
    links = {link["rel"]: link["href"] for link in item["links"]}
    assert links["self"] == f"{ROOT}/collections/{collection}/items/{entry.name}"
    assert links["collection"] == links["parent"] == f"{ROOT}/collections/{collection}"
    assert links["root"] == f"{ROOT}/"
    assert item["assets"]["product"]["href"] == f"{ODATA}/Products({entry.id})/$value"
    assert item["assets"]["thumbnail"]["href"] == f"{ODATA}/Products({entry.id})/Quicklooks('quick-look.png')/$value"
    assert item["assets"]["thumbnail"]["type"] == "image/png"
    assert item["assets"]["thumbnail-2"]["type"] == "image/jp2"
    assert "thumbnail" in item["assets"]["thumbnail-2"]["roles"]
    assert errors(item) == []


def test_a_product_without_validity_or_footprint_is_still_a_valid_item(entries: list[CatalogEntry]) -> None:
    entry = dataclasses.replace(entries[5], footprint=None, validity_start=None, validity_stop=None)
    item = item_json(entry, ROOT, ODATA)
    assert item["geometry"] is None and "bbox" not in item
    assert item["properties"]["datetime"] == "1970-01-01T00:00:00Z"
    assert errors(item) == []


def test_collection_ids_are_lower_kebab_product_types() -> None:
    assert type_collection_id("S1", "IW_GRDH_1S") == "sentinel-1-iw-grdh-1s"
    assert type_collection_id("S1", "IW_RAW__0S") == "sentinel-1-iw-raw-0s"
    assert type_collection_id("S3", "OL_1_EFR___") == "sentinel-3-ol-1-efr"
    assert type_collection_id("S2", "S2MSI2A") == "sentinel-2-s2msi2a"


def test_collections_validate_with_their_extents(entries: list[CatalogEntry]) -> None:
    first, last = entries[10].validity_start, entries[12].validity_stop
    across = ProductTypeSummary("S3", "OL_1_EFR___", 3, first, last, (170.0, -10.0, -170.0, 10.0))
    plain = ProductTypeSummary("S3", "SL_1_RBT___", 2, None, None, (0.0, 1.0, 2.0, 3.0))
    mission = CollectionRef("sentinel-3", "S3", None, (across, plain))
    body = collection_json(mission, ROOT)
    assert errors(body) == []
    assert body["extent"]["spatial"]["bbox"] == [[-180.0, -10.0, 180.0, 10.0]]
    assert body["summaries"]["product:type"] == ["OL_1_EFR___", "SL_1_RBT___"]
    one = collection_json(CollectionRef("sentinel-3-ol-1-efr", "S3", "OL_1_EFR___", (across,)), ROOT)
    assert errors(one) == []
    assert one["extent"]["spatial"]["bbox"] == [[170.0, -10.0, -170.0, 10.0]]
    assert one["extent"]["temporal"]["interval"][0][0].startswith(str(first.year))


def test_the_schemas_resolve_offline() -> None:
    assert Path(__file__).exists()
    with pytest.raises(AssertionError, match="no local copy"):
        errors({"type": "Feature", "stac_extensions": ["https://stac-extensions.github.io/nope/v9/schema.json"]})


def test_the_docs_list_every_row_of_the_mapping_table() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "stac.md").read_text(encoding="utf-8")
    for mapped in MAPPING:
        assert f"| `{mapped.attribute}` | `{mapped.name}` | {mapped.extension or '—'} |" in docs, mapped
