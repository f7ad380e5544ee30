-- Pensions stored compactly: the asset GUID as its 16 bytes (in the row and in its key) instead
-- of 36 characters, and no holdername (a pension's is its member's, read with the member). The
-- view data stays sealed as it was (its associated data is the GUID's hyphenated text). Each
-- holdername's pensions are counted by scheme name as before, the holdername taken from the
-- member; a member whose holdername changes takes its pensions' counts with it.

--{sqlite
DROP TRIGGER pension_schemes_added;
DROP TRIGGER pension_schemes_removed;
DROP TRIGGER pension_schemes_renamed;
CREATE TABLE pensions_compact (
    asset_guid   BLOB PRIMARY KEY,           -- the GUID's 16 bytes
    member_id    TEXT NOT NULL,
    scheme_name  TEXT NOT NULL,
    view_data    BLOB NOT NULL,              -- sealed view data JSON
    statement_date   TEXT,                   -- YYYY-MM-DD: values from a statement
    calculation_date TEXT                    -- YYYY-MM-DD: values from a calculation
) STRICT;
INSERT INTO pensions_compact
    (asset_guid, member_id, scheme_name, view_data, statement_date, calculation_date)
    SELECT unhex(replace(asset_guid, '-', '')), member_id, scheme_name, view_data,
           statement_date, calculation_date
      FROM pensions ORDER BY rowid;
DROP TABLE pensions;
ALTER TABLE pensions_compact RENAME TO pensions;
CREATE INDEX pensions_member ON pensions (member_id);

CREATE TRIGGER pension_schemes_added AFTER INSERT ON pensions
BEGIN
    INSERT INTO pension_schemes (holdername, scheme_name, pensions)
        SELECT holdername, NEW.scheme_name, 1 FROM members WHERE member_id = NEW.member_id
        ON CONFLICT (holdername, scheme_name) DO UPDATE SET pensions = pensions + 1;
END;
CREATE TRIGGER pension_schemes_removed AFTER DELETE ON pensions
BEGIN
    UPDATE pension_schemes SET pensions = pensions - 1
     WHERE scheme_name = OLD.scheme_name
       AND holdername = (SELECT holdername FROM members WHERE member_id = OLD.member_id);
    DELETE FROM pension_schemes
     WHERE scheme_name = OLD.scheme_name AND pensions <= 0
       AND holdername = (SELECT holdername FROM members WHERE member_id = OLD.member_id);
END;
CREATE TRIGGER pension_schemes_renamed AFTER UPDATE OF member_id, scheme_name ON pensions
    WHEN OLD.member_id <> NEW.member_id OR OLD.scheme_name <> NEW.scheme_name
BEGIN
    UPDATE pension_schemes SET pensions = pensions - 1
     WHERE scheme_name = OLD.scheme_name
       AND holdername = (SELECT holdername FROM members WHERE member_id = OLD.member_id);
    DELETE FROM pension_schemes
     WHERE scheme_name = OLD.scheme_name AND pensions <= 0
       AND holdername = (SELECT holdername FROM members WHERE member_id = OLD.member_id);
    INSERT INTO pension_schemes (holdername, scheme_name, pensions)
        SELECT holdername, NEW.scheme_name, 1 FROM members WHERE member_id = NEW.member_id
        ON CONFLICT (holdername, scheme_name) DO UPDATE SET pensions = pensions + 1;
END;
CREATE TRIGGER pension_schemes_moved AFTER UPDATE OF holdername ON members
    WHEN OLD.holdername <> NEW.holdername
BEGIN
    UPDATE pension_schemes SET pensions = pensions - (
        SELECT count(*) FROM pensions p
         WHERE p.member_id = NEW.member_id AND p.scheme_name = pension_schemes.scheme_name)
     WHERE holdername = OLD.holdername;
    DELETE FROM pension_schemes WHERE holdername = OLD.holdername AND pensions <= 0;
    INSERT INTO pension_schemes (holdername, scheme_name, pensions)
        SELECT NEW.holdername, scheme_name, count(*) FROM pensions
         WHERE member_id = NEW.member_id GROUP BY scheme_name
        ON CONFLICT (holdername, scheme_name) DO UPDATE SET pensions = pensions + excluded.pensions;
END;
--}
--{postgres
ALTER TABLE pensions ALTER COLUMN asset_guid TYPE BYTEA
    USING decode(replace(asset_guid, '-', ''), 'hex');
ALTER TABLE pensions DROP COLUMN holdername;

-- Once a statement, from the rows it wrote, each row's holdername its member's.
CREATE OR REPLACE FUNCTION pension_schemes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE pension_schemes s SET pensions = s.pensions - o.n
          FROM (SELECT m.holdername, r.scheme_name, count(*) AS n
                  FROM old_rows r JOIN members m ON m.member_id = r.member_id
                 GROUP BY m.holdername, r.scheme_name) o
         WHERE s.holdername = o.holdername AND s.scheme_name = o.scheme_name;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pension_schemes (holdername, scheme_name, pensions)
            SELECT m.holdername, r.scheme_name, count(*)
              FROM new_rows r JOIN members m ON m.member_id = r.member_id
             GROUP BY m.holdername, r.scheme_name ORDER BY m.holdername, r.scheme_name
            ON CONFLICT (holdername, scheme_name)
            DO UPDATE SET pensions = pension_schemes.pensions + excluded.pensions;
    END IF;
    DELETE FROM pension_schemes WHERE pensions <= 0;
    RETURN NULL;
END
$$;
CREATE FUNCTION pension_schemes_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pension_schemes s SET pensions = s.pensions - p.n
      FROM (SELECT scheme_name, count(*) AS n FROM pensions
             WHERE member_id = NEW.member_id GROUP BY scheme_name) p
     WHERE s.holdername = OLD.holdername AND s.scheme_name = p.scheme_name;
    DELETE FROM pension_schemes WHERE holdername = OLD.holdername AND pensions <= 0;
    INSERT INTO pension_schemes (holdername, scheme_name, pensions)
        SELECT NEW.holdername, scheme_name, count(*) FROM pensions
         WHERE member_id = NEW.member_id GROUP BY scheme_name ORDER BY scheme_name
        ON CONFLICT (holdername, scheme_name)
        DO UPDATE SET pensions = pension_schemes.pensions + excluded.pensions;
    RETURN NULL;
END
$$;
CREATE TRIGGER pension_schemes_moved AFTER UPDATE OF holdername ON members
    FOR EACH ROW WHEN (OLD.holdername <> NEW.holdername)
    EXECUTE FUNCTION pension_schemes_moved();
--}
