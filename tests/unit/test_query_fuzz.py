"""Hostile input to the query functions (``odata`` and ``catalog``'s GET /products), through their real
views over a real SQLite catalog: the fuzzing trial's findings replayed, the documented limits at and
beyond their edge, and hypothesis-made requests. Whatever comes in, the answer is never a 5xx (but
for our own faults, and those are JSON too), and a 4xx says in JSON what was wrong."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.catalog.odata.filter as odata_filter
from shared.catalog.odata.filter import MAX_DEPTH, MAX_FILTER_LENGTH, MAX_PARTS, MAX_TERMS, MAX_VERTICES
from shared.catalog.odata.options import MAX_SKIP
from tests.unit.test_odata_service import T0, entry

NAMES = [f"S1A_IW_GRDH_1SDV_2024050{i}T000000_2024050{i}T000025_05300{i}_066D3B_ABC{i}.SAFE" for i in range(5)]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Test clients of the two function targets, as the functions framework serves them."""
    from shared import ports
    from shared.settings import get_settings

    caches: list[Callable[[], None]] = [get_settings.cache_clear, ports.catalog.cache_clear]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REFSYS_CATALOG_URL", f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}")
        for clear in caches:
            clear()
        import functions.catalog.main as catalog_main
        import functions.odata.main as odata_main

        odata_main._service.cache_clear()
        store = ports.catalog()
        store.upsert_many([entry(n, publication_time=T0 + timedelta(minutes=i)) for i, n in enumerate(NAMES)])
        clients = {}
        for name, view in (("odata", odata_main.odata), ("catalog", catalog_main.catalog)):
            app = flask.Flask(name)
            app.add_url_rule("/", "root", lambda v=view: v(flask.request), methods=["GET", "POST"])
            app.add_url_rule("/<path:path>", "any", lambda path, v=view: v(flask.request), methods=["GET", "POST"])
            clients[name] = app.test_client()
        try:
            yield {"store": store, **clients}
        finally:
            store.close()
            for clear in (*caches, odata_main._service.cache_clear):
                clear()


