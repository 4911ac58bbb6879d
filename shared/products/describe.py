"""Describe a delivered product: what its name says, the metadata of its own files, and its integrity.

One entry point for operators (``refsys describe``) and tests: :func:`describe` takes a local directory,
a local zip, a local single-object product (EOF, DSIB, ...) or ``s3://bucket/key`` and returns a
:class:`Description`. Which document the metadata come from: the manifest of a directory product (for a
zip, the one inside); for an S2 item without ``manifest.safe`` its usual metadata files; for a product
that is one XML object (EOF, DSIB, AUX XML) the object itself; otherwise (DSDB chunks, JP2) the name only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.products.integrity import IntegrityReport, ProductFiles, manifest_of, open_product, verify_product
from shared.products.metadata import ProductMetadata, extract_metadata, metadata_from_name
from shared.products.naming import ProductName, recognise

if TYPE_CHECKING:
    from shared.storage.objects import ObjectStore

# Single-object packagings whose object is an XML document to read.
_XML_OBJECTS = frozenset({"EOF", "XML"})


@dataclass(frozen=True)
class Description:
    product: ProductName
    metadata: ProductMetadata
    integrity: IntegrityReport

    def to_json(self) -> dict[str, Any]:
        return {
            **identity_json(self.product),
            "attributes": {k: _json_value(v) for k, v in sorted(self.metadata.attributes.items())},
            "footprint": self.metadata.footprint,
            "integrity": self.integrity.to_json(),
        }


def identity_json(product: ProductName) -> dict[str, Any]:
    """The ``refsys identify`` contract: what a name tells, as JSON."""
    return {
        "name": product.name,
        "mission": product.mission,
        "satellite": product.satellite,
        "productType": product.product_type,
        "level": product.level,
        "family": product.family,
        "timeliness": product.timeliness,
        "validityStart": _json_value(product.validity_start),
        "validityStop": _json_value(product.validity_stop),
        "packaging": product.packaging,
        "nameFields": dict(product.name_fields),
    }


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def describe(location: str | Path, store: ObjectStore | None = None) -> Description:
    """Describe the product at ``location``. Raises :class:`~shared.products.naming.UnknownProduct` for a name
    that is no product, :class:`~shared.products.manifest.ManifestError` (naming the file) for a document that
    cannot be read, ``FileNotFoundError`` / ``ValueError`` for a location that does not exist or is malformed.
    """
    text = str(location).rstrip("/")
    product = recognise(text.rsplit("/", 1)[-1])
    if text.startswith("s3://") and not product.is_directory and product.packaging != "ZIP":
        if store is None:
            raise ValueError(f"{text}: an object store is needed to read s3:// locations")
        bucket, _, key = text[5:].partition("/")
        data = store.read(bucket, key)
        if data is None:
            raise FileNotFoundError(f"{text}: no such object")
        return _single_object(product, data)
    if text.startswith("s3://") and product.packaging == "ZIP":
        return _stored_zip(product, text, store)
    files = open_product(location, store)
    if files is None:  # a local file that is not a zip: one object
        return _single_object(product, Path(location).read_bytes())
    return _directory(product, files)


def _stored_zip(product: ProductName, location: str, store: ObjectStore | None) -> Description:
    """A zip in object storage, read in place by ranged GETs (see ``shared.products.zipped``)."""
    from shared.products.zipped import ZippedProduct, open_object

    if store is None:
        raise ValueError(f"{location}: an object store is needed to read s3:// locations")
    bucket, _, key = location[5:].partition("/")
    stored = store.head(bucket, key)
    if stored is None:
        raise FileNotFoundError(f"{location}: no such object")
    with open_object(store, bucket, stored) as file:
        return _directory(product, ZippedProduct(file, location))


def _single_object(product: ProductName, data: bytes) -> Description:
    if product.packaging in _XML_OBJECTS:
        metadata = extract_metadata(product, data, document_name=product.name)
    else:
        metadata = metadata_from_name(product)
    report = IntegrityReport(product.name, None, error=f"{product.packaging} product: no manifest to verify against")
    return Description(product, metadata, report)


def _directory(product: ProductName, files: ProductFiles) -> Description:
    inner = recognise(product.name[:-4]) if product.packaging == "ZIP" else product
    report = verify_product(files, product)
    metadata = metadata_from_name(product)
    for document in _documents(inner):
        data = files.read(document)
        if data is not None:
            metadata = extract_metadata(product, data, files.read, document_name=document)
            break
    return Description(product, metadata, report)


def _documents(product: ProductName) -> list[str]:
    manifest = manifest_of(product)
    fallbacks: list[str] = []
    if product.mission == "S2":
        from shared.products.s2_metadata import s2_documents

        fallbacks = s2_documents(product)
    return [*([manifest] if manifest else []), *fallbacks]
