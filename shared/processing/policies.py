"""Selection policies (task-table ``Retrieval_Mode``): which catalog entries feed an IPF input.

Each policy is a small pure function over candidate entries of one product type and a time window
W = [start - T0, stop + T1] (already widened by :func:`select`). Multi-result policies return their
entries ordered by validity start, then stop, then name; single-result policies return zero or one.
Whenever a definition says "newest", ties on creation date fall back to the greatest name, so every
policy is deterministic (the reference left ties to Elasticsearch's hit order).

Intersection is strict, as in the reference: an entry intersects W when ``vStart < W.stop`` and
``vStop > W.start``. Cover is inclusive: ``vStart <= W.start`` and ``vStop >= W.stop``.

Open-ended validity: an entry without a validity stop (catalog ``validity_stop`` NULL; e.g. S1 AUX_CAL,
``S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE``, named after its start only) is valid until
further notice. A :class:`Candidate` built with ``validity_stop=None`` holds :data:`OPEN_END`
(9999-12-31T23:59:59.999999Z, the greatest time; ``open_ended`` tells it), so every rule reads it as a
stop at +infinity: it covers every window it starts at or before, intersects every window ending after
its start, is the latest for LatestStopValidity, sorts after every finite stop (ValIntersect order,
ClosestStopValidity's "after" side, where its infinite distance loses to any finite entry) and has an
infinitely distant centre for BestCentredCover (chosen only when no finite entry covers W; among
open-ended ones the newest). Its overlap with W reaches W.stop. In a JobOrder its Time_Interval stop is
``99991231_235959999999``.

Definitions (reference: COPRS ``EsServices``; fixes are marked FIX):

* ValCover: every entry covering W.
* LatestValCover: the covering entry with the newest creation date.
* ValIntersect: every entry intersecting W.
* ValIntersectWithoutDuplicates: intersecting entries, one per identical (vStart, vStop) — the newest
  creation date. FIX: the reference kept the *first by insertion time* (the oldest); a reprocessed file
  replaces its predecessor, so keep the newest. With ``min_results``/``max_results`` (task table
  minResults/maxResults) a count outside the bounds selects nothing, as the reference's client did.
* LatestValIntersect: the intersecting entry with the newest creation date.
* LatestValidity: the intersecting entry with the latest validity start (then newest creation).
* ClosestStartValidity: with c = centre of W, the best entry before c (vStart < c: latest vStart, then
  newest creation) against the best at or after c (earliest vStart, then newest creation); the smaller
  distance to c wins, a tie goes to the one before. No window filter besides c.
* ClosestStopValidity: the same on validity stop.
* LatestStartValidity / LatestStopValidity: no time filter; the latest validity start / stop (then newest).
* LatestValCoverClosest: the covering entry with the latest validity start (then newest creation).
* LatestValidityClosest: the entry whose validity start is closest to the centre of W; ties go to the
  later start, then the newest creation. FIX: the reference compared nanosecond fields only against
  "t0 + t0", which made the choice effectively arbitrary, and restricted candidates to intersecting
  ones; this follows the ESA Generic IPF definition (closest to the window centre, no other filter).
* FullCoverage: the intersecting entries, only if together they cover W without a gap (first starts at
  or before W.start, each next starts at or before the furthest stop so far, the furthest stop reaches
  W.stop); otherwise nothing. FIX: the reference checked the end of the chain against W.start, so a
  chain that stopped short of W.stop was accepted.

Never implemented by the reference (its catalog answered HTTP 400); defined here from their names and
the ESA usage (auxiliary files meant to bracket or centre a processing window):

* BestCentredCover: among covering entries, the one whose validity centre is closest to the centre of W;
  ties go to the newest creation.
* LargestOverlap: among intersecting entries, the one with the longest overlap
  ``min(vStop, W.stop) - max(vStart, W.start)``; ties go to the newest creation.
* LatestValCoverLatestValidity: LatestValCover; when nothing covers W, fall back to LatestValidity (the
  intersecting entry with the latest validity start) — "the newest cover, else the latest validity".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# The validity stop of an entry valid until further notice: later than any real time.
OPEN_END = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, init=False)
class Candidate:
    """A catalog entry as the policies see it. Datetimes are timezone-aware UTC.

    ``validity_stop=None`` (no stop: valid until further notice) is stored as :data:`OPEN_END`.
    """

    name: str
    validity_start: datetime
    validity_stop: datetime
    creation_date: datetime
    product_type: str

    def __init__(
        self,
        name: str,
        validity_start: datetime,
        validity_stop: datetime | None,
        creation_date: datetime,
        product_type: str = "",
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "validity_start", validity_start)
        object.__setattr__(self, "validity_stop", OPEN_END if validity_stop is None else validity_stop)
        object.__setattr__(self, "creation_date", creation_date)
        object.__setattr__(self, "product_type", product_type)

    @property
    def open_ended(self) -> bool:
        """No validity stop: valid until further notice."""
        return self.validity_stop == OPEN_END


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    stop: datetime

    def widened(self, t0: float, t1: float) -> Window:
        """[start - T0, stop + T1]; a negative T1 (S3 SR1 tables) narrows the window."""
        return Window(self.start - timedelta(seconds=t0), self.stop + timedelta(seconds=t1))

    @property
    def centre(self) -> datetime:
        return self.start + (self.stop - self.start) / 2


class UnknownPolicy(ValueError):
    pass


Policy = Callable[[Sequence[Candidate], Window], list[Candidate]]


def covers(c: Candidate, w: Window) -> bool:
    return c.validity_start <= w.start and c.validity_stop >= w.stop


def intersects(c: Candidate, w: Window) -> bool:
    return c.validity_start < w.stop and c.validity_stop > w.start


def _in_order(entries: Sequence[Candidate]) -> list[Candidate]:
    return sorted(entries, key=lambda c: (c.validity_start, c.validity_stop, c.name))


def _newest_key(c: Candidate) -> tuple[datetime, str]:
    return (c.creation_date, c.name)


def _one(entries: Sequence[Candidate], key: Callable[[Candidate], Any]) -> list[Candidate]:
    return [max(entries, key=key)] if entries else []


def val_cover(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _in_order([c for c in entries if covers(c, w)])


def latest_val_cover(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _one([c for c in entries if covers(c, w)], _newest_key)


def val_intersect(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _in_order([c for c in entries if intersects(c, w)])


def val_intersect_without_duplicates(
    entries: Sequence[Candidate], w: Window, min_results: int | None = None, max_results: int | None = None
) -> list[Candidate]:
    newest: dict[tuple[datetime, datetime], Candidate] = {}
    for c in entries:
        if intersects(c, w):
            key = (c.validity_start, c.validity_stop)
            kept = newest.get(key)
            if kept is None or _newest_key(c) > _newest_key(kept):
                newest[key] = c
    chosen = _in_order(list(newest.values()))
    if (min_results is not None and len(chosen) < min_results) or (
        max_results is not None and len(chosen) > max_results
    ):
        return []
    return chosen


def latest_val_intersect(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _one([c for c in entries if intersects(c, w)], _newest_key)


def latest_validity(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _one([c for c in entries if intersects(c, w)], lambda c: (c.validity_start, *_newest_key(c)))


def _closest(entries: Sequence[Candidate], w: Window, at: Callable[[Candidate], datetime]) -> list[Candidate]:
    centre = w.centre
    before = [c for c in entries if at(c) < centre]
    after = [c for c in entries if at(c) >= centre]
    best_before = max(before, key=lambda c: (at(c), *_newest_key(c))) if before else None
    best_after = None
    if after:
        # Earliest after the centre; among equal times the newest creation (then greatest name).
        earliest = min(at(c) for c in after)
        best_after = max((c for c in after if at(c) == earliest), key=_newest_key)
    if best_before is None or best_after is None:
        return [c for c in (best_before, best_after) if c is not None]
    if at(best_after) - centre < centre - at(best_before):
        return [best_after]
    return [best_before]


def closest_start_validity(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _closest(entries, w, lambda c: c.validity_start)


def closest_stop_validity(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _closest(entries, w, lambda c: c.validity_stop)


def latest_start_validity(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _one(entries, lambda c: (c.validity_start, *_newest_key(c)))


def latest_stop_validity(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _one(entries, lambda c: (c.validity_stop, *_newest_key(c)))


def latest_val_cover_closest(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _one([c for c in entries if covers(c, w)], lambda c: (c.validity_start, *_newest_key(c)))


def latest_validity_closest(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    centre = w.centre
    return _one(entries, lambda c: (-abs(c.validity_start - centre), c.validity_start, *_newest_key(c)))


def full_coverage(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    chain = val_intersect(entries, w)
    if not chain or chain[0].validity_start > w.start:
        return []
    reach = chain[0].validity_stop
    for c in chain[1:]:
        if c.validity_start > reach:
            return []  # a gap inside the window
        reach = max(reach, c.validity_stop)
    return chain if reach >= w.stop else []


def best_centred_cover(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    centre = w.centre

    def key(c: Candidate) -> tuple[Any, ...]:
        if c.open_ended:  # an infinitely distant centre: after every finite entry, then the newest
            return (False, timedelta(0), *_newest_key(c))
        return (True, -abs((c.validity_start + (c.validity_stop - c.validity_start) / 2) - centre), *_newest_key(c))

    return _one([c for c in entries if covers(c, w)], key)


def overlap(c: Candidate, w: Window) -> timedelta:
    return min(c.validity_stop, w.stop) - max(c.validity_start, w.start)


def largest_overlap(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _one([c for c in entries if intersects(c, w)], lambda c: (overlap(c, w), *_newest_key(c)))


def latest_val_cover_latest_validity(entries: Sequence[Candidate], w: Window) -> list[Candidate]:
    return latest_val_cover(entries, w) or latest_validity(entries, w)


POLICIES: dict[str, Policy] = {
    "ValCover": val_cover,
    "LatestValCover": latest_val_cover,
    "ValIntersect": val_intersect,
    "ValIntersectWithoutDuplicates": val_intersect_without_duplicates,
    "LatestValIntersect": latest_val_intersect,
    "LatestValidity": latest_validity,
    "ClosestStartValidity": closest_start_validity,
    "ClosestStopValidity": closest_stop_validity,
    "LatestStartValidity": latest_start_validity,
    "LatestStopValidity": latest_stop_validity,
    "LatestValCoverClosest": latest_val_cover_closest,
    "LatestValidityClosest": latest_validity_closest,
    "FullCoverage": full_coverage,
    "BestCentredCover": best_centred_cover,
    "LargestOverlap": largest_overlap,
    "LatestValCoverLatestValidity": latest_val_cover_latest_validity,
}


def select(
    policy: str,
    entries: Sequence[Candidate],
    start: datetime,
    stop: datetime,
    t0: float = 0.0,
    t1: float = 0.0,
    *,
    min_results: int | None = None,
    max_results: int | None = None,
) -> list[Candidate]:
    """Run ``policy`` (a task-table retrieval mode; trailing spaces ignored, as the reference did) over
    ``entries`` for the window [start - t0, stop + t1]."""
    name = policy.strip()
    try:
        chosen = POLICIES[name]
    except KeyError:
        raise UnknownPolicy(f"unknown selection policy {policy!r}; known: {', '.join(sorted(POLICIES))}") from None
    window = Window(start, stop).widened(t0, t1)
    if name == "ValIntersectWithoutDuplicates":
        return val_intersect_without_duplicates(entries, window, min_results, max_results)
    return chosen(entries, window)
