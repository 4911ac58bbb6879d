"""The quarantine: rejected deliveries kept with a reason document beside them, until an operator
releases them back into the inbox (which sends them through ingestion again).

Whoever finds a product bad puts it here, wherever it lies (the inbox, or its family bucket when only the
catalog step can tell), and replies ``product.rejected``: a bad product is a domain outcome, never a
delivery failure.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events import ProductRejected, RejectionReason
from shared.settings import Settings
from shared.storage.objects import ObjectStore, StoredObject

log = logging.getLogger(__name__)

REASON_SUFFIX = ".reason.json"


def quarantine(
    store: ObjectStore,
    settings: Settings,
    name: str,
    root: str,
    source_bucket: str,
    objects: list[StoredObject],
    reason: RejectionReason,
    detail: str,
) -> ProductRejected:
    """Move a delivery aside with a reason document beside it: quarantined, never deleted.

    The reason document is written first, so a crash half-way leaves it naming every object to look for.
    """
    bucket = settings.quarantine_bucket
    store.ensure_bucket(bucket)
    now = datetime.now(UTC)
    reason_key = f"{root}{REASON_SUFFIX}"
    document = {
        "name": name,
        "root": root,
        "reason": reason.value,
        "detail": detail,
        "time": now.isoformat(),
        "from": source_bucket,
        "objects": [obj.key for obj in objects],
    }
    store.put(bucket, reason_key, json.dumps(document, indent=2).encode(), "application/json")
    for obj in objects:
        store.copy_verified(source_bucket, obj, bucket)
        store.delete(source_bucket, obj.key)
    log.warning("quarantined %s: %s", name, detail, extra={"product": name, "reason": reason.value})
    return ProductRejected(
        name=name,
        reason=reason,
        detail=detail,
        quarantine_bucket=bucket,
        quarantine_key=reason_key,
        rejected_time=now,
        mission=name[:2] if name[:2] in ("S1", "S2", "S3") else None,
    )


@dataclass(frozen=True)
class Quarantined:
    name: str
    root: str
    reason: str
    detail: str
    time: str
    objects: list[str]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Quarantined:
        return cls(
            name=document["name"],
            root=document.get("root", document["name"]),
            reason=document["reason"],
            detail=document["detail"],
            time=document["time"],
            objects=list(document.get("objects", [])),
        )


@dataclass(frozen=True)
class Quarantine:
    store: ObjectStore
    settings: Settings

    def list(self) -> list[Quarantined]:
        bucket = self.settings.quarantine_bucket
        self.store.ensure_bucket(bucket)
        found = []
        for obj in self.store.iter(bucket):
            if obj.key.endswith(REASON_SUFFIX) and (body := self.store.read(bucket, obj.key)):
                found.append(Quarantined.from_document(json.loads(body)))
        return found

    def find(self, name: str) -> Quarantined | None:
        name = name.rstrip("/")
        return next((q for q in self.list() if name in (q.name, q.root, q.root.rsplit("/", 1)[-1])), None)

    def release(self, name: str) -> Quarantined:
        """Put a quarantined delivery back into the inbox; its new notifications ingest it again."""
        entry = self.find(name)
        if entry is None:
            raise LookupError(f"nothing named {name!r} is in quarantine")
        bucket, inbox = self.settings.quarantine_bucket, self.settings.inbox_bucket
        # Members first and the reason last, so a crash leaves the record until everything went back.
        for key in entry.objects:
            if self.store.head(bucket, key) is not None:
                self.store.copy(bucket, key, inbox, key)
                self.store.delete(bucket, key)
        self.store.delete(bucket, entry.root + REASON_SUFFIX)
        return entry
