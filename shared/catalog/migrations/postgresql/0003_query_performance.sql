-- Query performance (issue 6 item 8, issue 5 item 7).
--
-- The PRIP attributes users filter on most, as stored generated columns: the attribute's value when
-- it is a String attribute, else NULL, i.e. exactly what an OData String comparison on the jsonb
-- reads (shared/catalog/sqlfilter.py maps these names to these columns). Byte order ("C"), as every
-- attribute string comparison is, so the indexes serve them.
ALTER TABLE products
    ADD COLUMN attr_product_type text COLLATE "C" GENERATED ALWAYS AS (
        CASE WHEN attributes -> 'productType' ->> 'type' = 'String'
             THEN attributes -> 'productType' ->> 'value' END) STORED,
    ADD COLUMN attr_platform_short_name text COLLATE "C" GENERATED ALWAYS AS (
        CASE WHEN attributes -> 'platformShortName' ->> 'type' = 'String'
             THEN attributes -> 'platformShortName' ->> 'value' END) STORED,
    ADD COLUMN attr_platform_serial_identifier text COLLATE "C" GENERATED ALWAYS AS (
        CASE WHEN attributes -> 'platformSerialIdentifier' ->> 'type' = 'String'
             THEN attributes -> 'platformSerialIdentifier' ->> 'value' END) STORED;

-- Type + time range, the query every PRIP client sends. (The platform attributes have a few
-- distinct values each: an index would cost every insert and seldom help.)
CREATE INDEX products_attr_type_start ON products (attr_product_type, validity_start);

-- Selection policies (shared/processing/queries.py): covering indexes in validity_start and in
-- validity_stop order (LatestStopValidity, ClosestStopValidity: LIMIT 1 at one end of the index);
-- satellite for the preparation step's "this unit or mission-wide" condition.
-- The first replaces (product_type, validity_start), of which it is an extension.
DROP INDEX products_type_validity;
CREATE INDEX products_type_start_cover ON products (product_type, validity_start, validity_stop)
    INCLUDE (publication_time, name, satellite);
CREATE INDEX products_type_stop_cover ON products (product_type, validity_stop, validity_start)
    INCLUDE (publication_time, name, satellite);
