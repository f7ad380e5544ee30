-- Imports at scale on PostgreSQL. The count-keeping trigger on `pensions` looked each written
-- row's holdername up by a join of the statement's rows with `members`: its plan, cached with
-- the function, was taken while `members` was small (a hash join over a sequential scan of the
-- table), and a large import then read the whole of `members` for each statement it made (a
-- 200,000-member import at a third of its speed, depending on when the statistics caught up).
-- Each row's holdername is now a look-up by the member's key, whatever the statistics say.
-- SQLite's row triggers look each member up by its key already.

--{postgres
CREATE OR REPLACE FUNCTION pension_schemes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE pension_schemes s SET pensions = s.pensions - o.n
          FROM (SELECT h AS holdername, scheme_name, count(*) AS n
                  FROM (SELECT (SELECT m.holdername FROM members m
                                 WHERE m.member_id = r.member_id) AS h, r.scheme_name
                          FROM old_rows r) w
                 WHERE h IS NOT NULL
                 GROUP BY h, scheme_name) o
         WHERE s.holdername = o.holdername AND s.scheme_name = o.scheme_name;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pension_schemes (holdername, scheme_name, pensions)
            SELECT h, scheme_name, count(*)
              FROM (SELECT (SELECT m.holdername FROM members m
                             WHERE m.member_id = r.member_id) AS h, r.scheme_name
                      FROM new_rows r) w
             WHERE h IS NOT NULL
             GROUP BY h, scheme_name ORDER BY h, scheme_name
            ON CONFLICT (holdername, scheme_name)
            DO UPDATE SET pensions = pension_schemes.pensions + excluded.pensions;
    END IF;
    DELETE FROM pension_schemes WHERE pensions <= 0;
    RETURN NULL;
END
$$;
--}
