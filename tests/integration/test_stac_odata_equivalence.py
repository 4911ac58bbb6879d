"""OData and STAC answer the same products for equivalent queries, on both catalog backends.

Each pair is an OData ``$filter`` and the STAC search a STAC client would write for the same
question. Both APIs are asked through HTTP (their Flask views), every page is followed, and the
answers are checked three ways: OData's names, STAC's ids, and a brute-force Python evaluation of
the OData filter over all entries (``filters.matches``). Some pairs also check the answer against
what the STAC items themselves show (so the mapping table means the same in items and filters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import flask
import pytest

from shared.catalog import CatalogEntry, CatalogStore
from shared.catalog.filters import matches
from shared.catalog.odata.filter import parse_filter
from shared.catalog.odata.service import ODataService
from shared.catalog.stac.items import item_json
from shared.catalog.stac.service import StacService

pytestmark = pytest.mark.integration

Predicate = Callable[[dict[str, Any]], bool]
T = "2021-04-01T05:26:40Z"
POLYGON = [[44.8571, 20.3411], [11.4484, 49.9204], [2.4321, 32.3625], [13.4321, 1.3625], [44.8571, 20.3411]]
POLYGON_WKT = ", ".join(f"{x} {y}" for x, y in POLYGON)
WORLD = "POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))"
EUROPE = "POLYGON((-10 35, 30 35, 30 60, -10 60, -10 35))"


def _attr(kind: str, name: str, condition: str) -> str:
    return (
        f"Attributes/OData.CSC.{kind}Attribute/any(att:att/Name eq '{name}' and "
        f"att/OData.CSC.{kind}Attribute/Value {condition})"
    )


def _prop(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda item: item["properties"].get(name)


# (OData $filter, STAC search as a POST body, optional check on the items found)
PAIRS: list[tuple[str, dict[str, Any], Predicate | None]] = [
    (
        "Name eq 'S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE'",
        {"ids": ["S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE", "nope"]},
        None,
    ),
    ("startswith(Name,'S1B')", {"filter": "id LIKE 'S1B%'", "filter-lang": "cql2-text"}, None),
    ("endswith(Name,'.SEN3')", {"filter": "id LIKE '%.SEN3'", "filter-lang": "cql2-text"}, None),
    ("not contains(Name,'GRDH')", {"filter": "NOT id LIKE '%GRDH%'", "filter-lang": "cql2-text"}, None),
    (
        "Collection/Name eq 'SENTINEL-2'",
        {"collections": ["sentinel-2"]},
        lambda i: i["collection"].startswith("sentinel-2-"),
    ),
    (
        "Collection/Name eq 'SENTINEL-1' and " + _attr("String", "productType", "eq 'IW_GRDH_1S'"),
        {"collections": ["sentinel-1-iw-grdh-1s"]},
        lambda i: i["properties"]["product:type"] == "IW_GRDH_1S",
    ),
    (
        "Collection/Name eq 'SENTINEL-3' or Collection/Name eq 'SENTINEL-1'",
        {"collections": ["sentinel-3", "sentinel-1", "sentinel-7"]},
        None,
    ),
    (
        f"OData.CSC.Intersects(area=geography'SRID=4326;POLYGON(({POLYGON_WKT}))')",
        {"intersects": {"type": "Polygon", "coordinates": [POLYGON]}},
        None,
    ),
    (
        "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((170 0, -170 0, -170 20, 170 20, 170 0))')",
        {"bbox": [170, 0, -170, 20]},
        None,
    ),
    (
        f"OData.CSC.Within(area=geography'SRID=4326;{WORLD}')",
        {"filter": f"S_WITHIN(geometry, {WORLD})", "filter-lang": "cql2-text"},
        None,
    ),
    (
        f"OData.CSC.Disjoints(area=geography'SRID=4326;{EUROPE}')",
        {
            "filter": {
                "op": "s_disjoint",
                "args": [
                    {"property": "geometry"},
                    {"type": "Polygon", "coordinates": [[[-10, 35], [30, 35], [30, 60], [-10, 60], [-10, 35]]]},
                ],
            }
        },
        None,
    ),
    (f"ContentDate/Start le {T} and ContentDate/End ge {T}", {"datetime": T}, None),
    (
        "ContentDate/Start le 2022-01-01T00:00:00Z and ContentDate/End ge 2021-01-01T00:00:00Z",
        {"datetime": "2021-01-01T00:00:00Z/2022-01-01T00:00:00Z"},
        None,
    ),
    ("ContentDate/Start le 2019-01-01T00:00:00Z", {"datetime": "../2019-01-01T00:00:00Z"}, None),
    ("ContentDate/Start eq null", {"filter": "datetime IS NULL", "filter-lang": "cql2-text"}, None),
    (
        "PublicationDate gt 2024-05-02T00:00:00Z",
        {"filter": {"op": ">", "args": [{"property": "created"}, {"timestamp": "2024-05-02T00:00:00Z"}]}},
        lambda i: i["properties"]["created"] > "2024-05-02T00:00:00Z",
    ),
    (
        _attr("String", "orbitDirection", "eq 'ASCENDING'"),
        {"filter": "sat:orbit_state = 'ascending'", "filter-lang": "cql2-text"},
        lambda i: _prop("sat:orbit_state")(i) == "ascending",
    ),
    (
        _attr("Integer", "relativeOrbitNumber", "ge 100"),
        {"filter": "sat:relative_orbit >= 100", "filter-lang": "cql2-text"},
        lambda i: (_prop("sat:relative_orbit")(i) or 0) >= 100,
    ),
    (
        _attr("Integer", "orbitNumber", "ge 20000") + " and " + _attr("Integer", "orbitNumber", "le 40000"),
        {"filter": "sat:absolute_orbit BETWEEN 20000 AND 40000", "filter-lang": "cql2-text"},
        lambda i: 20000 <= (_prop("sat:absolute_orbit")(i) or 0) <= 40000,
    ),
    (
        _attr("Double", "cloudCover", "le 40.0"),
        {"filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 40.0]}},
        lambda i: (_prop("eo:cloud_cover")(i) if _prop("eo:cloud_cover")(i) is not None else 99) <= 40,
    ),
    (
        "Collection/Name eq 'SENTINEL-1' and " + _attr("String", "operationalMode", "eq 'IW'"),
        {"filter": "sar:instrument_mode = 'IW'", "filter-lang": "cql2-text"},
        lambda i: _prop("sar:instrument_mode")(i) == "IW",
    ),
    (
        # S3's operationalMode "EO" is no SAR mode: a sar filter finds Sentinel-1 products only.
        "Collection/Name eq 'SENTINEL-1' and " + _attr("String", "operationalMode", "eq 'EO'"),
        {"filter": "sar:instrument_mode = 'EO'", "filter-lang": "cql2-text"},
        None,
    ),
    (
        _attr("String", "productType", "in ('IW_SLC__1S','OL_1_EFR___','S2MSI1C')"),
        {"filter": "product:type IN ('IW_SLC__1S', 'OL_1_EFR___', 'S2MSI1C')", "filter-lang": "cql2-text"},
        lambda i: i["properties"]["product:type"] in ("IW_SLC__1S", "OL_1_EFR___", "S2MSI1C"),
    ),
    (
        _attr("DateTimeOffset", "processingDate", "lt 2021-09-01T00:00:00.000Z"),
        {"filter": {"op": "<", "args": [{"property": "processing:datetime"}, {"timestamp": "2021-09-01T00:00:00Z"}]}},
        lambda i: (_prop("processing:datetime")(i) or "9") < "2021-09-01T00:00:00Z",
    ),
    (
        "startswith(Name,'S2B')",
        {"filter": "platform = 'sentinel-2b'", "filter-lang": "cql2-text"},
        lambda i: i["properties"]["platform"] == "sentinel-2b",
    ),
    (
        "Collection/Name eq 'SENTINEL-1' and OData.CSC.Intersects(area=geography'SRID=4326;"
        "POLYGON((-20 -60, 120 -60, 120 70, -20 70, -20 -60))') "
        "and ContentDate/Start le 2022-01-01T00:00:00Z and ContentDate/End ge 2017-01-01T00:00:00Z",
        {
            "collections": ["sentinel-1"],
            "bbox": [-20, -60, 120, 70],
            "datetime": "2017-01-01T00:00:00Z/2022-01-01T00:00:00Z",
        },
        None,
    ),
]


def _client(service: ODataService | StacService) -> Any:
    app = flask.Flask(__name__)
    app.add_url_rule("/<path:path>", "api", lambda path: service.handle(flask.request), methods=["GET", "POST"])
    return app.test_client()


def odata_names(client: Any, where: str) -> list[str]:
    names: list[str] = []
    url = "/odata/v1/Products?$top=7&$filter=" + quote(where, safe="")
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        names += [p["Name"] for p in body["value"]]
        link = body.get("@odata.nextLink")
        url = "" if link is None else urlsplit(link).path + "?" + urlsplit(link).query
    return names


def stac_items(client: Any, body: dict[str, Any], method: str = "POST") -> list[dict[str, Any]]:
    """Every item of a search, following the next links (POST bodies or GET query strings)."""
    items: list[dict[str, Any]] = []
    matched: set[int] = set()
    if method == "POST":
        response = client.post("/stac/search", json={**body, "limit": 7})
    else:
        response = client.get("/stac/search", query_string=_query(body))
    pages = 0
    while True:
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        items += page["features"]
        matched.add(page["numberMatched"])
        assert page["numberReturned"] == len(page["features"])
        pages += 1
        assert pages < 100, "next links never end"
        link = next((link for link in page["links"] if link["rel"] == "next"), None)
        if link is None:
            break
        if link.get("method") == "POST":
            response = client.post(urlsplit(link["href"]).path, json=link["body"])
        else:
            response = client.get(urlsplit(link["href"]).path + "?" + urlsplit(link["href"]).query)
    assert matched == {len(items)}, "numberMatched is the number of items every page says"
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "an item came twice across pages"
    return items


def _query(body: dict[str, Any]) -> dict[str, str]:
    query: dict[str, str] = {"limit": "7"}
    for key, value in body.items():
        if key in ("ids", "collections", "bbox"):
            query[key] = ",".join(str(v) for v in value)
        elif key in ("intersects", "filter") and not isinstance(value, str):
            query[key] = json.dumps(value)
            if key == "filter":
                query["filter-lang"] = "cql2-json"
        else:
            query[key] = value
    return query


@pytest.mark.parametrize(("odata", "stac", "shown"), PAIRS, ids=[str(i) for i in range(len(PAIRS))])
def test_odata_and_stac_answer_the_same_products(
    loaded: tuple[CatalogStore, list[CatalogEntry]], odata: str, stac: dict[str, Any], shown: Predicate | None
) -> None:
    store, entries = loaded
    expected = sorted(e.name for e in entries if matches(parse_filter(odata), e))
    odata_client = _client(ODataService(lambda: store, lambda: None))
    stac_client = _client(StacService(lambda: store))
    assert sorted(odata_names(odata_client, odata)) == expected
    for method in ("POST", "GET"):
        assert sorted(item["id"] for item in stac_items(stac_client, stac, method)) == expected, method
    if shown is not None:
        # What the items show picks the same products as the filter (over every item of the catalog).
        every = [item_json(e, "http://x/stac", "http://x/odata/v1") for e in entries]
        assert sorted(item["id"] for item in every if shown(item)) == expected


def test_at_least_twenty_equivalent_queries_and_most_find_something(
    loaded: tuple[CatalogStore, list[CatalogEntry]],
) -> None:
    _, entries = loaded
    assert len(PAIRS) >= 20
    found = [odata for odata, _, _ in PAIRS if any(matches(parse_filter(odata), e) for e in entries)]
    assert len(found) >= len(PAIRS) - 2, "queries that find nothing prove little"


def test_sorted_searches_page_in_the_order_odata_sorts(loaded: tuple[CatalogStore, list[CatalogEntry]]) -> None:
    store, _ = loaded
    odata_client = _client(ODataService(lambda: store, lambda: None))
    stac_client = _client(StacService(lambda: store))
    for orderby, sortby in (("ContentDate/Start desc", "-datetime"), ("PublicationDate asc,Name desc", "created,-id")):
        names: list[str] = []
        url = "/odata/v1/Products?$top=9&$orderby=" + quote(orderby)
        while url:
            body = odata_client.get(url).get_json()
            names += [p["Name"] for p in body["value"]]
            link = body.get("@odata.nextLink")
            url = "" if link is None else urlsplit(link).path + "?" + urlsplit(link).query
        ids = [item["id"] for item in stac_items(stac_client, {"sortby": sortby}, "GET")]
        assert ids == names, sortby
