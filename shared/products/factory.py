"""The product factory: any product type a chain consumes or produces, written self-consistently.

:func:`make_product` is what the processor simulators write their outputs with and what ``refsys chain``
makes its uploads with: a product of ``product_type`` for the sensing/validity window [start, stop], with a
real-shaped name, a manifest listing every file with its size and digest, and the metadata the catalog and
the preparation step read (footprint, orbit, datatake, slice/segment flags, datastrip and detector, ...).
The writers live per mission in :mod:`shared.products.factory_s1`, ``factory_s2`` and ``factory_s3``; each
exposes ``WRITERS``: (type pattern, writer) pairs, first match wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.products import factory_s1, factory_s2, factory_s3
from shared.products.factory_common import ProductRequest, Writer

WRITERS: tuple[tuple[Any, Writer], ...] = (*factory_s1.WRITERS, *factory_s2.WRITERS, *factory_s3.WRITERS)


def make_product(
    directory: Path,
    product_type: str,
    start: datetime,
    stop: datetime | None,
    *,
    satellite: str = "A",
    seed: int = 0,
    payload_size: int = 4096,
    footprint: Sequence[tuple[float, float]] | None = None,
    options: Mapping[str, object] | None = None,
) -> Path:
    """Write one product of ``product_type`` under ``directory``; its path (directory or single file).

    ``stop`` None: an open-ended validity (AUX_CAL and the like). ``footprint``: (lon, lat) ring to use
    instead of the orbit model's (outputs inherit their inputs' footprint). ``options``: per-type knobs
    documented by each writer (``slicing``, ``datatake``, ``datastrip``, ``detector``, ...).
    Raises ``ValueError`` for a type no writer knows.
    """
    if start.tzinfo is None or (stop is not None and stop.tzinfo is None):
        raise ValueError("start and stop must be timezone-aware")
    request = ProductRequest(
        Path(directory), product_type, start, stop, satellite, seed, payload_size,
        None if footprint is None else tuple(footprint), dict(options or {}),
    )  # fmt: skip
    for pattern, writer in WRITERS:
        if pattern.fullmatch(product_type):
            return writer(request)
    raise ValueError(f"the product factory has no writer for {product_type!r}")


def supported(product_type: str) -> bool:
    return any(pattern.fullmatch(product_type) for pattern, _ in WRITERS)
