-- Catalog of products (PostgreSQL + PostGIS).
-- IF NOT EXISTS checks existence before privileges: a DBA may pre-create PostGIS for a non-superuser.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE products (
    id text PRIMARY KEY,
    -- Byte order ("C"): paging order must not depend on the server locale, and matches SQLite.
    name text COLLATE "C" NOT NULL UNIQUE,
    mission text NOT NULL,
    satellite text,
    product_type text NOT NULL,
    level text NOT NULL,
    family text NOT NULL,
    bucket text NOT NULL,
    object_key text NOT NULL,
    content_length bigint NOT NULL,
    checksum text,
    content_type text NOT NULL,
    validity_start timestamptz,
    validity_stop timestamptz,
    -- The GeoJSON as given (returned as is) and the geometry derived from it (searched).
    footprint jsonb,
    footprint_geom geometry(Geometry, 4326),
    attributes jsonb NOT NULL,  -- {"name": {"type": "Integer", "value": 1}, ...}
    publication_time timestamptz NOT NULL,
    modification_time timestamptz NOT NULL,
    inbox_time timestamptz,
    ingestion_time timestamptz
);

CREATE INDEX products_type_validity ON products (product_type, validity_start);
CREATE INDEX products_validity ON products (validity_start, validity_stop);
CREATE INDEX products_mission ON products (mission);
CREATE INDEX products_family ON products (family);
CREATE INDEX products_publication ON products (publication_time DESC, name);
CREATE INDEX products_footprint ON products USING gist (footprint_geom);
