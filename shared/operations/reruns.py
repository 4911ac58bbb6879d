"""Doing work again: replays of archived events and reprocessing of cataloged products.

Both are *reruns*, recorded in the catalog database (table ``reruns``) with a cursor, so one cut short (a
crash, a closed connection, a request timeout) resumes where it stopped:

* a **replay** re-publishes the archived events of a selection, in archive order, each with a new id,
  ``replay=true``, ``replayof=<original id>`` and ``reprocessing=<rerun id>``; the archive is read up to
  the last event it held when the replay was made, so a replay never replays what it caused itself;
* a **reprocessing** re-announces the cataloged products an OData ``$filter`` selects, as
  ``product.cataloged`` events with ``replay=true`` and ``reprocessing=<rerun id>``, in name order.

What they cause carries the same ``reprocessing`` id (:func:`shared.runtime.consequence`): preparation makes
jobs of that reprocessing (keys ``<job>~<rerun id>``), which run with today's task tables and processors and
make new products whose lineage names the job, so the reprocessing; nothing of the first run is overwritten.
Publishing is paced at ``rate`` events per second.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cloudevents.http import CloudEvent

from events import make_event
from events.naming import REPLAY, REPLAY_OF, REPROCESSING, derived_id, function_source
from shared.catalog.announce import cataloged
from shared.catalog.database import CatalogDatabase
from shared.catalog.filters import Prop, Selection, SortKey
from shared.catalog.model import CatalogEntry
from shared.catalog.odata.errors import ODataError
from shared.catalog.odata.filter import parse_filter
from shared.catalog.store import CatalogStore
from shared.operations.archive import ArchivedEvent, EventArchive, EventSelection, SelectionError

Publish = Callable[[CloudEvent], None]
SOURCE = function_source("operations")
PAGE = 500
# Never sent again: the broker's loop guard and the error report of a dead letter; and the marks a replay sets anew.
_NOT_REPLAYED = frozenset({"knativebrokerttl", "knativeerrorcode", "knativeerrordest", "knativeerrordata",
                           "data", "data_base64", REPLAY, REPLAY_OF, REPROCESSING, "id", "time"})  # fmt: skip

_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS reruns (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, request TEXT NOT NULL, upto INTEGER, cursor TEXT NOT NULL,
    matched INTEGER NOT NULL, published INTEGER NOT NULL, state TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
)"""
_POSTGRES_DDL = _SQLITE_DDL.replace("INTEGER", "bigint").replace("TEXT", "text")


class Kind(StrEnum):
    REPLAY = "replay"
    REPROCESSING = "reprocessing"


class RerunState(StrEnum):
    RUNNING = "running"  # or cut short: resume it
    DONE = "done"


@dataclass(frozen=True)
class Rerun:
    id: str
    kind: Kind
    request: dict[str, Any]  # replay: the selection (JSON form); reprocessing: {"filter": ...}
    upto: int | None  # replay: the last archived event it may send
    cursor: str  # replay: seq of the last event sent; reprocessing: name of the last product announced
    matched: int
    published: int
    state: RerunState
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "request": self.request,
            "matched": self.matched,
            "published": self.published,
            "state": self.state.value,
            "cursor": self.cursor,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


class RerunStore:
    def __init__(self, url: str) -> None:
        self.database = CatalogDatabase(url)
        with self.database.connection() as db:
            db.execute(_SQLITE_DDL if self.database.is_sqlite else _POSTGRES_DDL)

    def create(self, kind: Kind, request: Mapping[str, Any], matched: int, upto: int | None = None) -> Rerun:
        now = _now()
        rerun_id = f"{kind.value}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        sql = "INSERT INTO reruns VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
        with self.database.transaction() as db:
            db.execute(
                self.database.sql(sql),
                (rerun_id, kind.value, json.dumps(dict(request)), upto, "", matched, 0, RerunState.RUNNING, now, now),
            )
        found = self.get(rerun_id)
        assert found is not None
        return found

    def get(self, rerun_id: str) -> Rerun | None:
        sql = "SELECT * FROM reruns WHERE id = {p}"
        with self.database.connection() as db:
            row = db.execute(self.database.sql(sql), (rerun_id,)).fetchone()
        return None if row is None else _rerun(row)

    def list(self, limit: int = 100) -> list[Rerun]:
        with self.database.connection() as db:
            rows = db.execute(self.database.sql("SELECT * FROM reruns ORDER BY created_at DESC LIMIT {p}"), (limit,))
            return [_rerun(row) for row in rows.fetchall()]

    def advance(self, rerun_id: str, cursor: str, published: int, state: RerunState = RerunState.RUNNING) -> None:
        sql = "UPDATE reruns SET cursor = {p}, published = {p}, state = {p}, updated_at = {p} WHERE id = {p}"
        with self.database.transaction() as db:
            db.execute(self.database.sql(sql), (cursor, published, state.value, _now(), rerun_id))


class Pace:
    """At most ``rate`` calls of :meth:`wait` per second, evenly spread."""

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.interval = 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next = clock()

    def wait(self) -> None:
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
        self._next = max(self._next, now) + self.interval


# -- replays ---------------------------------------------------------------------------------------------


