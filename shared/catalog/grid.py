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
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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
            columns = range(_index(min_lon + 180 - size, size), _index(max_lon + 180, size) + 1)
            rows = range(_index(min_lat + 90 - size, size), _index(max_lat + 90, size) + 1)
            cells.update(level * 1_000_000 + column * 1000 + row for column in columns for row in rows)
    return sorted(cells)
