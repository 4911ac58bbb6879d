"""Dateline queries through the OData service on both catalog backends (``catalog_url``: SQLite, PostgreSQL).

The products and queries are those of ``tests/unit/test_odata_antimeridian.py``: each backend must pick
the products listed there, which are also what ``matches`` picks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import flask
import pytest

from shared.catalog import CatalogEntry, CatalogStore, open_catalog
from shared.catalog.filters import Selection, matches
from shared.catalog.odata.filter import parse_filter
from shared.catalog.odata.service import ODataService
from tests.unit.test_odata_antimeridian import CASES, key_of, make_entries

pytestmark = pytest.mark.integration


@pytest.fixture
def loaded(catalog_url: str) -> Iterator[tuple[CatalogStore, list[CatalogEntry]]]:
    store = open_catalog(catalog_url)
    entries = make_entries()
    store.upsert_many(entries)
    try:
        yield store, entries
    finally:
        store.close()


def _client(store: CatalogStore) -> Any:
    service = ODataService(lambda: store, lambda: None)
    app = flask.Flask(__name__)
    app.add_url_rule("/<path:path>", "odata", lambda path: service.handle(flask.request), methods=["GET"])
    return app.test_client()


def test_every_dateline_query_selects_the_same_products_on_the_backend_and_in_python(
    loaded: tuple[CatalogStore, list[CatalogEntry]],
) -> None:
    store, entries = loaded
    client = _client(store)
    wrong = []
    for text, wanted in CASES:
        where = parse_filter(text)
        response = client.get("/odata/v1/Products?$count=true&$filter=" + quote(text, safe=""))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        served = {key_of(p["Name"]) for p in body["value"]}
        found = {key_of(e.name) for e in store.find(Selection(where=where, limit=100))}
        python = {key_of(e.name) for e in entries if matches(where, e)}
        if not (served == found == python == wanted and body["@odata.count"] == len(wanted)):
            wrong.append((text, wanted, served, found, python, body["@odata.count"]))
    assert not wrong, wrong


def test_an_out_of_range_longitude_is_a_400_on_the_backend(loaded: tuple[CatalogStore, list[CatalogEntry]]) -> None:
    store, _ = loaded
    text = "OData.CSC.Within(area=geography'SRID=4326;POLYGON((170 -10, 190 -10, 190 10, 170 10, 170 -10))')"
    response = _client(store).get("/odata/v1/Products?$filter=" + quote(text, safe=""))
    assert response.status_code == 400
    assert "(190 -10) is not" in response.get_json()["error"]["message"]
