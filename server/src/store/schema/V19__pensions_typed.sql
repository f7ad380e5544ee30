-- Pensions on PostgreSQL in its own types: the asset GUID as `uuid` (16 bytes, in the row and
-- in its key, against 17 for a short `bytea` and its length byte, and a key entry of 24 bytes
-- rather than 32 once aligned) and the statement and calculation dates as `date` (4 bytes
-- against 11 for the text). About 50 bytes a member of two pensions. The store reads and binds
-- them as before (the GUID's 16 bytes, the date's `YYYY-MM-DD`). The table is rewritten once,
-- at the start that applies this. SQLite keeps its types (its store is smaller already).

--{postgres
ALTER TABLE pensions
    ALTER COLUMN asset_guid TYPE uuid USING encode(asset_guid, 'hex')::uuid,
    ALTER COLUMN statement_date TYPE date USING statement_date::date,
    ALTER COLUMN calculation_date TYPE date USING calculation_date::date;
--}
