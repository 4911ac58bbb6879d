"""Catalog and OData benchmark: bulk insert, and a fixed query mix through the OData service,
each against a hand-written SQL baseline giving the same result, measured in the same run.

Rows are ``(name, value, ratio to baseline)``: rates in entries/s (ratio = ours / bare database,
higher is better), latencies as p95 milliseconds (ratio = ours / hand-written SQL, lower is better).
Targets (issue 6): p95 <= 50 ms and <= 1.3 x the hand-written SQL; >= 10,000 entries/s.

Sizes: ``REFSYS_BENCH_SQLITE_ENTRIES`` (default 1,000,000, the issue's size) and
``REFSYS_BENCH_POSTGIS_ENTRIES`` (default 200,000; the 10,000,000 run in the README took 24 minutes,
most of them making and loading the entries). PostGIS runs on ``REFSYS_BENCH_POSTGRES_URL`` when set (its
``products`` table is emptied first), else on a throwaway server when PostgreSQL is installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import flask

from shared.catalog import CatalogEntry, CatalogStore, open_catalog, product_id
from shared.catalog.filters import Prop, Selection, SortKey
from shared.catalog.model import format_utc, parse_utc
from shared.catalog.odata.filter import parse_filter
from shared.catalog.odata.service import ODataService

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TYPES = ("IW_GRDH_1S", "IW_SLC__1S", "EW_GRDM_1S", "IW_RAW__0S", "WV_OCN__2S", "IW_GRDH_1A")
BATCH = 5_000
# The throwaway server as a production one runs: durable, with a real buffer cache (not the tests' 32 MB).
PRODUCTION_SETTINGS = "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\nshared_buffers = 1GB\n"
RUNS = 40
# Type + time range + Intersects, as the issue asks: half a year of Europe and Africa for one product type.
WHERE = (
    "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
    "att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S') and "
    "ContentDate/Start ge 2024-03-01T00:00:00Z and ContentDate/Start lt 2024-09-01T00:00:00Z and "
    "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((-30 0, 60 0, 60 70, -30 70, -30 0))')"
)


def synthetic_entries(count: int, seed: int = 6) -> Iterator[CatalogEntry]:
    """``count`` products over one year, arriving as an archive does: in sensing order, give or take
    an hour (a random order over the year makes every time index insert at a random place)."""
    rng = random.Random(seed)
    step = 365 * 86400 / max(count, 1)
    for i in range(count):
        name = f"S1A_BENCH_{i:08d}.SAFE"
        lon, lat = rng.uniform(-180, 178), rng.uniform(-80, 78)
        start = T0 + timedelta(seconds=max(0.0, i * step + rng.uniform(-3600, 3600)))
        product_type = TYPES[i % len(TYPES)]
        yield CatalogEntry(
            id=product_id(name),
            name=name,
            mission="S1",
            satellite="A",
            product_type=product_type,
            level="L1",
            family="L1_SLICE",
            bucket="rs-bench",
            key=f"{name}/",
            content_length=rng.randrange(1, 2**32),
            checksum=f"{i:032x}",
            content_type="application/octet-stream",
            validity_start=start,
            validity_stop=start + timedelta(seconds=25),
            footprint={
                "type": "Polygon",
                "coordinates": [[[lon, lat], [lon + 2, lat], [lon + 2, lat + 2], [lon, lat + 2], [lon, lat]]],
            },
            attributes={"productType": product_type, "orbitNumber": i // 14, "cloudCover": rng.uniform(0, 100)},
            publication_time=T0 + timedelta(milliseconds=i),
            modification_time=T0 + timedelta(milliseconds=i),
        )


def _batches(count: int) -> Iterator[list[CatalogEntry]]:
    entries = synthetic_entries(count)
    while batch := [e for _, e in zip(range(BATCH), entries, strict=False)]:
        yield batch


def _load(store: CatalogStore, count: int) -> float:
    """Entries per second of ``upsert_many`` in batches (making the entries is not timed)."""
    spent = 0.0
    for batch in _batches(count):
        started = time.perf_counter()
        store.upsert_many(batch)
        spent += time.perf_counter() - started
    return count / spent


def _paired_p95_ms(ours: Callable[[], Any], theirs: Callable[[], Any]) -> tuple[float, float]:
    """p95 milliseconds of each, their runs alternated so that both meet the same machine noise."""
    ours(), theirs()  # warm caches and statements
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(RUNS):
        for operation, times in ((ours, samples[0]), (theirs, samples[1])):
            started = time.perf_counter()
            operation()
            times.append((time.perf_counter() - started) * 1000)
    p95_ours, p95_theirs = (statistics.quantiles(times, n=20)[-1] for times in samples)
    return p95_ours, p95_theirs


def _client(store: CatalogStore) -> Any:
    service = ODataService(lambda: store, lambda: None)
    app = flask.Flask("bench")
    app.add_url_rule("/<path:path>", "odata", lambda path: service.handle(flask.request))
    return app.test_client()


def _odata(client: Any, query: str) -> Callable[[], bytes]:
    """The response body of a query: what the server makes (reading it is the client's work)."""

    def call() -> bytes:
        response = client.get("/odata/v1/Products?" + query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data()

    return call


# Hand-written SQL for the same results: what a person writes against this schema (the footprint box
# columns, the planner's choice of index), rows fetched as tuples.
_SQLITE_BASE = """
SELECT p.* FROM products p
WHERE p.attr_product_type = 'IW_GRDH_1S'
  AND p.validity_start >= '2024-03-01T00:00:00.000000Z' AND p.validity_start < '2024-09-01T00:00:00.000000Z'
  AND p.max_lon >= -30 AND p.min_lon <= 60 AND p.max_lat >= 0 AND p.min_lat <= 70
  {after}
ORDER BY p.publication_time, p.name LIMIT 101
"""
_POSTGRES_BASE = """
SELECT p.* FROM products p
WHERE p.product_type = 'IW_GRDH_1S'
  AND p.validity_start >= '2024-03-01T00:00:00Z' AND p.validity_start < '2024-09-01T00:00:00Z'
  AND ST_Intersects(p.footprint_geom, ST_GeomFromText('POLYGON((-30 0, 60 0, 60 70, -30 70, -30 0))', 4326))
  {after}
ORDER BY p.publication_time, p.name LIMIT 101
"""


def _query_rows(
    label: str, store: CatalogStore, run_sql: Callable[[str], list[Any]], base: str
) -> list[tuple[str, float, float]]:
    client = _client(store)
    query = "$top=100&$filter=" + quote(WHERE, safe="")
    first = json.loads(_odata(client, query)())
    # Deep page: follow nextLink five pages of 100 down (or as far as the results go).
    link, after = query, None
    for _ in range(5):
        body = json.loads(_odata(client, link)())
        if "@odata.nextLink" not in body:
            break
        link = body["@odata.nextLink"].split("?", 1)[1]
        after = (parse_utc(body["value"][-1]["PublicationDate"]), body["value"][-1]["Name"])
    keyset = (
        "" if after is None else f"AND (p.publication_time, p.name) > ('{_sql_time(label, after[0])}', '{after[1]}')"
    )
    count_sql = base.format(after="").replace("SELECT p.*", "SELECT count(*)").split("ORDER BY")[0]
    hand_written = {
        "page": lambda: run_sql(base.format(after="")),
        "count": lambda: (run_sql(base.format(after="")), run_sql(count_sql)),
        "deep": lambda: run_sql(base.format(after=keyset)),
    }
    # The same three at store level too (CatalogEntry objects, no Flask, no JSON): what the store
    # adds to the hand-written SQL, without the HTTP layer the baseline does not have.
    order = (SortKey(Prop.PUBLICATION),)
    page = Selection(where=parse_filter(WHERE), order=order, limit=101)
    cases = [
        (f"type+time+Intersects $top=100 ({len(first['value'])} rows)", "page", _odata(client, query)),
        ("same with $count=true", "count", _odata(client, query + "&$count=true")),
        ("deep page via nextLink", "deep", _odata(client, link)),
        ("store: type+time+Intersects limit 101", "page", lambda: store.find(page)),
        ("store: same with count", "count", lambda: store.find_counted(page)),
        ("store: deep page", "deep", lambda: store.find(dataclasses.replace(page, after=after))),
    ]
    rows = []
    for name, baseline, operation in cases:
        ours, theirs = _paired_p95_ms(operation, hand_written[baseline])
        rows.append((f"{label} {name} p95 ms", ours, ours / theirs))
    return rows


def _sql_time(label: str, value: datetime) -> str:
    # SQLite stores fixed-width microsecond text.
    return format_utc(value) if label == "sqlite" else value.isoformat()


def bench_sqlite(workdir: Path, entries: int) -> list[tuple[str, float, float]]:
    path = workdir / "bench.db"
    store = open_catalog(f"sqlite:///{path}")
    try:
        rate = _load(store, entries)
        bare = _bare_sqlite_rate(workdir / "bare.db", min(entries, 100_000))
        rows = [(f"sqlite bulk insert entries/s ({entries:,} entries)", rate, rate / bare)]
        conn = sqlite3.connect(path)
        try:
            rows += _query_rows("sqlite", store, lambda sql: conn.execute(sql).fetchall(), _SQLITE_BASE)
        finally:
            conn.close()
        return rows
    finally:
        store.close()


def _bare_sqlite_rate(path: Path, count: int) -> float:
    """The bare database: the same values, one executemany per batch into an unindexed table."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id TEXT, name TEXT, product_type TEXT, start TEXT, footprint TEXT, attributes TEXT)")
    spent = 0.0
    for batch in _batches(count):
        rows = [
            (e.id, e.name, e.product_type, str(e.validity_start), str(e.footprint), str(e.attributes)) for e in batch
        ]
        started = time.perf_counter()
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.commit()
        spent += time.perf_counter() - started
    rate = count / spent
    conn.close()
    return rate


def bench_postgres(url: str, entries: int) -> list[tuple[str, float, float]]:
    import psycopg

    store = open_catalog(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE products")
            rate = _load(store, entries)
            # What autovacuum does to a table after inserts: statistics, and the visibility map
            # that lets the type + time index answer a query's candidates alone.
            conn.execute("VACUUM ANALYZE products")
            conn.execute("CHECKPOINT")  # the load's dirty buffers written now, not during the timed queries
            bare = _bare_postgres_rate(conn, min(entries, 100_000))
            rows = [(f"postgis bulk insert entries/s ({entries:,} entries)", rate, rate / bare)]
            rows += _query_rows("postgis", store, lambda sql: conn.execute(sql).fetchall(), _POSTGRES_BASE)
            return rows
    finally:
        store.close()


def _bare_postgres_rate(conn: Any, count: int) -> float:
    conn.execute("CREATE TEMP TABLE bare (id text, name text, product_type text, start timestamptz, footprint text)")
    spent = 0.0
    for batch in _batches(count):
        rows = [(e.id, e.name, e.product_type, e.validity_start, str(e.footprint)) for e in batch]
        started = time.perf_counter()
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO bare VALUES (%s, %s, %s, %s, %s)", rows)
        spent += time.perf_counter() - started
    return count / spent


def run(
    sqlite_entries: int | None = None, postgres_entries: int | None = None, postgres_url: str | None = None
) -> list[tuple[str, float, float]]:
    """Every row, at the sizes given or set in the environment (see the module's text)."""
    if sqlite_entries is None:
        sqlite_entries = int(os.environ.get("REFSYS_BENCH_SQLITE_ENTRIES", "1000000"))
    if postgres_entries is None:
        postgres_entries = int(os.environ.get("REFSYS_BENCH_POSTGIS_ENTRIES", "200000"))
    postgres_url = postgres_url or os.environ.get("REFSYS_BENCH_POSTGRES_URL") or None
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as workdir:
        if sqlite_entries:
            rows += bench_sqlite(Path(workdir), sqlite_entries)
    if postgres_entries:
        if postgres_url is not None:
            rows += bench_postgres(postgres_url, postgres_entries)
        else:
            from shared.platform.postgres import PostgresNotInstalled, TemporaryPostgres

            server = TemporaryPostgres(settings=PRODUCTION_SETTINGS)
            try:
                server.start()
            except PostgresNotInstalled:
                return rows
            try:
                rows += bench_postgres(server.url, postgres_entries)
            finally:
                server.stop()
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row[0]:70s} {row[1]:12.1f} {row[2]:6.2f}")
