-- The footprint's bounding box in the type + time index (issue 6 item 8: queries on 1 M entries).
--
-- For the query every PRIP client sends (product type + time range + area), the type + time index
-- alone made the server read the row of every product of that type and time (83,000 of 1 M for half
-- a year of one type) to test its footprint. With the box as key columns of that index, the area is
-- tested in the index, and only the rows whose box meets the area are read for the exact test.
-- NULL without footprint: no spatial predicate matches then.
ALTER TABLE products
    ADD COLUMN min_lon float8 GENERATED ALWAYS AS (ST_XMin(footprint_geom)) STORED,
    ADD COLUMN max_lon float8 GENERATED ALWAYS AS (ST_XMax(footprint_geom)) STORED,
    ADD COLUMN min_lat float8 GENERATED ALWAYS AS (ST_YMin(footprint_geom)) STORED,
    ADD COLUMN max_lat float8 GENERATED ALWAYS AS (ST_YMax(footprint_geom)) STORED;

DROP INDEX products_attr_type_start;
CREATE INDEX products_attr_type_start_box ON products
    (attr_product_type, validity_start, min_lon, max_lon, min_lat, max_lat) INCLUDE (publication_time, name);
