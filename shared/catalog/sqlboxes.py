"""Spatial tests decided on a row's box columns alone, before any footprint is read."""

from __future__ import annotations

from shared.catalog.filters import Spatial
from shared.catalog.grid import with_wrapped_copies
from shared.catalog.sqlfilter import Dialect, Fragment, joined

_SIDE_MARGIN = 0.0001  # degree


def certainly_passing(tests: tuple[Spatial, ...], dialect: Dialect) -> Fragment:
    """SQL true for rows that certainly pass the deferred exact tests, decided on the box columns alone.
    False when the tests are not the one Intersects test, or its area has no rectangular part.
    Only the others need the exact test.

    A footprint's box is tight: the footprint has a point on each of its four sides. So when a
    rectangular part of the area holds a whole side of the box, it holds a point of the footprint,
    and the two intersect. That is every box inside the rectangle, and every box crossing one of its
    sides; only those across a corner, or wider than the rectangle, are left to the exact test.
    The side must lie ``_SIDE_MARGIN`` inside the rectangle's far side: boxes SQLite took from its
    former R*Tree (migration 0004) are rounded outwards to 32-bit floats, by at most 0.000015 degree.
    """
    import shapely

    never: Fragment = ("0" if dialect.sqlite else "FALSE", [])
    if len(tests) != 1 or tests[0].relation != "intersects":
        return never
    ph = dialect.placeholder
    # The west or east side of the box inside the rectangle, or its south or north side.
    holds_a_side = (
        f"((p.min_lat >= {ph} AND p.max_lat <= {ph}"
        f" AND (p.min_lon BETWEEN {ph} AND {ph} OR p.max_lon BETWEEN {ph} AND {ph}))"
        f" OR (p.min_lon >= {ph} AND p.max_lon <= {ph}"
        f" AND (p.min_lat BETWEEN {ph} AND {ph} OR p.max_lat BETWEEN {ph} AND {ph})))"
    )
    alternatives: list[str] = []
    params: list[float] = []
    m = _SIDE_MARGIN
    for part in shapely.get_parts(shapely.from_wkt(tests[0].wkt)):
        x0, y0, x1, y1 = part.bounds
        if not (part.geom_type == "Polygon" and part.area > 0 and part.area == part.envelope.area):
            continue
        spans = [(x0, x1)]
        if dialect.sqlite:  # the rectangle 360 degrees east, for wrapped boxes (see ``grid``): only
            # their east side can lie there, as it starts east of 180, where no other box reaches.
            spans += [(max(w, 180 + m), e) for w, e, _, _ in with_wrapped_copies([(x0, x1, y0, y1)])[1:]]
        for w, e in spans:
            alternatives.append(holds_a_side)
            params.extend((y0, y1, w, e - m, w + m, e, w, e, y0, y1 - m, y0 + m, y1))
    if not alternatives:
        return never
    return joined(alternatives, " OR "), params
