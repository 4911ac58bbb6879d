"""Evicting products: what is due, the sweep a timer runs, an operator's eviction, pins.

Order of one eviction (each step idempotent, the journal row written first — see :mod:`.state`):

1. the journal row (EvictionDate and rule: what the event will say);
2. the entry marked ``Online=false`` — *before* any byte is deleted: ``$value`` answers 410 from then
   on, so no client is sent a (presigned) URL to bytes about to go. Deleting first would leave a window
   where the catalog still redirects to a deleted object. The cost of the chosen order is an entry
   offline while its bytes still exist, for as long as an interrupted eviction waits for the next tick;
3. every object under the product's key (a directory product's prefix) and its quicklooks deleted;
4. offline again if a concurrent re-cataloging put the entry back online meanwhile (it copies the
   online flag it read before step 2);
5. ``product.evicted`` published (id derived from the EvictionDate: a retry sends the same event);
6. the journal row finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent

from events import ProductEvicted, make_event
from events.naming import function_source
from shared.catalog.announce import identity_of
from shared.catalog.filters import And, Compare, Prop, Selection, SortKey
from shared.catalog.model import CatalogEntry, format_utc
from shared.catalog.store import CatalogStore
from shared.lifecycle.protection import JobInputs
from shared.lifecycle.rules import RetentionRules
from shared.lifecycle.state import EVICTED, Eviction, LifecycleStore, Pin

log = logging.getLogger(__name__)

SOURCE = function_source("lifecycle")
OPERATOR_RULE = "operator"
PAGE = 200

Publish = Callable[[CloudEvent], None]


class LifecycleError(Exception):
    """A request the lifecycle refuses: HTTP status, code and a message saying why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Due:
    """A product whose EvictionDate has passed (a pinned one: its rule's date), and whether the sweep evicts
    or keeps it."""

    entry: CatalogEntry
    rule: str
    kept: str | None  # why it is kept: "pinned", "input of job <key>"; None: evicted
    eviction_time: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "name": self.entry.name,
            "family": self.entry.family,
            "evictionDate": format_utc(self.eviction_time),
            "rule": self.rule,
            "action": "keep" if self.kept else "evict",
            **({"reason": self.kept} if self.kept else {}),
        }


