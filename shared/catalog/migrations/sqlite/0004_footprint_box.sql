-- The footprint's bounding box in the product row (issue 6 item 8: queries on 1 M entries).
--
-- The R*Tree finds the products in an area; but for the query every PRIP client sends (product type
-- + time range + area), building the R*Tree's candidate list for a large area cost more than the
-- rest of the query (0.5 s at 1 M entries). With the box in the row, and in the type + time index,
-- that query tests the area inside the index and reads no table row until the page is chosen.
-- NULL when there is no footprint: no spatial predicate matches then.
ALTER TABLE products ADD COLUMN min_lon REAL;
ALTER TABLE products ADD COLUMN max_lon REAL;
ALTER TABLE products ADD COLUMN min_lat REAL;
ALTER TABLE products ADD COLUMN max_lat REAL;

-- Existing rows: from the R*Tree, whose 32-bit boxes are rounded outwards, i.e. a box a little
-- larger than the footprint's, which is all a prefilter needs.
UPDATE products SET (min_lon, max_lon, min_lat, max_lat) = (
    SELECT min(r.min_lon), max(r.max_lon), min(r.min_lat), max(r.max_lat)
    FROM footprint_parts fp JOIN footprint_index r ON r.part = fp.part
    WHERE fp.product_pk = products.pk);

-- Type + time + box, then the default order's keys: the page is sorted from the index alone.
DROP INDEX products_attr_type_start;
CREATE INDEX products_attr_type_start_box ON products
    (attr_product_type, validity_start, min_lon, max_lon, min_lat, max_lat, publication_time, name);
