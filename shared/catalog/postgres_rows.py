"""PostgreSQL rows of catalog entries: the columns, the upsert statement, an entry from a row, and the
bulk path (binary COPY of rows made a chunk at a time, then one conflict-handling INSERT)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import DictRow

from shared.catalog.filters import valid_shapes
from shared.catalog.model import (
    CONTENT_COLUMNS,
    CatalogEntry,
    attributes_from_json,
    attributes_to_json,
    canonical_json,
    parse_geometry,
)

JSONB = ("footprint", "attributes", "quicklooks")


def _compared(alias: str, column: str) -> str:
    # jsonb as text: canonical (sorted keys) yet type-exact, where jsonb equality has 1 = 1.0.
    return f"{alias}.{column}::text" if column in JSONB else f"{alias}.{column}"


_GEOMETRY = "ST_Force2D(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(%(footprint)s::text), 4326)))"
# ON CONFLICT ... WHERE: an identical redelivered entry updates nothing and returns no row.
# publication_time is not in the SET list: an existing entry keeps it.
UPSERT = f"""
INSERT INTO products AS p (id, {", ".join(CONTENT_COLUMNS)}, footprint_geom, publication_time, modification_time)
VALUES (%(id)s, {", ".join(f"%({c})s::jsonb" if c in JSONB else f"%({c})s" for c in CONTENT_COLUMNS)},
        {_GEOMETRY}, %(publication_time)s, %(modification_time)s)
ON CONFLICT (id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in CONTENT_COLUMNS)},
    footprint_geom = EXCLUDED.footprint_geom,
    modification_time = EXCLUDED.modification_time
WHERE ({", ".join(_compared("p", c) for c in CONTENT_COLUMNS)})
    IS DISTINCT FROM ({", ".join(_compared("EXCLUDED", c) for c in CONTENT_COLUMNS)})
RETURNING p.id
"""

# Bulk path (upsert_many). Rows travel by binary COPY: typed values, no text to parse server-side,
# and the geometry as EWKB made valid client-side (vectorised GEOS calls, a chunk at a time). Ids not
# in the table yet are COPYed straight into it; the others go through a staging table and one
# INSERT ... SELECT with UPSERT's conflict handling.
_ROW_COLUMNS = ("id", *CONTENT_COLUMNS, "footprint_geom", "publication_time", "modification_time")
# COPY types: psycopg picks each value's binary dumper from these. jsonb goes from JSON text
# (JsonbText), the geometry's EWKB as raw bytes, which the column's binary input (geometry_recv) reads.
_COPY_TYPES = [
    {
        "content_length": "int8",
        "validity_start": "timestamptz",
        "validity_stop": "timestamptz",
        "inbox_time": "timestamptz",
        "ingestion_time": "timestamptz",
        "eviction_time": "timestamptz",
        "online": "bool",
        "footprint_geom": "bytea",
        "publication_time": "timestamptz",
        "modification_time": "timestamptz",
    }.get(c, "jsonb" if c in JSONB else "text")
    for c in _ROW_COLUMNS
]
_COLUMN_LIST = ", ".join(_ROW_COLUMNS)
_COPY_NEW = f"COPY products ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_EXISTING = "SELECT id FROM products WHERE id = ANY(%s::text[])"
_CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS products_stage ON COMMIT DELETE ROWS AS"
    f" SELECT {_COLUMN_LIST} FROM products WITH NO DATA"
)
_COPY_STAGE = f"COPY products_stage ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
# Emptying the stage as it is read: a later round (an id twice in a batch) stages its own rows.
_UPSERT_STAGED = f"""
WITH staged AS (DELETE FROM products_stage RETURNING *)
INSERT INTO products AS p ({_COLUMN_LIST})
SELECT {_COLUMN_LIST} FROM staged
ON CONFLICT {UPSERT.split("ON CONFLICT", 1)[1]}"""
ID_KEY = "products_pkey"  # the primary key's constraint: a COPYed id that a concurrent writer inserted

Row = tuple[Any, ...]
# Built once (json.dumps with options builds an encoder per call); a NaN is a ValueError, not bad JSON.
_JSON = json.JSONEncoder(allow_nan=False).encode
_CHUNK = 500  # entries made into rows at a time: GEOS calls still vectorised, the server soon busy


class JsonbText(Dumper):
    """Binary jsonb from JSON text: the format's version byte, then the text."""

    oid = psycopg.postgres.types["jsonb"].oid
    format = Format.BINARY

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _valid_ewkb(batch: list[CatalogEntry], footprints: list[str | None]) -> list[bytes | None]:
    """The 2D EWKB (SRID 4326) of each footprint, made valid as ST_MakeValid would; a clear
    ValueError naming the entry for one that is not a usable GeoJSON geometry."""
    # Imported here, as parse_geometry does: only writes and spatial queries need them.
    import numpy as np
    import shapely

    present = [i for i, text in enumerate(footprints) if text is not None]
    ewkb: list[bytes | None] = [None] * len(batch)
    if not present:
        return ewkb
    try:
        shapes = shapely.from_geojson([footprints[i] for i in present])
        usable = not shapely.is_empty(shapes).any()
    except (shapely.errors.GEOSException, TypeError, ValueError):
        usable = False
    if not usable:  # entry by entry: parse_geometry says which footprint is wrong, and how
        shapes = np.array(
            [parse_geometry(e.footprint, f"footprint of {e.name}") for e in batch if e.footprint is not None],
            dtype=object,
        )
    shapes = shapely.set_srid(valid_shapes(shapes), 4326)
    for i, wkb in zip(present, shapely.to_wkb(shapes, output_dimension=2, include_srid=True).tolist(), strict=True):
        ewkb[i] = wkb
    return ewkb


