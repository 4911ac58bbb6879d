"""Product knowledge: recognise Sentinel products by name, read their manifests, extract catalogue metadata.

- :mod:`~shared.products.naming`: :func:`recognise` / :func:`root_of` and the pattern registry that the
  per-mission modules (:mod:`~shared.products.s1`, ``s2``, ``s3``) fill;
- :mod:`~shared.products.families`: reference families and their buckets (:func:`bucket_for`);
- :mod:`~shared.products.manifest`: the data objects a manifest lists (:func:`read_inventory`);
- :mod:`~shared.products.metadata`: validity, footprint and PRIP attributes (:func:`extract_metadata`);
- :mod:`~shared.products.footprint`: manifest coordinates -> RFC 7946 GeoJSON, antimeridian split;
- :mod:`~shared.products.xml`: safe XML parsing (defusedxml);
- :mod:`~shared.products.integrity`: a product checked against its manifest (:func:`verify_product`);
- :mod:`~shared.products.describe`: name + metadata + integrity of a delivered product (:func:`describe`);
- :mod:`~shared.products.stac`: the metadata as a STAC item (:func:`to_stac_item`);
- :mod:`~shared.products.sessions`, ``earth_explorer``, ``s2_metadata``: EDRS/CADIP sessions, Earth Explorer
  headers, S2 metadata files;
- :mod:`~shared.products.cli`: ``refsys identify`` / ``refsys describe``;
- :mod:`~shared.products.synthetic`: self-consistent fake products for tests (:func:`write_product`);
- :mod:`~shared.products.reinflate`: the real sample products made whole (:func:`reinflate`,
  :func:`reinflate_samples`) and many products of a real shape (:func:`write_real_shape`).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.products.families import FAMILIES, bucket_for
    from shared.products.integrity import IntegrityReport, open_product, verify_product
    from shared.products.manifest import DataObject, ManifestError, read_inventory
    from shared.products.metadata import ProductMetadata, extract_metadata, metadata_from_name
    from shared.products.naming import ProductName, UnknownProduct, recognise, root_of
    from shared.products.reinflate import reinflate, reinflate_samples, sample_products, write_real_shape
    from shared.products.synthetic import write_product

# Imported on first use (PEP 562): importing one module of the package (the STAC mapping, the names) must not
# load them all; metadata and integrity bring shapely and numpy (~110 ms of a function's cold start).
_WHERE = {
    "FAMILIES": "families", "bucket_for": "families",
    "IntegrityReport": "integrity", "open_product": "integrity", "verify_product": "integrity",
    "DataObject": "manifest", "ManifestError": "manifest", "read_inventory": "manifest",
    "ProductMetadata": "metadata", "extract_metadata": "metadata", "metadata_from_name": "metadata",
    "ProductName": "naming", "UnknownProduct": "naming", "recognise": "naming", "root_of": "naming",
    "reinflate": "reinflate", "reinflate_samples": "reinflate", "sample_products": "reinflate",
    "write_real_shape": "reinflate",
    "write_product": "synthetic",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "FAMILIES",
    "DataObject",
    "IntegrityReport",
    "ManifestError",
    "ProductMetadata",
    "ProductName",
    "UnknownProduct",
    "bucket_for",
    "extract_metadata",
    "metadata_from_name",
    "open_product",
    "read_inventory",
    "recognise",
    "reinflate",
    "reinflate_samples",
    "root_of",
    "sample_products",
    "verify_product",
    "write_product",
    "write_real_shape",
]
