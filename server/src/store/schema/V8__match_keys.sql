-- The match index at scale: each member has a slot (a number that never changes while it is
-- stored and is never reused) and its look-up keys, each a keyed hash (HMAC-SHA256 under the
-- index key, 8 bytes; never a value), so that an endpoint builds its index from these columns
-- without opening a record, and reads a candidate's record by slot when a find reaches it.
-- Rows from before have no keys (NULL): the first endpoint to start computes and writes them.

ALTER TABLE members ADD COLUMN slot {int64};
ALTER TABLE members ADD COLUMN match_keys {bytes};
--{sqlite
UPDATE members SET slot = rowid;
--}
--{postgres
UPDATE members SET slot = n FROM (
    SELECT member_id AS id, row_number() OVER (ORDER BY member_id) AS n FROM members
) numbered WHERE member_id = numbered.id;
--}
CREATE UNIQUE INDEX members_slot ON members (slot);
-- The last slot given: the next member takes the one after (a removed member's is not reused).
CREATE TABLE member_slot (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    last  {int64} NOT NULL
){strict};
INSERT INTO member_slot (id, last) SELECT 1, coalesce(max(slot), 0) FROM members;

-- The store's own secrets (the index key, the console's sign-in key), each random, made on first
-- use and sealed with the data key like any personal data: re-sealed by key rotation, and a store
-- copied without its data key does not give them away.
CREATE TABLE secrets (
    name    TEXT PRIMARY KEY,  -- the seal's associated data
    sealed  {bytes} NOT NULL
){strict};
