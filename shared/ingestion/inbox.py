"""The ingest step: a product delivered to the inbox is recognised, verified against its manifest,
moved to its family bucket and announced — or quarantined with its reason.

One ingest per product: a directory product's notifications are counted in the inbox ledger (no
object-store request for a member that does not complete it); the notification that completes it claims it,
and that delivery alone verifies and moves it (see ``shared/ingestion/ledger.py``). The others answer at once.

Verification: every object the manifest lists, with its listed size and every digest it declares, each byte
read once; a digest the store already holds and that can be trusted (a single-part upload's ETag is the MD5
of its bytes) is used without reading. A file the manifest does not list is a rejection (or a warning, for
the families configured so). Unknown checksum algorithms, corrupt manifests, conflicts and products still
incomplete at the timeout are quarantined with their reason.

Crash safety: members are copied (exactly the verified version) and the copy checked before they leave the
inbox, and the manifest moves last, so a product is at any time either still findable in the inbox (and a
redelivery resumes the move) or complete in its family bucket. The same product delivered again is
recognised by its manifest: identical content is announced again under the same event id (the next step
deduplicates by id); different content under the same name is a conflict and is kept aside, never overwritten.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextvars import copy_context
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TypeVar

from events import EventData, ObjectCreated, ProductIdentity, ProductIngested, ProductRejected, RejectionReason
from shared.catalog.model import product_id
from shared.ingestion.ledger import Claim, InboxLedger, InboxProduct, ProductState
from shared.ingestion.quarantine import quarantine
from shared.observability import tracing
from shared.products import ManifestError, ProductName, UnknownProduct, bucket_for, recognise, root_of
from shared.products.integrity import digest_mismatches
from shared.products.manifest import DataObject, Inventory, read_manifest
from shared.products.zipped import verify_zip
from shared.runtime import Reject, RetryLater
from shared.settings import Settings
from shared.storage.objects import ObjectStore, StoredObject, metered

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Arrival:
    """What set the ingest step going: a notification, or the inbox scan giving up on a product."""

    trigger_id: str  # the notification (store and event id), or the scan's name for its settling
    inbox_time: datetime
    give_up: bool = False  # an incomplete product is quarantined instead of waited for


@dataclass(frozen=True)
class Inbox:
    store: ObjectStore
    settings: Settings
    ledger: InboxLedger

    def on_object_created(self, event: ObjectCreated) -> EventData | None:
        if event.bucket != self.settings.inbox_bucket:
            raise Reject(f"ingest only watches the inbox bucket {self.settings.inbox_bucket!r}, not {event.bucket!r}")
        if problem := _unstorable(event.key):
            # Such a key names no object an S3 store can hold in the inbox ('..' would even be resolved
            # outside it by SeaweedFS's filer): there is nothing to quarantine, and a retry cannot help.
            raise Reject(f"object key {event.key[:200]!r} {problem}")
        root = root_of(event.key)
        if root is None:
            return self._reject_unrecognised(event.key)
        # The scan raises the same id for an object version as its notification did: the store tells them apart.
        return self.ingest(root, Arrival(f"{event.store}/{event.event_id()}", event.event_time), event)

    def ingest(self, root: str, arrival: Arrival, event: ObjectCreated | None = None) -> EventData | None:
        """Ingest the product at ``root`` if it is complete (None: waiting, being ingested, or already done).

        Without ``event`` (the inbox scan settling a stale product) the store is looked at directly.
        """
        try:
            product = recognise(root.rsplit("/", 1)[-1])
        except UnknownProduct as exc:  # root_of and recognise disagree only on odd names
            return self._reject_unrecognised(root, str(exc))
        if product.manifest_name is None:
            return self._ingest_single_object(product, root, arrival)
        with metered() as meter:
            outcome = self._ingest_directory(product, root, arrival, event)
        if outcome is not None:
            log.info(
                "%s: %d object-store requests, %d bytes read",
                product.name,
                meter.requests,
                meter.bytes_read,
                extra={"product": product.name, "requests": meter.requests, "bytes_read": meter.bytes_read},
            )
        return outcome

    # -- products delivered as one object (EOF, XML, zip) ---------------------------------------

    def _ingest_single_object(self, product: ProductName, key: str, arrival: Arrival) -> EventData | None:
        inbox, target = self.settings.inbox_bucket, self._bucket(product)
        current = self.store.head(inbox, key)
        if current is None:
            return None  # already moved by an earlier delivery
        existing = self.store.head(target, key)
        if existing is not None and (existing.size, existing.etag) != (current.size, current.etag):
            return self._conflict(product.name, key, [current])
        announced, checksum = product, current.etag_md5
        if product.packaging == "ZIP":
            # A zipped SAFE/SEN3, verified against the manifest inside it where it lies (ranged GETs), is
            # announced under its real name (X.SAFE, not X.SAFE.zip): one product, whatever form it came in.
            verified = verify_zip(self.store, inbox, current, product)
            if isinstance(verified, str):
                return self._quarantine(product.name, key, [current], RejectionReason.CHECKSUM_MISMATCH, verified)
            announced = verified.product
            if (twin := self._unzipped_twin(announced, key, verified.manifest, current, arrival)) is not None:
                return twin
            # The zip is what $value serves: its own MD5 (a multipart upload's ETag is none).
            checksum = checksum or self.store.digests(inbox, key, ["md5"], etag=current.etag)["md5"]
        self.store.copy_verified(inbox, current, target)
        self.store.delete(inbox, key)
        return self._ingested(announced, target, key, current.size, checksum, None, arrival)

    def _unzipped_twin(
        self, product: ProductName, key: str, manifest: bytes, current: StoredObject, arrival: Arrival
    ) -> EventData | None:
        """A zip of a product already ingested unzipped (``X.SAFE/`` where ``X.SAFE.zip`` arrives): the same
        content is the same product, so the zip is dropped and the directory announced again (same id, no second
        product); another manifest under the same name is a conflict, kept aside. None: no such directory."""
        target = self._bucket(product)
        root = key[: len(key) - len(key.rsplit("/", 1)[-1])] + product.name
        manifest_key = f"{root}/{product.manifest_name}"
        previous = self.store.read(target, manifest_key)
        if previous is None:
            return None
        if previous != manifest:
            return self._conflict(product.name, key, [current])
        self.store.delete(self.settings.inbox_bucket, key)
        size = sum(o.size for o in self.store.iter(target, root + "/"))
        return self._ingested(product, target, root + "/", size, _md5(manifest), manifest_key, arrival)

    # -- products delivered as a directory of objects (SAFE, SEN3) -------------------------------

    def _ingest_directory(
        self, product: ProductName, root: str, arrival: Arrival, event: ObjectCreated | None
    ) -> EventData | None:
        if event is None:  # the scan giving up on a stale product: settle whatever the store holds
            record = self.ledger.product(root)
            if record is None:
                self.ledger.register(root, product.name)
            elif record.settled:
                leftovers = self.store.list(self.settings.inbox_bucket, root + "/")
                if not leftovers:
                    return None
                ingested = self.store.read(self._bucket(product), f"{root}/{product.manifest_name}")
                if ingested is not None:  # late objects of a product already ingested, their notifications lost
                    outcomes = [self._settle_late(product, root, record, obj, ingested) for obj in leftovers]
                    return next((o for o in outcomes if isinstance(o, ProductRejected)), None)
                self.ledger.restart(root)  # delivered again, its notifications lost
            claim = self.ledger.claim(root, arrival.trigger_id)
            return None if claim is None else self._move(product, root, arrival, claim)

        record = self.ledger.product(root)
        if record is not None and record.settled:
            redelivery = record.owner_event == arrival.trigger_id and record.outcome is not None
            current = self.store.head(self.settings.inbox_bucket, event.key)
            if current is None:  # a redelivery of the notification that settled it, or a late one of a moved object
                return _outcome_event(record) if redelivery else None
            ingested = self.store.read(self._bucket(product), f"{root}/{product.manifest_name}")
            if ingested is not None:  # the same object version again (same id), or another one
                return self._settle_late(product, root, record, current, ingested)
            if redelivery:
                return _outcome_event(record)
            self.ledger.restart(root)  # delivered again (e.g. released from quarantine): a new round
        self.ledger.arrived(root, product.name, event.key[len(root) + 1 :], event.size)
        record = self.ledger.product(root)
        assert record is not None
        if record.held(time.time()):
            if record.owner_event == arrival.trigger_id:  # the claiming delivery died, or this is its duplicate
                raise RetryLater(f"{product.name} is being moved by an earlier delivery of this event")
            return None  # another delivery is moving it
        is_manifest = event.key == f"{root}/{product.manifest_name}"
        if is_manifest and (record.listed is None or (event.etag and event.etag != record.manifest_etag)):
            if not self._read_inventory(root, product):  # corrupt: quarantined by the claim's move
                claim = self.ledger.claim(root, arrival.trigger_id)
                return None if claim is None else self._move(product, root, arrival, claim)
            record = self.ledger.product(root)
            assert record is not None
        if not self.ledger.complete(record):
            return None
        claim = self.ledger.claim(root, arrival.trigger_id)
        return None if claim is None else self._move(product, root, arrival, claim)

    def _settle_late(
        self, product: ProductName, root: str, record: InboxProduct, current: StoredObject, ingested_manifest: bytes
    ) -> EventData | None:
        """An object of a product already ingested, settled at once: removed from the inbox if it is what was
        ingested (its manifest again: the product is announced again under the same id), else a conflict.

        A new round used to wait for a manifest that never came (the product is ingested, or its conflicting
        manifest was kept aside): the object was quarantined as "incomplete" an hour later.
        """
        inbox, target = self.settings.inbox_bucket, self._bucket(product)
        if current.key == f"{root}/{product.manifest_name}":
            same = self.store.read(inbox, current.key) == ingested_manifest
        else:
            moved = self.store.head(target, current.key)
            same = moved is not None and (moved.size, moved.etag) == (current.size, current.etag)
        if not same:
            detail = (
                f"{current.key[len(root) + 1 :]} differs from what {product.name} was ingested with "
                "(or is not part of it); the object is kept aside"
            )
            # Kept under its own key: the product's earlier reason document (e.g. of the conflicting manifest) stays.
            return self._quarantine(product.name, current.key, [current], RejectionReason.CONFLICT, detail)
        self.store.delete(inbox, current.key)
        is_manifest = current.key == f"{root}/{product.manifest_name}"
        return _outcome_event(record) if is_manifest and record.state is ProductState.INGESTED else None

    def _read_inventory(self, root: str, product: ProductName) -> bool:
        """Record what the manifest lists; False when it cannot be read as a manifest."""
        found = self.store.read_object(self.settings.inbox_bucket, f"{root}/{product.manifest_name}")
        if found is None:
            return True  # moved or quarantined meanwhile: nothing to record
        manifest, etag = found
        try:
            inventory = read_manifest(manifest)
        except ManifestError:
            return False
        self.ledger.record_inventory(root, etag, [(item.path, item.size) for item in inventory.objects])
        return True

    def _move(self, product: ProductName, root: str, arrival: Arrival, claim: Claim) -> EventData | None:
        """Verify the claimed product in the store and move it (or quarantine it); settle the claim."""
        with _Renewing(self.ledger, claim):
            return self._move_claimed(product, root, arrival, claim)

    def _move_claimed(self, product: ProductName, root: str, arrival: Arrival, claim: Claim) -> EventData | None:
        inbox, manifest_key = self.settings.inbox_bucket, f"{root}/{product.manifest_name}"
        waiting = {o.key: o for o in self.store.iter(inbox, root + "/")}
        if manifest_key not in waiting:
            return self._after_manifest_moved(product, root, arrival, claim, waiting)
        manifest = self.store.read(inbox, manifest_key)
        if manifest is None:
            self.ledger.release(claim)
            return None
        try:
            inventory = read_manifest(manifest)
        except ManifestError as exc:
            reason, detail = RejectionReason.CORRUPT_MANIFEST, f"{manifest_key}: {exc}"
            return self._quarantine(product.name, root, list(waiting.values()), reason, detail, claim)
        target = self._bucket(product)
        previous = self.store.read(target, manifest_key)
        if previous is not None and previous != manifest:
            return self._conflict(product.name, root, list(waiting.values()), claim)

        listed = {f"{root}/{item.path}": item for item in inventory.objects}
        moved: dict[str, StoredObject] = {}
        if any(key not in waiting for key in listed):  # a move interrupted by a crash, or objects missing
            moved = {o.key: o for o in self.store.iter(target, root + "/")}
        missing = [item.path for key, item in listed.items() if key not in waiting and key not in moved]
        if missing:
            if arrival.give_up:
                return self._incomplete(product.name, root, waiting, missing, claim)
            log.warning("%s: the ledger found it complete, the store misses %s", product.name, ", ".join(missing))
            self.ledger.release(claim)
            return None
        if rejection := self._check(product, root, inventory, waiting, moved, claim):
            return rejection

        members = [obj for key, obj in waiting.items() if key != manifest_key]
        self._in_parallel(lambda obj: self._move_member(obj, target), members)
        if not self.ledger.renew(claim):  # fenced: another delivery took the product over
            log.warning("%s: claim lost during the move; the delivery that holds it finishes", product.name)
            return None
        # Written from the verified bytes, with the upload's metadata (a processing run's trace).
        uploaded = self.store.metadata(inbox, manifest_key)  # a processing run's trace, kept with the manifest
        self.store.put(target, manifest_key, manifest, metadata=uploaded)
        self.store.delete(inbox, manifest_key)
        size = sum(o.size for o in {**moved, **waiting}.values())
        reply = self._ingested(
            product, target, root + "/", size, _md5(manifest), manifest_key, arrival, metadata=uploaded
        )
        self.ledger.settle(claim, ProductState.INGESTED, reply.model_dump(mode="json"))
        return reply

    def _check(
        self,
        product: ProductName,
        root: str,
        inventory: Inventory,
        waiting: dict[str, StoredObject],
        moved: dict[str, StoredObject],
        claim: Claim,
    ) -> ProductRejected | None:
        """Every listed object with its size and every digest; nothing unlisted (None: it verifies)."""
        manifest_key = f"{root}/{product.manifest_name}"
        objects = list(waiting.values())
        listed = {f"{root}/{item.path}": item for item in inventory.objects}
        unsupported = [f"{item.path} ({', '.join(item.unsupported)})" for item in inventory.objects if item.unsupported]
        if unsupported:
            detail = "checksums of algorithms that cannot be verified: " + _few(unsupported)
            return self._quarantine(product.name, root, objects, RejectionReason.UNSUPPORTED_CHECKSUM, detail, claim)
        unlisted = sorted(key[len(root) + 1 :] for key in waiting if key not in listed and key != manifest_key)
        if unlisted and inventory.exhaustive:
            if product.family not in self.settings.unlisted_files_warn_families:
                detail = f"{len(unlisted)} file(s) not listed in the manifest: " + _few(unlisted)
                return self._quarantine(product.name, root, objects, RejectionReason.UNLISTED_FILES, detail, claim)
            log.warning("%s: files not in its manifest, moved with it: %s", product.name, _few(unlisted))
        wrong = [
            f"{item.path} (size {found.size}, manifest says {item.size})"
            for key, item in listed.items()
            if (found := waiting.get(key) or moved.get(key)) is not None
            and item.size is not None
            and found.size != item.size
        ]
        to_verify = [(waiting[key], item) for key, item in listed.items() if key in waiting and item.digests]
        wrong += [problem for problem in self._in_parallel(self._digest_problem, to_verify) if problem]
        if wrong:
            detail = "members differ from the manifest: " + _few(wrong)
            return self._quarantine(product.name, root, objects, RejectionReason.CHECKSUM_MISMATCH, detail, claim)
        return None

    def _digest_problem(self, checked: tuple[StoredObject, DataObject]) -> str | None:
        obj, item = checked
        algorithms = [algorithm for algorithm, _ in item.digests]
        computed = self._stored_digests(obj, algorithms)
        if unknown := [algorithm for algorithm in algorithms if algorithm not in computed]:
            # The bytes are read once, for every digest the store does not hold.
            computed |= self.store.digests(self.settings.inbox_bucket, obj.key, unknown, etag=obj.etag)
        wrong = digest_mismatches(item, computed)
        return f"{item.path} ({', '.join(a.upper().replace('_', '-') for a in wrong)} differs)" if wrong else None

    def _stored_digests(self, obj: StoredObject, algorithms: list[str]) -> dict[str, str]:
        """Digests the store already holds for ``obj`` and that can be trusted: no object read needed.

        A single-part upload's ETag is the MD5 the server computed (see StoredObject.etag_md5); an S3
        additional checksum was checked by the server at upload (see ObjectStore.stored_digests).
        """
        held = {"md5": obj.etag_md5} if self.settings.trust_etag_md5 and obj.etag_md5 else {}
        if any(algorithm not in held for algorithm in algorithms):
            held |= self.store.stored_digests(self.settings.inbox_bucket, obj)
        return {algorithm: held[algorithm] for algorithm in algorithms if algorithm in held}

    def _move_member(self, obj: StoredObject, target: str) -> None:
        """Copy the verified version, check the copy, then delete the original: never lose the only copy."""
        self.store.copy_verified(self.settings.inbox_bucket, obj, target)
        self.store.delete(self.settings.inbox_bucket, obj.key)

    def _after_manifest_moved(
        self, product: ProductName, root: str, arrival: Arrival, claim: Claim, waiting: dict[str, StoredObject]
    ) -> EventData | None:
        """No manifest in the inbox: a move that crashed after the manifest went, or nothing to settle."""
        target = self._bucket(product)
        manifest_key = f"{root}/{product.manifest_name}"
        manifest = self.store.read(target, manifest_key)
        if manifest is None or waiting:
            if arrival.give_up and waiting:
                return self._incomplete(product.name, root, waiting, [product.manifest_name or "manifest"], claim)
            self.ledger.release(claim)
            return None
        size = sum(o.size for o in self.store.iter(target, root + "/"))
        reply = self._ingested(product, target, root + "/", size, _md5(manifest), manifest_key, arrival)
        self.ledger.settle(claim, ProductState.INGESTED, reply.model_dump(mode="json"))
        return reply

    def _in_parallel(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Run ``work`` over ``items`` on the request pool (each in a copy of this context: its meter)."""
        futures = [_pool(self.settings.ingest_parallel_requests).submit(copy_context().run, work, i) for i in items]
        try:
            return [future.result() for future in as_completed(futures)]
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    # -- shared steps ----------------------------------------------------------------------------

    def _bucket(self, product: ProductName) -> str:
        bucket = bucket_for(product.family, prefix=self.settings.bucket_prefix)
        self.store.ensure_bucket(bucket)
        return bucket

    def _ingested(
        self,
        product: ProductName,
        bucket: str,
        key: str,
        size: int,
        checksum: str | None,
        manifest_key: str | None,
        arrival: Arrival,
        metadata: Mapping[str, str] | None = None,
    ) -> ProductIngested:
        """``metadata``: the user metadata of the product's manifest (or object), when the caller read it already."""
        # A processing run's outputs carry its trace (object metadata): the product continues it.
        if metadata is None:
            metadata = self.store.metadata(bucket, manifest_key or key)
        tracing.adopt(metadata.get(tracing.OBJECT_METADATA))
        log.info("ingested %s into %s", product.name, bucket)
        return ProductIngested(
            product=identity(product),
            bucket=bucket,
            key=key,
            content_length=size,
            checksum=checksum,
            content_type="application/zip" if key.lower().endswith(".zip") else "application/octet-stream",
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
        self, name: str, root: str, waiting: dict[str, StoredObject], missing: list[str], claim: Claim
    ) -> ProductRejected:
        detail = f"still incomplete after {self.settings.incomplete_timeout_s:.0f} s; missing: " + _few(missing)
        return self._quarantine(name, root, list(waiting.values()), RejectionReason.INCOMPLETE, detail, claim)

    def _conflict(
        self, name: str, root: str, objects: list[StoredObject], claim: Claim | None = None
    ) -> ProductRejected:
        detail = f"{name} is already ingested with different content; the new delivery is kept aside"
        return self._quarantine(name, root, objects, RejectionReason.CONFLICT, detail, claim)

    def _quarantine(
        self,
        name: str,
        root: str,
        objects: list[StoredObject],
        reason: RejectionReason,
        detail: str,
        claim: Claim | None = None,
    ) -> ProductRejected:
        inbox = self.settings.inbox_bucket
        rejected = quarantine(self.store, self.settings, name, root, inbox, objects, reason, detail)
        if claim is not None:
            self.ledger.settle(claim, ProductState.QUARANTINED, rejected.model_dump(mode="json"))
        return rejected


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


def _outcome_event(record: InboxProduct) -> EventData:
    assert record.outcome is not None
    model = ProductIngested if record.state is ProductState.INGESTED else ProductRejected
    return model.model_validate(record.outcome)


def _unstorable(key: str) -> str | None:
    """Why ``key`` can be no object of the inbox (None: it can be one)."""
    if not key:
        return "is empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    if size > 1024:
        return "is longer than the 1024 bytes of an S3 key"
    if any(segment in (".", "..") for segment in key.split("/")):
        return "has '.' or '..' path segments"
    if "\x00" in key:
        return "contains a NUL character"
    return None


def _few(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


class _Renewing:
    """Renews a claim's lease on a timer while the claimed work runs, however long one request takes."""

    def __init__(self, ledger: InboxLedger, claim: Claim) -> None:
        self._ledger, self._claim = ledger, claim
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-lease", daemon=True)

    def _run(self) -> None:
        while not self._done.wait(self._ledger.lease_s / 3):
            if not self._ledger.renew(self._claim):
                return  # lost: the move is fenced before it finishes

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """Object-store requests of one process run on one pool: a product's members are verified and moved in
    parallel (a request costs ~3 ms of waiting on a loopback SeaweedFS)."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-requests")


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
