-- The id in the type + time + box index (issue 6 item 8). A query with a product type, a time range
-- and an area first selects its candidates' ids in result order from this index alone (an
-- index-only scan: no table row is read), then reads and tests exactly only the page's rows.
DROP INDEX products_attr_type_start_box;
CREATE INDEX products_attr_type_start_box ON products
    (attr_product_type, validity_start, min_lon, max_lon, min_lat, max_lat) INCLUDE (publication_time, name, id);
