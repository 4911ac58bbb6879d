-- Availability (for the PRIP OData API): eviction date and online flag, and quicklook images.
ALTER TABLE products ADD COLUMN eviction_time timestamptz;  -- NULL: never evicted
ALTER TABLE products ADD COLUMN online boolean NOT NULL DEFAULT true;
ALTER TABLE products ADD COLUMN quicklooks jsonb NOT NULL DEFAULT '[]';  -- list of object keys

-- Oldest first is what pick-up-point monitors page through (PublicationDate asc, keyset on name).
CREATE INDEX products_publication_asc ON products (publication_time, name);
