"""The inbox scan, for object stores that send no notifications (or lost some), run on a schedule.

It lists the inbox and raises ``object.created`` for each object version it has not raised before
(remembered in the processed-events record, so a scan of an unchanged inbox raises nothing), leaving
objects younger than a grace period to the notifications. A product whose newest object is older
than the incomplete timeout is settled: ingested if it turns out complete, else quarantined with the
list of what is missing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloudevents.http import CloudEvent

from events import ObjectCreated, make_event
from events.naming import function_source, storage_source
from shared.bus.idempotency import ProcessedEvents
from shared.ingestion.inbox import Arrival, Inbox
from shared.products import root_of
from shared.storage.objects import StoredObject

log = logging.getLogger(__name__)

SCAN = "scan"


@dataclass(frozen=True)
class ScanReport:
    listed: int
    raised: int
    settled: int


@dataclass(frozen=True)
class InboxScan:
    inbox: Inbox
    processed: ProcessedEvents
    publish: Callable[[CloudEvent], None]

    def run(self, now: datetime | None = None) -> ScanReport:
        now = now or datetime.now(UTC)
        settings = self.inbox.settings
        bucket = settings.inbox_bucket
        grace = timedelta(seconds=settings.scan_grace_s)
        objects = self.inbox.store.list(bucket)
        raised = 0
        products: dict[str, list[StoredObject]] = defaultdict(list)
        for obj in objects:
            modified = obj.last_modified or now
            root = root_of(obj.key)
            if root is not None:
                products[root].append(obj)
            if now - modified < grace:
                continue  # its notification is most likely on its way
            version = f"{obj.key}\x1f{obj.etag}"
            if self.processed.lookup(SCAN, bucket, version) is not None:
                continue
            if root is not None and self.inbox.ledger.seen(root, obj.key[len(root) + 1 :], obj.size):
                continue  # its notification arrived: the product waits for others, or is being moved
            event = ObjectCreated(
                store=SCAN, bucket=bucket, key=obj.key, size=obj.size, etag=obj.etag, event_time=modified
            )
            self.publish(make_event(event, source=storage_source(SCAN, bucket)))
            self.processed.record(SCAN, bucket, version, None)
            raised += 1

        settled = 0
        timeout = timedelta(seconds=settings.incomplete_timeout_s)
        for root, members in products.items():
            times = [m.last_modified or now for m in members]
            if now - max(times) < timeout:
                continue
            outcome = self.inbox.ingest(root, Arrival(f"scan:{root}", min(times), give_up=True))
            if outcome is not None:
                self.publish(make_event(outcome, source=function_source(SCAN)))
                settled += 1
        if raised or settled:
            log.info("inbox scan: %d objects, %d raised, %d settled", len(objects), raised, settled)
        return ScanReport(len(objects), raised, settled)


def run_scan() -> ScanReport:
    """One scan with this process's ports (the scan function's work)."""
    from shared import ports
    from shared.settings import get_settings

    inbox = Inbox(ports.object_store(), get_settings(), ports.inbox_ledger())
    scan = InboxScan(inbox, ports.processed_events(), ports.sink().publish)
    return scan.run()
