"""Query geometries across the antimeridian: read the short way round and split at ±180, like footprints.

The parsed ``Spatial`` node carries the split geometry, so the Python evaluator (``matches``, here) and
both backends (``tests/integration/test_odata_antimeridian_catalog.py``) test the same shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import flask
import pytest
import shapely
from shapely.geometry import shape

from shared.catalog import CatalogEntry, CatalogStore, open_catalog, product_id
from shared.catalog.filters import Spatial, matches
from shared.catalog.odata.errors import BadFilter
from shared.catalog.odata.filter import parse_filter
from shared.catalog.odata.service import ODataService
from shared.products.footprint import footprint_from_latlon

T0 = datetime(2024, 5, 1, tzinfo=UTC)
# A 20° box over the dateline, and the same ring drawn the other way round.
DATELINE_BOX = "POLYGON((170 -10, -170 -10, -170 10, 170 10, 170 -10))"
DATELINE_BOX_CW = "POLYGON((-170 -10, 170 -10, 170 10, -170 10, -170 -10))"


def _box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


# Split across the dateline by the footprint code itself, as ingestion stores it.
SPLIT_FOOTPRINT = footprint_from_latlon([(-5, 178), (-5, -178), (-1, -178), (-1, 178)])
FOOTPRINTS: dict[str, dict[str, Any] | None] = {
    "EAST": _box(175, 0, 179, 5),  # just west of the dateline
    "WEST": _box(-179, 0, -175, 5),  # just east of it
    "SPLIT": SPLIT_FOOTPRINT,  # across it: [178, 180] and [-180, -178]
    "ZERO": _box(0, 0, 4, 5),  # Greenwich: inside the 340° planar misreading of DATELINE_BOX
    "PACIFIC": _box(150, 0, 155, 5),  # also inside the misreading, outside the 20° box
    "NONE": None,
}


def make_entries() -> list[CatalogEntry]:
    entries = []
    for i, (key, footprint) in enumerate(FOOTPRINTS.items()):
        name = f"S1A_IW_GRDH_1SDV_{key}.SAFE"
        entries.append(
            CatalogEntry(
                id=product_id(name),
                name=name,
                mission="S1",
                satellite="A",
                product_type="IW_GRDH_1S",
                level="L1",
                family="L1_SLICE",
                bucket="rs-l1",
                key=f"{name}/",
                content_length=100 + i,
                checksum=None,
                content_type="application/octet-stream",
                validity_start=T0,
                validity_stop=T0 + timedelta(seconds=25),
                footprint=footprint,
                attributes={"productType": "IW_GRDH_1S"},
                publication_time=T0 + timedelta(minutes=i),
                modification_time=T0,
            )
        )
    return entries


def key_of(name: str) -> str:
    return name.removeprefix("S1A_IW_GRDH_1SDV_").removesuffix(".SAFE")


def area(function: str, wkt: str) -> str:
    return f"OData.CSC.{function}(area=geography'SRID=4326;{wkt}')"


NARROW_BOX = "POLYGON((177 -10, -177 -10, -177 10, 177 10, 177 -10))"  # [177, 180] + [-180, -177]
EAST_HALF = "POLYGON((180 -10, -170 -10, -170 10, 180 10, 180 -10))"  # starts on the antimeridian
TWO_AREAS = "MULTIPOLYGON(((170 -10, -170 -10, -170 10, 170 10, 170 -10)),((-1 -1, 5 -1, 5 6, -1 6, -1 -1)))"
NEAR_DATELINE = "POLYGON((140 -10, 179.5 -10, 179.5 10, 140 10, 140 -10))"  # does not cross
WORLD = "POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))"
ALL = {"EAST", "WEST", "SPLIT", "ZERO", "PACIFIC"}

# (filter, the products it selects): shared with the backend tests.
CASES: list[tuple[str, set[str]]] = [
    (area("Intersects", DATELINE_BOX), {"EAST", "WEST", "SPLIT"}),
    (area("Intersects", DATELINE_BOX_CW), {"EAST", "WEST", "SPLIT"}),
    (area("Within", DATELINE_BOX), {"EAST", "WEST", "SPLIT"}),
    (area("Disjoints", DATELINE_BOX), {"ZERO", "PACIFIC"}),
    ("not " + area("Intersects", DATELINE_BOX), {"ZERO", "PACIFIC", "NONE"}),
    # EAST and WEST stick out of the narrow box; the split footprint lies within it.
    (area("Within", NARROW_BOX), {"SPLIT"}),
    (area("Disjoints", NARROW_BOX), {"ZERO", "PACIFIC"}),
    (area("Intersects", EAST_HALF), {"WEST", "SPLIT"}),
    (area("Within", EAST_HALF), {"WEST"}),
    (area("Intersects", "LINESTRING(170 2, -170 2)"), {"EAST", "WEST"}),
    (area("Intersects", TWO_AREAS), {"EAST", "WEST", "SPLIT", "ZERO"}),
    (area("Intersects", DATELINE_BOX) + " and ContentLength ge 101", {"WEST", "SPLIT"}),
    # Not crossing: read as drawn, as before.
    (area("Intersects", NEAR_DATELINE), {"EAST", "SPLIT", "PACIFIC"}),
    (area("Within", WORLD), ALL),
    (area("Disjoints", WORLD), set()),
    (area("Intersects", "POINT(-179.5 -3)"), {"SPLIT"}),
    (area("Intersects", "LINESTRING(170 11, 180 11)"), set()),
]


def _geometry(text: str) -> Any:
    node = parse_filter(f"OData.CSC.Intersects(area=geography'SRID=4326;{text}')")
    assert isinstance(node, Spatial)
    return shapely.from_wkt(node.wkt)


# -- parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("wkt", [DATELINE_BOX, DATELINE_BOX_CW])
def test_a_box_across_the_dateline_is_split_into_two_20_degree_halves(wkt: str) -> None:
    node = parse_filter(f"OData.CSC.Within(area=geography'SRID=4326;{wkt}')")
    assert isinstance(node, Spatial) and node.relation == "within"
    geometry = shapely.from_wkt(node.wkt)
    assert geometry.geom_type == "MultiPolygon" and geometry.is_valid
    assert geometry.area == pytest.approx(400)  # 20° x 20°, not 340° x 20°
    assert shapely.equals(geometry, shapely.box(170, -10, 180, 10).union(shapely.box(-180, -10, -170, 10)))
    # One box per part, each 10° wide: the grid prefilter takes its cells and boxes part by part.
    assert sorted(node.bounds) == [(-180, -170, -10, 10), (170, 180, -10, 10)]


def test_the_query_is_split_exactly_as_a_footprint_of_the_same_ring() -> None:
    footprint = footprint_from_latlon([(-10, 170), (-10, -170), (10, -170), (10, 170)])
    assert footprint is not None
    assert shapely.equals(_geometry(DATELINE_BOX), shape(footprint))


def test_a_line_across_the_dateline_is_split() -> None:
    geometry = _geometry("LINESTRING(170 11, -170 11)")
    assert geometry.geom_type == "MultiLineString"
    assert geometry.length == pytest.approx(20)
    assert shapely.equals(geometry, shapely.from_wkt("MULTILINESTRING((170 11, 180 11), (-180 11, -170 11))"))


def test_a_ring_starting_on_the_antimeridian_stays_one_polygon() -> None:
    geometry = _geometry("POLYGON((180 -10, -170 -10, -170 10, 180 10, 180 -10))")
    assert shapely.equals(geometry, shapely.box(-180, -10, -170, 10))


def test_holes_follow_their_shell_across_the_dateline() -> None:
    hole = "(175 -1, -175 -1, -175 1, 175 1, 175 -1)"
    geometry = _geometry(f"POLYGON((170 -10, -170 -10, -170 10, 170 10, 170 -10),{hole})")
    assert geometry.is_valid and geometry.area == pytest.approx(400 - 20)
    assert not geometry.intersects(shapely.Point(179, 0)) and not geometry.intersects(shapely.Point(-179, 0))
    assert geometry.intersects(shapely.Point(179, 5))


def test_a_ring_around_a_pole_is_closed_through_it_as_footprints_are() -> None:
    geometry = _geometry("POLYGON((0 80, 90 80, 180 80, -90 80, 0 80))")
    assert shapely.equals(geometry, shapely.box(-180, 80, 180, 90))


@pytest.mark.parametrize(
    "wkt",
    [
        "POLYGON((44.8571 20.3411, 11.4484 49.9204, 2.4321 32.3625, 13.4321 1.3625, 44.8571 20.3411))",
        "POLYGON((140 -10, 179.5 -10, 179.5 10, 140 10, 140 -10))",
        # Edges of exactly 360° (a whole-world box) are taken as drawn, not as zero-length.
        "POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))",
        "POLYGON((-180 -10, 180 -10, 180 10, -180 10, -180 -10))",
        # A 180° edge is not "more than 180°".
        "POLYGON((-90 0, 90 0, 90 10, -90 10, -90 0))",
        # Wide, but drawn with edges shorter than 180°: as drawn.
        "POLYGON((-170 -10, 0 -10, 170 -10, 170 10, 0 10, -170 10, -170 -10))",
        # Already split by the user.
        "MULTIPOLYGON(((170 -10, 180 -10, 180 10, 170 10, 170 -10)),"
        "((-180 -10, -170 -10, -170 10, -180 10, -180 -10)))",
        "LINESTRING(170 11, 180 11)",
        "MULTILINESTRING((0 0, 1 1),(2 2, 3 3))",
        "POINT(-179.5 11)",
        "MULTIPOINT(170 0, -170 0)",
    ],
)
def test_geometries_that_do_not_cross_are_left_exactly_as_given(wkt: str) -> None:
    node = parse_filter(f"OData.CSC.Intersects(area=geography'SRID=4326;{wkt}')")
    given = shapely.from_wkt(wkt)
    bounds = tuple((b[0], b[2], b[1], b[3]) for b in (p.bounds for p in shapely.get_parts(given)))
    assert node == Spatial("intersects", shapely.to_wkt(given, rounding_precision=-1), bounds)


@pytest.mark.parametrize(
    ("wkt", "says"),
    [
        # Longitudes beyond ±180 are refused, never guessed.
        ("POLYGON((170 -10, 190 -10, 190 10, 170 10, 170 -10))", "(190 -10) is not"),
        ("POINT(-200 0)", "lon in [-180, 180]"),
        # Valid as drawn on the map, a bow tie once read the short way round.
        ("POLYGON((170 -10, -170 10, -170 -10, 170 10, 170 -10))", "Self-intersection"),
        ("POLYGON((0 80, 120 80, -120 80, 0 80),(1 81, 2 81, 2 82, 1 81))", "around a pole"),
        ("POLYGON((0 90, 120 90, -120 90, 0 90))", "no area"),
    ],
)
def test_bad_geometries_are_400_saying_what_and_where(wkt: str, says: str) -> None:
    with pytest.raises(BadFilter) as caught:
        parse_filter(f"OData.CSC.Intersects(area=geography'SRID=4326;{wkt}')")
    assert caught.value.status == 400
    assert says in caught.value.message and "position 27" in caught.value.message


# -- the reference evaluator ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "wanted"), CASES)
def test_matches_picks_the_products_on_the_right_side_of_the_dateline(text: str, wanted: set[str]) -> None:
    where = parse_filter(text)
    assert {key_of(e.name) for e in make_entries() if matches(where, e)} == wanted


# -- through the service ----------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    store: CatalogStore = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.upsert_many(make_entries())
    service = ODataService(lambda: store, lambda: None)
    app = flask.Flask(__name__)
    app.add_url_rule("/<path:path>", "odata", lambda path: service.handle(flask.request), methods=["GET"])
    try:
        yield app.test_client()
    finally:
        store.close()


def test_the_service_answers_a_dateline_query(client: Any) -> None:
    response = client.get("/odata/v1/Products?$filter=" + quote(CASES[0][0], safe=""))
    assert response.status_code == 200
    assert {key_of(p["Name"]) for p in response.get_json()["value"]} == {"EAST", "WEST", "SPLIT"}


def test_the_service_refuses_out_of_range_longitudes_with_a_400(client: Any) -> None:
    text = "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((170 -10, 190 -10, 190 10, 170 10, 170 -10))')"
    response = client.get("/odata/v1/Products?$filter=" + quote(text, safe=""))
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert "position 27" in message and "lon in [-180, 180]" in message and "(190 -10)" in message
