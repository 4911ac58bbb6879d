"""A large PostGIS bench catalog, made by the server from a seed that the store wrote.

Written through ``upsert_many``, an entry costs ~0.5 ms of Python: 10 M take most of a day. Instead the first
``seed`` entries of ``synthetic_entries`` go through the store's own writer (so every column, generated
column and index is what the product writes) and are set aside in ``bench_seed``; then seed entry ``i``
becomes the entries ``j = k * seed + i`` of the catalog, for each copy ``k``, SQL-side:

- the name of entry ``j`` (``_B{j:09d}``) and its id, ``product_id(name)`` (``uuid_generate_v5`` of the same
  namespace); a random size, ``j`` in hex as the checksum, the publication time of entry ``j``;
- the sensing start of entry ``j`` (``j`` / ``count`` of the year, plus the seed's jitter), the seed's duration;
- the footprint moved as ``catalog_data._moved`` moves a template: its centre to a random place (5 % at
  65-85° north or south, else uniform over the sphere's area), split at ±180 when it crosses it
  (``ST_WrapX``), counter-clockwise; the GeoJSON written from the moved geometry and the geometry read back
  from that GeoJSON as the writer reads it. The generated columns (box, grid cell) follow from it;
- the attributes the generator varies: orbit numbers advanced to ``j``, cloud cover random, sensing times.

Copy ``k`` repeats the seed's sequence of product types one ``count / seed`` of the year later, so entries
of a type stay mixed with the others in time and on disk, as in ``synthetic_entries``. Random numbers are
hashes of ``j``: every build makes the same catalog. Rows are inserted in ``j`` order (sensing order, as an
archive is loaded; two adjacent copies at a time) without indexes, which are built afterwards (faster, and
smaller: ``docs/performance.md``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg

from shared.catalog import CatalogStore
from shared.catalog.model import PRODUCT_NAMESPACE
from tests.bench import catalog_data

SEED_ENTRIES = 40_000
_DATETIME = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""  # shared.catalog.model.format_utc

# The seed, each footprint unwrapped: one split at ±180 (parts touching both -180 and 180) made whole again
# across 180, so that it can be moved like any other shape; its box as numbers.
_SEED = """
CREATE TABLE bench_seed AS
SELECT p.*, substring(p.name FROM '_B([0-9]{9})')::bigint AS seed_index, ST_XMin(shape) AS x0,
       ST_XMax(shape) AS x1, ST_YMin(shape) AS y0, ST_YMax(shape) AS y1, shape
FROM products p
CROSS JOIN LATERAL (
    SELECT CASE WHEN ST_XMin(p.footprint_geom) = -180 AND ST_XMax(p.footprint_geom) = 180
                THEN ST_UnaryUnion(ST_ShiftLongitude(p.footprint_geom), 1e-9)
                ELSE p.footprint_geom END AS shape
) u
ORDER BY seed_index;
CREATE INDEX ON bench_seed (seed_index);
ANALYZE bench_seed
"""

# One copy. The OFFSET 0 subqueries are computed once per row, not once per reference (as a subquery
# pulled up into its query would be): the hashes, and the footprint, which is read twice.
_UNIFORM = "(('x' || substr(n.{hash}, {start}, 8))::bit(32)::bigint / 4294967296.0)::float8"  # in [0, 1)
_COPY = """
INSERT INTO products ({columns})
SELECT public.uuid_generate_v5(%(namespace)s::uuid, n.name)::text, n.name, s.mission, s.satellite,
       s.product_type, s.level, s.family, s.bucket, n.name || '/', 1 + floor(r.u7 * 4294967295)::bigint,
       lpad(to_hex(n.j), 32, '0'), s.content_type, n.start, n.stop, g.footprint, {attributes},
       s.inbox_time, s.ingestion_time, s.eviction_time, s.online, s.quicklooks,
       ST_Force2D(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(g.footprint::text), 4326))),
       %(published)s + n.j * interval '1 millisecond', %(published)s + n.j * interval '1 millisecond'
