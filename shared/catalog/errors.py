"""What a catalog store raises, whichever database is behind it."""


class CatalogUnavailable(Exception):
    """The catalog database cannot be reached or is overloaded (HTTP 503 upstream; retry later)."""
