-- PDP reporting, in PostgreSQL's dialect: the same tables and meanings as the SQLite backend's
-- V4 (src/store/sqlite/migrations/V4__reports.sql). No personal data: GUIDs of schemes, PeIs,
-- counts and times.

-- One row per view answered with a payload.
CREATE TABLE report_views (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    holdername      TEXT NOT NULL,
    received_at     BIGINT NOT NULL,
    responded_at    BIGINT NOT NULL,
    contact_scheme  BOOLEAN NOT NULL,   -- item 2.004
    missing_admin   BOOLEAN NOT NULL,   -- item 2.005
    temp_error      BOOLEAN NOT NULL,   -- item 2.006
    eri_ano         BOOLEAN NOT NULL,   -- item 2.301 codes
    eri_ppf         BOOLEAN NOT NULL,
    eri_trn         BOOLEAN NOT NULL,
    accrued_ano     BOOLEAN NOT NULL,   -- item 2.401 codes
    accrued_ppf     BOOLEAN NOT NULL,
    accrued_trn     BOOLEAN NOT NULL
);
CREATE INDEX report_views_received ON report_views (received_at);

-- What a calculation withheld (its end is `calculations.completed_at`, same PeI).
CREATE TABLE report_calculations (
    pei          TEXT PRIMARY KEY,
    holdername   TEXT NOT NULL,
    value_code   TEXT NOT NULL,        -- DBC | DCC
    eri          BOOLEAN NOT NULL,
    accrued      BOOLEAN NOT NULL,
    started_at   BIGINT NOT NULL
);

-- How and when each possible match was resolved (Regulation 28(3)).
CREATE TABLE report_reviews (
    pei          TEXT PRIMARY KEY,
    holdername   TEXT NOT NULL,
    review       TEXT NOT NULL,        -- yes | no | timeout
    resolved_at  BIGINT NOT NULL
);

-- Unavailability an operator announced (CoCo2.2.1).
CREATE TABLE unavailability (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service       TEXT NOT NULL,       -- find | view | both
    holdername    TEXT,                -- NULL: every scheme
    starts_at     BIGINT NOT NULL,
    ends_at       BIGINT NOT NULL,
    reason        TEXT NOT NULL,
    emergency     BOOLEAN NOT NULL,    -- short notice, reported as unscheduled
    announced_at  BIGINT NOT NULL,
    CHECK (ends_at > starts_at)
);

-- One row per (holdername, report, day, attempt), written BEFORE anything is sent; its primary
-- key is what makes a day submitted once across restarts and instances.
CREATE TABLE report_submissions (
    holdername     TEXT NOT NULL,
    report         TEXT NOT NULL,      -- the endpoint's path
    day            TEXT NOT NULL,      -- YYYY-MM-DD (UTC)
    attempt        BIGINT NOT NULL,
    submission_id  TEXT,               -- NULL for a null submission
    status         TEXT NOT NULL,      -- on time | correction | late
    reason         TEXT NOT NULL,      -- initial submission | resubmission | null submission
    state          TEXT NOT NULL,      -- sending | accepted | refused (its parts' worst)
    claimed_at     BIGINT NOT NULL,
    PRIMARY KEY (holdername, report, day, attempt)
);
CREATE INDEX report_submissions_day ON report_submissions (day);

-- The calls of a submission (item limits split one into several), bodies exactly as sent.
CREATE TABLE report_parts (
    holdername   TEXT NOT NULL,
    report       TEXT NOT NULL,
    day          TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    part         BIGINT NOT NULL,
    record_id    TEXT NOT NULL UNIQUE,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL,        -- sending | accepted | refused
    http_status  INTEGER,
    answer       TEXT,                 -- datetimestamp of a 202, or the problem details
    answered_at  BIGINT,
    PRIMARY KEY (holdername, report, day, attempt, part),
    FOREIGN KEY (holdername, report, day, attempt)
        REFERENCES report_submissions (holdername, report, day, attempt)
);
