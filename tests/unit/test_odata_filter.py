"""The OData ``$filter`` language: parse tree meaning, errors that say where, and its SQL translation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.catalog.filters import (
    And,
    AttributeMatch,
    Compare,
    Const,
    In,
    Not,
    Or,
    Prop,
    Selection,
    SortKey,
    Spatial,
    TextMatch,
    Value,
)
from shared.catalog.odata.errors import BadFilter
from shared.catalog.odata.filter import parse_filter
from shared.catalog.sqlfilter import POSTGRESQL, SQLITE, compile_selection

ATTR = Prop.ATTRIBUTE_VALUE


def test_text_functions_and_negation() -> None:
    assert parse_filter("contains(Name,'e1a')") == TextMatch(Prop.NAME, "contains", "e1a")
    assert parse_filter("not endswith(Name,'ZIP')") == Not(TextMatch(Prop.NAME, "endswith", "ZIP"))
    assert parse_filter("startswith(Name,'name') and contains(Name,'e1a')") == And(
        (TextMatch(Prop.NAME, "startswith", "name"), TextMatch(Prop.NAME, "contains", "e1a"))
    )


def test_comparisons_take_typed_values_and_flip_when_the_value_comes_first() -> None:
    when = datetime(2019, 1, 1, tzinfo=UTC)
    assert parse_filter("PublicationDate gt 2019-01-01T00:00:00.000Z") == Compare(Prop.PUBLICATION, "gt", when)
    assert parse_filter("2019-01-01T00:00:00Z lt ContentDate/Start") == Compare(Prop.START, "gt", when)
    # Timezone-less datetimes are UTC (CDSE since 2024), offsets are converted.
    assert parse_filter("ContentDate/End le 2019-01-01T01:00:00+01:00") == Compare(Prop.END, "le", when)
    assert parse_filter("ContentDate/End le 2019-01-01T00:00:00") == Compare(Prop.END, "le", when)
    assert parse_filter("ContentLength ge 1000") == Compare(Prop.CONTENT_LENGTH, "ge", 1000)
    assert parse_filter("Online eq false") == Compare(Prop.ONLINE, "eq", False)
    assert parse_filter("ContentDate/Start eq null") == Compare(Prop.START, "eq", None)
    assert parse_filter("Name eq 'it''s'") == Compare(Prop.NAME, "eq", "it's")


def test_keywords_are_case_insensitive_and_precedence_is_not_and_or() -> None:
    parsed = parse_filter("Online eq true OR NOT Online eq true AND ContentLength EQ 1")
    assert parsed == Or(
        (
            Compare(Prop.ONLINE, "eq", True),
            And((Not(Compare(Prop.ONLINE, "eq", True)), Compare(Prop.CONTENT_LENGTH, "eq", 1))),
        )
    )
    assert parse_filter("(Online eq true or Online eq false) and ContentLength eq 1") == And(
        (
            Or((Compare(Prop.ONLINE, "eq", True), Compare(Prop.ONLINE, "eq", False))),
            Compare(Prop.CONTENT_LENGTH, "eq", 1),
        )
    )


def test_in_collection_and_production_type() -> None:
    assert parse_filter("Name in ('a', 'b')") == In(Prop.NAME, ("a", "b"))
    assert parse_filter("Collection/Name eq 'SENTINEL-1'") == Compare(Prop.COLLECTION, "eq", "SENTINEL-1")
    assert parse_filter("ProductionType eq OData.CSC.ProductionType'systematic_production'") == Compare(
        Prop.PRODUCTION_TYPE, "eq", "systematic_production"
    )


@pytest.mark.parametrize(
    ("cast", "literal", "value"),
    [
        ("String", "'IW_GRDH_1S'", "IW_GRDH_1S"),
        ("Integer", "49000", 49000),
        ("Double", "40.00", 40.0),
        ("DateTimeOffset", "2021-08-09T17:39:53.153776Z", datetime(2021, 8, 9, 17, 39, 53, 153776, tzinfo=UTC)),
        ("Boolean", "true", True),
    ],
)
def test_typed_attribute_lambdas(cast: str, literal: str, value: Value) -> None:
    text = (
        f"Attributes/OData.CSC.{cast}Attribute/any(att:att/Name eq 'x' and "
        f"att/OData.CSC.{cast}Attribute/Value eq {literal})"
    )
    assert parse_filter(text) == AttributeMatch("x", Compare(ATTR, "eq", value))


def test_attribute_lambdas_are_lenient_about_the_inner_cast_and_take_in_and_functions() -> None:
    # sentinelsat#583 and eodag mix the casts; the literal decides the type compared.
    mixed = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'orbitNumber' and "
        "att/OData.CSC.IntegerAttribute/Value eq 15)"
    )
    assert parse_filter(mixed) == AttributeMatch("orbitNumber", Compare(ATTR, "eq", 15))
    listed = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/OData.CSC.StringAttribute/Value in ('A','B') and "
        "att/Name eq 'p')"
    )
    assert parse_filter(listed) == AttributeMatch("p", In(ATTR, ("A", "B")))
    prefix = "Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'p' and startswith(a/Value,'IW'))"
    assert parse_filter(prefix) == AttributeMatch("p", TextMatch(ATTR, "startswith", "IW"))
    exists = "Attributes/any(a:a/Name eq 'cloudCover')"
    assert parse_filter(exists) == AttributeMatch("cloudCover", Const(True))


@pytest.mark.parametrize(
    ("function", "relation"),
    [("OData.CSC.Intersects", "intersects"), ("OData.CSC.Within", "within"), ("OData.CSC.Disjoints", "disjoint")],
)
@pytest.mark.parametrize(
    "wkt",
    [
        "POLYGON((44.8571 20.3411, 11.4484 49.9204, 2.4321 32.3625, 13.4321 1.3625, 44.8571 20.3411))",
        "MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)),((10 10, 11 10, 11 11, 10 10)))",
        "POINT(11 41)",
        "LINESTRING(170 11, 180 11)",
    ],
)
def test_spatial_functions_take_every_geometry_kind(function: str, relation: str, wkt: str) -> None:
    parsed = parse_filter(f"{function}(area=geography'SRID=4326;{wkt}')")
    assert isinstance(parsed, Spatial) and parsed.relation == relation and parsed.bounds


def test_spatial_argument_spellings() -> None:
    area = "geography'SRID=4326;POINT(1 2)'"
    forms = [
        f"OData.CSC.Intersects(area={area})",
        f"OData.CSC.Intersects(Footprint={area})",
        f"OData.CSC.Intersects(geo_property=Footprint,geo_shape={area})",
        f"geo.intersects(Footprint,{area})",
        "OData.CSC.Intersects(area=geography'POINT(1 2)')",
    ]
    assert len({parse_filter(f) for f in forms}) == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Name eq", "ends too early"),
        ("Name eq 'x' and", "ends too early"),
        ("Name eq 'x' $", "position 13"),
        ("Foo eq 1", "unknown property 'Foo'"),
        ("Name eq 3", "quoted string"),
        ("ContentLength gt 'big'", "number"),
        ("PublicationDate gt '2020-01-01'", "date like"),
        ("Online gt true", "eq or ne"),
        ("contains(Name)", "two arguments"),
        ("contains(ContentLength,'1')", "text properties"),
        ("frobnicate(Name,'x')", "unknown function"),
        ("Attributes/OData.CSC.StringAttribute/any(att:att/Value eq 'x')", "must name the attribute"),
        ("Attributes/OData.CSC.StringAttribute/all(att:att/Name eq 'x')", "not supported"),
        ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq '\x00' and att/Value eq '')", "control characters"),
        ("OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 0, 1 1, 1 0))')", "not valid WKT"),
        ("OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))')", "Self-intersection"),
        ("OData.CSC.Intersects(area=geography'SRID=3857;POINT(0 0)')", "SRID=3857"),
        ("OData.CSC.Intersects(area=geography'SRID=4326;POINT(200 0)')", "lon in [-180, 180]"),
        ("OData.CSC.Intersects(area=geography'SRID=4326;POINT EMPTY')", "empty"),
        ("Name", "not a condition"),
        ("ContentLength eq 99999999999999999999", "64-bit"),
        ("PublicationDate gt 2019-02-30T00:00:00Z", "not a valid date"),
        ("", "empty"),
    ],
)
def test_bad_filters_are_400_saying_what_and_where(text: str, says: str) -> None:
    with pytest.raises(BadFilter) as caught:
        parse_filter(text)
    assert says in caught.value.message
    assert caught.value.status == 400


# -- translation to SQL -----------------------------------------------------------------------------

HOSTILE = "x'); DROP TABLE products; --"


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL], ids=["sqlite", "postgresql"])
def test_user_values_only_ever_travel_as_parameters(dialect: object) -> None:
    quoted = HOSTILE.replace("'", "''")
    text = (
        f"Name eq '{quoted}' or contains(Id,'{quoted}') or "
        f"Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'n%_*' and a/Value in ('{quoted}'))"
    )
    compiled = compile_selection(Selection(where=parse_filter(text)), dialect)  # type: ignore[arg-type]
    assert "DROP" not in compiled.where and "n%_*" not in compiled.where
    assert HOSTILE in compiled.params


def test_the_statement_shape_does_not_depend_on_the_values() -> None:
    one = compile_selection(Selection(where=parse_filter("Name eq 'a' and ContentLength gt 1")), SQLITE)
    two = compile_selection(Selection(where=parse_filter("Name eq 'zzz' and ContentLength gt 99")), SQLITE)
    assert one.where == two.where and one.params != two.params


def test_wildcards_in_prefixes_are_escaped() -> None:
    sqlite = compile_selection(Selection(where=parse_filter("startswith(Name,'a*b?[c')")), SQLITE)
    assert sqlite.params == ["a[*]b[?][[]c*"]
    postgres = compile_selection(Selection(where=parse_filter("endswith(Name,'50%_\\')")), POSTGRESQL)
    assert postgres.params == ["%50\\%\\_\\\\"]


def test_keyset_paging_compiles_to_a_row_comparison_or_a_chain() -> None:
    same = compile_selection(
        Selection(order=(SortKey(Prop.PUBLICATION),), after=(datetime(2024, 1, 1, tzinfo=UTC), "N")), SQLITE
    )
    assert "((p.publication_time, p.name) > (?, ?))" in same.where
    assert same.order_by == " ORDER BY p.publication_time ASC, p.name ASC"
    mixed = compile_selection(
        Selection(order=(SortKey(Prop.CONTENT_LENGTH, descending=True),), after=(5, "N")), POSTGRESQL
    )
    assert "p.content_length < %s" in mixed.where and "p.name > %s" in mixed.where
    assert mixed.params == [5, 5, "N"]
    assert mixed.count_where == ""
