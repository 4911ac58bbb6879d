"""pystac-client, unchanged, against the embedded platform's STAC API (endpoints.json key "stac").

Products arrive two ways: a few are uploaded into the inbox and cataloged by the platform (so a
product the pipeline catalogs is a STAC item whose asset downloads through OData), and the team's
samples are loaded into the platform's catalog directly (enough items to page through).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pystac_client import Client

from shared.catalog import CatalogEntry, open_catalog
from shared.catalog.filters import matches
from shared.catalog.odata.filter import parse_filter
from shared.platform.embedded import EmbeddedPlatform
from tests.e2e.test_platform import upload, wait_for
from tests.fixtures.catalog import sample_entries
from tests.stac_schemas import errors

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]


@pytest.fixture(scope="module")
def loaded(platform: EmbeddedPlatform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CatalogEntry]]:
    entries = sample_entries(tmp_path_factory.mktemp("stac-samples"))
    store = open_catalog(platform.settings.catalog_url)
    try:
        store.upsert_many(entries)
    finally:
        store.close()
    yield entries


@pytest.fixture(scope="module")
def client(platform: EmbeddedPlatform, loaded: list[CatalogEntry]) -> Client:
    return Client.open(str(platform.endpoints()["stac"]))


def _names(entries: list[CatalogEntry], odata_filter: str) -> set[str]:
    return {e.name for e in entries if matches(parse_filter(odata_filter), e)}


def test_the_client_sees_the_conformance_and_the_collections(client: Client, loaded: list[CatalogEntry]) -> None:
    for conformance in ("CORE", "COLLECTIONS", "FEATURES", "ITEM_SEARCH", "FILTER", "SORT", "FIELDS"):
        assert client.conforms_to(conformance), conformance
    ids = {c.id for c in client.get_collections()}
    assert {"sentinel-1", "sentinel-2", "sentinel-3", "sentinel-1-iw-grdh-1s", "sentinel-3-ol-1-efr"} <= ids
    grd = client.get_collection("sentinel-1-iw-grdh-1s")
    assert grd.extent.spatial.bboxes[0][0] < grd.extent.spatial.bboxes[0][2]
    assert grd.extent.temporal.intervals[0][0] is not None
    items = list(grd.get_items())
    assert {i.id for i in items} == {e.name for e in loaded if e.product_type == "IW_GRDH_1S"}
    assert all(errors(item.to_dict(transform_hrefs=False)) == [] for item in items)


def test_search_pages_through_every_match_once(client: Client, loaded: list[CatalogEntry]) -> None:
    for method in ("GET", "POST"):
        search = client.search(max_items=None, limit=7, method=method)
        ids = [item.id for item in search.items()]
        assert len(ids) == len(set(ids)), method
        assert set(ids) >= {e.name for e in loaded}
        assert len(ids) == search.matched(), method
        assert search.matched() >= len(loaded)


def test_search_by_bbox_datetime_and_collections(client: Client, loaded: list[CatalogEntry]) -> None:
    search = client.search(
        collections=["sentinel-1"],
        bbox=[-20, -60, 120, 70],
        datetime="2017-01-01T00:00:00Z/2022-01-01T00:00:00Z",
        limit=5,
    )
    expected = _names(
        loaded,
        "Collection/Name eq 'SENTINEL-1' and OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((-20 -60, "
        "120 -60, 120 70, -20 70, -20 -60))') and ContentDate/Start le 2022-01-01T00:00:00Z and "
        "ContentDate/End ge 2017-01-01T00:00:00Z",
    )
    assert expected and {item.id for item in search.items()} == expected


def test_cql2_text_and_json_filters(client: Client, loaded: list[CatalogEntry]) -> None:
    expected = _names(
        loaded,
        "Collection/Name eq 'SENTINEL-1' and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq "
        "'operationalMode' and att/OData.CSC.StringAttribute/Value eq 'IW') and Attributes/OData.CSC."
        "StringAttribute/any(att:att/Name eq 'orbitDirection' and att/OData.CSC.StringAttribute/Value eq 'ASCENDING')",
    )
    assert expected
    text = client.search(
        filter="sar:instrument_mode = 'IW' AND sat:orbit_state = 'ascending'", filter_lang="cql2-text", method="GET"
    )
    assert {item.id for item in text.items()} == expected
    document = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "sar:instrument_mode"}, "IW"]},
            {"op": "=", "args": [{"property": "sat:orbit_state"}, "ascending"]},
        ],
    }
    posted = client.search(filter=document, filter_lang="cql2-json", method="POST")
    assert {item.id for item in posted.items()} == expected
    refused = requests.get(f"{client.self_href.rstrip('/')}/search", params={"filter": "eo:nope = 1"}, timeout=10)
    assert refused.status_code == 400 and "eo:nope" in refused.json()["error"]["message"]


def test_sortby_and_fields(client: Client, loaded: list[CatalogEntry]) -> None:
    search = client.search(collections=["sentinel-3"], sortby="-id", limit=4, method="GET")
    ids = [item.id for item in search.items()]
    assert ids == sorted({e.name for e in loaded if e.mission == "S3"}, reverse=True)
    ascending = client.search(collections=["sentinel-3"], sortby=[{"field": "properties.datetime", "direction": "asc"}])
    starts = [item.properties.get("start_datetime") or item.properties["datetime"] for item in ascending.items()]
    assert starts == sorted(starts)
    slim = client.search(collections=["sentinel-2"], fields={"include": ["id", "properties.platform"], "exclude": []})
    page = next(iter(slim.pages_as_dicts()))
    feature = page["features"][0]
    assert set(feature["properties"]) == {"platform"} and "assets" not in feature


def test_a_cataloged_product_is_an_item_whose_asset_downloads_through_odata(
    platform: EmbeddedPlatform, client: Client, tmp_path: Path
) -> None:
    product = upload(platform, tmp_path, "IW_GRDH_1S", seed=31)
    found = wait_for(lambda: list(client.search(ids=[product.name]).items()), "the product as a STAC item")
    (item,) = found  # type: ignore[misc]
    assert item.collection_id == "sentinel-1-iw-grdh-1s"
    assert errors(item.to_dict(transform_hrefs=False)) == []
    href = item.assets["product"].href
    assert href.startswith(str(platform.endpoints()["odata"]))
    download = requests.get(href, timeout=30)
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert f"{product.name}/manifest.safe" in set(archive.namelist())
    same = requests.get(
        f"{client.self_href.rstrip('/')}/collections/sentinel-1-iw-grdh-1s/items/{product.name}", timeout=10
    )
    assert same.status_code == 200 and same.json()["id"] == product.name
