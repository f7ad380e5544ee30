-- Each holdername's pensions by scheme name, counted as pensions are written (the console's
-- schemes page reads its names and counts from here), in place of an index of every pension by
-- holdername and scheme name: a few rows a scheme instead of an index entry a pension.
CREATE TABLE pension_schemes (
    holdername   TEXT NOT NULL,
    scheme_name  TEXT NOT NULL,
    pensions     {int64} NOT NULL,     -- pensions stored with this holdername and scheme name
    PRIMARY KEY (holdername, scheme_name)
){strict};
INSERT INTO pension_schemes (holdername, scheme_name, pensions)
    SELECT holdername, scheme_name, count(*) FROM pensions GROUP BY holdername, scheme_name;
DROP INDEX pensions_holdername;

--{sqlite
CREATE TRIGGER pension_schemes_added AFTER INSERT ON pensions
BEGIN
    INSERT INTO pension_schemes (holdername, scheme_name, pensions)
        VALUES (NEW.holdername, NEW.scheme_name, 1)
        ON CONFLICT (holdername, scheme_name) DO UPDATE SET pensions = pensions + 1;
END;
CREATE TRIGGER pension_schemes_removed AFTER DELETE ON pensions
BEGIN
    UPDATE pension_schemes SET pensions = pensions - 1
     WHERE holdername = OLD.holdername AND scheme_name = OLD.scheme_name;
    DELETE FROM pension_schemes
     WHERE holdername = OLD.holdername AND scheme_name = OLD.scheme_name AND pensions <= 0;
END;
CREATE TRIGGER pension_schemes_renamed AFTER UPDATE OF holdername, scheme_name ON pensions
    WHEN OLD.holdername <> NEW.holdername OR OLD.scheme_name <> NEW.scheme_name
BEGIN
    UPDATE pension_schemes SET pensions = pensions - 1
     WHERE holdername = OLD.holdername AND scheme_name = OLD.scheme_name;
    DELETE FROM pension_schemes
     WHERE holdername = OLD.holdername AND scheme_name = OLD.scheme_name AND pensions <= 0;
    INSERT INTO pension_schemes (holdername, scheme_name, pensions)
        VALUES (NEW.holdername, NEW.scheme_name, 1)
        ON CONFLICT (holdername, scheme_name) DO UPDATE SET pensions = pensions + 1;
END;
--}
--{postgres
-- Once a statement, from the rows it wrote: a multi-row insert counts its rows in one upsert.
CREATE FUNCTION pension_schemes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE pension_schemes s SET pensions = s.pensions - o.n
          FROM (SELECT holdername, scheme_name, count(*) AS n FROM old_rows
                 GROUP BY holdername, scheme_name) o
         WHERE s.holdername = o.holdername AND s.scheme_name = o.scheme_name;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pension_schemes (holdername, scheme_name, pensions)
            SELECT holdername, scheme_name, count(*) FROM new_rows
             GROUP BY holdername, scheme_name ORDER BY holdername, scheme_name
            ON CONFLICT (holdername, scheme_name)
            DO UPDATE SET pensions = pension_schemes.pensions + excluded.pensions;
    END IF;
    DELETE FROM pension_schemes WHERE pensions <= 0;
    RETURN NULL;
END
$$;
CREATE TRIGGER pension_schemes_added AFTER INSERT ON pensions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pension_schemes_count();
CREATE TRIGGER pension_schemes_removed AFTER DELETE ON pensions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pension_schemes_count();
CREATE TRIGGER pension_schemes_renamed AFTER UPDATE ON pensions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pension_schemes_count();
--}
