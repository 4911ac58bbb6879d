"""The event archive: every event that crossed the broker, in order, with its delivery outcomes.

One table (or view) ``archived_events`` — seq, id, source, type, subject, time, received_at, event (the
structured-mode JSON) and outcomes (a JSON list) — read the same way wherever it lives:

* on a cluster, the ``archive`` function (a Trigger without filter) writes it into the catalog database;
  the only outcomes Knative reports there are dead letters, which the ``deadletter`` function adds;
* on a laptop, the local broker's durable queue *is* the archive: its database has the same view over its
  events and deliveries (:mod:`shared.bus.queue`), with every delivery's outcome.

Selections (:class:`EventSelection`) are SQL over that table, so a dry run counts exactly what a replay sends.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.catalog.database import CatalogDatabase

TABLE = "archived_events"
_COLUMNS = "seq, id, source, type, subject, time, received_at, event, outcomes"
_SQLITE_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL,
    source      TEXT NOT NULL,
    type        TEXT NOT NULL,
    subject     TEXT,
    time        TEXT,
    received_at REAL NOT NULL,
    event       TEXT NOT NULL,
    outcomes    TEXT NOT NULL DEFAULT '[]',
    UNIQUE (source, id)
)"""
_POSTGRES_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    seq         bigserial PRIMARY KEY,
    id          text NOT NULL,
    source      text NOT NULL,
    type        text NOT NULL,
    subject     text,
    time        text,
    received_at double precision NOT NULL,
    event       text NOT NULL,
    outcomes    text NOT NULL DEFAULT '[]',
    UNIQUE (source, id)
)"""
_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS {TABLE}_type ON {TABLE} (type, seq)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_received ON {TABLE} (received_at)",
)
# CloudEvents attribute names (the selection reads them inside the stored JSON: no other name is accepted).
_ATTRIBUTE = re.compile(r"^[a-z0-9]{1,20}$")
# Attributes a selection names by their own option, not as routing attributes.
_CORE = frozenset({"id", "source", "type", "subject", "time", "specversion", "data", "data_base64"})


class SelectionError(ValueError):
    """A selection that cannot be applied; the message says which field and why."""


@dataclass(frozen=True)
class EventSelection:
    """Which archived events: every given criterion must hold (a list of types or sources: any of them).

    ``subject`` is a glob on the subject; ``product`` a glob on the product name, matched against the subject
    and what lies below it (``NAME/...``: the objects of a product). ``since``/``until`` bound the time the
    broker received the event. Events that are themselves replays (``replay=true``) are left out unless
    ``include_replays``: replaying yesterday should not send last night's replay again.
    """

    types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    subject: str | None = None
    product: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    include_replays: bool = False

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> EventSelection:
        """From the API's JSON (or query) form; :class:`SelectionError` for anything not understood."""
        known = {"type", "types", "source", "sources", "since", "until", "subject", "product", "attributes",
                 "includeReplays"}  # fmt: skip
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SelectionError(f"unknown selection field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        attributes = raw.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise SelectionError('attributes must be an object: {"mission": "S1"}')
        for name, value in attributes.items():
            if not _ATTRIBUTE.match(str(name)) or name in _CORE:
                raise SelectionError(f"attributes: {name!r} is not a routing attribute name (1-20 a-z0-9)")
            if not isinstance(value, str):
                raise SelectionError(f"attributes.{name}: a string is expected")
        return cls(
            types=_strings(raw, "type", "types"),
            sources=_strings(raw, "source", "sources"),
            since=_time(raw.get("since"), "since"),
            until=_time(raw.get("until"), "until"),
            subject=_text(raw.get("subject"), "subject"),
            product=_text(raw.get("product"), "product"),
            attributes={str(k): str(v) for k, v in attributes.items()},
            include_replays=_flag(raw.get("includeReplays", False)),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.types:
            out["types"] = list(self.types)
        if self.sources:
            out["sources"] = list(self.sources)
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat()
        if self.subject:
            out["subject"] = self.subject
        if self.product:
            out["product"] = self.product
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        if self.include_replays:
            out["includeReplays"] = True
        return out


@dataclass(frozen=True)
class ArchivedEvent:
    seq: int
    record: dict[str, Any]  # the structured-mode CloudEvent as the broker received it
    received_at: float
    outcomes: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        r = self.record
        return {
            "seq": self.seq,
            "id": r.get("id"),
            "type": r.get("type"),
            "source": r.get("source"),
            "subject": r.get("subject"),
            "receivedAt": datetime.fromtimestamp(self.received_at, UTC).isoformat(),
            "outcomes": self.outcomes,
        }


class EventArchive:
    """The ``archived_events`` of a database: created as a table where it is missing, read as it is (the local
    broker's view) where it exists."""

    def __init__(self, url: str) -> None:
        self.database = CatalogDatabase(url)
        with self.database.connection() as db:
            if self.database.is_sqlite:
                row = db.execute("SELECT type FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()
                self.writable = row is None or row[0] == "table"
                if self.writable:
                    db.execute(_SQLITE_DDL)
            else:
                self.writable = True
                db.execute(_POSTGRES_DDL)
            if self.writable:
                for index in _INDEXES:
                    db.execute(index)

    def close(self) -> None:
        self.database.close()

    # -- writing (the archive function) ----------------------------------------------------------------

    def store(self, record: Mapping[str, Any], received_at: float | None = None) -> bool:
        """Keep one event; False when it was already kept (a redelivery: the first copy stays)."""
        self._need_writable()
        sql = (
            f"INSERT INTO {TABLE} (id, source, type, subject, time, received_at, event)"
            " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (source, id) DO NOTHING"
        )
        values = (
            str(record["id"]),
            str(record["source"]),
            str(record["type"]),
            _optional(record.get("subject")),
            _optional(record.get("time")),
            time.time() if received_at is None else received_at,
            json.dumps(record),
        )
        with self.database.transaction() as db:
            return bool(db.execute(self.database.sql(sql), values).rowcount)

    def add_outcome(self, source: str, event_id: str, outcome: Mapping[str, Any]) -> bool:
        """Append a delivery outcome (e.g. a dead letter) to an archived event; False if it is not archived."""
        self._need_writable()
        with self.database.transaction() as db:
            row = db.execute(
                self.database.sql(f"SELECT seq, outcomes FROM {TABLE} WHERE source = {{p}} AND id = {{p}}"),
                (source, event_id),
            ).fetchone()
            if row is None:
                return False
            outcomes = [*json.loads(row[1] or "[]"), dict(outcome)]
            db.execute(
                self.database.sql(f"UPDATE {TABLE} SET outcomes = {{p}} WHERE seq = {{p}}"),
                (json.dumps(outcomes), row[0]),
            )
        return True

    def purge(self, older_than_s: float, now: float | None = None) -> int:
        """Delete what is older than the retention; the broker's view is purged by the broker itself (0 here)."""
        if not self.writable:
            return 0
        cutoff = (time.time() if now is None else now) - older_than_s
        with self.database.transaction() as db:
            return int(
                db.execute(self.database.sql(f"DELETE FROM {TABLE} WHERE received_at < {{p}}"), (cutoff,)).rowcount
            )

    # -- reading --------------------------------------------------------------------------------------

    def last_seq(self) -> int:
        with self.database.connection() as db:
            row = db.execute(f"SELECT MAX(seq) FROM {TABLE}").fetchone()
        return int(row[0] or 0)

    def select(
        self, selection: EventSelection, *, after: int = 0, upto: int | None = None, limit: int = 500
    ) -> list[ArchivedEvent]:
        """The matching events with ``after < seq <= upto``, oldest first, at most ``limit``."""
        where, params = self._where(selection, after, upto)
        sql = f"SELECT seq, event, received_at, outcomes FROM {TABLE} WHERE {where} ORDER BY seq LIMIT {{p}}"
        with self.database.connection() as db:
            rows = db.execute(self.database.sql(sql), (*params, int(limit))).fetchall()
        return [ArchivedEvent(int(seq), json.loads(event), float(at), json.loads(outs or "[]")) for seq, event, at,
                outs in rows]  # fmt: skip

    def iterate(self, selection: EventSelection, *, after: int = 0, upto: int | None = None) -> Iterator[ArchivedEvent]:
        """Every matching event in order, read a page at a time."""
        while page := self.select(selection, after=after, upto=upto):
            yield from page
            after = page[-1].seq

    def count(self, selection: EventSelection, *, upto: int | None = None) -> dict[str, Any]:
        """``{"matched": N, "byType": {type: n}}`` of a selection: what a replay of it would send."""
        where, params = self._where(selection, 0, upto)
        sql = f"SELECT type, COUNT(*) FROM {TABLE} WHERE {where} GROUP BY type ORDER BY type"
        with self.database.connection() as db:
            rows = db.execute(self.database.sql(sql), params).fetchall()
        by_type = {str(t): int(n) for t, n in rows}
        return {"matched": sum(by_type.values()), "byType": by_type}

    # -- internals --------------------------------------------------------------------------------------

    def _need_writable(self) -> None:
        if not self.writable:
            raise RuntimeError(f"{TABLE} here is the local broker's view: the broker keeps it")

    def _attribute(self, name: str) -> str:
        """SQL of one attribute of the stored JSON (its name is checked by the selection, never free text)."""
        if self.database.is_sqlite:
            return f"json_extract(event, '$.{name}')"
        return f"(event::jsonb ->> '{name}')"

    def _where(self, s: EventSelection, after: int, upto: int | None) -> tuple[str, list[Any]]:
        p = "{p}"
        clauses: list[str] = [f"seq > {p}"]
        params: list[Any] = [after]
        if upto is not None:
            clauses.append(f"seq <= {p}")
            params.append(upto)
        for column, values in (("type", s.types), ("source", s.sources)):
            if values:
                clauses.append(f"{column} IN ({', '.join([p] * len(values))})")
                params.extend(values)
        if s.since is not None:
            clauses.append(f"received_at >= {p}")
            params.append(s.since.timestamp())
        if s.until is not None:
            clauses.append(f"received_at < {p}")
            params.append(s.until.timestamp())
        if s.subject is not None:
            clauses.append(f"subject LIKE {p} ESCAPE '\\'")
            params.append(_like(s.subject))
        if s.product is not None:
            clauses.append(f"(subject LIKE {p} ESCAPE '\\' OR subject LIKE {p} ESCAPE '\\')")
            params.extend((_like(s.product), _like(s.product) + "/%"))
        for name, value in sorted(s.attributes.items()):
            clauses.append(f"{self._attribute(name)} = {p}")
            params.append(value)
        if not s.include_replays:
            clauses.append(f"COALESCE({self._attribute('replay')}, '') <> 'true'")
        return self.database.sql(" AND ".join(clauses)), params


def _like(glob: str) -> str:
    """A glob (``*``, ``?``) as a LIKE pattern, LIKE's own wildcards escaped."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def _strings(raw: Mapping[str, Any], one: str, many: str) -> tuple[str, ...]:
    values: list[Any] = []
    for key in (one, many):
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            values.extend(v for v in value.split(",") if v)
        elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            values.extend(value)
        else:
            raise SelectionError(f"{key}: a string or a list of strings is expected")
    return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SelectionError(f"{name}: a string is expected")
    return value


def _time(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SelectionError(f"{name}: an ISO 8601 date-time is expected, e.g. 2026-12-01T00:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SelectionError(f"{name}: {value!r} is not an ISO 8601 date-time, e.g. 2026-12-01T00:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise SelectionError("includeReplays: true or false is expected")
