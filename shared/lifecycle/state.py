"""The lifecycle's own tables, beside the catalog: pins and the eviction journal.

* ``lifecycle_pins``: a pinned product is never evicted. The sweep asks this table, not the entry's
  EvictionDate alone, so a pin or unpin cut short between its two writes still protects the product.
* ``lifecycle_evictions``: one row per eviction, written *before* anything is changed, holding the
  EvictionDate and rule the eviction announces. A sweep first finishes every row still ``evicting`` (a
  crash, a store error half-way): the entry is already offline then, so the due query alone would never
  find it again. The row's EvictionDate gives ``product.evicted`` its id: a retried eviction sends the
  same event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.catalog.database import CatalogDatabase
from shared.catalog.model import format_utc, parse_utc

EVICTING = "evicting"
EVICTED = "evicted"

_DDL = (
    """CREATE TABLE IF NOT EXISTS lifecycle_pins (
        product_id TEXT PRIMARY KEY, name TEXT NOT NULL, reason TEXT NOT NULL, pinned_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS lifecycle_evictions (
        product_id TEXT PRIMARY KEY, name TEXT NOT NULL, bucket TEXT NOT NULL, object_key TEXT NOT NULL,
        eviction_time TEXT NOT NULL, rule TEXT NOT NULL, state TEXT NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS lifecycle_evictions_state ON lifecycle_evictions (state, started_at)",
)


@dataclass(frozen=True)
class Pin:
    product_id: str
    name: str
    reason: str
    pinned_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.product_id, "name": self.name, "reason": self.reason, "pinnedAt": format_utc(self.pinned_at)}


@dataclass(frozen=True)
class Eviction:
    product_id: str
    name: str
    bucket: str
    key: str
    eviction_time: datetime
    rule: str
    state: str
    started_at: datetime
    ended_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.product_id,
            "name": self.name,
            "bucket": self.bucket,
            "key": self.key,
            "evictionDate": format_utc(self.eviction_time),
            "rule": self.rule,
            "state": self.state,
            "startedAt": format_utc(self.started_at),
            "endedAt": None if self.ended_at is None else format_utc(self.ended_at),
        }


class LifecycleStore:
    """Pins and the eviction journal in the catalog database at ``url`` (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.database = CatalogDatabase(url)
        with self.database.connection() as db:
            for statement in _DDL:
                db.execute(statement)

    def close(self) -> None:
        self.database.close()

    def _execute(self, text: str, params: tuple[Any, ...] = ()) -> Any:
        with self.database.connection() as db:
            return db.execute(self.database.sql(text), params)

    # -- pins -------------------------------------------------------------------------------------

    def pin(self, product_id: str, name: str, reason: str, now: datetime) -> Pin:
        """Pin a product (pinning it again keeps the first pin and its reason)."""
        self._execute(
            "INSERT INTO lifecycle_pins VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (product_id) DO NOTHING",
            (product_id, name, reason, format_utc(now)),
        )
        found = self.get_pin(product_id)
        assert found is not None  # just inserted, or there already; pins are removed only by unpin
        return found

    def unpin(self, product_id: str) -> bool:
        return int(self._execute("DELETE FROM lifecycle_pins WHERE product_id = {p}", (product_id,)).rowcount) > 0

    def get_pin(self, product_id: str) -> Pin | None:
        row = self._execute("SELECT * FROM lifecycle_pins WHERE product_id = {p}", (product_id,)).fetchone()
        return None if row is None else Pin(row[0], row[1], row[2], parse_utc(row[3]))

    def pinned_ids(self) -> set[str]:
        return {row[0] for row in self._execute("SELECT product_id FROM lifecycle_pins").fetchall()}

    def pins(self) -> list[Pin]:
        rows = self._execute("SELECT * FROM lifecycle_pins ORDER BY name").fetchall()
        return [Pin(r[0], r[1], r[2], parse_utc(r[3])) for r in rows]

    # -- eviction journal -------------------------------------------------------------------------

    def begin(
        self, product_id: str, name: str, bucket: str, key: str, eviction_time: datetime, rule: str, now: datetime
    ) -> Eviction:
        """The eviction of a product, recorded before anything changes. An eviction already begun (a retry)
        is returned as it was: its EvictionDate and rule, so the same event. A finished one is begun anew: the
        caller found the product online again (its bytes stored again since)."""
        params = (product_id, name, bucket, key, format_utc(eviction_time), rule, EVICTING, format_utc(now))
        with self.database.transaction() as db:
            db.execute(
                self.database.sql(
                    "INSERT INTO lifecycle_evictions VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, NULL)"
                    " ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, bucket = excluded.bucket,"
                    " object_key = excluded.object_key, eviction_time = excluded.eviction_time,"
                    " rule = excluded.rule, state = excluded.state, started_at = excluded.started_at, ended_at = NULL"
                    " WHERE lifecycle_evictions.state = {p}"
                ),
                (*params, EVICTED),
            )
        found = self.get(product_id)
        assert found is not None
        return found

    def finish(self, product_id: str, now: datetime) -> None:
        self._execute(
            "UPDATE lifecycle_evictions SET state = {p}, ended_at = {p} WHERE product_id = {p} AND state = {p}",
            (EVICTED, format_utc(now), product_id, EVICTING),
        )

    def get(self, product_id: str) -> Eviction | None:
        row = self._execute("SELECT * FROM lifecycle_evictions WHERE product_id = {p}", (product_id,)).fetchone()
        return None if row is None else _eviction(row)

    def unfinished(self) -> Iterator[Eviction]:
        rows = self._execute(
            "SELECT * FROM lifecycle_evictions WHERE state = {p} ORDER BY started_at, product_id", (EVICTING,)
        ).fetchall()
        return (_eviction(r) for r in rows)

    def recent(self, limit: int = 100) -> list[Eviction]:
        rows = self._execute(
            "SELECT * FROM lifecycle_evictions ORDER BY started_at DESC, product_id LIMIT {p}", (limit,)
        ).fetchall()
        return [_eviction(r) for r in rows]


def _eviction(row: Any) -> Eviction:
    return Eviction(
        product_id=row[0],
        name=row[1],
        bucket=row[2],
        key=row[3],
        eviction_time=parse_utc(row[4]),
        rule=row[5],
        state=row[6],
        started_at=parse_utc(row[7]),
        ended_at=None if row[8] is None else parse_utc(row[8]),
    )
