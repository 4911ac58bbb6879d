"""Catalog queries as users meet them: the odata function served as the platform serves it, over HTTP.

The function runs in its own process with the embedded platform's command and environment (its Knative
Service's WORKERS and THREADS, ``shared.server``); the client is a keep-alive ``http.client`` connection
over loopback. Queries are varied (``queries.py``: no two filters alike), the catalog holds footprints and
attributes of the real samples, jittered (``catalog_data.py``), and the baseline is hand-written SQL on a
connection with the store's own page cache, run alternately with the HTTP query (each one first every
other time, so both meet the same OS cache and machine noise).

Rows: p50/p95/p99 of one client and their ratio to the SQL; throughput and latency at 1, 8 and 32
concurrent clients (ratios to one client); each worker's resident memory after 1,000 varied queries and
after a 32-client burst; the client's own CPU (it shares the 2 cores).

Sizes: ``REFSYS_BENCH_SQLITE_ENTRIES`` (default 1,000,000) and ``REFSYS_BENCH_POSTGIS_ENTRIES`` (default
200,000; 0: none); ``REFSYS_BENCH_POSTGRES_URL`` names the PostGIS database (default: a throwaway server, rebuilt every
run). Built catalogs are cached (``catalog_data.data_dir()``). ``REFSYS_BENCH_QUERIES`` (default 200) sets the
single-client sample, ``REFSYS_BENCH_WORKERS`` / ``REFSYS_BENCH_THREADS`` override the Service's serving model.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.settings import Settings
from tests.bench import catalog_data
from tests.bench.queries import Query, varied_queries
from tests.bench.serving import Client, Served, served

Rows = list[tuple[str, float, float]]
# The throwaway server as a production one runs: durable, with a real buffer cache (not the tests' 32 MB).
PRODUCTION_SETTINGS = "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\nshared_buffers = 1GB\n"
CLIENTS = (1, 8, 32)
CONCURRENT_SECONDS = 10.0
MEMORY_QUERIES = 1000


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def http_query(client: Client, query: Query) -> bytes:
    status, body = client.get(query.path)
    if status != 200:
        raise RuntimeError(f"{status} for {query.path}: {body[:300]!r}")
    return body


def latency_rows(label: str, function: Served, run_sql: Callable[[Query], Any], queries: list[Query]) -> Rows:
    """One client: each query over HTTP and as hand-written SQL, alternately first."""
    client = Client(function.port)
    for query in varied_queries(20, seed=99):  # warm both (statements, connections), not the measured queries
        http_query(client, query), run_sql(query)
    ours: dict[bool, list[float]] = {False: [], True: []}
    theirs: dict[bool, list[float]] = {False: [], True: []}
    for i, query in enumerate(queries):
        steps: list[tuple[Callable[[Query], Any], dict[bool, list[float]]]] = [
            (lambda q: http_query(client, q), ours),
            (run_sql, theirs),
        ]
        for operation, times in steps if i % 2 == 0 else reversed(steps):
            started = time.perf_counter()
            operation(query)
            times[query.count].append((time.perf_counter() - started) * 1000)
    client.close()
    rows: Rows = []
    for counted, what in ((False, "page"), (True, "page + $count")):
        mine, sql = percentiles(ours[counted]), percentiles(theirs[counted])
        for name, value, base in zip(("p50", "p95", "p99"), mine, sql, strict=True):
            rows.append((f"{label} HTTP {what} {name} ms (SQL {base:.1f})", value, value / base))
    every_ours = ours[False] + ours[True]
    every_sql = theirs[False] + theirs[True]
    p95, sql95 = percentiles(every_ours)[1], percentiles(every_sql)[1]
    rows.append((f"{label} HTTP all {len(queries)} queries p95 ms (SQL {sql95:.1f})", p95, p95 / sql95))
    return rows


def concurrency_rows(label: str, function: Served) -> Rows:
    """Throughput and latency at 1, 8 and 32 clients (threads with http.client), each on distinct queries."""
    rows: Rows = []
    single: tuple[float, float] | None = None
    for clients in CLIENTS:
        queries = varied_queries(4000, seed=1000 + clients)
        throughput, p95, client_cpu, server_cpu = _concurrent(function, clients, queries)
        if single is None:
            single = (throughput, p95)
        rows.append((f"{label} {clients} clients: requests/s", throughput, throughput / single[0]))
        rows.append((f"{label} {clients} clients: p95 ms", p95, p95 / single[1]))
        # CPU per request is what machine noise moves least (the development machine is shared).
        rows.append((f"{label} {clients} clients: function CPU ms per request", server_cpu / throughput * 1000, 0.0))
        rows.append((f"{label} {clients} clients: CPU cores used by the client", client_cpu, 0.0))
    return rows


def _concurrent(function: Served, clients: int, queries: list[Query]) -> tuple[float, float, float, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    next_query = iter(range(len(queries)))
    stop_at = [0.0]
    ready = threading.Barrier(clients + 1)

    def client_loop() -> None:
        client = Client(function.port)
        mine: list[float] = []
        ready.wait()
        while time.perf_counter() < stop_at[0]:
            with lock:
                index = next(next_query)
            started = time.perf_counter()
            http_query(client, queries[index])
            mine.append((time.perf_counter() - started) * 1000)
        client.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    usage, server_cpu = resource.getrusage(resource.RUSAGE_SELF), function.cpu_seconds()
    began = time.perf_counter()
    stop_at[0] = began + CONCURRENT_SECONDS
    ready.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime) / elapsed
    server = (function.cpu_seconds() - server_cpu) / elapsed
    return len(latencies) / elapsed, percentiles(latencies)[1], client_cpu, server


def memory_rows(label: str, function: Served, start: float) -> Rows:
    """Largest worker RSS after 1,000 varied queries, then after a 32-client burst (``start``: when it answered)."""
    client = Client(function.port)
    for query in varied_queries(MEMORY_QUERIES, seed=5000):
        http_query(client, query)
    client.close()
    after_queries = max(function.worker_rss_mib())
    _concurrent(function, 32, varied_queries(4000, seed=6000))
    after_burst = max(function.worker_rss_mib())
    return [
        (f"{label} worker RSS MiB once answering /healthz", start, 0.0),
        (f"{label} worker RSS MiB after {MEMORY_QUERIES:,} varied queries", after_queries, 0.0),
        (f"{label} worker RSS MiB after a 32-client burst", after_burst, 0.0),
    ]


def serving_override() -> dict[str, str]:
    return {
        key: os.environ[f"REFSYS_BENCH_{key}"]
        for key in ("WORKERS", "THREADS")
        if os.environ.get(f"REFSYS_BENCH_{key}")
    }


def bench_sqlite(entries: int, queries: list[Query], workdir: Path) -> Rows:
    started = time.perf_counter()
    path = catalog_data.sqlite_catalog(entries)
    built = time.perf_counter() - started
    settings = Settings(catalog_url=f"sqlite:///{path}")
    label = f"sqlite {entries:,}"
    # The baseline's connection: the store's page cache (catalog_sqlite_cache_mib), read-only.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA cache_size = -{settings.catalog_sqlite_cache_mib * 1024}")

    def run_sql(query: Query) -> list[Any]:
        return [conn.execute(sql, params).fetchall() for sql, params in query.sql("sqlite")]

    try:
        with served("odata", settings, workdir / "odata-sqlite.log", serving_override()) as function:
            start = max(function.worker_rss_mib())
            rows = [(f"{label}: requests one function serves at once ({_model(function)})", _slots(function), 0.0)]
            rows.append((f"{label}: catalog built in s (0: cached)", built if built > 5 else 0.0, 0.0))
            rows += latency_rows(label, function, run_sql, queries)
            rows += concurrency_rows(label, function)
            rows += memory_rows(label, function, start)
            return rows
    finally:
        conn.close()


def bench_postgres(url: str, entries: int, queries: list[Query], workdir: Path) -> Rows:
    import psycopg

    started = time.perf_counter()
    catalog_data.postgres_catalog(url, entries)
    built = time.perf_counter() - started
    label = f"postgis {entries:,}"
    settings = Settings(catalog_url=url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET jit = off")  # as the store's connections run

        def run_sql(query: Query) -> list[Any]:
            return [conn.execute(sql, params).fetchall() for sql, params in query.sql("postgis")]

        with served("odata", settings, workdir / "odata-postgis.log", serving_override()) as function:
            start = max(function.worker_rss_mib())
            rows = [(f"{label}: catalog built in s (0: cached)", built if built > 5 else 0.0, 0.0)]
            rows += latency_rows(label, function, run_sql, queries)
            rows += concurrency_rows(label, function)
            rows += memory_rows(label, function, start)
            return rows


def _model(function: Served) -> str:
    return f"{function.serving['WORKERS']} workers x {function.serving['THREADS']} threads"


def _slots(function: Served) -> float:
    return int(function.serving["WORKERS"]) * int(function.serving["THREADS"])


def run(
    sqlite_entries: int | None = None, postgres_entries: int | None = None, postgres_url: str | None = None
) -> Rows:
    """Every row, at the sizes given or set in the environment (see the module's text)."""
    if sqlite_entries is None:
        sqlite_entries = int(os.environ.get("REFSYS_BENCH_SQLITE_ENTRIES", "1000000"))
    if postgres_entries is None:
        postgres_entries = int(os.environ.get("REFSYS_BENCH_POSTGIS_ENTRIES", "200000"))
    postgres_url = postgres_url or os.environ.get("REFSYS_BENCH_POSTGRES_URL") or None
    queries = varied_queries(int(os.environ.get("REFSYS_BENCH_QUERIES", "200")))
    assert len({q.filter for q in queries}) == len(queries), "every measured $filter is distinct"
    rows: Rows = []
    with tempfile.TemporaryDirectory() as workdir:
        if sqlite_entries:
            rows += bench_sqlite(sqlite_entries, queries, Path(workdir))
        if postgres_entries:
            if postgres_url is not None:
                rows += bench_postgres(postgres_url, postgres_entries, queries, Path(workdir))
            else:
                from shared.platform.postgres import PostgresNotInstalled, TemporaryPostgres

                server = TemporaryPostgres(settings=PRODUCTION_SETTINGS)
                try:
                    server.start()
                except PostgresNotInstalled:
                    return rows
                try:
                    rows += bench_postgres(server.url, postgres_entries, queries, Path(workdir))
                finally:
                    server.stop()
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row[0]:78s} {row[1]:10.1f} {row[2]:6.2f}")
