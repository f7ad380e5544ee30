-- Daily jobs (possible-match time-outs, purges, PDP reports) run once a day across every process
-- that shares the store. A run is taken by inserting its row, or by taking over one whose holder
-- stopped without finishing (its lease ran out); it is finished by setting `finished_at`.
CREATE TABLE daily_runs (
    job          TEXT NOT NULL,
    day          TEXT NOT NULL,      -- YYYY-MM-DD
    started_at   {int64} NOT NULL,
    lease_until  {int64} NOT NULL,
    finished_at  {int64},
    PRIMARY KEY (job, day)
){strict};
