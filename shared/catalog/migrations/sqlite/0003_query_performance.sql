-- Query performance (issue 6 item 8, issue 5 item 7).
--
-- The PRIP attributes users filter on most, as virtual generated columns: the attribute's value
-- when it is a String attribute, else NULL, i.e. exactly what an OData String comparison on the
-- JSON reads (shared/catalog/sqlfilter.py maps these names to these columns). Indexed, a filter on
-- productType no longer parses the attributes JSON of every candidate row.
ALTER TABLE products ADD COLUMN attr_product_type TEXT GENERATED ALWAYS AS (
    CASE WHEN json_extract(attributes, '$.productType.type') = 'String'
         THEN json_extract(attributes, '$.productType.value') END) VIRTUAL;
ALTER TABLE products ADD COLUMN attr_platform_short_name TEXT GENERATED ALWAYS AS (
    CASE WHEN json_extract(attributes, '$.platformShortName.type') = 'String'
         THEN json_extract(attributes, '$.platformShortName.value') END) VIRTUAL;
ALTER TABLE products ADD COLUMN attr_platform_serial_identifier TEXT GENERATED ALWAYS AS (
    CASE WHEN json_extract(attributes, '$.platformSerialIdentifier.type') = 'String'
         THEN json_extract(attributes, '$.platformSerialIdentifier.value') END) VIRTUAL;

-- The footprint as WKB, made valid when written: the exact spatial test reads it several times
-- faster than the GeoJSON and need not check validity again. NULL (rows written before this
-- migration): the test reads the GeoJSON.
ALTER TABLE products ADD COLUMN footprint_wkb BLOB;

-- Type + time range, the query every PRIP client sends. (The platform attributes have a few
-- distinct values each: an index would cost every insert and seldom help.)
CREATE INDEX products_attr_type_start ON products (attr_product_type, validity_start);

-- Selection policies (shared/processing/queries.py): covering indexes, so a policy reads only the
-- index (no table row per candidate), in validity_start order and in validity_stop order
-- (LatestStopValidity, ClosestStopValidity: LIMIT 1 at one end of the index). satellite is there
-- for the preparation step's "this unit or mission-wide" condition.
-- The first replaces (product_type, validity_start), of which it is an extension.
DROP INDEX products_type_validity;
CREATE INDEX products_type_start_cover ON products
    (product_type, validity_start, validity_stop, publication_time, name, satellite);
CREATE INDEX products_type_stop_cover ON products
    (product_type, validity_stop, validity_start, publication_time, name, satellite);
