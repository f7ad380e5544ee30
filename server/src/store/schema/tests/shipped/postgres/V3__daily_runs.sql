-- Daily jobs (possible-match time-outs, purges, PDP reports) run once a day across every instance.
-- A run is taken by inserting its row, or by taking over one whose holder stopped without
-- finishing (its lease ran out); it is finished by setting `finished_at`.
CREATE TABLE daily_runs (
    job          TEXT NOT NULL,
    day          TEXT NOT NULL,      -- YYYY-MM-DD
    started_at   BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL,
    finished_at  BIGINT,
    PRIMARY KEY (job, day)
);
