"""The catalog step: describe an ingested product from its own files and store it in the catalog.

A product whose metadata cannot be read (a document that is not well-formed XML, a time that is no time)
is found bad here, after ingestion: it is quarantined from its family bucket with the file and the parser's
message, and the reply is ``product.rejected``, as ingestion does.

Such a product used to end as a dead letter, invisible to ``refsys status``: the announcement is delivered
at least once (and the Trigger delivers two at a time), so a second delivery found the document gone from
the family bucket — moved to quarantine by the first — and asked to be retried until it was dead-lettered.
A delivery that finds the product already quarantined by this step now answers the same rejection.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from events import ProductCataloged, ProductIngested, ProductRejected, RejectionReason
from shared.catalog.announce import cataloged
from shared.catalog.archives import ArchiveChanged, archives_at, with_delivery
from shared.catalog.model import CatalogEntry, product_id
from shared.catalog.store import CatalogStore, CatalogUnavailable
from shared.ingestion.quarantine import REASON_SUFFIX, Quarantined, quarantine
from shared.lifecycle.rules import retention_rules
from shared.observability.metrics import observe_timeliness
from shared.products import (
    ManifestError,
    ProductName,
    UnknownProduct,
    bucket_for,
    extract_metadata,
    metadata_from_name,
    recognise,
)
from shared.products.metadata import ProductMetadata
from shared.products.zipped import describe_object, is_zip_of
from shared.runtime import Reject, RetryLater
from shared.settings import Settings
from shared.storage.objects import ObjectStore

log = logging.getLogger(__name__)

XML_PACKAGINGS = ("EOF", "XML")


@dataclass(frozen=True)
class Cataloguer:
    store: ObjectStore
    catalog: CatalogStore
    settings: Settings

    def on_product_ingested(self, event: ProductIngested) -> ProductCataloged | ProductRejected:
        product = self._trusted(event)
        try:
            existing = self.catalog.get(event.product.product_id)
        except CatalogUnavailable as exc:
            raise RetryLater(f"catalog unavailable: {exc}") from exc
        if existing is not None and not existing.online and not self._stored(event):
            # Announced again after its eviction (a redelivery, a replay): nothing to describe, nothing changes.
            log.info("%s was evicted: its announcement again changes nothing", existing.name)
            return cataloged(existing)
        # The manifest, or the product itself when it is one XML document (EOF, DSIB, ...): never the payload.
        document_key = event.manifest_key or (event.key if product.packaging in XML_PACKAGINGS else None)
        if is_zip_of(event.key.rsplit("/", 1)[-1], product):  # a SAFE/SEN3 stored as one zip
            described = self._describe_zipped(event, product)
            if isinstance(described, ProductRejected):
                return described
            metadata = described
        elif document_key is None:
            metadata = metadata_from_name(product)
        else:
            document = self.store.read(event.bucket, document_key)
            if document is None:
                if (rejected := self._already_rejected(event)) is not None:
                    return rejected  # by an earlier or concurrent delivery (asked only then: no request more)
                raise RetryLater(f"{event.bucket}/{document_key} not found (yet)")
            root = event.key.rstrip("/")
            try:
                metadata = extract_metadata(
                    product,
                    document,
                    read=lambda path: self.store.read(event.bucket, f"{root}/{path}"),
                    document_name=document_key,
                )
            except ManifestError as exc:
                return self._reject(event, f"cannot describe {product.name}: {exc}")
            except (ValueError, LookupError, AttributeError, TypeError) as exc:
                # An extractor choking on a document that is not what its type promises (a missing element,
                # a number that is none): the bytes will not change, so a retry cannot help. Storage
                # failures are none of these and still retry.
                log.warning("metadata extraction failed on %s: %s: %s", product.name, type(exc).__name__, exc)
                return self._reject(event, f"cannot describe {product.name}: {type(exc).__name__}: {exc}")
        now = datetime.now(UTC)
        try:
            entry = CatalogEntry(
                id=event.product.product_id,
                name=product.name,
                mission=product.mission,
                satellite=product.satellite,
                product_type=product.product_type,
                level=product.level,
                family=product.family,
                bucket=event.bucket,
                key=event.key,
                content_length=event.content_length,
                checksum=event.checksum,
                content_type=event.content_type,
                validity_start=metadata.validity_start or product.validity_start,
                validity_stop=metadata.validity_stop or product.validity_stop,
                footprint=metadata.footprint,
                attributes=metadata.attributes,
                publication_time=now,
                modification_time=now,
                inbox_time=event.inbox_time,
                ingestion_time=event.ingestion_time,
            )
            if existing is not None and (existing.online or not self._stored(entry)):
                # What ingestion does not know (lifecycle state, quicklooks) stays as it is; the store keeps
                # the publication time, and a redelivery that changes nothing writes nothing.
                entry = replace(
                    entry, eviction_time=existing.eviction_time, online=existing.online, quicklooks=existing.quicklooks
                )
            else:
                # A new product's EvictionDate: its first matching retention rule from now (None: never). So for an
                # evicted product delivered again: its bytes are back, it is online again for its rule's time.
                rules = retention_rules(self.settings.retention_rules_file)
                entry = replace(entry, eviction_time=rules.verdict(product.family, product.name, now).eviction_time)
            # A directory product's zip (length, MD5: what $value sends) and the browse images among its objects.
            entry = with_delivery(self.store, archives_at(self.settings.catalog_url), entry)
            changed = self.catalog.upsert(entry)
        except CatalogUnavailable as exc:
            raise RetryLater(f"catalog unavailable: {exc}") from exc
        except ArchiveChanged as exc:  # an object rewritten while it was read: read it again later
            raise RetryLater(str(exc)) from exc
        log.info("%s %s", "cataloged" if changed else "already cataloged", product.name)
        if existing is None:
            observe_timeliness(product.product_type, entry.validity_stop, entry.inbox_time, entry.publication_time)
        return cataloged(entry if existing is None else replace(entry, publication_time=existing.publication_time))

    def _trusted(self, event: ProductIngested) -> ProductName:
        """The product the event announces, if the event says only what ingestion could have said.

        The catalog used to take bucket and key as they came: a ``product.ingested`` pointing at
        ``rs-quarantine`` repointed an entry, and its ``$value`` at the quarantined object. Ingestion puts a
        product into its family bucket under its own name (after the inbox prefix it arrived under): ``<name>/``
        with ``<name>/<manifest>`` for a directory product, ``<name>`` for one object. Anything else is refused
        (422, dead-lettered with the reason) and changes nothing.
        """
        try:
            product = recognise(event.product.name)
        except UnknownProduct as exc:
            raise Reject(f"{event.product.name[:200]!r} is not a product name: {exc}") from exc
        if event.product.product_id != product_id(product.name) or event.product.family != product.family:
            raise Reject(f"the identity announced for {product.name} is not the one its name gives")
        family_bucket = bucket_for(product.family, prefix=self.settings.bucket_prefix)
        if event.bucket != family_bucket:
            raise Reject(f"{product.name} belongs in bucket {family_bucket!r}, not {event.bucket[:200]!r}")
        delivered = event.key.rsplit("/", 1)[-1]
        zipped = is_zip_of(delivered, product)  # X.SAFE stored as the zip it came in (X.SAFE.zip, or X.zip)
        own = delivered if zipped else f"{product.name}/" if product.is_directory else product.name
        prefix = event.key.removesuffix(own)
        segments = prefix.split("/")[:-1]  # the inbox prefix it arrived under, if any ('' when none)
        if (
            not event.key.endswith(own)
            or (prefix and not prefix.endswith("/"))
            or any(segment in ("", ".", "..") for segment in segments)
        ):
            raise Reject(f"key {event.key[:200]!r} is not the key of {product.name} (expected .../{own})")
        manifest_key = f"{event.key}{product.manifest_name}" if product.manifest_name and not zipped else None
        if event.manifest_key != manifest_key:
            raise Reject(f"manifest key {str(event.manifest_key)[:200]!r} is not {product.name}'s ({manifest_key!r})")
        return product

    def _describe_zipped(self, event: ProductIngested, product: ProductName) -> ProductMetadata | ProductRejected:
        """A SAFE/SEN3 stored as the zip it was delivered in, described from the manifest inside it, read in
        place by ranged GETs (footprint and every attribute, as its unzipped twin gets): see products.zipped."""
        stored = self.store.head(event.bucket, event.key)
        if stored is None:
            if (rejected := self._already_rejected(event)) is not None:
                return rejected
            raise RetryLater(f"{event.bucket}/{event.key} not found (yet)")
        try:
            return describe_object(self.store, event.bucket, stored, product)
        except ManifestError as exc:
            return self._reject(event, f"cannot describe {product.name}: {exc}")
        except (ValueError, LookupError, AttributeError, TypeError) as exc:  # as for a manifest: bytes won't change
            log.warning("metadata extraction failed on %s: %s: %s", product.name, type(exc).__name__, exc)
            return self._reject(event, f"cannot describe {product.name}: {type(exc).__name__}: {exc}")

    def _stored(self, entry: CatalogEntry | ProductIngested) -> bool:
        """Whether the product's objects are in its bucket (an evicted product's are not, until delivered again)."""
        if entry.key.endswith("/"):
            return next(iter(self.store.iter(entry.bucket, entry.key, limit=1)), None) is not None
        return self.store.head(entry.bucket, entry.key) is not None

    def _already_rejected(self, event: ProductIngested) -> ProductRejected | None:
        """The rejection an earlier delivery of this announcement made: the quarantine's reason document of a
        product moved there from this bucket (the reply's id is derived from what it holds: the same)."""
        root = event.key.rstrip("/")
        body = self.store.read(self.settings.quarantine_bucket, f"{root}{REASON_SUFFIX}")
        if body is None:
            return None
        try:
            found = Quarantined.from_document(json.loads(body))
            source = json.loads(body).get("from")
        except (ValueError, KeyError, TypeError):
            return None
        if source != event.bucket or found.name != event.product.name:
            return None  # another story: quarantined on its way in, or another product's root
        return ProductRejected(
            name=found.name,
            reason=RejectionReason(found.reason),
            detail=found.detail,
            quarantine_bucket=self.settings.quarantine_bucket,
            quarantine_key=f"{root}{REASON_SUFFIX}",
            rejected_time=datetime.fromisoformat(found.time),
            mission=found.name[:2] if found.name[:2] in ("S1", "S2", "S3") else None,
        )

    def _reject(self, event: ProductIngested, detail: str) -> ProductRejected:
        """Quarantine the product from its family bucket: bad metadata is found here, after ingestion."""
        root = event.key.rstrip("/")
        objects = self.store.list(event.bucket, event.key) if event.key.endswith("/") else []
        if not objects and (single := self.store.head(event.bucket, event.key)) is not None:
            objects = [single]
        reason = RejectionReason.METADATA_UNREADABLE
        return quarantine(self.store, self.settings, event.product.name, root, event.bucket, objects, reason, detail)
