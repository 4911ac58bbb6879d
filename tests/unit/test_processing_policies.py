"""Selection policies against a brute-force reading of their definitions.

The brute force works on integer seconds and states each single-result policy as "the chosen entry
qualifies and no other qualifying entry is strictly better", so it shares no code with the policies.
Times are drawn from a small grid so ties, touching bounds and duplicates are common. Some entries are
open-ended (no validity stop: valid until further notice); the brute force reads their stop as +infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.processing.policies import OPEN_END, POLICIES, Candidate, UnknownPolicy, select

EPOCH = datetime(2024, 5, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def secs(value: datetime) -> float:
    """Seconds on the grid; an open end (no validity stop) is +infinity."""
    return math.inf if value == OPEN_END else int((value - EPOCH).total_seconds())


Raw = tuple[int, int, int]  # validity start, validity stop, creation (seconds on the grid)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Candidate], int, int, int, int]:
    raws = draw(
        st.lists(
            st.tuples(st.integers(0, 12), st.integers(0, 9), st.integers(0, 4)),
            max_size=10,
        )
    )
    entries = [  # a length of 9 stands for an open end
        Candidate(f"E{n:02d}", at(start), None if length == 9 else at(start + length), at(100 + created), "AUX_X")
        for n, (start, length, created) in enumerate(raws)
    ]
    start = draw(st.integers(0, 12))
    stop = start + draw(st.integers(0, 6))
    t0 = draw(st.integers(0, 2))
    t1 = draw(st.integers(-1, 2))
    return entries, start, stop, t0, t1


def raw(c: Candidate) -> tuple[float, float, float, str]:
    return secs(c.validity_start), secs(c.validity_stop), secs(c.creation_date), c.name


def covers(c: Candidate, ws: int, we: int) -> bool:
    s, e, _, _ = raw(c)
    return s <= ws and e >= we


def intersects(c: Candidate, ws: int, we: int) -> bool:
    s, e, _, _ = raw(c)
    return s < we and e > ws


def newer(a: Candidate, b: Candidate) -> bool:
    """a beats b on creation date, then name."""
    return (raw(a)[2], a.name) > (raw(b)[2], b.name)


def best_is(chosen: list[Candidate], pool: list[Candidate], better: Callable[[Candidate, Candidate], bool]) -> None:
    if not pool:
        assert chosen == []
        return
    assert len(chosen) == 1
    winner = chosen[0]
    assert winner in pool
    assert not any(better(other, winner) for other in pool if other is not winner)


def in_order(chosen: list[Candidate], expected: list[Candidate]) -> None:
    assert {c.name for c in chosen} == {c.name for c in expected}
    keys = [(*raw(c)[:2], c.name) for c in chosen]
    assert keys == sorted(keys)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_every_policy_agrees_with_its_brute_force_reading(scenario: tuple[list[Candidate], int, int, int, int]) -> None:
    entries, start, stop, t0, t1 = scenario
    ws, we = start - t0, stop + t1
    centre = (ws + we) / 2

    def run(policy: str) -> list[Candidate]:
        return select(policy, entries, at(start), at(stop), t0, t1)

    covering = [c for c in entries if covers(c, ws, we)]
    crossing = [c for c in entries if intersects(c, ws, we)]

    in_order(run("ValCover"), covering)
    in_order(run("ValIntersect"), crossing)
    best_is(run("LatestValCover"), covering, newer)
    best_is(run("LatestValIntersect"), crossing, newer)

    def later_start(a: Candidate, b: Candidate) -> bool:
        return raw(a)[0] > raw(b)[0] or (raw(a)[0] == raw(b)[0] and newer(a, b))

    def later_stop(a: Candidate, b: Candidate) -> bool:
        return raw(a)[1] > raw(b)[1] or (raw(a)[1] == raw(b)[1] and newer(a, b))

    best_is(run("LatestValidity"), crossing, later_start)
    best_is(run("LatestStartValidity"), entries, later_start)
    best_is(run("LatestStopValidity"), entries, later_stop)
    best_is(run("LatestValCoverClosest"), covering, later_start)

    def closer_start(a: Candidate, b: Candidate) -> bool:
        da, db = abs(raw(a)[0] - centre), abs(raw(b)[0] - centre)
        return da < db or (da == db and later_start(a, b))

    best_is(run("LatestValidityClosest"), entries, closer_start)

    def better_centred(a: Candidate, b: Candidate) -> bool:
        da, db = abs((raw(a)[0] + raw(a)[1]) / 2 - centre), abs((raw(b)[0] + raw(b)[1]) / 2 - centre)
        return da < db or (da == db and newer(a, b))

    best_is(run("BestCentredCover"), covering, better_centred)

    def longer_overlap(a: Candidate, b: Candidate) -> bool:
        oa = min(raw(a)[1], we) - max(raw(a)[0], ws)
        ob = min(raw(b)[1], we) - max(raw(b)[0], ws)
        return oa > ob or (oa == ob and newer(a, b))

    best_is(run("LargestOverlap"), crossing, longer_overlap)

    if covering:
        best_is(run("LatestValCoverLatestValidity"), covering, newer)
    else:
        best_is(run("LatestValCoverLatestValidity"), crossing, later_start)

    # Without duplicates: one per identical validity, the newest; each kept entry has no newer twin.
    unique = run("ValIntersectWithoutDuplicates")
    assert {raw(c)[:2] for c in unique} == {raw(c)[:2] for c in crossing}
    assert len(unique) == len({raw(c)[:2] for c in unique})
    for kept in unique:
        assert not any(raw(o)[:2] == raw(kept)[:2] and newer(o, kept) for o in crossing)
    in_order(unique, unique)

    # FullCoverage: every second-long step of the window lies inside some crossing entry, or nothing.
    covered = all(any(raw(c)[0] <= x and x + 1 <= raw(c)[1] for c in crossing) for x in range(ws, we)) and (
        # a zero-length window needs an entry around its point, as the chain check does
        we > ws or any(raw(c)[0] <= ws <= raw(c)[1] for c in crossing)
    )
    full = run("FullCoverage")
    if covered and crossing and min(raw(c)[0] for c in crossing) <= ws and max(raw(c)[1] for c in crossing) >= we:
        in_order(full, crossing)
    else:
        assert full == []


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_closest_validity_policies_take_the_nearest_side(scenario: tuple[list[Candidate], int, int, int, int]) -> None:
    entries, start, stop, t0, t1 = scenario
    centre = ((start - t0) + (stop + t1)) / 2
    for policy, field in (("ClosestStartValidity", 0), ("ClosestStopValidity", 1)):

        def time_of(c: Candidate, field: int = field) -> int:
            return raw(c)[0] if field == 0 else raw(c)[1]

        chosen = select(policy, entries, at(start), at(stop), t0, t1)
        if not entries:
            assert chosen == []
            continue
        assert len(chosen) == 1
        winner = time_of(chosen[0])
        distance = abs(winner - centre)
        assert distance == min(abs(time_of(c) - centre) for c in entries)
        before = [c for c in entries if time_of(c) < centre]
        if winner >= centre and before:
            # the side after the centre wins only when strictly closer than the best before it
            assert distance < centre - max(time_of(c) for c in before)
        same_time = [c for c in entries if time_of(c) == winner]
        assert not any(newer(c, chosen[0]) for c in same_time if c is not chosen[0])


def test_val_intersect_without_duplicates_honours_result_bounds() -> None:
    entries = [Candidate(f"E{n}", at(n * 10), at(n * 10 + 10), at(100)) for n in range(4)]
    assert len(select("ValIntersectWithoutDuplicates", entries, at(0), at(40), min_results=4, max_results=5)) == 4
    assert select("ValIntersectWithoutDuplicates", entries, at(0), at(40), min_results=5) == []
    assert select("ValIntersectWithoutDuplicates", entries, at(0), at(40), max_results=3) == []


def test_full_coverage_rejects_a_chain_that_stops_short_of_the_window_end() -> None:
    # The reference compared the chain's end with the window *start* and accepted this.
    entries = [Candidate("A", at(0), at(10), at(100)), Candidate("B", at(10), at(20), at(100))]
    assert [c.name for c in select("FullCoverage", entries, at(0), at(20))] == ["A", "B"]
    assert select("FullCoverage", entries, at(0), at(30)) == []
    assert select("FullCoverage", [entries[0], Candidate("C", at(12), at(30), at(100))], at(0), at(30)) == []


def test_latest_val_cover_prefers_the_newest_reprocessing() -> None:
    old = Candidate("S1A_OPER_AUX_RESORB_OPOD_20171213T143838", at(0), at(100), at(200))
    new = Candidate("S1A_OPER_AUX_RESORB_OPOD_20171213T153838", at(0), at(100), at(300))
    assert select("LatestValCover", [new, old], at(10), at(20)) == [new]


def test_every_documented_policy_is_registered_and_unknown_ones_are_refused() -> None:
    documented = {
        "ValCover", "LatestValCover", "ValIntersect", "ValIntersectWithoutDuplicates", "LatestValIntersect",
        "LatestValidity", "ClosestStartValidity", "ClosestStopValidity", "LatestStartValidity",
        "LatestStopValidity", "LatestValCoverClosest", "LatestValidityClosest", "FullCoverage",
        "BestCentredCover", "LargestOverlap", "LatestValCoverLatestValidity",
    }  # fmt: skip
    assert set(POLICIES) == documented
    assert select("LatestValIntersect  ", [], at(0), at(1)) == []  # trailing spaces, as in real tables
    with pytest.raises(UnknownPolicy, match="Nearest"):
        select("Nearest", [], at(0), at(1))


AUX_CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"  # validity start only: valid until further notice


def test_an_open_ended_validity_covers_and_intersects_every_later_window() -> None:
    cal = Candidate(AUX_CAL, at(0), None, at(-100), "AUX_CAL")
    assert cal.open_ended and cal.validity_stop == OPEN_END
    years_later = 10 * 365 * 86_400
    for policy in ("ValCover", "LatestValCover", "ValIntersect", "LatestValIntersect", "LatestValidity",
                   "ValIntersectWithoutDuplicates", "LatestValCoverClosest", "FullCoverage", "BestCentredCover",
                   "LargestOverlap", "LatestValCoverLatestValidity", "LatestStopValidity",
                   "ClosestStopValidity"):  # fmt: skip
        assert select(policy, [cal], at(years_later), at(years_later + 60)) == [cal], policy
        assert select(policy, [cal], at(0), at(60)) == [cal], policy
    assert select("ValIntersect", [cal], at(-60), at(0)) == []  # ends at its start: strict intersection
    assert select("ValCover", [cal], at(-1), at(60)) == []  # starts after the window does


def test_an_open_end_ranks_as_the_latest_and_furthest_stop() -> None:
    cal = Candidate("OPEN", at(0), None, at(100))
    older_open = Candidate("OPEN_OLD", at(5), None, at(50))
    finite = Candidate("FINITE", at(0), at(1000), at(200))
    assert select("LatestStopValidity", [finite, cal, older_open], at(10), at(20)) == [cal]
    assert select("ValIntersect", [cal, finite], at(10), at(20)) == [finite, cal]  # open sorts after
    # Closest stop: the finite one wins however far; the open end only when there is nothing else.
    assert select("ClosestStopValidity", [cal, finite], at(10), at(20)) == [finite]
    assert select("ClosestStopValidity", [older_open, cal], at(10), at(20)) == [cal]  # then the newest
    # Best centred cover: an open-ended centre is infinitely far; among open ends, the newest.
    assert select("BestCentredCover", [cal, finite], at(10), at(20)) == [finite]
    assert select("BestCentredCover", [older_open, cal], at(10), at(20)) == [cal]
    assert select("LargestOverlap", [cal, Candidate("SHORT", at(0), at(15), at(300))], at(10), at(20)) == [cal]
    assert select("FullCoverage", [Candidate("A", at(0), at(10), at(1)), older_open], at(0), at(90)) == [
        Candidate("A", at(0), at(10), at(1)),
        older_open,
    ]
