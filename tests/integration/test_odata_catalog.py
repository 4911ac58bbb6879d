"""The OData API over both catalog backends (``catalog_url``: SQLite file, PostgreSQL+PostGIS).

A catalog loaded from the team's sample manifests and the synthetic product factory answers the
reference §4.3 and CDSE example queries with the products a brute-force Python evaluation of the
same filter picks; generated filters agree with it too; 20,000 results page through nextLink
with each product exactly once.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import flask
import pytest
import shapely
import shapely.geometry

from shared.catalog import CatalogEntry, CatalogStore, open_catalog, product_id
from shared.catalog.filters import Selection, matches, sort_value, total_order
from shared.catalog.odata.filter import parse_filter
from shared.catalog.odata.options import parse_options
from shared.catalog.odata.service import ODataService
from tests.fixtures.catalog import SYNTHETIC_TYPES, T0, entry

pytestmark = pytest.mark.integration


def make_client(store: CatalogStore) -> Any:
    service = ODataService(lambda: store, lambda: None)
    app = flask.Flask(__name__)
    app.add_url_rule("/<path:path>", "odata", lambda path: service.handle(flask.request), methods=["GET", "POST"])
    return app.test_client()


def fetch_all(client: Any, url: str) -> tuple[list[str], int]:
    """Names of every result, following @odata.nextLink; and the number of pages."""
    names: list[str] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        names.extend(item["Name"] for item in body["value"])
        pages += 1
        assert pages <= 10_000, "nextLink never ends"
        next_link = body.get("@odata.nextLink")
        url = "" if next_link is None else urlsplit(next_link).path + "?" + urlsplit(next_link).query
    return names, pages


def expected(entries: list[CatalogEntry], query: str) -> list[str]:
    """The brute-force answer: filter and sort in Python, as the options ask."""
    args = dict(part.split("=", 1) for part in query.split("&") if part)
    options = parse_options(args)
    chosen = [e for e in entries if matches(options.where, e)]
    for key in reversed(total_order(options.order)):
        chosen.sort(key=lambda e, k=key: sort_value(e, k.prop), reverse=key.descending)  # type: ignore[misc]
    return [e.name for e in chosen][options.skip : options.skip + options.top]


def url(query: str) -> str:
    parts = [part.split("=", 1) for part in query.split("&") if part]
    return "/odata/v1/Products?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in parts)


POLYGON = "POLYGON((44.8571 20.3411, 11.4484 49.9204, 2.4321 32.3625, 13.4321 1.3625, 44.8571 20.3411))"
# The reference §4.3 examples, the CDSE examples (peers §1.1) and the ESA minimum-compliance set (§2.2).
EXAMPLES = [
    "$filter=contains(Name,'e1a')",
    "$filter=contains(Name,'GRDH')",
    "$filter=startswith(Name,'name') and contains(Name,'e1a')",
    "$filter=not contains(Name,'e1a')",
    "$filter=endswith(Name,'ZIP')",
    "$filter=endswith(Name,'.SEN3')",
    "$filter=PublicationDate gt 2019-01-01T00:00:00.000Z and PublicationDate lt 2024-05-01T05:00:00.000Z",
    "$filter=ContentDate/Start gt 2019-01-01T00:00:00.000Z and ContentDate/End lt 2020-01-06T02:00:00.000Z",
    "$filter=Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
    "att/OData.CSC.StringAttribute/Value eq 'HK_RAW__0_')",
    "$filter=Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
    "att/OData.CSC.StringAttribute/Value in ('IW_RAW__0A','IW_RAW__0C','IW_RAW__0N','IW_RAW__0S'))",
    f"$filter=OData.CSC.Intersects(area=geography'SRID=4326;{POLYGON}')",
    "$top=1&$expand=Quicklooks",
    "$filter=Collection/Name eq 'SENTINEL-2' and ContentDate/Start gt 2019-05-15T00:00:00.000Z",
    "$filter=Collection/Name eq 'SENTINEL-1' and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq "
    "'productType' and att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S')&$orderby=ContentDate/Start desc",
    "$filter=Name eq 'S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE'",
    "$filter=Collection/Name eq 'SENTINEL-2' and Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq "
    "'cloudCover' and att/OData.CSC.DoubleAttribute/Value le 40.00)",
    "$filter=Online eq true",
    "$filter=Online eq false",
    "$filter=OData.CSC.Intersects(area=geography'SRID=4326;POINT(-179.5 11)')",
    "$filter=OData.CSC.Intersects(area=geography'SRID=4326;LINESTRING(170 11, 180 11)')",
    "$filter=OData.CSC.Intersects(area=geography'SRID=4326;MULTIPOLYGON(((0 40, 20 40, 20 60, 0 60, 0 40)),"
    "((100 -10, 120 -10, 120 10, 100 10, 100 -10)))')",
    "$filter=OData.CSC.Within(area=geography'SRID=4326;POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))')",
    "$filter=OData.CSC.Disjoints(area=geography'SRID=4326;POLYGON((-10 35, 30 35, 30 60, -10 60, -10 35))')",
    "$filter=OData.CSC.Intersects(Footprint=geography'SRID=4326;POLYGON((-10 35, 30 35, 30 60, -10 60, -10 35))')",
    "$filter=Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'orbitNumber' and "
    "att/OData.CSC.IntegerAttribute/Value eq 39156)",
    "$filter=Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'relativeOrbitNumber' and "
    "att/OData.CSC.IntegerAttribute/Value ge 100)",
    "$filter=Attributes/OData.CSC.DateTimeOffsetAttribute/any(att:att/Name eq 'processingDate' and "
    "att/OData.CSC.DateTimeOffsetAttribute/Value lt 2021-09-01T00:00:00.000Z)",
    "$filter=Attributes/OData.CSC.BooleanAttribute/any(att:att/Name eq 'sliceProductFlag' and "
    "att/OData.CSC.BooleanAttribute/Value eq true)",
    "$filter=startswith(Name,'S1B_EW_RAW__0')&$top=1000",
    "$skip=5&$top=10",
    "$filter=ContentDate/Start ge 2021-01-01T00:00:00.000Z and ContentDate/End le 2022-01-01T00:00:00.000Z",
    "$filter=PublicationDate gt 2024-05-01T00:00:00.000Z and "
    "ProductionType eq OData.CSC.ProductionType'systematic_production'",
    "$filter=Collection/Name eq 'SENTINEL-3' or Collection/Name eq 'Sentinel1'&$orderby=ContentLength desc",
    "$filter=Name in ('nope','S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE')",
    "$filter=ContentDate/Start eq null",
    "$orderby=ContentDate/End asc,Name desc&$top=25",
    "$filter=EvictionDate lt 9999-01-01T00:00:00Z",
]


@pytest.mark.parametrize("query", EXAMPLES)
def test_example_queries_return_the_products_the_filter_selects(
    loaded: tuple[CatalogStore, list[CatalogEntry]], query: str
) -> None:
    store, entries = loaded
    names, _ = fetch_all(make_client(store), url(query))
    top = parse_options(dict(p.split("=", 1) for p in query.split("&"))).top
    assert names[:top] == expected(entries, query)


def test_examples_find_what_the_samples_hold(loaded: tuple[CatalogStore, list[CatalogEntry]]) -> None:
    store, entries = loaded
    client = make_client(store)

    def found(query: str) -> list[str]:
        return fetch_all(client, url(query))[0]

    assert "S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE" in found(EXAMPLES[13])
    assert all(n.startswith("S2") for n in found(EXAMPLES[12])) and found(EXAMPLES[12])
    assert found("$filter=Online eq false") == [entries[0].name]
    # A point and a line east of the antimeridian hit the split footprint.
    assert entries[3].name in found(EXAMPLES[18])
    assert entries[3].name in found(EXAMPLES[19])
    assert found(EXAMPLES[15]) == ([entries[1].name] if entries[1].mission == "S2" else [])
    assert entries[2].name in found("$filter=ContentDate/Start eq null")
    assert len(found("")) == len(entries)


def test_count_expand_and_select(loaded: tuple[CatalogStore, list[CatalogEntry]]) -> None:
    store, entries = loaded
    client = make_client(store)
    body = client.get(url("$count=true&$top=2&$select=Name,ContentLength&$expand=Attributes")).get_json()
    assert body["@odata.count"] == len(entries)
    assert body["@odata.context"] == "$metadata#Products(Attributes())"
    first = body["value"][0]
    assert set(first) == {"@odata.mediaContentType", "Id", "Name", "ContentLength", "Attributes"}
    assert all({"Name", "Value", "ValueType", "@odata.type"} <= set(a) for a in first["Attributes"])
    assert client.get("/odata/v1/Products/$count?$filter=" + quote("Online eq false")).get_data(as_text=True) == "1"


def test_product_entity_and_navigation(loaded: tuple[CatalogStore, list[CatalogEntry]]) -> None:
    store, entries = loaded
    client = make_client(store)
    entry = entries[3]
    body = client.get(f"/odata/v1/Products({entry.id})").get_json()
    assert body["Name"] == entry.name
    assert body["Checksum"][0]["Algorithm"] == "MD5" and body["Checksum"][0]["Value"] == entry.checksum
    assert body["ContentDate"]["Start"].endswith("Z") and body["EvictionDate"] == "9999-12-31T23:59:59.999Z"
    assert body["Footprint"].startswith("geography'SRID=4326;")
    attributes = client.get(f"/odata/v1/Products('{entry.id}')/Attributes").get_json()["value"]
    assert {a["Name"] for a in attributes} == set(entry.attributes)
    quicklooks = client.get(f"/odata/v1/Products({entry.id})/Quicklooks").get_json()["value"]
    assert quicklooks == [{"Image": "a_bwi.png"}]
    missing = client.get(f"/odata/v1/Products({product_id('nothing')})")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "NotFound"


def test_filter_list_returns_the_named_products_only(loaded: tuple[CatalogStore, list[CatalogEntry]]) -> None:
    store, entries = loaded
    wanted = [entries[5].name, "UNKNOWN_PRODUCT", entries[2].name]
    response = make_client(store).post(
        "/odata/v1/Products/OData.CSC.FilterList", json={"FilterProducts": [{"Name": n} for n in wanted]}
    )
    assert response.status_code == 200
    assert [p["Name"] for p in response.get_json()["value"]] == [entries[5].name, entries[2].name]


# -- generated filters against brute force ---------------------------------------------------------


def _random_filter(rng: random.Random, entries: list[CatalogEntry], depth: int = 0) -> str:
    if depth < 2 and rng.random() < 0.4:
        op = rng.choice(["and", "or"])
        left, right = _random_filter(rng, entries, depth + 1), _random_filter(rng, entries, depth + 1)
        text = f"({left}) {op} ({right})"
        return f"not ({text})" if rng.random() < 0.2 else text
    entry = rng.choice(entries)
    kind = rng.randrange(10)
    if kind == 0:
        start = rng.randrange(0, max(1, len(entry.name) - 4))
        piece = entry.name[start : start + rng.randrange(1, 6)]
        return f"{rng.choice(['contains', 'startswith', 'endswith'])}(Name,'{piece}')"
    if kind == 1:
        when = (entry.validity_start or T0) + timedelta(seconds=rng.randrange(-3600, 3600))
        prop = rng.choice(["ContentDate/Start", "ContentDate/End", "PublicationDate", "OriginDate", "EvictionDate"])
        return f"{prop} {rng.choice(['eq', 'ne', 'lt', 'le', 'gt', 'ge'])} {when.isoformat().replace('+00:00', 'Z')}"
    if kind == 2:
        return (
            f"ContentLength {rng.choice(['lt', 'ge', 'eq', 'ne'])} {entry.content_length + rng.randrange(-8000, 8000)}"
        )
    if kind == 3:
        return f"Collection/Name {rng.choice(['eq', 'ne'])} 'SENTINEL-{rng.randrange(1, 4)}'"
    if kind == 4:
        return f"Online eq {rng.choice(['true', 'false'])}"
    if kind == 5:
        names = rng.sample([e.name for e in entries], 3)
        return "Name in (" + ",".join(f"'{n}'" for n in names) + ")"
    if kind in (6, 7) and entry.attributes:
        name = rng.choice(sorted(entry.attributes))
        value = entry.attributes[name]
        cast = {bool: "Boolean", int: "Integer", float: "Double", str: "String"}.get(type(value), "DateTimeOffset")
        op = (
            "eq" if isinstance(value, bool | str) and rng.random() < 0.7 else rng.choice(["lt", "le", "gt", "ge", "ne"])
        )
        if isinstance(value, bool):
            literal, op = ("true" if value else "false"), rng.choice(["eq", "ne"])
        elif isinstance(value, str):
            literal = "'" + value.replace("'", "''") + "'"
        elif isinstance(value, int | float):
            literal = repr(value + rng.choice([0, 0, 1, -1]))
        else:
            literal = value.isoformat().replace("+00:00", "Z")
        return (
            f"Attributes/OData.CSC.{cast}Attribute/any(att:att/Name eq '{name}' and "
            f"att/OData.CSC.{cast}Attribute/Value {op} {literal})"
        )
    return _random_area(rng)


def _random_area(rng: random.Random) -> str:
    size = rng.choice([0.5, 5, 30])
    lon, lat = rng.uniform(-180, 180 - size), rng.uniform(-90, 90 - size)
    ring = f"{lon} {lat}, {lon + size} {lat}, {lon + size} {lat + size}, {lon} {lat + size}, {lon} {lat}"
    if rng.random() < 0.3:  # not a rectangle: no footprint is certain from its box alone
        ring = f"{lon} {lat}, {lon + size} {lat}, {lon} {lat + size}, {lon} {lat}"
    relation = rng.choice(["Intersects", "Intersects", "Within", "Disjoints"])
    return f"OData.CSC.{relation}(area=geography'SRID=4326;POLYGON(({ring}))')"


def _random_typed_area(rng: random.Random, entries: list[CatalogEntry]) -> str:
    """Product type and area: the query PRIP clients send most, with its own query plan."""
    product_type = rng.choice([e.attributes.get("productType", "none") for e in entries])
    return (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        f"att/OData.CSC.StringAttribute/Value eq '{product_type}') and {_random_area(rng)}"
    )


def test_generated_filters_match_a_brute_force_evaluation(loaded: tuple[CatalogStore, list[CatalogEntry]]) -> None:
    store, entries = loaded
    rng = random.Random(20240501)
    mismatches = []
    for i in range(300):
        text = _random_typed_area(rng, entries) if i % 4 == 0 else _random_filter(rng, entries)
        where = parse_filter(text)
        want = sorted(e.name for e in entries if matches(where, e))
        got = sorted(e.name for e in store.find(Selection(where=where, limit=10_000)))
        page = store.find(Selection(where=where, limit=5, offset=2))
        counted_page, count = store.find_counted(Selection(where=where, limit=5, offset=2))
        counts = {len(want), store.count_where(where), count}
        pages = {tuple(want[2:7]), tuple(e.name for e in page), tuple(e.name for e in counted_page)}
        if got != want or len(counts) > 1 or len(pages) > 1:
            mismatches.append((text, sorted(set(got) ^ set(want))))
    assert not mismatches, mismatches[:5]


# -- paging ---------------------------------------------------------------------------------------


def _s1_entry(name: str, **fields: Any) -> CatalogEntry:
    """A Sentinel-1 L1 slice named ``name``; ``fields`` give the rest."""
    fixed = {"mission": "S1", "satellite": "A", "level": "L1", "family": "L1_SLICE", "bucket": "rs-test"}
    return CatalogEntry(
        id=product_id(name),
        name=name,
        key=name,
        checksum=None,
        content_type="application/zip",
        modification_time=T0,
        **fixed,
        **fields,
    )


def _bulk(count: int) -> list[CatalogEntry]:
    entries = []
    for i in range(count):
        start = T0 + timedelta(minutes=i % 50) if i % 97 else None  # many ties, some without a start
        entries.append(
            _s1_entry(
                f"S1A_IW_GRDH_1SDV_PAGE_{i:06d}.SAFE",
                product_type="IW_GRDH_1S",
                content_length=i % 10,
                validity_start=start,
                validity_stop=None if start is None else start + timedelta(seconds=25),
                footprint=None,
                attributes={"orbitNumber": i % 7},
                publication_time=T0 + timedelta(seconds=i // 10),
            )
        )
    return entries


def test_paging_through_20000_results_returns_each_exactly_once(catalog_url: str) -> None:
    store = open_catalog(catalog_url)
    try:
        entries = _bulk(20_000)
        for i in range(0, len(entries), 5000):
            store.upsert_many(entries[i : i + 5000])
        client = make_client(store)
        names, pages = fetch_all(client, url("$filter=startswith(Name,'S1A_IW')"))
        assert pages == 20
        assert len(names) == len(set(names)) == 20_000
        # Ties and missing values in the sort key, with a filter and mixed directions.
        query = "$filter=ContentLength lt 5&$orderby=ContentDate/Start desc,ContentLength asc&$top=700&$select=Name"
        names, _ = fetch_all(client, url(query))
        assert len(names) == len(set(names)) == 10_000
        assert names[:700] == expected(entries, query)
    finally:
        store.close()


def square(x: float, y: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]]}


def test_type_time_and_area_pages_past_candidates_that_fail_the_exact_test(catalog_url: str) -> None:
    """The query PRIP clients send most, where the box prefilter keeps many footprints the exact test
    refuses: the first published lie beyond the diagonal of a triangular area, so a page takes
    several batches of candidates. Every order, page size and $skip gives the brute-force answer."""
    rng = random.Random(6)
    entries = []
    for i in range(600):
        # Before 300, beyond the diagonal x + y = 20 (boxes inside the area's box, footprints outside it).
        x, y = (rng.uniform(11, 18), rng.uniform(11, 18)) if i < 300 else (rng.uniform(0, 9), rng.uniform(0, 9))
        start = T0 + timedelta(hours=i) + timedelta(minutes=rng.randrange(-90, 90))
        entries.append(
            _s1_entry(
                f"S1A_IW_GRDH_1SDV_EDGE_{i:04d}.SAFE",
                product_type=SYNTHETIC_TYPES[i % 2],
                content_length=i,
                validity_start=start,
                validity_stop=start + timedelta(seconds=25),
                footprint=square(x, y),
                attributes={"productType": SYNTHETIC_TYPES[i % 2]},
                publication_time=T0 + timedelta(hours=i // 2),  # ties: the name decides
            )
        )
    store = open_catalog(catalog_url)
    try:
        store.upsert_many(entries)
        client = make_client(store)
        where = (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S') and "
            f"ContentDate/Start ge {(T0 + timedelta(hours=100)).isoformat().replace('+00:00', 'Z')} and "
            "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 0, 20 0, 0 20, 0 0))')"
        )
        for order in ("", "&$orderby=ContentDate/Start desc", "&$orderby=PublicationDate desc,Name asc"):
            everything = expected(entries, f"$filter={where}{order}&$top=1000")
            assert 100 < len(everything) < 200
            for count in ("", "&$count=true"):  # counted pages take another path on SQLite
                names, pages = fetch_all(client, url(f"$filter={where}{order}&$top=7{count}"))
                assert names == everything
                assert pages == -(-len(everything) // 7)
            skipped = client.get(url(f"$filter={where}{order}&$skip=3&$top=5&$count=true")).get_json()
            assert [item["Name"] for item in skipped["value"]] == everything[3:8]
            assert skipped["@odata.count"] == len(everything)
    finally:
        store.close()


def _rectangle(x0: float, y0: float, x1: float, y1: float) -> list[list[list[float]]]:
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def _footprint_entries(
    tag: str, footprints: list[dict[str, Any]], product_type: Callable[[int], str]
) -> list[CatalogEntry]:
    """One Sentinel-1 slice per footprint, a minute apart, its productType attribute ``product_type(i)``."""
    return [
        _s1_entry(
            f"S1A_IW_GRDH_1SDV_{tag}_{i:04d}.SAFE",
            product_type="IW_GRDH_1S",
            content_length=i,
            validity_start=T0 + timedelta(minutes=i),
            validity_stop=T0 + timedelta(minutes=i, seconds=25),
            footprint=footprint,
            attributes={"productType": product_type(i)},
            publication_time=T0 + timedelta(seconds=i),
        )
        for i, footprint in enumerate(footprints)
    ]


def test_counts_and_pages_near_the_antimeridian_match_the_brute_force(catalog_url: str) -> None:
    """Footprints across the antimeridian (cut by the footprint code, as ingested; a wrapped box on
    SQLite, see ``shared.catalog.grid``), and beside it or on it: areas on either side, across it and
    at its edge count and page them as the brute-force evaluation does, with and without a type."""
    from shared.products.footprint import footprint_from_latlon

    rng = random.Random(13)
    footprints: list[dict[str, Any]] = []
    for _ in range(200):
        lon, lat = rng.choice([-180, -178, 176, 178, 180]) + rng.uniform(-3, 3), rng.uniform(-12, 12)
        w, h = rng.choice([0.5, 3, 12]), rng.choice([0.5, 3, 12])
        corners = [(lat, lon), (lat, lon + w), (lat + h, lon + w * rng.uniform(0.2, 1))]
        wrap = [(y, (x + 180) % 360 - 180) for y, x in corners]  # as read from metadata: -180..180
        footprint = footprint_from_latlon(wrap)
        assert footprint is not None
        footprints.append(footprint)
    footprints += [_square_polygon(x0, 0, x1, 5) for x0, x1 in ((176, 180), (-180, -176), (179.99995, 180))]
    entries = _footprint_entries("DATELINE", footprints, lambda i: ("IW_GRDH_1S", "IW_SLC__1S")[i % 2])
    areas = [
        "POLYGON((-180 -5, -175 -5, -175 5, -180 5, -180 -5))",  # at the antimeridian, from the west
        "POLYGON((-179 -5, -170 -5, -170 5, -179 5, -179 -5))",
        "POLYGON((170 -5, 180 -5, 180 5, 170 5, 170 -5))",
        "POLYGON((175 -5, -175 -5, -175 5, 175 5, 175 -5))",  # across it
        "POLYGON((-179.5 -5, -172 -5, -179.5 3, -179.5 -5))",  # not a rectangle
        "POINT(-179.2 1)",
    ]
    _assert_counts_and_pages_match_the_brute_force(catalog_url, entries, areas)


def _assert_counts_and_pages_match_the_brute_force(
    catalog_url: str, entries: list[CatalogEntry], areas: list[str]
) -> None:
    """Each area's Intersects, with and without the type IW_GRDH_1S: count, count with a page, and
    that page (the 4th to 10th) as the brute-force evaluation gives them."""
    store = open_catalog(catalog_url)
    try:
        store.upsert_many(entries)
        mismatches = []
        for area in areas:
            for typed in (
                "",
                "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
                "att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S') and ",
            ):
                where = parse_filter(f"{typed}OData.CSC.Intersects(area=geography'SRID=4326;{area}')")
                want = sorted(e.name for e in entries if matches(where, e))
                page, count = store.find_counted(Selection(where=where, limit=7, offset=3))
                if count != len(want) or store.count_where(where) != len(want) or [e.name for e in page] != want[3:10]:
                    mismatches.append((area, typed, count, len(want)))
        assert not mismatches, mismatches
    finally:
        store.close()


def _square_polygon(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": _rectangle(x0, y0, x1, y1)}


def test_type_and_area_find_footprints_of_every_size_and_place_in_the_grid(catalog_url: str) -> None:
    """The type + area query reads only the grid cells near the area (``shared.catalog.grid``):
    footprints of every cell level, just under and over each level's size, at the poles and the
    antimeridian, and cut by it, are found as the brute-force evaluation finds them."""
    rng = random.Random(11)
    sizes = [0.2, 3, 9.999999, 9.9999995, 10.3, 15, 19.999999, 20.3, 39.9, 40.3, 79.999999, 80.3, 150, 359]
    footprints: list[dict[str, Any]] = []
    corners = []  # areas meeting only a corner of a footprint: the farthest its cell can be
    for size in sizes:
        for i in range(8):
            width, height = size, rng.uniform(0.1, min(size, 179))
            if rng.random() < 0.5:
                width, height = height, width
            height = min(height, 179)
            x0, y0 = rng.uniform(-180, 180 - width), rng.uniform(-90, 90 - height)
            if i == 0 and size < 100:  # just west and south of a cell corner of every level: the worst place
                x0, y0, width, height = -100.05, -10.05, size, size
            footprints.append({"type": "Polygon", "coordinates": _rectangle(x0, y0, x0 + width, y0 + height)})
            x, y, x1, y1 = x0 + width - 0.01, y0 + height - 0.01, min(x0 + width + 1, 180), min(y0 + height + 1, 90)
            corners.append(f"POLYGON(({x} {y}, {x1} {y}, {x1} {y1}, {x} {y1}, {x} {y}))")
            x, y, x1, y1 = max(x0 - 1, -180), max(y0 - 1, -90), x0 + 0.01, y0 + 0.01  # and the south-west one
            corners.append(f"POLYGON(({x} {y}, {x1} {y}, {x1} {y1}, {x} {y1}, {x} {y}))")
    for x0 in (-180, -10.0000005, -10, 0, 169.999999, 180 - 1e-9):  # on the cell edges of every level
        footprints.append({"type": "Polygon", "coordinates": _rectangle(x0, -90, min(x0 + 2, 180), -88)})
        footprints.append({"type": "Polygon", "coordinates": _rectangle(x0, 88, min(x0 + 2, 180), 90)})
    footprints.append(  # cut at the antimeridian
        {"type": "MultiPolygon", "coordinates": [_rectangle(178, 10, 180, 12), _rectangle(-180, 10, -178, 12)]}
    )
    entries = _footprint_entries("GRID", footprints, lambda i: "IW_GRDH_1S" if i % 5 else "EW_GRDM_1S")
    areas = ["POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))", "POLYGON((0 0, 0 0.001, 0.001 0, 0 0))"]
    areas += corners
    for _ in range(40):
        width, height = rng.choice([0.5, 8, 30, 120]), rng.choice([0.5, 8, 30, 120])
        x0, y0 = rng.uniform(-180, 180 - width), rng.uniform(-90, 90 - min(height, 170))
        x1, y1 = x0 + width, min(y0 + height, 90)
        areas.append(f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))")
    areas.append("MULTIPOLYGON(((179 11, 180 11, 180 13, 179 13, 179 11)),((-180 11, -179.5 11, -179.5 13, -180 11)))")
    areas.append("POLYGON((-10 -80, 0 -80, 0 -90, -10 -90, -10 -80))")
    store = open_catalog(catalog_url)
    try:
        store.upsert_many(entries)
        mismatches = []
        for area in areas:
            for relation in ("Intersects", "Within"):
                text = (
                    "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
                    f"att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S') and "
                    f"OData.CSC.{relation}(area=geography'SRID=4326;{area}')"
                )
                where = parse_filter(text)
                want = sorted(e.name for e in entries if matches(where, e))
                got = sorted(e.name for e in store.find(Selection(where=where, limit=10_000)))
                _, count = store.find_counted(Selection(where=where, limit=1))
                if got != want or count != len(want) or store.count_where(where) != len(want):
                    mismatches.append((text, sorted(set(got) ^ set(want))))
        assert not mismatches, mismatches[:3]
    finally:
        store.close()


def test_counts_trust_only_boxes_holding_a_side_of_a_rectangular_area(catalog_url: str) -> None:
    """A footprint whose box has a whole side inside a rectangular area meets it, untested; the rest
    (across a corner, wider than the area, or the area not a rectangle) are tested exactly. Counts
    and pages agree with the brute-force evaluation, with and without a product type."""
    rng = random.Random(12)
    footprints: list[dict[str, Any]] = []
    for _ in range(300):  # triangles in boxes across every side and corner of (0 0, 10 10), or around it
        x, y = (
            rng.choice([-2, 0, 4, 8, 10, 12]) + rng.uniform(-1.5, 1.5),
            rng.choice([-2, 0, 4, 8, 10]) + rng.uniform(-1.5, 1.5),
        )
        w, h = rng.choice([0.5, 3, 14]), rng.choice([0.5, 3, 14])
        points = [[x + rng.uniform(0, w), y + rng.uniform(0, h)] for _ in range(3)]
        if rng.random() < 0.3:  # a thin diagonal sliver: its box reaches much farther than itself
            points = [[x, y], [x + w, y + h], [x + w, y + h - 0.01]]
        footprints.append({"type": "Polygon", "coordinates": [[*points, points[0]]]})
    footprints += [  # exactly touching the area's sides from outside; a part across a side, a part far away
        {"type": "Polygon", "coordinates": [[[10, 4], [12, 3], [12, 5], [10, 4]]]},
        {"type": "Polygon", "coordinates": [[[3, 10], [5, 12], [4, 13], [3, 10]]]},
        {"type": "Polygon", "coordinates": [[[10, 10], [11, 12], [12, 11], [10, 10]]]},
        {"type": "MultiPolygon", "coordinates": [_rectangle(9, 3, 11, 4), _rectangle(40, 3, 41, 4)]},
        {"type": "MultiPolygon", "coordinates": [_rectangle(-5, -5, -4, -4), _rectangle(11, 11, 12, 12)]},
    ]
    entries = _footprint_entries("SIDE", footprints, lambda i: "IW_GRDH_1S")
    areas = [
        "POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))",
        "MULTIPOLYGON(((0 0, 10 0, 10 10, 0 10, 0 0)),((30 0, 40 0, 40 5, 30 5, 30 0)))",
        "POLYGON((0 0, 10 0, 10 10, 0 0))",  # not a rectangle: every footprint is tested
    ]
    _assert_counts_and_pages_match_the_brute_force(catalog_url, entries, areas)


def test_footprints_are_answered_as_stored_as_geojson_and_exact_wkt(catalog_url: str) -> None:
    """Footprints pass through as their stored text (GeoFootprint) and their WKT is written from it: both
    must say exactly the stored geometry, whatever its numbers, on both backends; a product with an integer
    beyond 64 bits goes through the standard encoder, stored footprint included."""
    vignettes = [[[[x + 0.5, y], [x + 1.0, y], [x + 1.0, y + 1e-05], [x + 0.5, y + 1e-05], [x + 0.5, y]]] for x, y in
                 ((10.0, -0.0), (12.25, 3.0), (179.5, 89.99999999999999))]  # fmt: skip
    footprints = [
        {"type": "MultiPolygon", "coordinates": vignettes},
        {
            "type": "Polygon",
            "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 0]], [[1, 0.5], [3, 0.5], [3, 1.5], [1, 0.5]]],
        },
        {"type": "Polygon", "coordinates": [[[1e-7, 1.5], [123.456789012345, 1.5], [2, 2.0000000001], [1e-7, 1.5]]]},
    ]
    entries = [
        entry(f"S1A_WV_OCN__2SSV_2024010{i}T000000_2024010{i}T000100_000001_000001_000{i}.SAFE", footprint=f)
        for i, f in enumerate(footprints)
    ]
    entries.append(dataclasses.replace(entries[0], name=entries[0].name + "X", id=product_id(entries[0].name + "X"),
                                       attributes={"missionDatatakeID": 2**70}))  # fmt: skip
    store = open_catalog(catalog_url)
    try:
        store.upsert_many(entries)
        client = make_client(store)
        page = client.get("/odata/v1/Products?$top=10").get_json()["value"]
        singles = [client.get(f"/odata/v1/Products({e.id})").get_json() for e in entries]
    finally:
        store.close()
    by_name = {e.name: e for e in entries}
    assert sorted(p["Name"] for p in page) == sorted(by_name)
    for product in [*page, *singles]:
        footprint = by_name[product["Name"]].footprint
        assert product["GeoFootprint"] == footprint
        prefix = "geography'SRID=4326;"
        assert product["Footprint"].startswith(prefix) and product["Footprint"].endswith("'")
        written = shapely.from_wkt(product["Footprint"][len(prefix) : -1])
        assert written.equals_exact(shapely.geometry.shape(footprint), tolerance=0)