def _rows(batch: list[CatalogEntry]) -> list[Row]:
    """COPY rows (``_ROW_COLUMNS``) of a batch. JSON need not be canonical here: jsonb orders keys itself."""
    footprints = [None if e.footprint is None else _JSON(e.footprint) for e in batch]
    return [
        (
            e.id,
            e.name,
            e.mission,
            e.satellite,
            e.product_type,
            e.level,
            e.family,
            e.bucket,
            e.key,
            e.content_length,
            e.checksum,
            e.content_type,
            e.validity_start,
            e.validity_stop,
            footprint,
            attributes_to_json(e.attributes),
            e.inbox_time,
            e.ingestion_time,
            e.eviction_time,
            e.online,
            _JSON(e.quicklooks),
            geometry,
            e.publication_time,
            e.modification_time,
        )
        for e, footprint, geometry in zip(batch, footprints, _valid_ewkb(batch, footprints), strict=True)
    ]


def rounds(batch: list[CatalogEntry]) -> list[list[CatalogEntry]]:
    """The batch split so that no id is twice in a round: the n-th occurrence of an id in round n."""
    occurrences: dict[str, int] = {}
    rounds: list[list[CatalogEntry]] = []
    for entry in batch:
        n = occurrences[entry.id] = occurrences.get(entry.id, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(entry)
    return rounds


def _copy(cursor: psycopg.Cursor[DictRow], statement: str, entries: list[CatalogEntry]) -> None:
    """COPY the entries' rows, made a chunk at a time: the server inserts one chunk while the next
    is made (two cores busy instead of one after the other)."""
    with cursor.copy(statement) as copy:
        copy.set_types(_COPY_TYPES)
        for start in range(0, len(entries), _CHUNK):
            for row in _rows(entries[start : start + _CHUNK]):
                copy.write_row(row)


def upsert_round(cursor: psycopg.Cursor[DictRow], entries: list[CatalogEntry], *, all_staged: bool) -> int:
    """Upsert entries of distinct ids; the number inserted or changed. ``all_staged``: every entry
    goes through the staging table's conflict handling (safe against a concurrent insert of an id)."""
    if all_staged:
        new, known = [], entries
    else:
        existing = {row["id"] for row in cursor.execute(_EXISTING, ([e.id for e in entries],))}
        new = [e for e in entries if e.id not in existing]
        known = [e for e in entries if e.id in existing] if existing else []
    if new:
        _copy(cursor, _COPY_NEW, new)
    if not known:
        return len(new)
    cursor.execute(_CREATE_STAGE)
    _copy(cursor, _COPY_STAGE, known)
    return len(new) + len(cursor.execute(_UPSERT_STAGED).fetchall())


def entry_from_row(row: DictRow) -> CatalogEntry:
    # Timestamps come back in UTC (the session's time zone), jsonb as plain JSON values: already
    # what construction makes.
    return CatalogEntry.from_store(
        id=row["id"],
        name=row["name"],
        mission=row["mission"],
        satellite=row["satellite"],
        product_type=row["product_type"],
        level=row["level"],
        family=row["family"],
        bucket=row["bucket"],
        key=row["object_key"],
        content_length=row["content_length"],
        checksum=row["checksum"],
        content_type=row["content_type"],
        validity_start=row["validity_start"],
        validity_stop=row["validity_stop"],
        # jsonb's text puts a space after every comma and colon; a geometry holds no text of its own.
        footprint_text=None if row["footprint"] is None else row["footprint"].replace(" ", ""),
        attributes=attributes_from_json(row["attributes"]),
        publication_time=row["publication_time"],
        modification_time=row["modification_time"],
        inbox_time=row["inbox_time"],
        ingestion_time=row["ingestion_time"],
        eviction_time=row["eviction_time"],
        online=row["online"],
        quicklooks=tuple(row["quicklooks"]),
    )


def upsert_params(entry: CatalogEntry) -> dict[str, Any]:
    if entry.footprint is not None:
        parse_geometry(entry.footprint, f"footprint of {entry.name}")  # a clear ValueError, not a DB error
    return {
        "id": entry.id,
        "name": entry.name,
        "mission": entry.mission,
        "satellite": entry.satellite,
        "product_type": entry.product_type,
        "level": entry.level,
        "family": entry.family,
        "bucket": entry.bucket,
        "object_key": entry.key,
        "content_length": entry.content_length,
        "checksum": entry.checksum,
        "content_type": entry.content_type,
        "validity_start": entry.validity_start,
        "validity_stop": entry.validity_stop,
        "footprint": None if entry.footprint is None else canonical_json(entry.footprint),
        "attributes": attributes_to_json(entry.attributes),
        "inbox_time": entry.inbox_time,
        "ingestion_time": entry.ingestion_time,
        "eviction_time": entry.eviction_time,
        "online": entry.online,
        "quicklooks": canonical_json(list(entry.quicklooks)),
        "publication_time": entry.publication_time,
        "modification_time": entry.modification_time,
    }
