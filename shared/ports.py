"""The ports a function process uses, built once from the settings (clients are costly to create).

Imports happen on first use, so a function pays only for the ports it touches (cold start).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.bus.idempotency import ProcessedEvents
    from shared.bus.publisher import SinkPublisher
    from shared.catalog.store import CatalogStore
    from shared.ingestion.ledger import InboxLedger
    from shared.operations.archive import EventArchive
    from shared.storage.objects import ObjectStore


@lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    from shared.storage.objects import ObjectStore

    return ObjectStore(get_settings())


@lru_cache(maxsize=1)
def catalog() -> CatalogStore:
    from shared.catalog.store import StoreTuning, open_catalog

    settings = get_settings()
    tuning = StoreTuning(max_connections=settings.catalog_pool_size, sqlite_cache_mib=settings.catalog_sqlite_cache_mib)
    return open_catalog(settings.catalog_url, tuning)


@lru_cache(maxsize=1)
def sink() -> SinkPublisher:
    from shared.bus.publisher import SinkPublisher
    from shared.security.senders import sender_headers

    settings = get_settings()
    if not settings.sink:
        raise RuntimeError("no event sink configured: Knative injects K_SINK (a SinkBinding); set K_SINK locally")
    return SinkPublisher(settings.sink, headers=sender_headers(settings.event_secret))


@lru_cache(maxsize=1)
def processed_events() -> ProcessedEvents:
    from shared.bus.idempotency import open_processed_events

    return open_processed_events(get_settings().catalog_url)


@lru_cache(maxsize=1)
def inbox_ledger() -> InboxLedger:
    from shared.catalog.database import CatalogDatabase
    from shared.ingestion.ledger import InboxLedger

    settings = get_settings()
    return InboxLedger(CatalogDatabase(settings.catalog_url), lease_s=settings.ingest_lease_s)


@lru_cache(maxsize=1)
def event_archive() -> EventArchive:
    """The event archive: the catalog database's table on a cluster, the local broker's queue on a laptop."""
    from shared.operations.archive import EventArchive

    settings = get_settings()
    return EventArchive(settings.event_archive_url or settings.catalog_url)
