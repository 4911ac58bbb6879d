"""Dead letters: events whose delivery finally failed, kept in object storage until restarted.

Each is stored whole (structured CloudEvent JSON, with the broker's ``knativeerror*`` extensions)
under a key derived from its (source, id), so a dead letter delivered twice is kept once.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent, from_json

from events.naming import derived_id
from shared.bus.publisher import SinkPublisher
from shared.storage.objects import ObjectStore

log = logging.getLogger(__name__)

ERROR_EXTENSIONS = ("knativeerrorcode", "knativeerrordest", "knativeerrordata")
PENDING, RESTARTED = "pending/", "restarted/"


@dataclass(frozen=True)
class DeadLetter:
    key: str
    event: CloudEvent

    @property
    def error_code(self) -> str | None:
        code = self.event.get("knativeerrorcode")
        return None if code is None else str(code)

    @property
    def error_message(self) -> str:
        data = self.event.get("knativeerrordata")
        if not data:
            return ""
        try:
            return base64.b64decode(data).decode("utf-8", "replace")
        except ValueError:
            return str(data)

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "id": self.event["id"],
            "type": self.event["type"],
            "source": self.event["source"],
            "subject": self.event.get("subject"),
            "errorCode": self.error_code,
            "errorDestination": self.event.get("knativeerrordest"),
            "error": self.error_message,
        }


class DeadLetters:
    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self.store = store
        self.bucket = bucket

    def keep(self, event: CloudEvent) -> str:
        key = f"{PENDING}{derived_id(event['source'], event['id'])}.json"
        self.store.ensure_bucket(self.bucket)
        self.store.put(self.bucket, key, to_json(event), "application/cloudevents+json")
        log.warning("dead letter %s (%s): %s", event["id"], event["type"], event.get("knativeerrorcode"))
        return key

    def pending(self) -> list[DeadLetter]:
        self.store.ensure_bucket(self.bucket)
        letters = []
        for obj in self.store.iter(self.bucket, PENDING):
            body = self.store.read(self.bucket, obj.key)
            if body is not None:
                letters.append(DeadLetter(obj.key, from_json(body)))
        return letters

    def restart(self, letter: DeadLetter, broker: SinkPublisher) -> None:
        """Send the original event back to the broker, then file the letter under restarted/."""
        attributes = {k: v for k, v in letter.event.get_attributes().items() if k not in ERROR_EXTENSIONS}
        broker.publish(CloudEvent(attributes, letter.event.data))
        self.store.copy(self.bucket, letter.key, self.bucket, RESTARTED + letter.key.removeprefix(PENDING))
        self.store.delete(self.bucket, letter.key)
        log.info("restarted dead letter %s", letter.event["id"])
