"""What every product-factory writer receives (see :mod:`shared.products.factory`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class ProductRequest:
    directory: Path
    product_type: str
    start: datetime
    stop: datetime | None  # None: open-ended validity
    satellite: str
    seed: int
    payload_size: int
    footprint: tuple[tuple[float, float], ...] | None  # (lon, lat) ring, or None: the orbit model's
    options: dict[str, object] = field(default_factory=dict)


Writer = Callable[[ProductRequest], Path]
