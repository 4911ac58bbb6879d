"""Where a product is: cataloged, quarantined, being ingested, in the inbox (with what it still misses and
when it times out), ingested and waiting for the catalog, or dead-lettered (with the event to restart).

Answers from what each step keeps: the catalog, the quarantine's reason documents, the inbox ledger, the
inbox itself and the dead letters. ``refsys status NAME`` prints it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.ingestion.ledger import InboxLedger, InboxProduct, ProductState
from shared.ingestion.quarantine import Quarantine
from shared.operations.deadletters import DeadLetter, DeadLetters
from shared.settings import Settings
from shared.storage.objects import ObjectStore

FindCataloged = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class Whereabouts:
    name: str
    place: str  # cataloged, quarantined, being-ingested, inbox, ingested, dead-lettered, unknown
    message: str
    dead_letters: tuple[str, ...] = ()  # ids of the pending letters about it, whatever its place

    @property
    def known(self) -> bool:
        return self.place != "unknown"


@dataclass(frozen=True)
class ProductLocator:
    store: ObjectStore
    settings: Settings
    ledger: InboxLedger
    find_cataloged: FindCataloged  # the catalog entry (as the catalog API gives it) of a name, or None

    def locate(self, name: str) -> Whereabouts:
        name = name.rstrip("/")
        letters = self._dead_letters(name)
        if (entry := self.find_cataloged(name)) is not None:
            # A later step (prepare) may have failed on it: the product is cataloged, and the letter said.
            where = f"in bucket {entry['bucket']} (id {entry['id']}, published {entry['publicationTime']})"
            return _with(Whereabouts(name, "cataloged", f"{name} is cataloged: {where}"), letters)
        if (quarantined := Quarantine(self.store, self.settings).find(name)) is not None:
            why = f"({quarantined.reason}, {quarantined.time}): {quarantined.detail}"
            return _with(Whereabouts(name, "quarantined", f"{name} is quarantined {why}"), letters)
        if letters:
            # Before the ledger: a product whose notification or announcement was dead-lettered waits for
            # nothing but an operator, whatever the ledger last saw.
            listed = "; ".join(_letter(letter) for letter in letters)
            ids = " ".join(letter.id for letter in letters)
            return Whereabouts(
                name,
                "dead-lettered",
                f"{name} is dead-lettered: {listed}; once fixed: refsys deadletter restart {ids}",
                tuple(letter.id for letter in letters),
            )
        record = self.ledger.find(name)
        if record is not None and record.state is not ProductState.INGESTED:
            return self._from_ledger(name, record)
        if record is not None:
            bucket = (record.outcome or {}).get("bucket", "its family bucket")
            return Whereabouts(name, "ingested", f"{name} is ingested into {bucket}, on its way to the catalog")
        if waiting := self.store.list(self.settings.inbox_bucket, name, limit=1000):
            count = f"{len(waiting)}{'+' if len(waiting) == 1000 else ''}"
            return Whereabouts(name, "inbox", f"{name} is in the inbox: {count} object(s), no notification seen yet")
        return Whereabouts(name, "unknown", f"{name} is unknown: not in the catalog, the quarantine or the inbox")

    def _from_ledger(self, name: str, record: InboxProduct) -> Whereabouts:
        now = time.time()
        if record.held(now):
            since = _time(record.lease_until - self.ledger.lease_s if record.lease_until else now)
            return Whereabouts(
                name, "being-ingested", f"{name} is being ingested (claimed by event {record.owner_event}, {since})"
            )
        arrived = self.ledger.arrived_count(record.root)
        timeout = _time(record.last_arrival + self.settings.incomplete_timeout_s)
        if record.listed is None:
            waiting = f"{arrived} object(s) arrived; its manifest has not arrived (or not been read) yet"
        else:
            missing = self.ledger.missing(record.root)
            shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
            waiting = f"{arrived} object(s) arrived, {len(missing)} of {record.listed} listed still missing: {shown}"
        return Whereabouts(name, "inbox", f"{name} is in the inbox: {waiting}; quarantined as incomplete at {timeout}")

    def _dead_letters(self, name: str) -> list[DeadLetter]:
        """Pending letters about ``name``, whichever step failed: by subject (an object key below the
        product, a product name), by the names the data carries, or anywhere in a malformed letter."""
        pending = DeadLetters(self.store, self.settings.deadletter_bucket).letters()
        return [letter for letter in pending if letter.mentions(name)]


def _with(where: Whereabouts, letters: list[DeadLetter]) -> Whereabouts:
    if not letters:
        return where
    listed = "; ".join(_letter(letter) for letter in letters)
    ids = " ".join(letter.id for letter in letters)
    message = f"{where.message}; dead-lettered since: {listed}; once fixed: refsys deadletter restart {ids}"
    return Whereabouts(where.name, where.place, message, tuple(letter.id for letter in letters))


def _letter(letter: DeadLetter) -> str:
    to = f" to {letter.function}" if letter.function else ""
    error = f", error {letter.error_code}: {letter.error['message'] or ''}"[:240] if letter.error_code else ""
    problem = f", {letter.problem}" if letter.problem else ""
    return f"letter {letter.id} (event {letter.event_id} {letter.type}{to}{error}{problem})"


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
