"""The areas the map client sends (functions/web/client/src/geo.ts, bboxParts and bboxWkts): a box across
the antimeridian or wider than 120° goes as OR'ed polygons of at most 120° inside [-180, 180]. The OData
service must answer them as meant; one MULTIPOLYGON of the same parts would be refused (parts share edges)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.unit.test_odata_antimeridian import client, key_of  # noqa: F401  (client is a fixture)


def polygon(west: float, south: float, east: float, north: float) -> str:
    """As bboxWkts writes a part."""
    return f"POLYGON(({west} {south},{east} {south},{east} {north},{west} {north},{west} {south}))"


def areas(*parts: tuple[float, float, float, float]) -> str:
    """As odataFilter joins the parts of a box."""
    terms = [f"OData.CSC.Intersects(area=geography'SRID=4326;{polygon(*part)}')" for part in parts]
    return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"


def selected(client: Any, text: str) -> set[str]:  # noqa: F811
    response = client.get("/odata/v1/Products?$filter=" + quote(text, safe=""))
    assert response.status_code == 200, response.get_json()
    return {key_of(p["Name"]) for p in response.get_json()["value"]}


def test_a_box_across_the_antimeridian_sent_in_two_parts_finds_both_sides_and_the_split_footprint(
    client: Any,  # noqa: F811
) -> None:
    # The box 170,-10,-170,10 (west > east) as the client sends it.
    assert selected(client, areas((170, -10, 180, 10), (-180, -10, -170, 10))) == {"EAST", "WEST", "SPLIT"}
    # Only the eastern side of 180°: the western products are not found.
    assert selected(client, areas((-180, -10, -170, 10))) == {"WEST", "SPLIT"}


def test_a_box_around_the_world_sent_in_three_parts_finds_every_footprint(client: Any) -> None:  # noqa: F811
    everything = areas((-180, -90, -60, 90), (-60, -90, 60, 90), (60, -90, 180, 90))
    assert selected(client, everything) == {"EAST", "WEST", "SPLIT", "ZERO", "PACIFIC"}


def test_the_same_parts_as_one_multipolygon_are_refused_with_a_400(client: Any) -> None:  # noqa: F811
    parts = "MULTIPOLYGON(((-180 80,-60 80,-60 90,-180 90,-180 80)),((-60 80,60 80,60 90,-60 90,-60 80)))"
    response = client.get(
        "/odata/v1/Products?$filter=" + quote(f"OData.CSC.Intersects(area=geography'SRID=4326;{parts}')")
    )
    assert response.status_code == 400
    assert "not a valid geometry" in response.get_json()["error"]["message"]