def answer(response: Any) -> Any:
    """The JSON body of a response that is not a 5xx; a 4xx holds error.code and error.message."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text
    assert response.mimetype == "application/json", text
    body = json.loads(text)
    if response.status_code >= 400:
        error = body["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
    return body


def odata(views: dict[str, Any], **options: str) -> Any:
    return views["odata"].get("/odata/v1/Products?" + urlencode(options, quote_via=quote))


def refused(response: Any, *says: str) -> str:
    """The message of a 400 (never a 503 and its Retry-After: such a query can never succeed)."""
    message = str(answer(response)["error"]["message"])
    assert response.status_code == 400 and "Retry-After" not in response.headers, message
    for text in says:
        assert text in message
    return message


# -- the trial's findings ------------------------------------------------------------------------


def test_top_0_with_count_answers_the_count_and_no_products(views: dict[str, Any]) -> None:
    response = odata(views, **{"$top": "0", "$count": "true", "$filter": "startswith(Name,'S1A_')"})
    # OData v4: $count counts the whole filtered collection, whatever $top; no next page of nothing.
    assert answer(response) == {"@odata.context": "$metadata#Products", "@odata.count": 5, "value": []}


@pytest.mark.parametrize("operator", ["or", "and"])
def test_500_terms_joined_by_one_operator_are_answered(views: dict[str, Any], operator: str) -> None:
    terms = [f"Name {'eq' if operator == 'or' else 'ne'} 'S1B_{i}.SAFE'" for i in range(499)]
    text = f" {operator} ".join([*terms, f"Name {'eq' if operator == 'or' else 'ne'} '{NAMES[2]}'"])
    names = [p["Name"] for p in answer(odata(views, **{"$filter": text}))["value"]]
    assert names == ([NAMES[2]] if operator == "or" else [n for n in NAMES if n != NAMES[2]])


@pytest.mark.parametrize(
    ("option", "value"),
    [("$skip", "99999999999999999999"), ("$skip", str(MAX_SKIP + 1)), ("$top", "²"), ("$skip", "٣"), ("$top", "1_0")],
)
def test_integer_options_are_ascii_digits_within_range(views: dict[str, Any], option: str, value: str) -> None:
    refused(odata(views, **{option: value}), option)


def test_the_largest_skip_is_answered(views: dict[str, Any]) -> None:
    assert answer(odata(views, **{"$skip": str(MAX_SKIP)}))["value"] == []


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_dates_beyond_the_calendar_once_in_utc_are_400(views: dict[str, Any], when: str) -> None:
    refused(odata(views, **{"$filter": f"ContentDate/Start gt {when}"}), when, "out of range")
    refused(views["catalog"].get("/products?" + urlencode({"start": when})), "start=", "out of range")


@pytest.mark.parametrize(
    "wkt",
    [
        "CIRCULARSTRING(0 0, 1 1, 2 0)",
        "CURVEPOLYGON((0 0, 1 0, 1 1, 0 0))",
        "TRIANGLE((0 0, 1 0, 1 1, 0 0))",
        "GEOMETRYCOLLECTION(POINT(1 1))",
    ],
)
def test_unsupported_geometry_types_are_400_naming_the_supported_ones(views: dict[str, Any], wkt: str) -> None:
    text = f"OData.CSC.Intersects(area=geography'SRID=4326;{wkt}')"
    refused(odata(views, **{"$filter": text}), "is not supported", "MultiPolygon, Point, Polygon")


def test_nesting_beyond_the_limit_is_400_not_503(views: dict[str, Any]) -> None:
    refused(odata(views, **{"$filter": "not " * 20 + "Name eq 'x'"}), f"more than {MAX_DEPTH} levels")


def test_catalog_offset_beyond_64_bits_is_400(views: dict[str, Any]) -> None:
    refused(views["catalog"].get("/products?offset=9223372036854775808"), "offset=")
    assert answer(views["catalog"].get("/products?offset=9223372036854775807"))["products"] == []
    refused(views["catalog"].get("/products?limit=%C2%B2"), "limit=")  # "²"


# -- the limits, at and beyond their edge ---------------------------------------------------------


def deepest(depth: int) -> str:
    """A filter ``depth`` levels deep that mixes every kind of level (not, and/or, a lambda)."""
    text = "a/Value eq 'IW_GRDH_1S'"
    for level in range(depth - 3):  # the outer not, the lambda and its conjunction are the other three
        text = f"not ({text})" if level % 3 == 0 else f"(a/Value eq 'x' {'or' if level % 2 else 'and'} ({text}))"
    return f"not Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'productType' and ({text}))"


def test_the_deepest_filters_admitted_run_on_sqlite(views: dict[str, Any]) -> None:
    # SQLite's parser stack overflowed at 20 nested 'not': every filter the limit admits must run.
    for text in ("not " * (MAX_DEPTH - 1) + "Name eq 'x'", deepest(MAX_DEPTH)):
        assert answer(odata(views, **{"$filter": text, "$count": "true"}))["@odata.count"] in (0, 5)
        first = answer(odata(views, **{"$filter": text, "$top": "1", "$orderby": "Name desc"}))
        if "@odata.nextLink" in first:
            assert views["odata"].get(first["@odata.nextLink"].removeprefix("http://localhost")).status_code == 200
    refused(odata(views, **{"$filter": deepest(MAX_DEPTH + 1)}), f"more than {MAX_DEPTH} levels")


def test_the_most_terms_admitted_run_and_one_more_is_400(views: dict[str, Any]) -> None:
    # SQLite refuses expression trees deeper than 1000: a chain of 2000 "or" must still run.
    terms = [f"Name eq 'x{i}'" for i in range(MAX_TERMS - 1)]
    assert answer(odata(views, **{"$filter": " or ".join([*terms, f"Name eq '{NAMES[0]}'"])}))["value"]
    refused(odata(views, **{"$filter": " or ".join([*terms, "Name eq 'y'", "Name eq 'z'"])}), f"{MAX_TERMS}")
    values = ",".join(f"'v{i}'" for i in range(1000))
    lambda_in = f"Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'productType' and a/Value in ({values}))"
    assert answer(odata(views, **{"$filter": lambda_in}))["value"] == []


def test_long_filters_and_large_geographies_are_400_saying_which_limit(views: dict[str, Any]) -> None:
    refused(odata(views, **{"$filter": "Name eq '" + "x" * MAX_FILTER_LENGTH + "'"}), f"at most {MAX_FILTER_LENGTH}")
    line = ", ".join(f"{i % 100 / 10} 1" for i in range(MAX_VERTICES + 1))
    refused(odata(views, **{"$filter": f"OData.CSC.Intersects(area=geography'LINESTRING({line})')"}), "vertices")
    points = ", ".join(f"({i % 300 - 150} {i % 100 - 50})" for i in range(MAX_PARTS + 1))
    refused(odata(views, **{"$filter": f"OData.CSC.Intersects(area=geography'MULTIPOINT({points})')"}), "parts")
    points = ", ".join(f"({i % 360 - 180} {i % 170 - 85})" for i in range(MAX_PARTS))
    assert answer(odata(views, **{"$filter": f"OData.CSC.Intersects(area=geography'MULTIPOINT({points})')"}))


def test_a_statement_the_database_refuses_as_too_complex_is_400(
    views: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were a limit too generous, SQLite's "parser stack overflow" must not read as "catalog down".
    monkeypatch.setattr(odata_filter, "MAX_DEPTH", 1000)
    message = refused(odata(views, **{"$filter": "not " * 60 + "Name eq 'too deep for SQLite'"}))
    assert "parser stack overflow" in message


def skiptoken(keys: Any, values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": keys, "v": values}).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        skiptoken(["content_length+", "name+"], [2**70, "x"]),
        skiptoken(["publication+", "name+"], ["0001-01-01T00:00:00+01:00", "x"]),
        skiptoken(["publication+", "name+"], 7),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),
    ],
)
def test_forged_skiptokens_are_400(views: dict[str, Any], token: str) -> None:
    order = "ContentLength asc" if "content_length" in base64.urlsafe_b64decode(token + "==")[:40].decode() else ""
    refused(odata(views, **{"$skiptoken": token, **({"$orderby": order} if order else {})}), "$skiptoken")


# -- our own faults: JSON 500, the traceback in the log only --------------------------------------


@pytest.mark.parametrize(
    ("view", "method", "path"), [("odata", "find", "/odata/v1/Products"), ("catalog", "search", "/products")]
)
def test_an_unexpected_error_is_a_json_500_and_logged(
    views: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    view: str,
    method: str,
    path: str,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views["store"], method, broken)
    with caplog.at_level(logging.ERROR):
        response = views[view].get(path)
    assert response.status_code == 500 and response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "InternalError"
    assert "secret internals" not in response.get_data(as_text=True)
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


# -- fuzzing: built from the grammar's productions, and plain garbage ----------------------------

_PROPERTIES = [*odata_filter.PROPERTIES, "Footprint", "Unknown", "Attributes"]
_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_STRINGS = _TEXT.map(lambda t: "'" + t.replace("'", "''") + "'") | _TEXT.map(lambda t: f"'{t}'")
_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False).map(repr),
    st.sampled_from(["1e999", "-0", ".5", "1.", "+7", "99999999999999999999999"]),
)
_OFFSETS = st.sampled_from(["", "Z", "+01:00", "-01:00", "+14:00", "-12:00", "+23:59"])
_DATES = st.one_of(
    st.builds(lambda d, z: d.isoformat(timespec="milliseconds") + z, st.datetimes(), _OFFSETS),
    st.builds(
        lambda d, z: d + z, st.sampled_from(["0001-01-01T00:00:00", "9999-12-31T23:59:59.999", "2024-02-30"]), _OFFSETS
    ),
)
_COORD = st.floats(-200, 200, allow_nan=False).map(lambda v: f"{v:g}")
_POINT = st.builds(lambda x, y: f"{x} {y}", _COORD, _COORD)
_RING = st.lists(_POINT, min_size=1, max_size=6).map(lambda ps: "(" + ", ".join([*ps, ps[0]]) + ")")
_WKT = st.one_of(
    _POINT.map(lambda p: f"POINT({p})"),
    st.lists(_POINT, min_size=1, max_size=5).map(lambda ps: f"MULTIPOINT({', '.join(ps)})"),
    st.lists(_POINT, min_size=1, max_size=5).map(lambda ps: f"LINESTRING({', '.join(ps)})"),
    st.lists(_RING, min_size=1, max_size=3).map(lambda rs: f"MULTILINESTRING({', '.join(rs)})"),
    _RING.map(lambda r: f"POLYGON({r})"),
    st.lists(_RING, min_size=1, max_size=3).map(lambda rs: "MULTIPOLYGON(" + ", ".join(f"({r})" for r in rs) + ")"),
    st.sampled_from(
        [
            "POLYGON((170 10, -170 10, -170 20, 170 20, 170 10))",
            "POLYGON Z((0 0 1, 1 0 1, 1 1 1, 0 0 1))",
            "POLYGON M((0 0 1, 1 0 1, 1 1 1, 0 0 1))",
            "POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))",
            "POINT EMPTY",
            "CIRCULARSTRING(0 0, 1 1, 2 0)",
            "COMPOUNDCURVE((0 0, 1 1))",
            "CURVEPOLYGON((0 0, 1 0, 1 1, 0 0))",
            "MULTICURVE((0 0, 1 1))",
            "MULTISURFACE(((0 0, 1 0, 1 1, 0 0)))",
            "POLYHEDRALSURFACE(((0 0, 1 0, 1 1, 0 0)))",
            "TIN(((0 0, 1 0, 1 1, 0 0)))",
            "TRIANGLE((0 0, 1 0, 1 1, 0 0))",
            "GEOMETRYCOLLECTION(POINT(1 1))",
            "LINEARRING(0 0, 1 0, 1 1, 0 0)",
            "POLYGON((0 0, 1 0",
        ]
    ),
)
_GEOGRAPHY = st.builds(
    lambda kind, srid, wkt: f"{kind}'{srid}{wkt}'",
    st.sampled_from(["geography", "geometry", "GEOGRAPHY"]),
    st.sampled_from(["SRID=4326;", "", "SRID=3857;", "SRID=x;"]),
    _WKT,
)
_LITERALS = st.one_of(
    _STRINGS, _NUMBERS, _DATES, st.sampled_from(["true", "false", "null", "OData.CSC.X'y'"]), _GEOGRAPHY
)
_OPERATORS = st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "EQ"])
_TYPES = st.sampled_from(["String", "Integer", "Double", "DateTimeOffset", "Boolean", "Nope"])


def _lambda(kind: str, name: str, op: str, value: str, more: str) -> str:
    cast = f"OData.CSC.{kind}Attribute"
    return f"Attributes/{cast}/any(att:att/Name eq {name} and att/{cast}/Value {op} {value}{more})"


_LEAVES = st.one_of(
    st.builds(lambda p, o, v: f"{p} {o} {v}", st.sampled_from(_PROPERTIES), _OPERATORS, _LITERALS),
    st.builds(lambda v, o, p: f"{v} {o} {p}", _LITERALS, _OPERATORS, st.sampled_from(_PROPERTIES)),
    st.builds(
        lambda f, p, s: f"{f}({p},{s})",
        st.sampled_from(["contains", "startswith", "endswith", "substringof"]),
        st.sampled_from(_PROPERTIES),
        _LITERALS,
    ),
    st.builds(lambda p, vs: f"{p} in ({', '.join(vs)})", st.sampled_from(_PROPERTIES), st.lists(_LITERALS, max_size=4)),
    st.builds(
        lambda f, g: f"{f}(area={g})",
        st.sampled_from(["OData.CSC.Intersects", "OData.CSC.Within", "OData.CSC.Disjoints", "geo.intersects"]),
        _GEOGRAPHY,
    ),
    st.builds(
        _lambda, _TYPES, _STRINGS, _OPERATORS, _LITERALS, st.sampled_from(["", " and att/Value ne null", " or true"])
    ),
    st.sampled_from(
        ["Online", "true", "Name", "()", "Attributes/any()", "Attributes/OData.CSC.StringAttribute/all(a:true)"]
    ),
)
FILTERS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        inner.map(lambda f: f"not {f}"),
        inner.map(lambda f: f"({f})"),
        st.builds(
            lambda items, op: f" {op} ".join(items),
            st.lists(inner, min_size=2, max_size=4),
            st.sampled_from(["and", "or", "AND", "Or"]),
        ),
    ),
    max_leaves=12,
)
GARBAGE = st.text(max_size=80)


@FUZZ
@given(text=st.one_of(FILTERS, FILTERS.map(lambda f: f[: len(f) // 2]), GARBAGE))
def test_fuzzed_filters_are_answered_without_5xx(views: dict[str, Any], text: str) -> None:
    answer(odata(views, **{"$filter": text, "$count": "true"}))


_OPTION_VALUES: dict[str, st.SearchStrategy[str]] = {
    "$filter": FILTERS,
    "$top": st.one_of(st.integers(-5, 10**25).map(str), st.sampled_from(["0", "²", "\u0663", " 5 ", "1e3", ""])),
    "$skip": st.one_of(st.integers(-5, 10**25).map(str), st.sampled_from(["0", str(MAX_SKIP), "\u0661", "0x10"])),
    "$orderby": st.lists(
        st.builds(
            lambda p, d: f"{p}{d}",
            st.sampled_from([*_PROPERTIES, "ContentDate/Start"]),
            st.sampled_from(["", " asc", " desc", " up"]),
        ),
        max_size=3,
    ).map(",".join),
    "$count": st.sampled_from(["true", "false", "TRUE", "1", ""]),
    "$expand": st.sampled_from(["Attributes", "Quicklooks", "Attributes,Quicklooks", "Nodes", "Attributes()", ""]),
    "$select": st.sampled_from(["Name", "Id,Name,ContentDate", "*", "Secret", ""]),
    "$skiptoken": st.one_of(
        st.text(max_size=30),
        st.builds(
            skiptoken,
            st.sampled_from([["publication+", "name+"], ["name+"], "k"]),
            st.lists(st.one_of(st.integers(-(2**70), 2**70), _DATES, _TEXT, st.none()), max_size=3),
        ),
    ),
    "$format": st.sampled_from(["json", "application/json", "xml", ""]),
    "$search": st.just("x"),
}


@FUZZ
@given(options=st.dictionaries(st.sampled_from(list(_OPTION_VALUES)), st.just(""), max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({k: _OPTION_VALUES[k] for k in keys})))  # fmt: skip
def test_fuzzed_query_options_are_answered_without_5xx(views: dict[str, Any], options: dict[str, str]) -> None:
    answer(odata(views, **options))


_CATALOG_VALUES: dict[str, st.SearchStrategy[str]] = {
    "name": st.one_of(st.sampled_from(NAMES), _TEXT),
    "contains": _TEXT,
    "mission": st.sampled_from(["S1", "S2", "", "S1\x00"]),
    "productType": st.one_of(st.just("IW_GRDH_1S"), _TEXT),
    "family": _TEXT,
    "start": st.one_of(_DATES, _TEXT),
    "stop": st.one_of(_DATES, _TEXT),
    "bbox": st.one_of(
        st.lists(st.floats(-400, 400) | st.sampled_from([float("nan"), float("inf")]), min_size=3, max_size=5).map(
            lambda vs: ",".join(map(str, vs))
        ),
        _TEXT,
    ),
    "limit": st.one_of(st.integers(-5, 10**22).map(str), st.sampled_from(["²", "1_0", " 7"])),
    "offset": st.one_of(st.integers(-5, 2**64).map(str), st.sampled_from(["٣", "9223372036854775808"])),
    "unknown": _TEXT,
}


@FUZZ
@given(params=st.dictionaries(st.sampled_from(list(_CATALOG_VALUES)), st.just(""), max_size=6).flatmap(
    lambda keys: st.fixed_dictionaries({k: _CATALOG_VALUES[k] for k in keys})))  # fmt: skip
def test_fuzzed_catalog_queries_are_answered_without_5xx(views: dict[str, Any], params: dict[str, str]) -> None:
    answer(views["catalog"].get("/products?" + urlencode(params, quote_via=quote)))