def plan_replay(archive: EventArchive, store: RerunStore, selection: EventSelection) -> Rerun:
    upto = archive.last_seq()
    matched = archive.count(selection, upto=upto)["matched"]
    return store.create(Kind.REPLAY, selection.to_json(), matched, upto)


def replayed(event: ArchivedEvent, rerun_id: str) -> CloudEvent:
    """The archived event sent again: a new id, marked as a replay of it within ``rerun_id``."""
    record = event.record
    attributes = {k: v for k, v in record.items() if k not in _NOT_REPLAYED}
    attributes.update({
        "id": derived_id("replay", rerun_id, record["source"], record["id"]),
        "time": datetime.now(UTC).isoformat(),
        REPLAY: "true",
        REPLAY_OF: str(record["id"]),
        REPROCESSING: rerun_id,
    })  # fmt: skip
    data: Any = record.get("data")
    if "data_base64" in record:
        data = base64.b64decode(record["data_base64"])
    return CloudEvent(attributes, data)


def run_replay(rerun: Rerun, archive: EventArchive, store: RerunStore, publish: Publish, pace: Pace) -> Iterator[int]:
    """Send what is left of a replay; yields the count sent so far after each event (the cursor is kept)."""
    selection = EventSelection.from_json(rerun.request)
    published, cursor = rerun.published, rerun.cursor
    for event in archive.iterate(selection, after=int(cursor or 0), upto=rerun.upto):
        pace.wait()
        publish(replayed(event, rerun.id))
        published, cursor = published + 1, str(event.seq)
        store.advance(rerun.id, cursor, published)
        yield published
    store.advance(rerun.id, cursor, published, RerunState.DONE)


# -- reprocessing ----------------------------------------------------------------------------------------


def product_filter(text: str) -> Any:
    """An OData ``$filter`` as the catalog applies it; :class:`SelectionError` saying what is wrong."""
    try:
        return parse_filter(text)
    except ODataError as exc:
        raise SelectionError(f"filter: {exc.message}") from None


def products(catalog: CatalogStore, where: Any, before: datetime, after: str = "") -> Iterator[CatalogEntry]:
    """The products a filter selects that were published by ``before``, in name order, after the name ``after``
    (those published since, e.g. by the reprocessing itself, are not part of it)."""
    order = (SortKey(Prop.NAME),)
    while page := catalog.find(Selection(where=where, order=order, limit=PAGE, after=(after,) if after else None)):
        yield from (entry for entry in page if entry.publication_time <= before)
        after = page[-1].name


def count_products(catalog: CatalogStore, where: Any, before: datetime | None = None) -> dict[str, Any]:
    """``{"matched": N, "byType": {product type: n}}`` of a reprocessing filter."""
    by_type: dict[str, int] = {}
    for entry in products(catalog, where, before or datetime.now(UTC)):
        by_type[entry.product_type] = by_type.get(entry.product_type, 0) + 1
    return {"matched": sum(by_type.values()), "byType": dict(sorted(by_type.items()))}


def plan_reprocessing(catalog: CatalogStore, store: RerunStore, text: str) -> Rerun:
    before = datetime.now(UTC)
    matched = count_products(catalog, product_filter(text), before)["matched"]
    return store.create(Kind.REPROCESSING, {"filter": text, "before": before.isoformat()}, matched)


def announcement(entry: CatalogEntry, rerun_id: str) -> CloudEvent:
    """A cataloged product announced again, within the reprocessing ``rerun_id``."""
    event = make_event(cataloged(entry), source=SOURCE, extensions={REPLAY: "true", REPROCESSING: rerun_id})
    event["id"] = derived_id(event["id"], rerun_id)
    return event


def run_reprocessing(
    rerun: Rerun, catalog: CatalogStore, store: RerunStore, publish: Publish, pace: Pace
) -> Iterator[int]:
    """Announce what is left of a reprocessing; yields the count announced so far after each product."""
    where = product_filter(str(rerun.request["filter"]))
    before = datetime.fromisoformat(str(rerun.request["before"]))
    published, cursor = rerun.published, rerun.cursor
    for entry in products(catalog, where, before, after=cursor):
        pace.wait()
        publish(announcement(entry, rerun.id))
        published, cursor = published + 1, entry.name
        store.advance(rerun.id, cursor, published)
        yield published
    store.advance(rerun.id, cursor, published, RerunState.DONE)


def run(rerun: Rerun, archive: EventArchive, catalog: CatalogStore, store: RerunStore, publish: Publish,
        pace: Pace) -> Iterator[int]:  # fmt: skip
    """What is left of a rerun, whichever its kind (nothing for one that is done)."""
    if rerun.state is RerunState.DONE:
        return iter(())
    if rerun.kind is Kind.REPLAY:
        return run_replay(rerun, archive, store, publish, pace)
    return run_reprocessing(rerun, catalog, store, publish, pace)


def _rerun(row: Any) -> Rerun:
    return Rerun(
        id=row[0],
        kind=Kind(row[1]),
        request=json.loads(row[2]),
        upto=None if row[3] is None else int(row[3]),
        cursor=str(row[4]),
        matched=int(row[5]),
        published=int(row[6]),
        state=RerunState(row[7]),
        created_at=str(row[8]),
        updated_at=str(row[9]),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
