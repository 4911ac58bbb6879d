"""The inbox ledger: what has arrived of each directory product, so that a product is ingested once.

Every object notification records its object here (a row, no object-store request), and the manifest's
notification records what the manifest lists. A product is complete when every listed object has arrived
with its listed size: one indexed count, however many notifications the product makes and in whatever
order. The delivery that finds it complete claims it (a lease with an owner) and is the only one that moves
it; the others answer at once. The owner renews its lease while it works; a lease that is not renewed
expires, so a worker that died does not block the product: the next delivery after that takes it over (a
redelivery of the claiming event itself is asked to come back later until then: it may be a duplicate of a
delivery still at work). The owner's token fences a worker that lost its lease: it cannot finish the product.

Kept in the catalog database (SQLite or PostgreSQL) beside the processed-events record. Member rows are
dropped once the product is ingested or quarantined; the product row stays, with its outcome.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.catalog.database import CatalogDatabase

_TABLES = """
CREATE TABLE IF NOT EXISTS inbox_products (
    root TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    manifest_etag TEXT,
    listed INTEGER,
    first_arrival {real} NOT NULL,
    last_arrival {real} NOT NULL,
    owner_event TEXT,
    owner_token TEXT,
    lease_until {real},
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS inbox_products_name ON inbox_products (name);
CREATE TABLE IF NOT EXISTS inbox_members (
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (root, path)
);
CREATE TABLE IF NOT EXISTS inbox_listed (
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT,
    PRIMARY KEY (root, path)
)
"""


class ProductState(StrEnum):
    ARRIVING = "arriving"
    INGESTING = "ingesting"
    INGESTED = "ingested"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class InboxProduct:
    root: str
    name: str
    state: ProductState
    manifest_etag: str | None
    listed: int | None  # None until the manifest was read
    first_arrival: float
    last_arrival: float
    owner_event: str | None
    lease_until: float | None
    outcome: dict[str, Any] | None  # the reply of the delivery that settled it

    @property
    def settled(self) -> bool:
        return self.state in (ProductState.INGESTED, ProductState.QUARANTINED)

    def held(self, now: float) -> bool:
        """A delivery holds a live claim on it."""
        live = self.lease_until is not None and self.lease_until >= now
        return self.state is ProductState.INGESTING and live


@dataclass(frozen=True)
class Claim:
    """The right to move one product, until ``lease_s`` after the last renewal."""

    root: str
    event_id: str
    token: str


_COLUMNS = "root, name, state, manifest_etag, listed, first_arrival, last_arrival, owner_event, lease_until, outcome"


class InboxLedger:
    def __init__(self, database: CatalogDatabase, lease_s: float = 10.0) -> None:
        self.database = database
        self.lease_s = lease_s
        real = "REAL" if database.is_sqlite else "double precision"
        with database.connection() as db:
            for statement in _TABLES.format(real=real).split(";"):
                db.execute(statement)

    def _run(self, sql: str, *args: Any) -> Any:
        with self.database.connection() as db:
            return db.execute(self.database.sql(sql), args)

    # -- arrivals ---------------------------------------------------------------------------------

    def product(self, root: str) -> InboxProduct | None:
        row = self._run(f"SELECT {_COLUMNS} FROM inbox_products WHERE root = {{p}}", root).fetchone()
        if row is None:
            return None
        root_, name, state, manifest_etag, listed, first, last, owner_event, lease_until, outcome = row
        return InboxProduct(
            root_, name, ProductState(state), manifest_etag, listed, first, last, owner_event, lease_until,
            json.loads(outcome) if outcome else None,
        )  # fmt: skip

    def register(self, root: str, name: str, now: float | None = None) -> None:
        """The product at ``root`` has objects in the inbox (its last arrival is now)."""
        now = time.time() if now is None else now
        self._run(
            "INSERT INTO inbox_products (root, name, state, first_arrival, last_arrival)"
            " VALUES ({p}, {p}, {p}, {p}, {p})"
            " ON CONFLICT (root) DO UPDATE SET last_arrival = excluded.last_arrival",
            root, name, ProductState.ARRIVING, now, now,
        )  # fmt: skip

    def find(self, name: str) -> InboxProduct | None:
        """The product of that name that arrived last (under whatever key prefix)."""
        row = self._run(
            "SELECT root FROM inbox_products WHERE name = {p} ORDER BY last_arrival DESC LIMIT 1", name
        ).fetchone()
        return None if row is None else self.product(row[0])

    def arrived(self, root: str, name: str, path: str, size: int, now: float | None = None) -> None:
        """An object of the product at ``root`` is in the inbox (``path`` relative to the root)."""
        self.register(root, name, now)
        self._run(
            "INSERT INTO inbox_members (root, path, size) VALUES ({p}, {p}, {p})"
            " ON CONFLICT (root, path) DO UPDATE SET size = excluded.size",
            root, path, size,
        )  # fmt: skip

    def restart(self, root: str) -> bool:
        """A settled product arrives again (a new upload, a release from quarantine): a new round begins.

        Only one of several concurrent callers restarts it (True); the others see it arriving already.
        """
        now = time.time()
        return self._update_then_clear(
            "UPDATE inbox_products SET state = {p}, manifest_etag = NULL, listed = NULL, first_arrival = {p},"
            " last_arrival = {p}, owner_event = NULL, owner_token = NULL, lease_until = NULL, outcome = NULL"
            " WHERE root = {p} AND state IN ({p}, {p})",
            (ProductState.ARRIVING, now, now, root, ProductState.INGESTED, ProductState.QUARANTINED),
            "inbox_listed", root,
        )  # fmt: skip

    def record_inventory(self, root: str, manifest_etag: str, listed: list[tuple[str, int | None]]) -> None:
        """What the manifest (this version of it) lists: paths relative to the root, with sizes if given."""
        # One transaction, which first updates (so locks) the product's row: concurrent deliveries of the
        # manifest record their inventories one after the other.
        with self.database.transaction() as db:
            db.execute(
                self.database.sql("UPDATE inbox_products SET manifest_etag = {p}, listed = {p} WHERE root = {p}"),
                (manifest_etag, len(listed), root),
            )
            db.execute(self.database.sql("DELETE FROM inbox_listed WHERE root = {p}"), (root,))
            db.cursor().executemany(
                self.database.sql("INSERT INTO inbox_listed (root, path, size) VALUES ({p}, {p}, {p})"),
                [(root, path, size) for path, size in listed],
            )

    def complete(self, product: InboxProduct) -> bool:
        """Every listed object arrived with its listed size (False until the manifest was read)."""
        if product.listed is None:
            return False
        (matched,) = self._run(
            "SELECT COUNT(*) FROM inbox_listed l JOIN inbox_members m ON m.root = l.root AND m.path = l.path"
            " WHERE l.root = {p} AND (l.size IS NULL OR l.size = m.size)",
            product.root,
        ).fetchone()
        return bool(matched == product.listed)

    def missing(self, root: str) -> list[str]:
        """Listed objects not arrived yet, or arrived with another size than listed."""
        rows = self._run(
            "SELECT l.path FROM inbox_listed l LEFT JOIN inbox_members m ON m.root = l.root AND m.path = l.path"
            " WHERE l.root = {p} AND (m.path IS NULL OR (l.size IS NOT NULL AND l.size <> m.size)) ORDER BY l.path",
            root,
        ).fetchall()
        return [row[0] for row in rows]

    def seen(self, root: str, path: str, size: int) -> bool:
        """The notification of this object (at this size) was counted, and its product is not settled yet."""
        row = self._run(
            "SELECT 1 FROM inbox_members m JOIN inbox_products p ON p.root = m.root"
            " WHERE m.root = {p} AND m.path = {p} AND m.size = {p} AND p.state IN ({p}, {p})",
            root, path, size, *_OPEN,
        ).fetchone()  # fmt: skip
        return row is not None

    def arrived_count(self, root: str) -> int:
        (count,) = self._run("SELECT COUNT(*) FROM inbox_members WHERE root = {p}", root).fetchone()
        return int(count)

    # -- the claim ----------------------------------------------------------------------------------

    def claim(self, root: str, event_id: str, now: float | None = None) -> Claim | None:
        """Take the product for moving, or None when another delivery holds it or it is settled."""
        now = time.time() if now is None else now
        token = secrets.token_hex(8)
        cursor = self._run(
            "UPDATE inbox_products SET state = {p}, owner_event = {p}, owner_token = {p}, lease_until = {p}"
            " WHERE root = {p} AND (state = {p} OR (state = {p} AND lease_until < {p}))",
            ProductState.INGESTING, event_id, token, now + self.lease_s,
            root, ProductState.ARRIVING, ProductState.INGESTING, now,
        )  # fmt: skip
        return Claim(root, event_id, token) if cursor.rowcount == 1 else None

    def renew(self, claim: Claim) -> bool:
        """Extend the lease; False when it was lost (expired and taken over)."""
        cursor = self._run(
            "UPDATE inbox_products SET lease_until = {p} WHERE root = {p} AND owner_token = {p} AND state = {p}",
            time.time() + self.lease_s, claim.root, claim.token, ProductState.INGESTING,
        )  # fmt: skip
        return bool(cursor.rowcount == 1)

    def release(self, claim: Claim) -> None:
        """Give the product back unmoved (it turned out incomplete in the store)."""
        self._run(
            "UPDATE inbox_products SET state = {p}, owner_token = NULL, lease_until = NULL"
            " WHERE root = {p} AND owner_token = {p}",
            ProductState.ARRIVING, claim.root, claim.token,
        )  # fmt: skip

    def settle(self, claim: Claim, state: ProductState, outcome: dict[str, Any]) -> bool:
        """Record the outcome (the reply) of the claim's delivery; False when the claim was lost meanwhile."""
        return self._update_then_clear(
            "UPDATE inbox_products SET state = {p}, outcome = {p}, lease_until = NULL"
            " WHERE root = {p} AND owner_token = {p} AND state = {p}",
            (state, json.dumps(outcome), claim.root, claim.token, ProductState.INGESTING),
            "inbox_members", claim.root,
        )  # fmt: skip

    def _update_then_clear(self, update: str, args: tuple[Any, ...], table: str, root: str) -> bool:
        """Update the product's row and, when it changed, empty ``table`` for it: both or neither (the update
        locks the row, so the next writer of that product sees the cleared table)."""
        with self.database.transaction() as db:
            if db.execute(self.database.sql(update), args).rowcount != 1:
                return False
            db.execute(self.database.sql(f"DELETE FROM {table} WHERE root = {{p}}"), (root,))
        return True


_OPEN = (ProductState.ARRIVING, ProductState.INGESTING)
