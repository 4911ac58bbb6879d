"""The quarantine: rejected deliveries kept with a reason document beside them, until an operator
releases them back into the inbox (which sends them through ingestion again)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.ingestion.inbox import REASON_SUFFIX
from shared.settings import Settings
from shared.storage.objects import ObjectStore


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
