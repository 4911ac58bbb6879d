"""The STAC API over HTTP (its Flask view on a SQLite catalog): resources, links, paging, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import flask
import pytest

from shared.catalog import CatalogEntry, open_catalog
from shared.catalog.stac.service import CONFORMANCE, StacService
from tests.fixtures.catalog import sample_entries
from tests.stac_schemas import errors


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[CatalogEntry]]]:
    tmp = tmp_path_factory.mktemp("stac-service")
    store = open_catalog(f"sqlite:///{tmp / 'catalog.db'}")
    entries = sample_entries(tmp)
    store.upsert_many(entries)
    service = StacService(lambda: store, odata_url="https://dl.example/odata/v1/")
    app = flask.Flask(__name__)
    app.add_url_rule("/<path:path>", "stac", lambda path: service.handle(flask.request), methods=["GET", "POST", "PUT"])
    yield app.test_client(), entries
    store.close()


def _get(client: Any, url: str, status: int = 200) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_the_landing_page_links_what_a_client_needs(catalog: tuple[Any, list[CatalogEntry]]) -> None:
    client, _ = catalog
    landing = _get(client, "/stac")
    rels = {(link["rel"], link.get("method")) for link in landing["links"]}
    assert {("conformance", None), ("data", None), ("search", "GET"), ("search", "POST")} <= rels
    assert landing["conformsTo"] == list(CONFORMANCE) == _get(client, "/stac/conformance")["conformsTo"]
    assert any(link["href"].endswith("/collections/sentinel-2") for link in landing["links"] if link["rel"] == "child")
    queryables = _get(client, "/stac/queryables")
    assert {"id", "datetime", "geometry", "sat:orbit_state", "sar:instrument_mode"} <= set(queryables["properties"])
    assert "sar:polarizations" not in queryables["properties"]


def test_collections_count_the_products_of_their_missions_and_types(catalog: tuple[Any, list[CatalogEntry]]) -> None:
    client, entries = catalog
    collections = {c["id"]: c for c in _get(client, "/stac/collections")["collections"]}
    assert collections["sentinel-3"]["refsys:count"] == sum(e.mission == "S3" for e in entries)
    grd = collections["sentinel-1-iw-grdh-1s"]
    assert grd["refsys:count"] == sum(e.product_type == "IW_GRDH_1S" for e in entries)
    assert all(errors(c) == [] for c in collections.values())
    assert _get(client, "/stac/collections/sentinel-1-iw-grdh-1s") == grd


def test_an_item_is_found_in_its_collections_only(catalog: tuple[Any, list[CatalogEntry]]) -> None:
    client, entries = catalog
    entry = next(e for e in entries if e.product_type == "IW_GRDH_1S")
    item = _get(client, f"/stac/collections/sentinel-1-iw-grdh-1s/items/{entry.name}")
    assert item["id"] == entry.name and item == _get(client, f"/stac/collections/sentinel-1/items/{entry.name}")
    assert item["assets"]["product"]["href"] == f"https://dl.example/odata/v1/Products({entry.id})/$value"
    _get(client, f"/stac/collections/sentinel-2/items/{entry.name}", 404)
    _get(client, f"/stac/collections/sentinel-1-iw-grdh-1s/items/{entry.name}.zip", 404)
    assert "no collection 'sentinel-9'" in _get(client, "/stac/collections/sentinel-9", 404)["error"]["message"]
    _get(client, "/stac/nothing-here", 404)
    assert client.put("/stac/search").status_code == 405


def test_get_pages_keep_the_query_and_end(catalog: tuple[Any, list[CatalogEntry]]) -> None:
    client, entries = catalog
    url: str | None = "/stac/collections/sentinel-1/items?limit=4&filter=sat:orbit_state%20%3D%20%27descending%27"
    seen: list[str] = []
    while url:
        page = _get(client, url)
        seen += [f["id"] for f in page["features"]]
        link = next((link for link in page["links"] if link["rel"] == "next"), None)
        url = None if link is None else urlsplit(link["href"]).path + "?" + urlsplit(link["href"]).query
        if url:
            assert "filter=" in url and "limit=4" in url
    wanted = {e.name for e in entries if e.mission == "S1" and e.attributes.get("orbitDirection") == "DESCENDING"}
    assert len(seen) == len(set(seen)) and set(seen) == wanted
    assert _get(client, "/stac/search")["numberReturned"] == 10  # the default limit


def test_a_token_of_another_sort_or_made_up_is_refused(catalog: tuple[Any, list[CatalogEntry]]) -> None:
    client, _ = catalog
    page = _get(client, "/stac/search?limit=2&sortby=-created")
    token = urlsplit(next(link for link in page["links"] if link["rel"] == "next")["href"]).query.split("token=")[1]
    assert _get(client, f"/stac/search?limit=2&sortby=-created&token={token}")["numberReturned"] == 2
    message = _get(client, f"/stac/search?limit=2&sortby=id&token={token}", 400)["error"]["message"]
    assert "another sortby" in message
    assert "not one this service issued" in _get(client, "/stac/search?token=abc", 400)["error"]["message"]


def test_post_pages_carry_the_body_and_fields_shape_the_items(catalog: tuple[Any, list[CatalogEntry]]) -> None:
    client, entries = catalog
    body = {"collections": ["sentinel-3"], "limit": 5, "fields": {"exclude": ["assets", "properties.instruments"]}}
    response = client.post("/stac/search", json=body)
    seen: list[str] = []
    while True:
        page = response.get_json()
        assert response.status_code == 200, page
        for feature in page["features"]:
            assert "assets" not in feature and "instruments" not in feature["properties"]
            assert "platform" in feature["properties"]
        seen += [f["id"] for f in page["features"]]
        link = next((link for link in page["links"] if link["rel"] == "next"), None)
        if link is None:
            break
        assert link["method"] == "POST" and link["body"]["collections"] == ["sentinel-3"]
        response = client.post(urlsplit(link["href"]).path, json=link["body"])
    assert sorted(seen) == sorted(e.name for e in entries if e.mission == "S3")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/stac/search?bbox=1,2,3", "bbox is 4 numbers"),
        ("/stac/search?bbox=a,b,c,d", "bbox is 4 numbers"),
        ("/stac/search?datetime=yesterday", "not RFC 3339"),
        ("/stac/search?filter=eo:nope%20%3D%201", "unknown property 'eo:nope'"),
        ("/stac/search?sortby=eo:cloud_cover", "sortby 'eo:cloud_cover' is not supported"),
        ("/stac/search?intersects=%7B", "intersects is a GeoJSON geometry"),
        ("/stac/search?limit=-1", "limit is a positive integer"),
    ],
)
def test_bad_requests_are_json_400s_naming_the_parameter(
    catalog: tuple[Any, list[CatalogEntry]], url: str, message: str
) -> None:
    client, _ = catalog
    assert message in _get(client, url, 400)["error"]["message"]
    assert client.post("/stac/search", data="not json", content_type="application/json").status_code == 400


def test_the_service_answers_under_its_path_only(catalog: tuple[Any, list[CatalogEntry]]) -> None:
    client, _ = catalog
    assert "the STAC API is at /stac" in _get(client, "/odata/v1", 404)["error"]["message"]
