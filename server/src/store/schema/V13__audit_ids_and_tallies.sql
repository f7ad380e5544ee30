-- How far the audit trail's IDs are written for look-ups, to the microsecond (upkeep writes
-- whole hours, once ended; `audit write-ids` and the seeding the same).
-- Every audit record received before `next_at` (µs since the epoch) has its IDs in `audit_ids`.
CREATE TABLE audit_ids_through (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    next_at  {int64} NOT NULL
){strict};
INSERT INTO audit_ids_through (id, next_at)
SELECT id, next_hour * 3600000000 FROM audit_ids_written;
DROP TABLE audit_ids_written;

-- The hourly tallies now hold each holdername's completion and views as well: every hour is
-- tallied again by upkeep (a month's worth a minute); a report reads the samples of the hours
-- not tallied yet meanwhile.
DELETE FROM sla_hours;
DELETE FROM sla_tallied;
