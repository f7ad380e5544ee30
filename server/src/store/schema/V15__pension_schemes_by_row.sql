-- A pension rewritten with its member and scheme name unchanged (a delta import's new values)
-- leaves the scheme counts alone without running anything. On PostgreSQL the count's update
-- trigger ran once a statement, whatever the statement changed (a statement trigger takes no
-- condition), which cost a delta import of a 1 M-member store most of its time; it now runs for
-- the rows whose member or scheme name changed only, as SQLite's always has. Inserts and deletes
-- keep their once-a-statement triggers (an import's multi-row inserts count in one upsert).

--{postgres
DROP TRIGGER pension_schemes_renamed ON pensions;
CREATE FUNCTION pension_schemes_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pension_schemes s SET pensions = s.pensions - 1
      FROM members m
     WHERE m.member_id = OLD.member_id
       AND s.holdername = m.holdername AND s.scheme_name = OLD.scheme_name;
    INSERT INTO pension_schemes (holdername, scheme_name, pensions)
        SELECT m.holdername, NEW.scheme_name, 1 FROM members m WHERE m.member_id = NEW.member_id
        ON CONFLICT (holdername, scheme_name)
        DO UPDATE SET pensions = pension_schemes.pensions + 1;
    DELETE FROM pension_schemes WHERE pensions <= 0;
    RETURN NULL;
END
$$;
CREATE TRIGGER pension_schemes_renamed AFTER UPDATE OF member_id, scheme_name ON pensions
    FOR EACH ROW
    WHEN (OLD.member_id <> NEW.member_id OR OLD.scheme_name <> NEW.scheme_name)
    EXECUTE FUNCTION pension_schemes_renamed();
--}
