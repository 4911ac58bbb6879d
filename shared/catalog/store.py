"""The catalog store port: one interface, and a registry of its backends by URL scheme.

``open_catalog(url)`` picks the backend from the URL scheme. The registry names each backend by
module and class, imported only when a catalog of that scheme is opened: a function that never
touches PostgreSQL never imports psycopg, and no backend is imported by this module (the backends
import the model, the errors and the pool, never the port).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Protocol

from shared.catalog.errors import CatalogUnavailable
from shared.catalog.filters import Filter, Selection
from shared.catalog.model import CatalogEntry, ProductQuery, ProductTypeSummary
from shared.catalog.pool import StoreTuning

# URL scheme -> "module:Class" of the backend; each class is built from the URL, and a StoreTuning when given.
BACKENDS: dict[str, str] = {
    "sqlite": "shared.catalog.sqlite:SqliteCatalog",
    "postgresql": "shared.catalog.postgres:PostgresCatalog",
    "postgres": "shared.catalog.postgres:PostgresCatalog",
}


class CatalogStore(Protocol):
    def upsert(self, entry: CatalogEntry) -> bool:
        """Insert or replace by id. True when something was inserted or changed; False when the
        identical entry was already there (publication_time and modification_time aside: a
        redelivered event changes nothing). An existing entry keeps its publication_time."""
        ...

    def upsert_many(self, entries: Iterable[CatalogEntry]) -> int:
        """``upsert`` of each entry in one transaction (all or none); the number inserted or changed."""
        ...

    def get(self, product_id: str) -> CatalogEntry | None: ...

    def get_by_name(self, name: str) -> CatalogEntry | None: ...

    def search(self, query: ProductQuery) -> list[CatalogEntry]: ...

    def count(self, query: ProductQuery) -> int:
        """Number of products matching the query's filters (limit and offset ignored)."""
        ...

    def find(self, selection: Selection) -> list[CatalogEntry]:
        """One page of the products matching a compiled query language's filter (see ``filters``)."""
        ...

    def count_where(self, where: Filter | None) -> int:
        """Number of products matching ``where`` (all products for None)."""
        ...

    def find_counted(self, selection: Selection) -> tuple[list[CatalogEntry], int]:
        """``find`` and ``count_where`` of the selection's filter (``$count=true``), in one pass
        over the candidates where the backend can."""
        ...

    def product_types(self) -> list[ProductTypeSummary]:
        """Per mission and product type: how many products, their validity extent and footprints' box;
        sorted by mission then product type (STAC collections and their extents)."""
        ...

    def ping(self) -> None:
        """Raise CatalogUnavailable when the database cannot be reached."""
        ...

    def close(self) -> None: ...


def open_catalog(url: str, tuning: StoreTuning | None = None) -> CatalogStore:
    """Open (and migrate) the catalog at ``url``.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``,
    ``postgresql://user@host:port/db`` (or ``postgres://``). Raises CatalogUnavailable when the
    database cannot be reached, ValueError for a URL it does not understand. ``tuning`` bounds the
    connections and the SQLite page cache (default ``StoreTuning()``; functions pass their settings).
    """
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ValueError(f"catalog URL {url!r} has no scheme; expected sqlite:///path.db or postgresql://...")
    backend = BACKENDS.get(scheme.lower())
    if backend is None:
        raise ValueError(
            f"unsupported catalog URL scheme {scheme!r} in {url!r}; expected one of {', '.join(sorted(BACKENDS))}"
        )
    module, _, name = backend.partition(":")
    backend_class = getattr(importlib.import_module(module), name)
    store: CatalogStore = backend_class(url) if tuning is None else backend_class(url, tuning)
    return store


__all__ = ["BACKENDS", "CatalogStore", "CatalogUnavailable", "StoreTuning", "open_catalog"]
