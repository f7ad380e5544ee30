//! PDP reporting in PostgreSQL's SQL (see the SQLite backend's `reports.rs` for the claim's
//! invariant: a submission's row and parts are written in one transaction before anything is
//! sent, under the primary key (holdername, report, day, attempt)).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::super::model::{
    CalculationFact, Claim, DayFacts, NewSubmission, NewUnavailability, PossibleMatch, ReportFact,
    ReviewState, StoredPart, StoredSubmission, SubmissionAnswer, SubmissionKey, SubmissionStatus,
    Unavailability, ViewFact,
};
use super::super::StoreError;
use super::{date, guid};

/// Records one fact.
pub(super) async fn insert_fact(
    c: &impl GenericClient,
    fact: &ReportFact,
) -> Result<(), StoreError> {
    match fact {
        ReportFact::View(v) => {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO report_views (holdername, received_at, responded_at,
                         contact_scheme, missing_admin, temp_error, eri_ano, eri_ppf, eri_trn,
                         accrued_ano, accrued_ppf, accrued_trn)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .await?;
            let holdername = v.holdername.hyphenated().to_string();
            let flags = v.flags();
            let mut values: Vec<&(dyn ToSql + Sync)> =
                vec![&holdername, &v.received_at, &v.responded_at];
            values.extend(flags.iter().map(|f| f as &(dyn ToSql + Sync)));
            c.execute(&stmt, &values).await?;
        }
        ReportFact::CalculationStarted(s) => {
            c.execute(
                "INSERT INTO report_calculations
                     (pei, holdername, value_code, eri, accrued, started_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (pei) DO NOTHING",
                &[
                    &s.pei,
                    &s.holdername.hyphenated().to_string(),
                    &s.value_code,
                    &s.eri,
                    &s.accrued,
                    &s.started_at,
                ],
            )
            .await?;
        }
        ReportFact::Reviewed(r) => {
            c.execute(
                "INSERT INTO report_reviews (pei, holdername, review, resolved_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (pei) DO UPDATE SET holdername = excluded.holdername,
                     review = excluded.review, resolved_at = excluded.resolved_at",
                &[
                    &r.pei,
                    &r.holdername.hyphenated().to_string(),
                    &r.review,
                    &r.at,
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// Stores an announced period; returns its id.
pub(super) async fn insert_unavailability(
    c: &impl GenericClient,
    w: &NewUnavailability,
) -> Result<i64, StoreError> {
    let row = c
        .query_one(
            "INSERT INTO unavailability (service, holdername, starts_at, ends_at, reason,
                 emergency, announced_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &w.service,
                &w.holdername.map(|h| h.hyphenated().to_string()),
                &w.starts_at,
                &w.ends_at,
                &w.reason,
                &w.emergency,
                &w.announced_at,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Announced periods overlapping `[from, to)` (µs), earliest first.
pub(super) async fn unavailability(
    c: &impl GenericClient,
    from: i64,
    to: i64,
) -> Result<Vec<Unavailability>, StoreError> {
    in_window(
        c,
        "SELECT id, service, holdername, starts_at, ends_at, reason, emergency, announced_at
               FROM unavailability WHERE starts_at < $2 AND ends_at > $1
              ORDER BY starts_at, id",
        (from, to),
        |r| {
            Ok(Unavailability {
                id: r.try_get(0)?,
                window: NewUnavailability {
                    service: r.try_get(1)?,
                    holdername: r.try_get::<_, Option<&str>>(2)?.map(guid).transpose()?,
                    starts_at: r.try_get(3)?,
                    ends_at: r.try_get(4)?,
                    reason: r.try_get(5)?,
                    emergency: r.try_get(6)?,
                    announced_at: r.try_get(7)?,
                },
            })
        },
    )
    .await
}

/// The facts of `[from, to)` (µs): holdernames, views, calculations ended, announced periods,
/// minutes up.
pub(super) async fn day_facts(
    c: &impl GenericClient,
    from: i64,
    to: i64,
) -> Result<DayFacts, StoreError> {
    let holdernames: BTreeSet<uuid::Uuid> = in_window(
        c,
        "SELECT holdername FROM members
             UNION SELECT holdername FROM schemes
             UNION SELECT holdername FROM report_views
                    WHERE received_at >= $1 AND received_at < $2",
        (from, to),
        |r| guid(r.try_get(0)?),
    )
    .await?
    .into_iter()
    .collect();
    let views = in_window(
        c,
        "SELECT holdername, received_at, responded_at, contact_scheme, missing_admin,
                    temp_error, eri_ano, eri_ppf, eri_trn, accrued_ano, accrued_ppf, accrued_trn
               FROM report_views WHERE received_at >= $1 AND received_at < $2
              ORDER BY received_at, id",
        (from, to),
        view_fact,
    )
    .await?;
    let calculations = in_window(
        c,
        "SELECT r.holdername, r.value_code, r.eri, r.accrued, r.started_at, c.completed_at
               FROM report_calculations r JOIN calculations c ON c.pei = r.pei
              WHERE c.completed_at >= $1 AND c.completed_at < $2
              ORDER BY c.completed_at, r.pei",
        (from, to),
        |r| {
            Ok(CalculationFact {
                holdername: guid(r.try_get(0)?)?,
                value_code: r.try_get(1)?,
                eri: r.try_get(2)?,
                accrued: r.try_get(3)?,
                started_at: r.try_get(4)?,
                ended_at: r.try_get(5)?,
            })
        },
    )
    .await?;
    let up_minutes = c
        .query(
            "SELECT minute FROM heartbeats WHERE minute >= $1 AND minute < $2 ORDER BY minute",
            &[&(from / 60_000_000), &(to / 60_000_000)],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(DayFacts {
        holdernames: holdernames.into_iter().collect(),
        views,
        calculations,
        windows: unavailability(c, from, to).await?,
        up_minutes,
    })
}

/// What `row` makes of each row `sql` answers for the window `[from, to)` (µs: its `$1` and
/// `$2`).
async fn in_window<T>(
    c: &impl GenericClient,
    sql: &str,
    (from, to): (i64, i64),
    row: impl FnMut(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    c.query(sql, &[&from, &to]).await?.iter().map(row).collect()
}

fn view_fact(r: &Row) -> Result<ViewFact, StoreError> {
    let mut flags = [false; 9];
    for (i, f) in flags.iter_mut().enumerate() {
        *f = r.try_get(3 + i)?;
    }
    let holdername = guid(r.try_get(0)?)?;
    Ok(ViewFact::from_columns(
        holdername,
        r.try_get(1)?,
        r.try_get(2)?,
        flags,
    ))
}

/// The key's columns: holdername, day and attempt as stored.
fn key_columns(k: &SubmissionKey) -> (String, String, i64) {
    (
        k.holdername.hyphenated().to_string(),
        k.day.format("%Y-%m-%d").to_string(),
        i64::from(k.attempt),
    )
}

fn small(n: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(what))
}

/// One stored submission with its parts.
async fn submission(
    c: &impl GenericClient,
    k: &SubmissionKey,
) -> Result<Option<StoredSubmission>, StoreError> {
    let (h, day, attempt) = key_columns(k);
    let Some(head) = c
        .query_opt(
            "SELECT submission_id, status, reason, state, claimed_at FROM report_submissions
              WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4",
            &[&h, &k.kind, &day, &attempt],
        )
        .await?
    else {
        return Ok(None);
    };
    let parts = c
        .query(
            "SELECT part, record_id, body, state, http_status, answer, answered_at
               FROM report_parts
              WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4
              ORDER BY part",
            &[&h, &k.kind, &day, &attempt],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(StoredPart {
                part: small(r.try_get(0)?, "report part")?,
                record_id: guid(r.try_get(1)?)?,
                body: r.try_get(2)?,
                state: r.try_get(3)?,
                http_status: r
                    .try_get::<_, Option<i32>>(4)?
                    .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt("HTTP status")))
                    .transpose()?,
                answer: r.try_get(5)?,
                answered_at: r.try_get(6)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(StoredSubmission {
        key: k.clone(),
        submission_id: head.try_get::<_, Option<&str>>(0)?.map(guid).transpose()?,
        status: head.try_get(1)?,
        reason: head.try_get(2)?,
        state: head.try_get(3)?,
        claimed_at: head.try_get(4)?,
        parts,
    }))
}

/// The attempt a new submission takes: 0 for an initial (or null) one; a correction resumes the
/// latest attempt still `sending`, or else is the next one.
async fn next_attempt(
    c: &impl GenericClient,
    s: &NewSubmission,
    h: &str,
    day: &str,
) -> Result<u32, StoreError> {
    if s.status != SubmissionStatus::Correction {
        return Ok(0);
    }
    let latest = c
        .query_opt(
            "SELECT attempt, state FROM report_submissions
              WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt > 0
              ORDER BY attempt DESC LIMIT 1 FOR UPDATE",
            &[&h, &s.kind, &day],
        )
        .await?;
    let latest = match latest {
        Some(r) => Some((small(r.try_get(0)?, "report attempt")?, r.try_get(1)?)),
        None => None,
    };
    Ok(Claim::correction_attempt(latest))
}

/// Claims a submission in the caller's transaction (see the SQLite backend's `claim`). The
/// day's rows are locked first (`FOR UPDATE` on what exists; the primary key on what is new), so
/// two instances claiming at once serialise and one of them wins.
pub(super) async fn claim(
    c: &impl GenericClient,
    s: &NewSubmission,
    now: i64,
    lease: i64,
) -> Result<Claim, StoreError> {
    let h = s.holdername.hyphenated().to_string();
    let day = s.day.format("%Y-%m-%d").to_string();
    let attempt = next_attempt(c, s, &h, &day).await?;
    let key = SubmissionKey {
        holdername: s.holdername,
        kind: s.kind,
        day: s.day,
        attempt,
    };
    // Written unless it exists; whoever inserts it (or finds it) holds its row lock until commit.
    let inserted = c
        .execute(
            "INSERT INTO report_submissions (holdername, report, day, attempt, submission_id,
                 status, reason, state, claimed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'sending', $8)
             ON CONFLICT (holdername, report, day, attempt) DO NOTHING",
            &[
                &h,
                &s.kind,
                &day,
                &i64::from(attempt),
                &s.submission_id.map(|u| u.hyphenated().to_string()),
                &s.status,
                &s.reason,
                &now,
            ],
        )
        .await?;
    if inserted == 1 {
        let stmt = c
            .prepare_cached(
                "INSERT INTO report_parts (holdername, report, day, attempt, part, record_id,
                     body, state)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'sending')",
            )
            .await?;
        for (i, (record_id, body)) in s.parts.iter().enumerate() {
            c.execute(
                &stmt,
                &[
                    &h,
                    &s.kind,
                    &day,
                    &i64::from(attempt),
                    &(i as i64),
                    &record_id.hyphenated().to_string(),
                    body,
                ],
            )
            .await?;
        }
        let stored = submission(c, &key)
            .await?
            .ok_or(StoreError::Corrupt("report submission"))?;
        return Ok(Claim::Claimed(stored));
    }
    let existing = submission(c, &key)
        .await?
        .ok_or(StoreError::Corrupt("report submission"))?;
    let existing = match Claim::of_existing(existing, now, lease) {
        ControlFlow::Break(claim) => return Ok(claim),
        ControlFlow::Continue(existing) => existing,
    };
    // Fenced on the old claim time: of two instances re-claiming at once, one wins.
    let won = c
        .execute(
            "UPDATE report_submissions SET claimed_at = $5
              WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4
                AND claimed_at = $6",
            &[
                &h,
                &s.kind,
                &day,
                &i64::from(attempt),
                &now,
                &existing.claimed_at,
            ],
        )
        .await?;
    Ok(Claim::reclaimed(existing, won == 1, now))
}

/// Records the CAS's answer to one part, and sets the submission's state to its parts' worst.
pub(super) async fn answer(
    c: &impl GenericClient,
    a: &SubmissionAnswer,
    now: i64,
) -> Result<(), StoreError> {
    let k = &a.key;
    let (h, day, attempt) = key_columns(k);
    c.execute(
        "UPDATE report_parts SET state = $6, http_status = $7, answer = $8, answered_at = $9
          WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4 AND part = $5",
        &[
            &h,
            &k.kind,
            &day,
            &attempt,
            &i64::from(a.part),
            &a.state,
            &a.http_status.map(i32::from),
            &a.answer,
            &now,
        ],
    )
    .await?;
    c.execute(
        "UPDATE report_submissions SET state = (
             SELECT CASE WHEN bool_or(p.state = 'refused') THEN 'refused'
                         WHEN bool_or(p.state = 'sending') THEN 'sending'
                         ELSE 'accepted' END
               FROM report_parts p
              WHERE p.holdername = $1 AND p.report = $2 AND p.day = $3 AND p.attempt = $4)
          WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4",
        &[&h, &k.kind, &day, &attempt],
    )
    .await?;
    Ok(())
}

/// Submissions of days from `since` on (every day when `None`), by day, holdername, report,
/// attempt.
pub(super) async fn submissions(
    c: &impl GenericClient,
    since: Option<chrono::NaiveDate>,
) -> Result<Vec<StoredSubmission>, StoreError> {
    let since = since.map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string());
    let rows = c
        .query(
            "SELECT holdername, report, day, attempt FROM report_submissions WHERE day >= $1
              ORDER BY day, holdername, report, attempt",
            &[&since],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let key = SubmissionKey {
            holdername: guid(r.try_get(0)?)?,
            kind: r.try_get(1)?,
            day: date(Some(r.try_get(2)?)).unwrap_or_default(),
            attempt: small(r.try_get(3)?, "report attempt")?,
        };
        out.extend(submission(c, &key).await?);
    }
    Ok(out)
}

/// Possible matches created in `[from, to)` (µs), with how they were resolved.
pub(super) async fn possible_matches(
    c: &impl GenericClient,
    from: i64,
    to: i64,
) -> Result<Vec<PossibleMatch>, StoreError> {
    // A PeI registered possible and later resolved yes is `match-yes` now: its review says
    // what it was.
    in_window(
        c,
        "SELECT p.holdername, p.created_at, coalesce(r.review, p.review), r.resolved_at
           FROM peis p LEFT JOIN report_reviews r ON r.pei = p.pei
          WHERE (p.match_status = 'match-possible' OR p.review IS NOT NULL OR r.pei IS NOT NULL)
            AND p.created_at >= $1 AND p.created_at < $2
          ORDER BY p.holdername, p.created_at",
        (from, to),
        |r| {
            let review: Option<ReviewState> = r.try_get(2)?;
            Ok(PossibleMatch {
                holdername: guid(r.try_get(0)?)?,
                created_at: r.try_get(1)?,
                review: review.filter(|r| *r != ReviewState::Pending),
                resolved_at: r.try_get(3)?,
            })
        },
    )
    .await
}
