"""Coarse grid cells of footprints: a spatial key a B-tree index can hold before the sensing time.

A footprint's cell is chosen by its bounding box: the level is the smallest cell size (10, 20, 40
or 80 degrees) that holds the box's width and height, the cell the one of that level holding the
box's south-west corner; a box too large for any (or cut at the antimeridian, whose parts span the
whole longitude range) is in the single world cell. The code is ``level * 1_000_000 + column * 1000
+ row``. The catalogs compute it in SQL, in a generated column (SQLite migration 0005, PostgreSQL
0006); ``covering_cells`` must agree with that expression.

A footprint of a level's size ``s`` whose box meets an area's box has its south-west corner at most
``s`` west and south of the area's: its cell is one of the level's cells from one column and row
before the area's corner to the area's far side. A margin in the level thresholds (a box must be
0.000001 degree smaller than the cell) keeps rounding from moving a corner across that bound.

On SQLite a footprint cut at the antimeridian gets a *wrapped* box when that is at most 80 degrees
wide: its western parts moved 360 degrees east, so the box ends beyond 180 (``wrapped_box``) and the
footprint has the cell of its size instead of the world cell. An area then also looks for
footprints 360 degrees east of each part near the antimeridian (``with_wrapped_copies``).
PostgreSQL keeps such footprints in the world cell (its box columns are generated from the geometry).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Box = tuple[float, float, float, float]  # (min_lon, max_lon, min_lat, max_lat)

_SIZES = (10, 20, 40, 80)  # degrees of the cells of levels 0 to 3
WORLD_CELL = len(_SIZES) * 1_000_000
_LAST = 999  # columns and rows are clamped to 0..999, as the SQL does


def _index(value: float, size: int) -> int:
    return min(max(math.floor(value / size), 0), _LAST)


def covering_cells(boxes: Iterable[Box]) -> list[int]:
    """The cells of every footprint whose box meets one of ``boxes`` ((min_lon, max_lon, min_lat,
    max_lat) each), in ascending order."""
    cells = {WORLD_CELL}
    for min_lon, max_lon, min_lat, max_lat in boxes:
        for level, size in enumerate(_SIZES):
            # No box starts east of 180 (a wrapped one ends east of it): no column beyond 360 / size.
            columns = range(_index(min_lon + 180 - size, size), min(_index(max_lon + 180, size), 360 // size) + 1)
            rows = range(_index(min_lat + 90 - size, size), _index(max_lat + 90, size) + 1)
            cells.update(level * 1_000_000 + column * 1000 + row for column in columns for row in rows)
    return sorted(cells)


WRAPPED_WIDTH = _SIZES[-1]  # a wider cut footprint is in the world cell
# A wrapped box's western part ends at most WRAPPED_WIDTH east of 180, i.e. by -100 degrees.
_WRAPPED_REACH = WRAPPED_WIDTH - 180


def wrapped_box(parts: Sequence[Box]) -> Box | None:
    """The box of a footprint cut at the antimeridian, its western parts moved 360 degrees east;
    None unless the footprint has parts on both sides of it, each wholly on one side, and that box
    is at most ``WRAPPED_WIDTH`` wide. It is tight like any box (each part's box is)."""
    east = [p for p in parts if p[0] >= 0]
    west = [p for p in parts if p[1] <= 0]
    if not east or not west or len(east) + len(west) != len(parts):
        return None
    min_lon, max_lon = min(p[0] for p in east), max(p[1] for p in west) + 360
    if max_lon - min_lon > WRAPPED_WIDTH:
        return None
    return min_lon, max_lon, min(p[2] for p in parts), max(p[3] for p in parts)


def with_wrapped_copies(boxes: Sequence[Box]) -> list[Box]:
    """An area's part boxes, and a copy 360 degrees east of each reaching -100 degrees or west of it:
    there it can meet the western part of a wrapped box."""
    return [*boxes, *((w + 360, e + 360, s, n) for w, e, s, n in boxes if w <= _WRAPPED_REACH)]
