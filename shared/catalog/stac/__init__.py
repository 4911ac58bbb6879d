"""The STAC API of the catalog: collections, items and item search over the same rows as OData."""