FROM bench_seed s
CROSS JOIN LATERAL (
    SELECT j, regexp_replace(s.name, '_B[0-9]{{9}}', '_B' || lpad(j::text, 9, '0')) AS name, start,
           start + (s.validity_stop - s.validity_start) AS stop, md5(j::text) AS h1, md5('b' || j::text) AS h2
    FROM (SELECT %(copy)s * %(seed)s + s.seed_index AS j) c
    CROSS JOIN LATERAL (
        SELECT greatest(%(t0)s, s.validity_start + make_interval(secs => c.j * %(step)s - s.seed_index * %(seed_step)s))
            AS start
    ) t
    OFFSET 0
) n
CROSS JOIN LATERAL (SELECT {uniform} OFFSET 0) r
CROSS JOIN LATERAL (
    SELECT 360 * r.u1 - 180 - (s.x0 + s.x1) / 2 AS dx,
           greatest(-89.5 - s.y0, least(89.5 - s.y1,
               CASE WHEN r.u2 < %(polar)s THEN sign(r.u5 - 0.5) * (65 + 20 * r.u3)
                    ELSE degrees(asin(1.94 * r.u3 - 0.97)) END
               - (s.y0 + s.y1) / 2)) AS dy
) d
CROSS JOIN LATERAL (
    SELECT ST_AsGeoJSON(ST_ForcePolygonCCW(
        CASE WHEN s.x0 + d.dx >= -180 AND s.x1 + d.dx <= 180 THEN ST_Translate(s.shape, d.dx, d.dy)
             ELSE ST_CollectionExtract(ST_WrapX(ST_WrapX(ST_Translate(s.shape, d.dx, d.dy), 180, -360), -180, 360), 3)
        END), 9)::jsonb AS footprint
    OFFSET 0
) g
WHERE %(copy)s * %(seed)s + s.seed_index < %(count)s
ORDER BY s.seed_index
"""
_COLUMNS = (
    "id, name, mission, satellite, product_type, level, family, bucket, object_key, content_length, checksum,"
    " content_type, validity_start, validity_stop, footprint, attributes, inbox_time, ingestion_time,"
    " eviction_time, online, quicklooks, footprint_geom, publication_time, modification_time"
)


def _attributes_sql() -> str:
    """The seed's attributes, those that ``catalog_data._entry`` varies made anew for entry ``j`` (a key that
    the seed lacks stays absent)."""
    orbits = sorted(
        {
            key
            for template in catalog_data.templates()
            for key, value in template.attributes.items()
            if "orbit" in key.lower() and isinstance(value, int) and not isinstance(value, bool)
        }
    )
    replaced = [
        f"'{key}', CASE WHEN s.attributes -> '{key}' ->> 'type' = 'Integer' THEN jsonb_build_object("
        f"'type', 'Integer', 'value', (s.attributes -> '{key}' ->> 'value')::bigint + n.j / 14 - s.seed_index / 14)"
        " END"
        for key in orbits
    ]
    replaced.append(
        "'cloudCover', CASE WHEN s.attributes -> 'cloudCover' ->> 'type' = 'Double' THEN jsonb_build_object("
        "'type', 'Double', 'value', round((100 * r.u6)::numeric, 2)::float8) END"
    )
    for key, time in (("beginningDateTime", "n.start"), ("endingDateTime", "n.stop")):
        replaced.append(
            f"'{key}', CASE WHEN s.attributes ? 'beginningDateTime' THEN jsonb_build_object("
            f"'type', 'DateTimeOffset', 'value', to_char({time} AT TIME ZONE 'UTC', {_DATETIME})) END"
        )
    # jsonb_strip_nulls drops the keys this entry does not have (their CASE gave NULL).
    return f"s.attributes || jsonb_strip_nulls(jsonb_build_object({', '.join(replaced)}))"


def _uniforms() -> str:
    return ", ".join(
        _UNIFORM.format(hash="h1" if n < 4 else "h2", start=1 + 8 * (n % 4)) + f" AS u{n + 1}" for n in range(8)
    )


def fill(url: str, store: CatalogStore, count: int, seed: int = SEED_ENTRIES, sessions: int = 2) -> None:
    """Replace the products of the catalog at ``url`` (``store``) by ``count`` entries made from ``seed``
    written ones, the copies and then the indexes made by ``sessions`` connections at once."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE products")
        if count <= seed:
            catalog_data.load(store, count)
            return
        catalog_data.load(store, seed)
        conn.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp" SCHEMA public')
        conn.execute("DROP TABLE IF EXISTS bench_seed")
        conn.execute(_SEED)
        conn.execute("TRUNCATE products")
        indexes = _drop_indexes(conn)
    statement = _COPY.format(columns=_COLUMNS, attributes=_attributes_sql(), uniform=_uniforms())
    params: dict[str, Any] = {
        "namespace": str(PRODUCT_NAMESPACE),
        "seed": seed,
        "count": count,
        "step": catalog_data.YEAR_S / count,
        "seed_step": catalog_data.YEAR_S / seed,
        "polar": catalog_data.POLAR_SHARE,
        "t0": catalog_data.T0,
        "published": catalog_data.T0 + timedelta(seconds=catalog_data.YEAR_S),
    }
    copies = [(statement, {**params, "copy": copy}) for copy in range(-(-count // seed))]
    _run_at_once(url, sessions, copies)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_seed")
        for constraint in [s for s in indexes if s.startswith("ALTER TABLE")]:  # each locks the whole table
            conn.execute(constraint)
    _run_at_once(url, sessions, [(s, {}) for s in indexes if not s.startswith("ALTER TABLE")])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_indexes")


def _run_at_once(url: str, sessions: int, statements: list[tuple[str, dict[str, Any]]]) -> None:
    """Run the statements in order on ``sessions`` connections, each taking the next one when it is free."""
    pending = iter(statements)
    lock = threading.Lock()

    def session() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            # This session only: the seed read in seed_index order by its index, not sorted after the rows
            # are made (200 MB spilled to disk per copy); no JIT (4 s to compile each copy's statement);
            # memory for index builds.
            conn.execute("SET enable_sort = off")
            conn.execute("SET jit = off")
            conn.execute("SET maintenance_work_mem = '512MB'")
            while True:
                with lock:
                    statement, params = next(pending, (None, {}))
                if statement is None:
                    return
                conn.execute(statement, params)

    with ThreadPoolExecutor(sessions) as pool:
        for done in [pool.submit(session) for _ in range(sessions)]:
            done.result()


def _drop_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop every index of products (the key and unique constraints too); the statements that make them again.

    The statements are kept in ``bench_indexes`` until the indexes are built again: a build stopped midway
    leaves them there for the next one, which would otherwise find no index to note.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS bench_indexes (position serial, statement text)")
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'products'::regclass AND contype IN ('p', 'u')"
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = 'products'::regclass AND indexrelid NOT IN"
        " (SELECT conindid FROM pg_constraint WHERE conrelid = 'products'::regclass)"
    ).fetchall()
    if conn.execute("SELECT count(*) FROM bench_indexes").fetchone() == (0,):
        statements = [f'ALTER TABLE products ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_indexes (statement) VALUES (%s)",
                [(s,) for s in statements + [definition for _, definition in indexes]],
            )
    for name, _ in constraints:
        conn.execute(f'ALTER TABLE products DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    return [statement for (statement,) in conn.execute("SELECT statement FROM bench_indexes ORDER BY position")]
