-- The last audit records' IDs written for look-ups by row rather than by time. A record is
-- written when its call ends (a CAS call up to a minute after it was received), so the recent
-- look-up by time had to stay 75 s behind, and a look-up read the 75 to 90 s since by time: a
-- fifth of a second after a minute of 45,000 ACKs a second. Row IDs are given as records are
-- written: the recent look-up now takes every record written since the last, by row, a slice
-- of at most 10,000 rows at a time (keyed by its first row), and a look-up reads by row only
-- the records written since (seconds). What was written by time is dropped: the next write
-- takes the records received since those written by week again.
DROP TABLE audit_ids_recent;
DROP TABLE audit_recent_through;
--{sqlite
CREATE TABLE audit_ids_recent (
    slice     INTEGER NOT NULL,  -- the first row (audit_log.id) of the slice it was written in
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
-- How far the recent look-up goes: every record whose row is below `next_row` (and received
-- since those written by week) has its IDs in `audit_ids_recent`; every record written after
-- `read_at` (µs) has a row at or above it. The newest mark is the frontier; older ones tell
-- which slices hold only records written by week once that frontier passes `read_at`.
CREATE TABLE audit_recent_marks (
    next_row  {int64} PRIMARY KEY,
    read_at   {int64} NOT NULL
){strict};
