-- What the searcher entered, for each possible match still waiting for review: sealed (the PeI is
-- the seal's associated data), read only by a reviewer who reveals it, and deleted the moment the
-- PeI stops being an open possible match (resolved yes or no, timed out, de-registered, flagged,
-- severed): the triggers below do it whatever code changed the PeI. The find's own copy of its
-- data goes when the find ends.
CREATE TABLE possible_match_searches (
    pei         TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    sealed      {bytes} NOT NULL,
    created_at  {int64} NOT NULL
){strict};
--{sqlite
CREATE TRIGGER possible_match_searches_closed AFTER UPDATE ON peis
WHEN new.state NOT IN ('pending', 'registered') OR new.match_status <> 'match-possible'
     OR coalesce(new.review, 'pending') <> 'pending'
BEGIN
    DELETE FROM possible_match_searches WHERE pei = new.pei;
END;
CREATE TRIGGER possible_match_searches_gone AFTER DELETE ON peis
BEGIN
    DELETE FROM possible_match_searches WHERE pei = old.pei;
END;
--}
--{postgres
CREATE FUNCTION possible_match_searches_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM possible_match_searches WHERE pei = OLD.pei;
        RETURN OLD;
    END IF;
    IF NEW.state NOT IN ('pending', 'registered') OR NEW.match_status <> 'match-possible'
       OR coalesce(NEW.review, 'pending') <> 'pending' THEN
        DELETE FROM possible_match_searches WHERE pei = NEW.pei;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER possible_match_searches_closed AFTER UPDATE OR DELETE ON peis
    FOR EACH ROW EXECUTE FUNCTION possible_match_searches_forget();
--}

-- Schemes by name beside their holdernames (the console): each holdername's scheme name and
-- pension count are read from this index alone, a seek per holdername, never the pensions' rows.
CREATE INDEX pensions_holdername ON pensions (holdername, scheme_name);
