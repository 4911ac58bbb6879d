"""What every product-factory writer receives (see :mod:`shared.products.factory`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shared.products.synthetic import _Request


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

    def synthetic(
        self, *, start: datetime | None = None, stop: datetime | None = None, satellite: str | None = None
    ) -> _Request:
        """This request in :mod:`shared.products.synthetic`'s terms (its helpers take that); no stop: no span."""
        begin = (start or self.start).astimezone(UTC)
        end = stop or self.stop or begin
        return _Request(self.directory, self.product_type, begin, satellite or self.satellite, end - begin,
                        self.payload_size, self.seed)  # fmt: skip


Writer = Callable[[ProductRequest], Path]
