-- Availability (for the PRIP OData API): eviction date and online flag, and quicklook images.
ALTER TABLE products ADD COLUMN eviction_time TEXT;         -- NULL: never evicted
ALTER TABLE products ADD COLUMN online INTEGER NOT NULL DEFAULT 1;
ALTER TABLE products ADD COLUMN quicklooks TEXT NOT NULL DEFAULT '[]';  -- JSON list of object keys

-- Oldest first is what pick-up-point monitors page through (PublicationDate asc, keyset on name).
CREATE INDEX products_publication_asc ON products (publication_time, name);
