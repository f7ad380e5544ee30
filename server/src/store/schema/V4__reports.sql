-- PDP reporting (issue #13): per-holdername facts recorded as they happen, announced
-- unavailability, and the bookkeeping of the six daily submissions. No personal data: GUIDs of
-- schemes, PeIs (for calculations and reviews, keyed like `calculations`), counts and times.

-- One row per view answered with a payload.
CREATE TABLE report_views (
    id              {rowid},
    holdername      TEXT NOT NULL,
    received_at     {int64} NOT NULL,
    responded_at    {int64} NOT NULL,
    contact_scheme  {bool} NOT NULL,   -- item 2.004
    missing_admin   {bool} NOT NULL,   -- item 2.005
    temp_error      {bool} NOT NULL,   -- item 2.006
    eri_ano         {bool} NOT NULL,   -- item 2.301 codes
    eri_ppf         {bool} NOT NULL,
    eri_trn         {bool} NOT NULL,
    accrued_ano     {bool} NOT NULL,   -- item 2.401 codes
    accrued_ppf     {bool} NOT NULL,
    accrued_trn     {bool} NOT NULL
){strict};
CREATE INDEX report_views_received ON report_views (received_at);

-- What a calculation withheld (its end is `calculations.completed_at`, same PeI).
CREATE TABLE report_calculations (
    pei          TEXT PRIMARY KEY,
    holdername   TEXT NOT NULL,
    value_code   TEXT NOT NULL,        -- DBC | DCC
    eri          {bool} NOT NULL,
    accrued      {bool} NOT NULL,
    started_at   {int64} NOT NULL
){strict};

-- How and when each possible match was resolved (Regulation 28(3)).
CREATE TABLE report_reviews (
    pei          TEXT PRIMARY KEY,
    holdername   TEXT NOT NULL,
    review       TEXT NOT NULL,        -- yes | no | timeout
    resolved_at  {int64} NOT NULL
){strict};

-- Unavailability an operator announced (CoCo2.2.1).
CREATE TABLE unavailability (
    id            {rowid},
    service       TEXT NOT NULL,       -- find | view | both
    holdername    TEXT,                -- NULL: every scheme
    starts_at     {int64} NOT NULL,
    ends_at       {int64} NOT NULL,
    reason        TEXT NOT NULL,
    emergency     {bool} NOT NULL,     -- short notice, reported as unscheduled
    announced_at  {int64} NOT NULL,
    CHECK (ends_at > starts_at)
){strict};

-- One row per (holdername, report, day, attempt), written BEFORE anything is sent. Attempt 0 is
-- the initial (or null) submission: its primary key is what makes a day submitted once across
-- restarts and instances. A row left `sending` past its lease is sent again, identical.
CREATE TABLE report_submissions (
    holdername     TEXT NOT NULL,
    report         TEXT NOT NULL,      -- the endpoint's path
    day            TEXT NOT NULL,      -- YYYY-MM-DD (UTC)
    attempt        {int64} NOT NULL,
    submission_id  TEXT,               -- NULL for a null submission
    status         TEXT NOT NULL,      -- on time | correction | late
    reason         TEXT NOT NULL,      -- initial submission | resubmission | null submission
    state          TEXT NOT NULL,      -- sending | accepted | refused (its parts' worst)
    claimed_at     {int64} NOT NULL,
    PRIMARY KEY (holdername, report, day, attempt)
){strict};
CREATE INDEX report_submissions_day ON report_submissions (day);

-- The calls of a submission (item limits split one into several), bodies exactly as sent.
CREATE TABLE report_parts (
    holdername   TEXT NOT NULL,
    report       TEXT NOT NULL,
    day          TEXT NOT NULL,
    attempt      {int64} NOT NULL,
    part         {int64} NOT NULL,
    record_id    TEXT NOT NULL UNIQUE,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL,        -- sending | accepted | refused
    http_status  INTEGER,
    answer       TEXT,                 -- datetimestamp of a 202, or the problem details
    answered_at  {int64},
    PRIMARY KEY (holdername, report, day, attempt, part),
    FOREIGN KEY (holdername, report, day, attempt)
        REFERENCES report_submissions (holdername, report, day, attempt)
){strict};
