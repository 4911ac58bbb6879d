-- Catalog of products (SQLite). Datetimes are fixed-width ISO 8601 UTC text with microseconds
-- ('2023-08-23T12:31:39.000000Z'): text order is time order, so ranges and sorting are exact.
CREATE TABLE products (
    -- Explicit integer key: the footprint index refers to it, and VACUUM may renumber implicit rowids.
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    mission TEXT NOT NULL,
    satellite TEXT,
    product_type TEXT NOT NULL,
    level TEXT NOT NULL,
    family TEXT NOT NULL,
    bucket TEXT NOT NULL,
    object_key TEXT NOT NULL,
    content_length INTEGER NOT NULL,
    checksum TEXT,
    content_type TEXT NOT NULL,
    validity_start TEXT,
    validity_stop TEXT,
    footprint TEXT,            -- GeoJSON geometry, canonical JSON
    attributes TEXT NOT NULL,  -- {"name": {"type": "Integer", "value": 1}, ...}
    publication_time TEXT NOT NULL,
    modification_time TEXT NOT NULL,
    inbox_time TEXT,
    ingestion_time TEXT
);

CREATE INDEX products_type_validity ON products (product_type, validity_start);
CREATE INDEX products_validity ON products (validity_start, validity_stop);
CREATE INDEX products_mission ON products (mission);
CREATE INDEX products_family ON products (family);
CREATE INDEX products_publication ON products (publication_time DESC, name);

-- One row per polygon part of a footprint: a footprint split at the antimeridian gets two small
-- boxes instead of one spanning the globe. The R*Tree is only a prefilter (its 32-bit floats are
-- rounded outwards); the exact intersection test is made on the GeoJSON with shapely.
CREATE TABLE footprint_parts (
    part INTEGER PRIMARY KEY,
    product_pk INTEGER NOT NULL REFERENCES products (pk)
);
CREATE INDEX footprint_parts_product ON footprint_parts (product_pk);
CREATE VIRTUAL TABLE footprint_index USING rtree (part, min_lon, max_lon, min_lat, max_lat);
