"""The product catalog: its model, the store port and its SQLite and PostgreSQL+PostGIS backends.

Backends are imported by ``open_catalog`` on demand (psycopg only for a PostgreSQL URL).
"""

from shared.catalog.model import (
    PRODUCT_NAMESPACE,
    AttributeValue,
    CatalogEntry,
    ProductQuery,
    attribute_value_type,
    product_id,
)
from shared.catalog.store import CatalogStore, CatalogUnavailable, open_catalog

__all__ = [
    "PRODUCT_NAMESPACE",
    "AttributeValue",
    "CatalogEntry",
    "CatalogStore",
    "CatalogUnavailable",
    "ProductQuery",
    "attribute_value_type",
    "open_catalog",
    "product_id",
]
