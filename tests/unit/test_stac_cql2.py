"""CQL2 text and JSON translate to the catalog's filter nodes (the ones OData's $filter makes), and
what the catalog cannot answer is a 400 naming it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.catalog.filters import And, AttributeMatch, Compare, Const, Filter, In, Not, Or, Prop, Spatial, TextMatch
from shared.catalog.odata.filter import parse_filter
from shared.catalog.stac.cql2 import BadCql2, parse_json, parse_text
from shared.catalog.stac.search import BadSearch, datetime_filter, parse_get, parse_post, sort_keys

S1 = Compare(Prop.COLLECTION, "eq", "SENTINEL-1")


def collections(ids: list[str]) -> Filter:
    known = {"sentinel-1": S1}
    found = [known[i] for i in ids if i in known]
    return Or(tuple(found)) if len(found) > 1 else found[0] if found else Const(False)


def text(source: str) -> Filter:
    return parse_text(source, collections)


def attribute(name: str, op: str, value: Any) -> AttributeMatch:
    return AttributeMatch(name, Compare(Prop.ATTRIBUTE_VALUE, op, value))


@pytest.mark.parametrize(
    ("cql2", "odata"),
    [
        ("id = 'S1A_X.SAFE'", "Name eq 'S1A_X.SAFE'"),
        ("created > TIMESTAMP('2024-05-01T00:00:00Z')", "PublicationDate gt 2024-05-01T00:00:00.000Z"),
        ("updated <= TIMESTAMP('2024-05-01T00:00:00Z')", "ModificationDate le 2024-05-01T00:00:00.000Z"),
        ("end_datetime < TIMESTAMP('2021-01-01T00:00:00Z')", "ContentDate/End lt 2021-01-01T00:00:00.000Z"),
        (
            "sat:relative_orbit >= 100 AND eo:cloud_cover < 40.5",
            "Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'relativeOrbitNumber' and "
            "att/OData.CSC.IntegerAttribute/Value ge 100) and Attributes/OData.CSC.DoubleAttribute/any("
            "att:att/Name eq 'cloudCover' and att/OData.CSC.DoubleAttribute/Value lt 40.5)",
        ),
        (
            "product:type IN ('IW_GRDH_1S', 'EW_GRDM_1S')",
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value in ('IW_GRDH_1S','EW_GRDM_1S'))",
        ),
        ("id LIKE 'S1A%' OR id LIKE '%.SEN3'", "startswith(Name,'S1A') or endswith(Name,'.SEN3')"),
        ("NOT id LIKE '%GRDH%'", "not contains(Name,'GRDH')"),
        (
            "S_INTERSECTS(geometry, POLYGON((0 40, 20 40, 20 60, 0 60, 0 40)))",
            "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 40, 20 40, 20 60, 0 60, 0 40))')",
        ),
        (
            "S_WITHIN(geometry, POLYGON((-10 35, 30 35, 30 60, -10 60, -10 35)))",
            "OData.CSC.Within(area=geography'SRID=4326;POLYGON((-10 35, 30 35, 30 60, -10 60, -10 35))')",
        ),
    ],
)
def test_cql2_text_makes_the_nodes_of_the_equivalent_odata_filter(cql2: str, odata: str) -> None:
    assert text(cql2) == parse_filter(odata)


def test_cql2_json_makes_the_same_nodes_as_cql2_text() -> None:
    document = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "sat:orbit_state"}, "ascending"]},
            {"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [10, 50]}]},
            {"op": "in", "args": [{"property": "collection"}, ["sentinel-1", "sentinel-9"]]},
            {"op": ">", "args": [{"property": "datetime"}, {"timestamp": "2021-01-01T00:00:00Z"}]},
        ],
    }
    source = (
        "sat:orbit_state = 'ascending' AND S_INTERSECTS(geometry, POINT(10 50)) "
        "AND collection IN ('sentinel-1', 'sentinel-9') AND datetime > TIMESTAMP('2021-01-01T00:00:00Z')"
    )
    assert parse_json(document, collections) == text(source)
    translated = text(source)
    assert isinstance(translated, And)
    assert translated.items[0] == attribute("orbitDirection", "eq", "ASCENDING")  # PRIP's spelling
    assert translated.items[2] == S1  # an unknown collection holds nothing
    assert translated.items[3] == Compare(Prop.START, "gt", datetime(2021, 1, 1, tzinfo=UTC))


def test_sar_properties_only_match_sentinel_1_products() -> None:
    assert text("sar:instrument_mode = 'EO'") == And((S1, attribute("operationalMode", "eq", "EO")))


def test_platform_and_constellation() -> None:
    assert text("platform = 'sentinel-2b'") == TextMatch(Prop.NAME, "startswith", "S2B")
    assert text("constellation <> 'sentinel-3'") == Not(Compare(Prop.COLLECTION, "eq", "SENTINEL-3"))
    assert text("constellation = 'landsat-8'") == Const(False)


def test_between_is_null_and_temporal_functions() -> None:
    assert text("sat:absolute_orbit BETWEEN 10 AND 20") == And(
        (attribute("orbitNumber", "ge", 10), attribute("orbitNumber", "le", 20))
    )
    assert text("eo:cloud_cover IS NULL") == Not(AttributeMatch("cloudCover", Const(True)))
    assert text("start_datetime IS NOT NULL") == Not(Compare(Prop.START, "eq", None))
    a, b = datetime(2021, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)
    interval = {"interval": ["2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"]}
    during = {"op": "t_during", "args": [{"property": "datetime"}, interval]}
    assert parse_json(during, collections) == And((Compare(Prop.START, "ge", a), Compare(Prop.END, "le", b)))
    meets = {"op": "t_intersects", "args": [{"property": "datetime"}, {"interval": ["2021-01-01T00:00:00Z", ".."]}]}
    assert parse_json(meets, collections) == Compare(Prop.END, "ge", a)
    moment = {"timestamp": "2021-01-01T00:00:00Z"}
    after = {"op": "t_after", "args": [{"property": "datetime"}, moment]}
    assert parse_json(after, collections) == Compare(Prop.START, "gt", a)
    before = {"op": "t_before", "args": [{"property": "datetime"}, moment]}
    assert parse_json(before, collections) == Compare(Prop.END, "lt", a)
    meets = {"op": "t_meets", "args": [{"property": "datetime"}, moment]}
    with pytest.raises(BadCql2, match="T_MEETS is not supported"):
        parse_json(meets, collections)


def test_a_bbox_across_the_antimeridian_is_the_two_boxes_either_side() -> None:
    found = text("S_INTERSECTS(geometry, BBOX(170, -10, -170, 10))")
    assert isinstance(found, Spatial) and found.wkt.startswith("MULTIPOLYGON")
    assert sorted(found.bounds) == [(-180.0, -170.0, -10.0, 10.0), (170.0, 180.0, -10.0, 10.0)]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("foo = 1", "unknown property 'foo'"),
        ("id LIKE 'S1A_IW%'", "'_' matches any one character"),
        ("id LIKE 'S1A%GRD%'", "a % between two texts"),
        ("S_CROSSES(geometry, POINT(1 2))", "CROSSES is not supported"),
        ("sar:polarizations = 'VV'", "sar:polarizations is a list"),
        ("collection > 'a'", "collection is compared with"),
        ("datetime = 'yesterday'", "timestamp"),
        ("S_INTERSECTS(geometry, POINT(200 10))", r"lon in \[-180, 180\]"),
        ("id = = 'x'", "cql2-text syntax error"),
        ("platform = 'sentinel'", "platforms are compared with one satellite"),
    ],
)
def test_what_the_catalog_cannot_answer_is_refused_naming_it(source: str, message: str) -> None:
    with pytest.raises(BadCql2, match=message):
        text(source)


def test_a_like_with_escaped_underscores_is_a_prefix_search() -> None:
    assert text(r"id LIKE 'S1A\_IW%'") == TextMatch(Prop.NAME, "startswith", "S1A_IW")


def test_deep_or_long_filters_are_refused() -> None:
    nested: dict[str, Any] = {"op": "=", "args": [{"property": "id"}, "x"]}
    for _ in range(40):
        nested = {"op": "not", "args": [nested]}
    with pytest.raises(BadCql2, match="nested more than"):
        parse_json(nested, collections)
    with pytest.raises(BadCql2, match="more than 2000 conditions"):
        text(" OR ".join(f"id = 'n{i}'" for i in range(2001)))
    long_or = " OR ".join(f"id = 'n{i}'" for i in range(500))  # a flat chain is one level, not 500
    assert isinstance(text(long_or), Or)


def test_search_parameters_become_one_filter() -> None:
    search = parse_get(
        {"bbox": "0,40,20,60", "datetime": "2021-01-01T00:00:00Z/..", "ids": "a,b", "collections": "sentinel-1",
         "filter": "sat:absolute_orbit > 5", "limit": "5000", "sortby": "-datetime, id"},
        collections,
    )  # fmt: skip
    assert isinstance(search.where, And) and len(search.where.items) == 5
    assert search.where.items[2] == In(Prop.NAME, ("a", "b"))
    assert search.limit == 1000  # clamped
    assert [(k.prop, k.descending) for k in search.order] == [(Prop.START, True), (Prop.NAME, False)]
    posted = parse_post({"filter": {"op": "=", "args": [{"property": "id"}, "a"]}, "limit": 3}, collections)
    assert posted.where == Compare(Prop.NAME, "eq", "a") and posted.limit == 3


def test_datetime_parameter_meets_the_validity() -> None:
    a = datetime(2021, 1, 1, tzinfo=UTC)
    assert datetime_filter("2021-01-01T00:00:00Z") == And((Compare(Prop.START, "le", a), Compare(Prop.END, "ge", a)))
    assert datetime_filter("../2021-01-01T00:00:00Z") == Compare(Prop.START, "le", a)
    assert datetime_filter("2021-01-01T00:00:00Z/") == Compare(Prop.END, "ge", a)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"bbox": [0, 0, 1]}, "bbox is 4 numbers"),
        ({"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}}, "cannot be given together"),
        ({"intersects": {"type": "Circle"}}, "not supported"),
        ({"datetime": "2022-01-01T00:00:00Z/2021-01-01T00:00:00Z"}, "starts after it ends"),
        ({"datetime": "../.."}, "open at both ends"),
        ({"limit": 0}, "limit is a positive integer"),
        ({"sortby": [{"field": "eo:cloud_cover"}]}, "sortby 'eo:cloud_cover' is not supported"),
        ({"sortby": [{"field": "datetime"}, {"field": "start_datetime"}]}, "names start_datetime twice"),
        ({"token": "garbage!"}, "not one this service issued"),
        ({"filter": "id = 'a'", "filter-lang": "cql-text"}, "filter-lang 'cql-text' is not supported"),
        ({"query": {"eo:cloud_cover": {"lt": 10}}}, "query extension is not supported"),
    ],
)
def test_bad_search_parameters_are_refused_naming_them(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSearch, match=message):
        parse_post(body, collections)


def test_sortby_accepts_get_and_post_forms() -> None:
    assert sort_keys("+id,-updated") == sort_keys(
        [{"field": "id"}, {"field": "properties.updated", "direction": "desc"}]
    )
