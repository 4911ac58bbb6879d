-- A coarse grid cell of the footprint, before the sensing time in the product type's index.
--
-- The type + time index (0004) tests the footprint box on every entry of the time range: 84,000
-- entries for half a year of one type at 1 M products, of which an area of Europe and Africa keeps
-- 9,800. With the cell before the time, a query reads only the time ranges of the cells near its
-- area: 14,300 entries in 174 cells there. shared/catalog/grid.py lists the cells an area needs and
-- explains the code; this expression must stay the one it mirrors (same levels, same clamping).
-- NULL without footprint: no spatial predicate matches then.
ALTER TABLE products ADD COLUMN footprint_cell INTEGER GENERATED ALWAYS AS (
    CASE
        WHEN min_lon IS NULL THEN NULL
        WHEN max_lon - min_lon <= 9.999999 AND max_lat - min_lat <= 9.999999 THEN
            min(max(CAST((min_lon + 180) / 10 AS INTEGER), 0), 999) * 1000
            + min(max(CAST((min_lat + 90) / 10 AS INTEGER), 0), 999)
        WHEN max_lon - min_lon <= 19.999999 AND max_lat - min_lat <= 19.999999 THEN 1000000
            + min(max(CAST((min_lon + 180) / 20 AS INTEGER), 0), 999) * 1000
            + min(max(CAST((min_lat + 90) / 20 AS INTEGER), 0), 999)
        WHEN max_lon - min_lon <= 39.999999 AND max_lat - min_lat <= 39.999999 THEN 2000000
            + min(max(CAST((min_lon + 180) / 40 AS INTEGER), 0), 999) * 1000
            + min(max(CAST((min_lat + 90) / 40 AS INTEGER), 0), 999)
        WHEN max_lon - min_lon <= 79.999999 AND max_lat - min_lat <= 79.999999 THEN 3000000
            + min(max(CAST((min_lon + 180) / 80 AS INTEGER), 0), 999) * 1000
            + min(max(CAST((min_lat + 90) / 80 AS INTEGER), 0), 999)
        ELSE 4000000
    END) VIRTUAL;

CREATE INDEX products_attr_type_cell ON products
    (attr_product_type, footprint_cell, validity_start, min_lon, max_lon, min_lat, max_lat, publication_time, name);