@dataclass
class Lifecycle:
    catalog: CatalogStore
    objects: Any  # shared.storage.objects.ObjectStore (list, delete)
    state: LifecycleStore
    rules: RetentionRules
    job_inputs: Callable[[], JobInputs]
    publish: Publish
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- what is due --------------------------------------------------------------------------------

    def due(self, limit: int | None = None) -> list[Due]:
        """The dry run: every product due now (up to ``limit``), with what a sweep would do with it; then the
        pinned products their rule would have made due (a pin makes the EvictionDate "never")."""
        now = self.clock()
        pinned, jobs = self.state.pinned_ids(), self.job_inputs()
        found: list[Due] = []
        for entry in self._due_entries(now):
            if limit is not None and len(found) >= limit:
                return found
            found.append(self._judge(entry, pinned, jobs))
        listed = {d.entry.id for d in found}
        for pin in self.state.pins():
            kept = self.catalog.get(pin.product_id)
            if kept is None or not kept.online or kept.id in listed:
                continue
            verdict = self.rules.verdict(kept.family, kept.name, kept.publication_time)
            if verdict.eviction_time is not None and verdict.eviction_time <= now:
                if limit is not None and len(found) >= limit:
                    break
                found.append(Due(kept, verdict.rule_name, "pinned", verdict.eviction_time))
        return found

    def _due_entries(self, now: datetime) -> Iterator[CatalogEntry]:
        """Online products with EvictionDate <= now, in EvictionDate then name order, page by page (keyset:
        what a sweep evicts meanwhile leaves the selection without moving the pages)."""
        where = And((Compare(Prop.EVICTION, "le", now), Compare(Prop.ONLINE, "eq", True)))
        order = (SortKey(Prop.EVICTION),)
        after: tuple[Any, ...] | None = None
        while True:
            page = self.catalog.find(Selection(where=where, order=order, limit=PAGE, after=after))
            yield from page
            if len(page) < PAGE:
                return
            last = page[-1]
            after = (last.eviction_time, last.name)

    def _judge(self, entry: CatalogEntry, pinned: set[str], jobs: JobInputs) -> Due:
        rule = self.rules.first_match(entry.family, entry.name)
        rule_name = rule.name if rule is not None else "EvictionDate"  # set under rules since replaced
        assert entry.eviction_time is not None  # due: it has one
        if entry.id in pinned:
            return Due(entry, rule_name, "pinned", entry.eviction_time)
        if (job := jobs.holder(entry)) is not None:
            return Due(entry, rule_name, f"input of job {job}", entry.eviction_time)
        return Due(entry, rule_name, None, entry.eviction_time)

    # -- the sweep ----------------------------------------------------------------------------------

    def sweep(self, limit: int) -> dict[str, int]:
        """The timer's work: finish evictions cut short, then evict what is due (at most ``limit``)."""
        resumed = 0
        for eviction in list(self.state.unfinished()):
            resumed += self._finish(eviction)
        now = self.clock()
        pinned, jobs = self.state.pinned_ids(), self.job_inputs()
        evicted = kept = 0
        for entry in self._due_entries(now):  # lazily, page by page: the sweep holds one page at a time
            due = self._judge(entry, pinned, jobs)
            if due.kept:
                kept += 1
                continue
            if evicted >= limit:
                break
            assert entry.eviction_time is not None
            self._evict(entry, entry.eviction_time, due.rule)
            evicted += 1
        return {"resumed": resumed, "evicted": evicted, "kept": kept}

    # -- an operator's requests ---------------------------------------------------------------------

    def evict(self, product: str, force: bool = False) -> Eviction:
        """Evict one product now, whatever its EvictionDate (``force``: even pinned or a job's input)."""
        entry = self.find(product)
        journal = self.state.get(entry.id)
        if not entry.online and journal is not None and journal.state == EVICTED:
            return journal  # done already: asking again changes nothing
        if not entry.online and journal is None:
            raise LifecycleError(409, "Offline", f"{entry.name} is offline, but not by an eviction of this system")
        if not force:
            if entry.id in self.state.pinned_ids():
                raise LifecycleError(409, "Pinned", f"{entry.name} is pinned: unpin it, or evict with force")
            if (job := self.job_inputs().holder(entry)) is not None:
                raise LifecycleError(409, "JobInput", f"{entry.name} is an input of job {job}: evict with force")
        return self._evict(entry, self.clock(), OPERATOR_RULE)

    def pin(self, product: str, reason: str) -> Pin:
        """Never evict ``product`` until unpinned: the pin first, then EvictionDate "never" on the entry
        (a pin cut short between the two is still a pin: the sweep reads the pins)."""
        entry = self.find(product)
        if not entry.online:
            raise LifecycleError(409, "Offline", f"{entry.name} is evicted already: there is nothing to keep")
        pin = self.state.pin(entry.id, entry.name, reason, self.clock())
        self._set_eviction(entry, None)
        return pin

    def unpin(self, product: str) -> dict[str, Any]:
        """Give the product back its rule's EvictionDate (it may be due at once), then drop the pin."""
        entry = self.find(product)
        pin = self.state.get_pin(entry.id)
        verdict = self.rules.verdict(entry.family, entry.name, entry.publication_time)
        if pin is not None and entry.online:
            self._set_eviction(entry, verdict.eviction_time)
        self.state.unpin(entry.id)
        when = verdict.eviction_time if pin is not None else entry.eviction_time
        return {"id": entry.id, "name": entry.name, "wasPinned": pin is not None,
                "evictionDate": None if when is None else format_utc(when), "rule": verdict.rule_name}  # fmt: skip

    def find(self, product: str) -> CatalogEntry:
        entry = self.catalog.get_by_name(product) or self.catalog.get(product)
        if entry is None:
            raise LifecycleError(404, "NotFound", f"no cataloged product named {product!r} (nor with that id)")
        return entry

    # -- one eviction -------------------------------------------------------------------------------

    def _evict(self, entry: CatalogEntry, eviction_time: datetime, rule: str) -> Eviction:
        now = self.clock()
        journal = self.state.begin(entry.id, entry.name, entry.bucket, entry.key, eviction_time, rule, now)
        self._finish(journal)
        return self.state.get(entry.id) or journal

    def _finish(self, journal: Eviction) -> bool:
        """Steps 2-6 of the module's order for a journal row; True when the row was still unfinished."""
        if journal.state == EVICTED:
            return False
        self._offline(journal)
        keys = self._stored_keys(journal)
        for key in keys:
            self.objects.delete(journal.bucket, key)
        entry = self._offline(journal)
        if entry is not None:
            self.publish(make_event(self._announcement(entry, journal), source=SOURCE))
        self.state.finish(journal.product_id, self.clock())
        log.info("evicted %s (%s, %d objects, rule %s)", journal.name, journal.key, len(keys), journal.rule)
        return True

    def _offline(self, journal: Eviction) -> CatalogEntry | None:
        entry = self.catalog.get(journal.product_id)
        if entry is None:
            return None  # removed from the catalog meanwhile: the objects still go, nothing is announced
        if entry.online or entry.eviction_time != journal.eviction_time:
            entry = replace(entry, online=False, eviction_time=journal.eviction_time, modification_time=self.clock())
            self.catalog.upsert(entry)
        return entry

    def _stored_keys(self, journal: Eviction) -> list[str]:
        entry = self.catalog.get(journal.product_id)
        keys = [o.key for o in self.objects.list(journal.bucket, journal.key)] if journal.key.endswith("/") else []
        if not journal.key.endswith("/"):
            keys.append(journal.key)
        for quicklook in entry.quicklooks if entry is not None else ():
            if quicklook not in keys:
                keys.append(quicklook)
        return keys

    def _set_eviction(self, entry: CatalogEntry, when: datetime | None) -> None:
        if entry.eviction_time != when:
            self.catalog.upsert(replace(entry, eviction_time=when, modification_time=self.clock()))

    @staticmethod
    def _announcement(entry: CatalogEntry, journal: Eviction) -> ProductEvicted:
        return ProductEvicted(
            product=identity_of(entry), bucket=journal.bucket, key=journal.key, eviction_time=journal.eviction_time,
            rule=journal.rule,
        )  # fmt: skip
