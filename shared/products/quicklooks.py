"""The browse images a product carries, found among its files when it is cataloged.

- Sentinel-1 SAFE (level 1 and 2): ``preview/quick-look.png`` (the manifest lists it as ``quicklook``).
- Sentinel-2 SAFE (L1C, L2A): the preview image ``*_PVI.jp2`` in a granule's ``QI_DATA`` (``MTD_TL.xml``
  names it ``PVI_FILENAME``); products of the old format (one folder per granule) may hold several.
- Sentinel-3 SEN3: the products carry no browse image (the team's samples have none; CDSE makes its own),
  so only a file that calls itself one (``*quicklook*``/``*browse*`` as PNG or JPEG) is taken.

Paths are relative to the product's root. A mission without rules has no quicklooks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_RULES: dict[str, tuple[re.Pattern[str], ...]] = {
    "S1": (re.compile(r"preview/quick-look\.png"),),
    "S2": (re.compile(r"(?:.+/)?QI_DATA/[^/]*PVI[^/]*\.jp2"),),
    "S3": (re.compile(r"(?:.+/)?[^/]*(?:quicklook|quick-look|browse)[^/]*\.(?:png|jpe?g)", re.IGNORECASE),),
}


def find_quicklooks(mission: str, paths: Iterable[str]) -> tuple[str, ...]:
    """The paths among ``paths`` that are browse images of a product of ``mission`` (``S1``...), sorted."""
    rules = _RULES.get(mission, ())
    return tuple(sorted(p for p in set(paths) if any(rule.fullmatch(p) for rule in rules)))


__all__ = ["find_quicklooks"]
