"""The ingest step: a product delivered to the inbox is recognised, verified against its manifest,
moved to its family bucket and announced — or quarantined with its reason.

Crash safety: members are copied and verified before they leave the inbox, and the manifest moves
last, so a product is at any time either still findable in the inbox (and a redelivery resumes the
move) or complete in its family bucket.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from events import EventData, ObjectCreated, ProductIdentity, ProductIngested, ProductRejected, RejectionReason
from shared.catalog.model import product_id
from shared.products import ManifestError, ProductName, UnknownProduct, bucket_for, read_inventory, recognise, root_of
from shared.runtime import Reject
from shared.settings import Settings
from shared.storage.objects import ObjectStore, StoredObject

log = logging.getLogger(__name__)

# Object metadata on the moved manifest naming the notification that completed the product, so only
# a redelivery of that notification announces it again (at-least-once without a storm of duplicates).
INGESTED_BY = "refsys-ingested-by"


@dataclass(frozen=True)
class Inbox:
    store: ObjectStore
    settings: Settings

    def on_object_created(self, event: ObjectCreated) -> EventData | None:
        if event.bucket != self.settings.inbox_bucket:
            raise Reject(f"ingest only watches the inbox bucket {self.settings.inbox_bucket!r}, not {event.bucket!r}")
        root = root_of(event.key)
        if root is None:
            return self._reject_unrecognised(event)
        try:
            product = recognise(root.rsplit("/", 1)[-1])
        except UnknownProduct as exc:  # root_of and recognise disagree only on odd names
            return self._reject_unrecognised(event, str(exc))
        if product.manifest_name is None:
            return self._ingest_single_object(event, product, root)
        return self._ingest_directory(event, product, root)

    # -- products delivered as one object (EOF, XML, zip) ---------------------------------------

    def _ingest_single_object(self, event: ObjectCreated, product: ProductName, key: str) -> EventData | None:
        inbox, target = self.settings.inbox_bucket, self._bucket(product)
        current = self.store.head(inbox, key)
        if current is None:
            return None  # already moved by an earlier delivery
        self._move(inbox, current, target)
        return self._ingested(product, target, key, current.size, current.etag, None, event)

    # -- products delivered as a directory of objects (SAFE, SEN3) -------------------------------

    def _ingest_directory(self, event: ObjectCreated, product: ProductName, root: str) -> EventData | None:
        inbox, target = self.settings.inbox_bucket, self._bucket(product)
        manifest_key = f"{root}/{product.manifest_name}"
        waiting = {o.key: o for o in self.store.list(inbox, root + "/")}
        if not waiting:
            return self._announce_again(event, product, target, root, manifest_key)
        manifest = self.store.read(inbox, manifest_key)
        if manifest is None:
            log.info("waiting for the manifest of %s", product.name)
            return None
        try:
            inventory = read_inventory(manifest)
        except ManifestError as exc:
            return self._quarantine(
                product.name, root, list(waiting.values()), RejectionReason.CORRUPT_MANIFEST, str(exc)
            )

        missing, wrong = [], []
        moved = {o.key: o for o in self.store.list(target, root + "/")}  # members moved before a crash
        for item in inventory:
            key = f"{root}/{item.path}"
            found = waiting.get(key) or moved.get(key)
            if found is None:
                missing.append(item.path)
            elif item.size is not None and found.size != item.size:
                wrong.append(f"{item.path} (size {found.size}, manifest says {item.size})")
        if missing:
            log.info("%s incomplete: %d of %d members missing", product.name, len(missing), len(inventory))
            return None
        for item in inventory:
            key = f"{root}/{item.path}"
            if key in waiting and item.md5 and self.store.md5(inbox, key) != item.md5:
                wrong.append(f"{item.path} (MD5 differs from the manifest)")
        if wrong:
            detail = "members do not match the manifest: " + ", ".join(wrong)
            return self._quarantine(
                product.name, root, list(waiting.values()), RejectionReason.CHECKSUM_MISMATCH, detail
            )

        size = sum(o.size for o in {**moved, **waiting}.values())
        for obj in waiting.values():
            if obj.key != manifest_key:
                self._move(inbox, obj, target)
        self.store.client.put_object(
            Bucket=target, Key=manifest_key, Body=manifest, Metadata={INGESTED_BY: event.event_id()}
        )
        self.store.delete(inbox, manifest_key)
        return self._ingested(product, target, root + "/", size, _md5(manifest), manifest_key, event)

    def _announce_again(
        self, event: ObjectCreated, product: ProductName, target: str, root: str, manifest_key: str
    ) -> EventData | None:
        """Nothing left in the inbox: announce again only on a redelivery of the completing notification."""
        try:
            head = self.store.client.head_object(Bucket=target, Key=manifest_key)
        except self.store.client.exceptions.ClientError:
            return None
        if head.get("Metadata", {}).get(INGESTED_BY) != event.event_id():
            return None
        manifest = self.store.read(target, manifest_key) or b""
        size = sum(o.size for o in self.store.list(target, root + "/"))
        return self._ingested(product, target, root + "/", size, _md5(manifest), manifest_key, event)

    # -- shared steps ----------------------------------------------------------------------------

    def _bucket(self, product: ProductName) -> str:
        bucket = bucket_for(product.family, prefix=self.settings.bucket_prefix)
        self.store.ensure_bucket(bucket)
        return bucket

    def _move(self, source_bucket: str, obj: StoredObject, bucket: str) -> None:
        """Copy, verify the copy, then delete the original: never lose the only copy."""
        self.store.copy(source_bucket, obj.key, bucket, obj.key)
        copied = self.store.head(bucket, obj.key)
        if copied is None or copied.size != obj.size:
            raise RuntimeError(f"copy of {obj.key} to {bucket} did not verify")
        self.store.delete(source_bucket, obj.key)

    def _ingested(
        self,
        product: ProductName,
        bucket: str,
        key: str,
        size: int,
        checksum: str | None,
        manifest_key: str | None,
        event: ObjectCreated,
    ) -> ProductIngested:
        log.info("ingested %s into %s", product.name, bucket)
        return ProductIngested(
            product=identity(product),
            bucket=bucket,
            key=key,
            content_length=size,
            checksum=checksum,
            content_type="application/zip" if product.packaging == "ZIP" else "application/octet-stream",
            manifest_key=manifest_key,
            inbox_time=event.event_time,
            ingestion_time=datetime.now(UTC),
        )

    def _reject_unrecognised(self, event: ObjectCreated, why: str | None = None) -> EventData | None:
        current = self.store.head(event.bucket, event.key)
        if current is None:
            return None
        detail = why or f"{event.key!r} is not the name of a Sentinel product, nor inside one"
        return self._quarantine(event.key, event.key, [current], RejectionReason.UNRECOGNISED, detail)

    def _quarantine(
        self, name: str, root: str, objects: list[StoredObject], reason: RejectionReason, detail: str
    ) -> ProductRejected:
        """Move the delivery aside with a reason document beside it: quarantined, never deleted."""
        bucket = self.settings.quarantine_bucket
        self.store.ensure_bucket(bucket)
        now = datetime.now(UTC)
        reason_key = f"{root}.reason.json"
        document = {"name": name, "reason": reason.value, "detail": detail, "time": now.isoformat()}
        self.store.put(bucket, reason_key, json.dumps(document, indent=2).encode(), "application/json")
        for obj in objects:
            self._move(self.settings.inbox_bucket, obj, bucket)
        log.warning("quarantined %s: %s", name, detail)
        mission = name[:2] if name[:2] in ("S1", "S2", "S3") else None
        return ProductRejected(
            name=name,
            reason=reason,
            detail=detail,
            quarantine_bucket=bucket,
            quarantine_key=reason_key,
            rejected_time=now,
            mission=mission,
        )


def identity(product: ProductName) -> ProductIdentity:
    return ProductIdentity(
        product_id=product_id(product.name),
        name=product.name,
        mission=product.mission,
        satellite=product.satellite,
        product_type=product.product_type,
        level=product.level,
        family=product.family,
    )


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
