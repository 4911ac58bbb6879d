"""The product events a catalog entry makes: what it is, and its announcement as cataloged."""

from __future__ import annotations

from events import ProductCataloged
from events.models import ProductIdentity
from shared.catalog.model import CatalogEntry


def identity_of(entry: CatalogEntry) -> ProductIdentity:
    """What a cataloged product is, as every product event says it."""
    return ProductIdentity(
        product_id=entry.id,
        name=entry.name,
        mission=entry.mission,
        satellite=entry.satellite,
        product_type=entry.product_type,
        level=entry.level,
        family=entry.family,
    )


def cataloged(entry: CatalogEntry) -> ProductCataloged:
    """The announcement of a catalog entry, as the catalog step makes it (a reprocessing makes it again)."""
    return ProductCataloged(
        product=identity_of(entry),
        bucket=entry.bucket,
        key=entry.key,
        content_length=entry.content_length,
        validity_start=entry.validity_start,
        validity_stop=entry.validity_stop,
        publication_time=entry.publication_time,
    )
