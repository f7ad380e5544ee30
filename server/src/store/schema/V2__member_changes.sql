-- Member data that changes while the endpoints serve (imports, deltas, suspended schemes).

-- What was last imported for a member, so that importing the same record again changes nothing.
ALTER TABLE members ADD COLUMN content_sha256 TEXT;

-- Every change a running endpoint must apply to its in-memory match index, in order. A server
-- remembers the last version it applied and reads what came after. On PostgreSQL, writers take
-- this table's lock before numbering a change, so versions commit in order and a reader that has
-- seen version n never misses a smaller one committed later.
CREATE TABLE data_changes (
    version  {serial},
    kind     TEXT NOT NULL,     -- member | scheme
    key      TEXT NOT NULL,     -- the member ID or the holdername
    at       {int64} NOT NULL
){strict};

-- Schemes (holdernames) an operator suspended or severed (CoCo3.2.5); absent means active.
CREATE TABLE schemes (
    holdername  TEXT PRIMARY KEY,
    state       TEXT NOT NULL,   -- active | suspended | severed
    changed_at  {int64} NOT NULL
){strict};
