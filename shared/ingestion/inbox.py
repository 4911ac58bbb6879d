"""The ingest step: a product delivered to the inbox is recognised, verified against its manifest,
moved to its family bucket and announced — or quarantined with its reason.

Crash safety: members are copied and verified before they leave the inbox, and the manifest moves
last, so a product is at any time either still findable in the inbox (and a redelivery resumes the
move) or complete in its family bucket. The same product delivered again is recognised by its
manifest: identical content is announced again under the same event id (the next step deduplicates
by id); different content under the same name is a conflict and is kept aside, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from events import EventData, ObjectCreated, ProductIdentity, ProductIngested, ProductRejected, RejectionReason
from shared.catalog.model import product_id
from shared.products import (
    ManifestError,
    ProductName,
    UnknownProduct,
    bucket_for,
    read_inventory,
    recognise,
    root_of,
    verify_product,
)
from shared.products.integrity import ZipArchive
from shared.runtime import Reject
from shared.settings import Settings
from shared.storage.objects import ObjectStore, StoredObject

log = logging.getLogger(__name__)

# Object metadata on the moved manifest naming the notification that completed the product, so that
# only a redelivery of that notification announces it again, not the late notifications of its members.
INGESTED_BY = "refsys-ingested-by"


@dataclass(frozen=True)
class Arrival:
    """What set the ingest step going: a notification, or the inbox scan giving up on a product."""

    trigger_id: str
    inbox_time: datetime
    give_up: bool = False  # an incomplete product is quarantined instead of waited for


@dataclass(frozen=True)
class Inbox:
    store: ObjectStore
    settings: Settings

    def on_object_created(self, event: ObjectCreated) -> EventData | None:
        if event.bucket != self.settings.inbox_bucket:
            raise Reject(f"ingest only watches the inbox bucket {self.settings.inbox_bucket!r}, not {event.bucket!r}")
        root = root_of(event.key)
        if root is None:
            return self._reject_unrecognised(event.key)
        return self.ingest(root, Arrival(event.event_id(), event.event_time))

    def ingest(self, root: str, arrival: Arrival) -> EventData | None:
        """Ingest the product at ``root`` in the inbox if it is complete (None: waiting, or already done)."""
        try:
            product = recognise(root.rsplit("/", 1)[-1])
        except UnknownProduct as exc:  # root_of and recognise disagree only on odd names
            return self._reject_unrecognised(root, str(exc))
        if product.manifest_name is None:
            return self._ingest_single_object(product, root, arrival)
        return self._ingest_directory(product, root, arrival)

    # -- products delivered as one object (EOF, XML, zip) ---------------------------------------

    def _ingest_single_object(self, product: ProductName, key: str, arrival: Arrival) -> EventData | None:
        inbox, target = self.settings.inbox_bucket, self._bucket(product)
        current = self.store.head(inbox, key)
        if current is None:
            return None  # already moved by an earlier delivery
        existing = self.store.head(target, key)
        if existing is not None and (existing.size, existing.etag) != (current.size, current.etag):
            return self._conflict(product.name, key, [current])
        if product.packaging == "ZIP" and (problem := self._zip_problem(product, current)):
            return self._quarantine(product.name, key, [current], RejectionReason.CHECKSUM_MISMATCH, problem)
        self._move(inbox, current, target)
        return self._ingested(product, target, key, current.size, current.etag, None, arrival)

    def _zip_problem(self, product: ProductName, obj: StoredObject) -> str | None:
        """A zipped SAFE/SEN3 is verified against the manifest inside it (None: it verifies)."""
        with tempfile.NamedTemporaryFile(suffix=".zip") as local:
            self.store.client.download_file(self.settings.inbox_bucket, obj.key, local.name)
            try:
                report = verify_product(ZipArchive(Path(local.name)), product)
            except ManifestError as exc:
                return str(exc)
        if report.ok:
            return None
        problems = {
            "missing": report.missing,
            "extra": report.extra,
            "wrong size": report.wrong_size,
            "wrong checksum": report.wrong_checksum,
        }
        listed = [f"{what}: {', '.join(paths)}" for what, paths in problems.items() if paths]
        return f"{obj.key} does not verify against its manifest: " + ("; ".join(listed) or str(report.error))

    # -- products delivered as a directory of objects (SAFE, SEN3) -------------------------------

    def _ingest_directory(self, product: ProductName, root: str, arrival: Arrival) -> EventData | None:
        inbox, target = self.settings.inbox_bucket, self._bucket(product)
        manifest_key = f"{root}/{product.manifest_name}"
        waiting = {o.key: o for o in self.store.list(inbox, root + "/")}
        if not waiting:
            return self._announce_again(product, target, root, manifest_key, arrival)
        manifest = self.store.read(inbox, manifest_key)
        if manifest is None:
            if arrival.give_up:
                return self._incomplete(product.name, root, waiting, [product.manifest_name or "manifest"])
            log.info("waiting for the manifest of %s", product.name)
            return None
        try:
            inventory = read_inventory(manifest)
        except ManifestError as exc:
            reason, detail = RejectionReason.CORRUPT_MANIFEST, f"{manifest_key}: {exc}"
            return self._quarantine(product.name, root, list(waiting.values()), reason, detail)
        previous = self.store.read(target, manifest_key)
        if previous is not None and previous != manifest:
            return self._conflict(product.name, root, list(waiting.values()))

        moved = {o.key: o for o in self.store.list(target, root + "/")}  # moved before a crash, or delivered before
        missing, wrong = [], []
        for item in inventory:
            key = f"{root}/{item.path}"
            found = waiting.get(key) or moved.get(key)
            if found is None:
                missing.append(item.path)
            elif item.size is not None and found.size != item.size:
                wrong.append(f"{item.path} (size {found.size}, manifest says {item.size})")
        if missing:
            if arrival.give_up:
                return self._incomplete(product.name, root, waiting, missing)
            log.info("%s incomplete: %d of %d members missing", product.name, len(missing), len(inventory))
            return None
        for item in inventory:
            key = f"{root}/{item.path}"
            if key in waiting and item.md5 and self.store.md5(inbox, key) != item.md5:
                wrong.append(f"{item.path} (MD5 differs from the manifest)")
        if wrong:
            reason, detail = RejectionReason.CHECKSUM_MISMATCH, "members differ from the manifest: " + ", ".join(wrong)
            return self._quarantine(product.name, root, list(waiting.values()), reason, detail)

        size = sum(o.size for o in {**moved, **waiting}.values())
        for obj in waiting.values():
            if obj.key != manifest_key:
                self._move(inbox, obj, target)
        self.store.client.put_object(
            Bucket=target, Key=manifest_key, Body=manifest, Metadata={INGESTED_BY: arrival.trigger_id}
        )
        self.store.delete(inbox, manifest_key)
        return self._ingested(product, target, root + "/", size, _md5(manifest), manifest_key, arrival)

    def _announce_again(
        self, product: ProductName, target: str, root: str, manifest_key: str, arrival: Arrival
    ) -> EventData | None:
        """Nothing left in the inbox: announce again only on a redelivery of the completing notification."""
        try:
            head = self.store.client.head_object(Bucket=target, Key=manifest_key)
        except self.store.client.exceptions.ClientError:
            return None
        if head.get("Metadata", {}).get(INGESTED_BY) != arrival.trigger_id:
            return None
        manifest = self.store.read(target, manifest_key) or b""
        size = sum(o.size for o in self.store.list(target, root + "/"))
        return self._ingested(product, target, root + "/", size, _md5(manifest), manifest_key, arrival)

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
        arrival: Arrival,
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
            inbox_time=arrival.inbox_time,
            ingestion_time=datetime.now(UTC),
        )

    def _reject_unrecognised(self, key: str, why: str | None = None) -> EventData | None:
        current = self.store.head(self.settings.inbox_bucket, key)
        if current is None:
            return None
        detail = why or f"{key!r} is not the name of a Sentinel product, nor inside one"
        return self._quarantine(key, key, [current], RejectionReason.UNRECOGNISED, detail)

    def _incomplete(
        self, name: str, root: str, waiting: dict[str, StoredObject], missing: list[str]
    ) -> ProductRejected:
        detail = f"still incomplete after {self.settings.incomplete_timeout_s:.0f} s; missing: " + ", ".join(missing)
        return self._quarantine(name, root, list(waiting.values()), RejectionReason.INCOMPLETE, detail)

    def _conflict(self, name: str, root: str, objects: list[StoredObject]) -> ProductRejected:
        detail = f"{name} is already ingested with different content; the new delivery is kept aside"
        return self._quarantine(name, root, objects, RejectionReason.CONFLICT, detail)

    def _quarantine(
        self, name: str, root: str, objects: list[StoredObject], reason: RejectionReason, detail: str
    ) -> ProductRejected:
        """Move the delivery aside with a reason document beside it: quarantined, never deleted."""
        bucket = self.settings.quarantine_bucket
        self.store.ensure_bucket(bucket)
        now = datetime.now(UTC)
        reason_key = f"{root}{REASON_SUFFIX}"
        document = {
            "name": name,
            "root": root,
            "reason": reason.value,
            "detail": detail,
            "time": now.isoformat(),
            "objects": [obj.key for obj in objects],
        }
        self.store.put(bucket, reason_key, json.dumps(document, indent=2).encode(), "application/json")
        for obj in objects:
            self._move(self.settings.inbox_bucket, obj, bucket)
        log.warning("quarantined %s: %s", name, detail)
        return ProductRejected(
            name=name,
            reason=reason,
            detail=detail,
            quarantine_bucket=bucket,
            quarantine_key=reason_key,
            rejected_time=now,
            mission=name[:2] if name[:2] in ("S1", "S2", "S3") else None,
        )


REASON_SUFFIX = ".reason.json"


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
