-- The footprint grid (0005) finds the products of an area without a type too, and the R*Tree goes:
-- with its part table it took 34 of the 131 microseconds SQLite spent per entry of a 1 M bulk load.
--
-- An area without a type reads its cells in this index (the box is tested inside it). A footprint
-- cut at the antimeridian is in the world cell, so every area at its latitudes tests it exactly,
-- where the R*Tree held each part's box: such footprints are few. An area with a type keeps the
-- type's grid index (0005): with the cell first in one index for both, SQLite preferred the type
-- + time index for the typed query, whose page then took three times as long. The page's keys end
-- this one, so an area's first page is sorted in the index and only its rows are read (an area of
-- Europe and Africa at 300,000 entries: 35 ms instead of 169).
CREATE INDEX products_cell ON products (footprint_cell, min_lon, max_lon, min_lat, max_lat, publication_time, name);
DROP TABLE footprint_index;
DROP TABLE footprint_parts;

-- No index on the mission: three values, so it narrows nothing. Without statistics SQLite still
-- chose it for `Collection/Name eq 'SENTINEL-1'`, read every Sentinel-1 row and sorted them (274 ms
-- for a first page at 300,000 entries), where the publication index finds the page at once.
DROP INDEX products_mission;
