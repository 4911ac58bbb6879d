"""The query form of the selection policies chooses what the pure form chooses, on SQLite and PostgreSQL.

Some entries are open-ended (no validity stop, NULL in the catalog): valid until further notice."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.catalog import CatalogEntry, CatalogStore, open_catalog, product_id
from shared.processing.policies import OPEN_END, POLICIES, Candidate, UnknownPolicy, select
from shared.processing.queries import CatalogSelection, objects_named, objects_starting_between

pytestmark = pytest.mark.integration

EPOCH = datetime(2024, 5, 1, tzinfo=UTC)
_types = itertools.count(1)


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def entry(c: Candidate, satellite: str | None = "A") -> CatalogEntry:
    return CatalogEntry(
        id=product_id(c.name),
        name=c.name,
        mission="S1",
        satellite=satellite,
        product_type=c.product_type,
        level="AUX",
        family="AUXILIARY_FILE",
        bucket="rs-aux",
        key=c.name,
        content_length=1,
        checksum=None,
        content_type="application/xml",
        validity_start=c.validity_start,
        validity_stop=None if c.open_ended else c.validity_stop,
        footprint=None,
        attributes={},
        publication_time=c.creation_date,
        modification_time=c.creation_date,
    )


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[tuple[CatalogStore, CatalogSelection]]:
    store = open_catalog(catalog_url)
    selection = CatalogSelection(catalog_url)
    try:
        yield store, selection
    finally:
        selection.close()
        store.close()


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[int, int, int]], int, int, int, int]:
    # A small grid (half seconds) so ties, touching bounds and duplicate validities are common.
    # A length of 17 stands for an open end (no validity stop).
    raws = draw(st.lists(st.tuples(st.integers(0, 24), st.integers(0, 17), st.integers(0, 4)), max_size=10))
    start = draw(st.integers(0, 24))
    stop = start + draw(st.integers(0, 12))
    return raws, start, stop, draw(st.integers(0, 4)), draw(st.integers(-2, 4))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_every_policy_selects_the_same_entries_as_a_query_and_in_memory(
    catalog: tuple[CatalogStore, CatalogSelection],
    scenario: tuple[list[tuple[int, int, int]], int, int, int, int],
) -> None:
    store, selection = catalog
    raws, start, stop, t0, t1 = scenario
    product_type = f"AUX_T{next(_types):05d}"  # each example its own type: examples share the database
    entries = [
        Candidate(
            f"{product_type}_{n:02d}",
            at(s / 2),
            None if length == 17 else at((s + length) / 2),
            at(100 + created),
            product_type,
        )
        for n, (s, length, created) in enumerate(raws)
    ]
    store.upsert_many(entry(c) for c in entries)
    for policy in POLICIES:
        in_memory = select(policy, entries, at(start / 2), at(stop / 2), t0 / 2, t1 / 2)
        queried = selection.select(policy, product_type, at(start / 2), at(stop / 2), t0 / 2, t1 / 2)
        assert queried == in_memory, policy


def test_result_bounds_and_other_types_satellites_and_missing_validity_are_honoured(
    catalog: tuple[CatalogStore, CatalogSelection],
) -> None:
    store, selection = catalog
    orbits = [Candidate(f"ORB_{n}", at(n * 10), at(n * 10 + 10), at(100), "AUX_RES") for n in range(4)]
    store.upsert_many(entry(c) for c in orbits)
    store.upsert(entry(Candidate("OTHER", at(0), at(40), at(500), "AUX_POE")))
    store.upsert(entry(Candidate("UNIT_B", at(0), at(40), at(500), "AUX_RES"), satellite="B"))
    store.upsert(entry(Candidate("MISSION_WIDE", at(0), at(40), at(400), "AUX_RES"), satellite=None))
    undated = entry(Candidate("UNDATED", at(0), at(40), at(900), "AUX_RES"))
    store.upsert(dataclasses.replace(undated, validity_start=None))

    def names(policy: str, **kw: object) -> list[str]:
        return [c.name for c in selection.select(policy, "AUX_RES", at(0), at(40), satellite="A", **kw)]  # type: ignore[arg-type]

    assert names("LatestValCover") == ["MISSION_WIDE"]  # unit B and the undated entry are never chosen
    assert names("ValIntersectWithoutDuplicates", min_results=5, max_results=5) == [
        "ORB_0", "MISSION_WIDE", "ORB_1", "ORB_2", "ORB_3",
    ]  # fmt: skip
    assert names("ValIntersectWithoutDuplicates", max_results=4) == []
    both = selection.select("LatestValCover", ("AUX_RES", "AUX_POE"), at(0), at(40))
    assert [c.name for c in both] == ["UNIT_B"]  # newest of both types; tie on creation -> greatest name
    with pytest.raises(UnknownPolicy):
        selection.select("Nearest", "AUX_RES", at(0), at(1))


AUX_CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"  # validity start only: valid until further notice


def test_open_ended_validities_are_selected_and_looked_up(catalog: tuple[CatalogStore, CatalogSelection]) -> None:
    store, selection = catalog
    cal = Candidate(AUX_CAL, at(0), None, at(100), "AUX_CAL")  # the newest
    older = Candidate("S1A_AUX_CAL_V20160101T000000_G20151201T000000.SAFE", at(-1000), None, at(-900), "AUX_CAL")
    finite = Candidate("S1A_AUX_CAL_FINITE", at(-50), at(5000), at(-50), "AUX_CAL")
    store.upsert_many(entry(c) for c in (cal, older, finite))
    stored = objects_named(selection, [AUX_CAL])[AUX_CAL]
    assert stored.validity_start == at(0) and stored.validity_stop is None
    assert [o.name for o in objects_starting_between(selection, ["AUX_CAL"], at(-10), at(10))] == [AUX_CAL]

    def names(policy: str, start: float, stop: float) -> list[str]:
        return [c.name for c in selection.select(policy, "AUX_CAL", at(start), at(stop), satellite="A")]

    years_later = 10 * 365 * 86_400.0
    assert names("LatestValCover", years_later, years_later + 60) == [AUX_CAL]  # both cover: the newest
    assert names("ValCover", years_later, years_later + 60) == [older.name, AUX_CAL]
    assert names("ValIntersect", 10, 20) == [older.name, finite.name, AUX_CAL]  # open ends sort last
    assert names("LatestValidity", 10, 20) == [AUX_CAL]
    assert names("LatestStopValidity", 10, 20) == [AUX_CAL]  # an open end is the latest stop; then newest
    assert names("ClosestStopValidity", 10, 20) == [finite.name]  # any finite stop is closer than +infinity
    assert names("BestCentredCover", 10, 20) == [finite.name]
    assert names("LargestOverlap", 10, 20) == [AUX_CAL]  # all span W: ties -> newest creation
    got = selection.select("LatestValCover", "AUX_CAL", at(10), at(20))
    assert got == [Candidate(AUX_CAL, at(0), None, at(100), "AUX_CAL")] and got[0].validity_stop == OPEN_END
