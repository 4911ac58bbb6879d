"""PingSources on the embedded platform: the cron ticks of ``knative/`` sent as Knative's ping adapter
sends them (type ``dev.knative.sources.ping``), to the sink each PingSource names."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import requests
from cloudevents.http import CloudEvent
from cronsim import CronSim

from events import to_http
from shared.bus.manifests import Destination, PingSource
from shared.security.senders import sender_headers

log = logging.getLogger(__name__)

PING_TYPE = "dev.knative.sources.ping"


def ping_event(source: PingSource, when: datetime) -> CloudEvent:
    attributes = {
        "type": PING_TYPE,
        "source": f"/apis/v1/namespaces/{source.namespace}/pingsources/{source.name}",
        "id": str(uuid.uuid4()),
        "time": when.isoformat(),
        "datacontenttype": source.content_type,
    }
    return CloudEvent(attributes, source.data.encode() if source.data else None)


def next_tick(source: PingSource, after: datetime) -> datetime:
    zone = ZoneInfo(source.timezone)
    return next(CronSim(source.schedule, after.astimezone(zone))).astimezone(UTC)


class PingTimer:
    """One thread firing every PingSource at its schedule until stopped."""

    def __init__(
        self, sources: list[PingSource], resolve: Callable[[Destination], str], event_secret: str | None = None
    ) -> None:
        self._sources = sources
        self._resolve = resolve
        # The functions take ticks from the platform's senders only (shared/security/senders.py).
        self._sender_headers = sender_headers(event_secret)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ping-sources", daemon=True)

    def start(self) -> None:
        if self._sources:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def fire(self, source: PingSource, when: datetime) -> None:
        headers, body = to_http(ping_event(source, when))
        headers = {**headers, **self._sender_headers}
        try:
            response = requests.post(self._resolve(source.sink), data=body, headers=headers, timeout=300)
            log.info("ping %s -> %s", source.name, response.status_code)
        except requests.RequestException as exc:  # a missed tick is caught up by the next one
            log.warning("ping %s failed: %s", source.name, exc)

    def _run(self) -> None:
        now = datetime.now(UTC)
        due = {source.name: next_tick(source, now) for source in self._sources}
        while not self._stop.is_set():
            now = datetime.now(UTC)
            for source in self._sources:
                if due[source.name] <= now:
                    self.fire(source, due[source.name])
                    due[source.name] = next_tick(source, now)
            self._stop.wait(max(0.0, (min(due.values()) - datetime.now(UTC)).total_seconds()))
