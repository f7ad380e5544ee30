-- The recent look-up (V20) is derived from the audit trail and rebuilt from it when it is
-- empty: with no mark, upkeep starts again from the first record received since those written
-- by week, and look-ups read those records by row meanwhile. On PostgreSQL its slices went
-- through the write-ahead log, a burst of it every slice (10,000 rows and their keys in 70 to
-- 140 ms) for the ACKs' next commits to flush behind them (each of the ACKs' slowest seconds
-- measured had a commit of 69 to 140 ms 0.2 to 1.5 s after slices), a quarter of the WAL an
-- ACK wrote. Unlogged, a slice writes no WAL. A crash empties unlogged tables (both at once,
-- marks and slices, so that none outlives the other), and a standby holds them empty: after
-- either, the look-up is rebuilt as on a fresh store. SQLite's slices share its one journal
-- with everything else and have no such mode.
--{postgres
ALTER TABLE audit_recent_marks SET UNLOGGED;
ALTER TABLE audit_ids_recent SET UNLOGGED;
--}
