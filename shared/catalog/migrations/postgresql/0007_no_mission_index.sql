-- No index on the mission: three values, so it narrows nothing, and every insert paid for it.
DROP INDEX IF EXISTS products_mission;
