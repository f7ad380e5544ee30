-- Look-ups by ID of the last hour's audit records: the records received since those written by
-- week (`audit_ids`, once their hour has closed) have their IDs written here a slice of time at a
-- time (a few thousand records each), keyed by the slice's start, so that each slice's IDs land
-- at the end of the table; a look-up seeks once a slice, and reads only the last minute or two by
-- time. Forgotten once written by week.
--{sqlite
CREATE TABLE audit_ids_recent (
    slice     INTEGER NOT NULL,  -- the start of the slice of time it was written in (µs)
    id        TEXT NOT NULL,     -- its request ID or its transaction ID
    audit_id  INTEGER NOT NULL,  -- audit_log.id
    PRIMARY KEY (slice, id, audit_id)
) WITHOUT ROWID;
--}
--{postgres
CREATE TABLE audit_ids_recent (
    slice     BIGINT NOT NULL,
    id        TEXT NOT NULL,
    audit_id  BIGINT NOT NULL,
    PRIMARY KEY (slice, id, audit_id)
);
--}
-- Every audit record received before `next_at` (µs since the epoch) has its IDs in `audit_ids`
-- or in `audit_ids_recent`.
CREATE TABLE audit_recent_through (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    next_at  {int64} NOT NULL
){strict};
