//! PDP reporting in SQL: facts recorded as they happen, announced unavailability, and the
//! submissions' bookkeeping (schema: `store/schema/V4__reports.sql`).
//!
//! The claim is the invariant: a submission's row and its parts (bodies final, IDs chosen) are
//! written in one transaction before anything is sent, under the primary key (holdername,
//! report, day, attempt). A second instance, or this one after a restart, finds the row: it
//! sends nothing when the row is answered, waits while another holds its lease, and resends the
//! same bodies (same `record_id`, same `submission_id`) when a crash left it `sending`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use rusqlite::{params, Connection, OptionalExtension};

use super::super::model::{
    CalculationFact, CalculationKind, Claim, DayFacts, NewSubmission, NewUnavailability,
    PossibleMatch, ReportFact, ReportKind, ReviewState, StoredPart, StoredSubmission,
    SubmissionAnswer, SubmissionKey, SubmissionReason, SubmissionState, SubmissionStatus,
    Unavailability, ViewFact,
};
use super::super::StoreError;
use super::{date, guid};

/// A view fact's `report_views` values, in its columns' order.
fn view_values(v: &ViewFact) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    let mut out = vec![
        Value::Text(v.holdername.hyphenated().to_string()),
        Value::Integer(v.received_at),
        Value::Integer(v.responded_at),
    ];
    out.extend(v.flags().map(|f| Value::Integer(i64::from(f))));
    out
}

/// Records one fact (inside the caller's transaction).
pub(in crate::store) fn insert_fact(
    conn: &Connection,
    fact: &ReportFact,
) -> Result<(), StoreError> {
    match fact {
        ReportFact::View(v) => {
            conn.prepare_cached(
                "INSERT INTO report_views (holdername, received_at, responded_at, contact_scheme,
                     missing_admin, temp_error, eri_ano, eri_ppf, eri_trn, accrued_ano,
                     accrued_ppf, accrued_trn)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(rusqlite::params_from_iter(view_values(v)))?;
        }
        ReportFact::CalculationStarted(s) => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO report_calculations
                     (pei, holdername, value_code, eri, accrued, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.pei,
                s.holdername.hyphenated().to_string(),
                s.value_code,
                s.eri,
                s.accrued,
                s.started_at
            ])?;
        }
        ReportFact::Reviewed(r) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO report_reviews (pei, holdername, review, resolved_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                r.pei,
                r.holdername.hyphenated().to_string(),
                r.review,
                r.at
            ])?;
        }
    }
    Ok(())
}

/// Stores an announced period; returns its id.
pub(in crate::store) fn insert_unavailability(
    conn: &Connection,
    w: &NewUnavailability,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO unavailability (service, holdername, starts_at, ends_at, reason, emergency,
             announced_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        w.service,
        w.holdername.map(|h| h.hyphenated().to_string()),
        w.starts_at,
        w.ends_at,
        w.reason,
        w.emergency,
        w.announced_at
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Announced periods overlapping `[from, to)` (µs), earliest first.
pub(in crate::store) fn unavailability(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<Vec<Unavailability>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, service, holdername, starts_at, ends_at, reason, emergency, announced_at
           FROM unavailability WHERE starts_at < ?2 AND ends_at > ?1 ORDER BY starts_at, id",
    )?;
    let rows = stmt.query_map(params![from, to], |r| {
        Ok(Unavailability {
            id: r.get(0)?,
            window: NewUnavailability {
                service: r.get(1)?,
                holdername: r
                    .get::<_, Option<String>>(2)?
                    .map(|h| guid(&h))
                    .transpose()?,
                starts_at: r.get(3)?,
                ends_at: r.get(4)?,
                reason: r.get(5)?,
                emergency: r.get(6)?,
                announced_at: r.get(7)?,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The facts of `[from, to)` (µs): holdernames, views, calculations ended, announced periods,
/// minutes up.
pub(in crate::store) fn day_facts(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<DayFacts, StoreError> {
    let mut holdernames = BTreeSet::new();
    let mut stmt = conn.prepare_cached(
        "SELECT holdername FROM members
         UNION SELECT holdername FROM schemes
         UNION SELECT holdername FROM report_views WHERE received_at >= ?1 AND received_at < ?2",
    )?;
    for h in stmt.query_map(params![from, to], |r| r.get::<_, String>(0))? {
        holdernames.insert(guid(&h?)?);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT holdername, received_at, responded_at, contact_scheme, missing_admin, temp_error,
                eri_ano, eri_ppf, eri_trn, accrued_ano, accrued_ppf, accrued_trn
           FROM report_views WHERE received_at >= ?1 AND received_at < ?2
          ORDER BY received_at, id",
    )?;
    let views = stmt
        .query_map(params![from, to], |r| {
            let mut flags = [false; 9];
            for (i, f) in flags.iter_mut().enumerate() {
                *f = r.get(3 + i)?;
            }
            let holdername = guid(&r.get::<_, String>(0)?)?;
            Ok(ViewFact::from_columns(
                holdername,
                r.get(1)?,
                r.get(2)?,
                flags,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT r.holdername, r.value_code, r.eri, r.accrued, r.started_at, c.completed_at
           FROM report_calculations r JOIN calculations c ON c.pei = r.pei
          WHERE c.completed_at >= ?1 AND c.completed_at < ?2
          ORDER BY c.completed_at, r.pei",
    )?;
    let calculations = stmt
        .query_map(params![from, to], |r| {
            Ok(CalculationFact {
                holdername: guid(&r.get::<_, String>(0)?)?,
                value_code: r.get::<_, CalculationKind>(1)?,
                eri: r.get(2)?,
                accrued: r.get(3)?,
                started_at: r.get(4)?,
                ended_at: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT minute FROM heartbeats WHERE minute >= ?1 AND minute < ?2 ORDER BY minute",
    )?;
    let up_minutes = stmt
        .query_map(params![from / 60_000_000, to / 60_000_000], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(DayFacts {
        holdernames: holdernames.into_iter().collect(),
        views,
        calculations,
        windows: unavailability(conn, from, to)?,
        up_minutes,
    })
}

fn key_params(k: &SubmissionKey) -> (String, ReportKind, String, u32) {
    (
        k.holdername.hyphenated().to_string(),
        k.kind,
        k.day.format("%Y-%m-%d").to_string(),
        k.attempt,
    )
}

/// One stored submission with its parts.
fn submission(
    conn: &Connection,
    k: &SubmissionKey,
) -> Result<Option<StoredSubmission>, StoreError> {
    let (h, kind, day, attempt) = key_params(k);
    let head = conn
        .prepare_cached(
            "SELECT submission_id, status, reason, state, claimed_at FROM report_submissions
              WHERE holdername = ?1 AND report = ?2 AND day = ?3 AND attempt = ?4",
        )?
        .query_row(params![h, kind, day, attempt], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, SubmissionStatus>(1)?,
                r.get::<_, SubmissionReason>(2)?,
                r.get::<_, SubmissionState>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((sid, status, reason, state, claimed_at)) = head else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT part, record_id, body, state, http_status, answer, answered_at FROM report_parts
          WHERE holdername = ?1 AND report = ?2 AND day = ?3 AND attempt = ?4 ORDER BY part",
    )?;
    let parts = stmt
        .query_map(params![h, kind, day, attempt], |r| {
            Ok(StoredPart {
                part: r.get(0)?,
                record_id: guid(&r.get::<_, String>(1)?)?,
                body: r.get(2)?,
                state: r.get(3)?,
                http_status: r.get(4)?,
                answer: r.get(5)?,
                answered_at: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(StoredSubmission {
        key: k.clone(),
        submission_id: sid.map(|s| guid(&s)).transpose()?,
        status,
        reason,
        state,
        claimed_at,
        parts,
    }))
}

/// Claims a submission (inside the writer's transaction): see the module's top.
///
/// An initial submission (or a null one in its place) is attempt 0. A correction (resubmission,
/// or a null submission correcting one) resumes the latest attempt still `sending`, or else is
/// the next attempt.
pub(in crate::store) fn claim(
    conn: &Connection,
    s: &NewSubmission,
    now: i64,
    lease_micros: i64,
) -> Result<Claim, StoreError> {
    let h = s.holdername.hyphenated().to_string();
    let day = s.day.format("%Y-%m-%d").to_string();
    let attempt: u32 = if s.status == SubmissionStatus::Correction {
        let latest = conn
            .prepare_cached(
                "SELECT attempt, state FROM report_submissions
                  WHERE holdername = ?1 AND report = ?2 AND day = ?3 AND attempt > 0
                  ORDER BY attempt DESC LIMIT 1",
            )?
            .query_row(params![h, s.kind, day], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Claim::correction_attempt(latest)
    } else {
        0
    };
    let key = SubmissionKey {
        holdername: s.holdername,
        kind: s.kind,
        day: s.day,
        attempt,
    };
    if let Some(existing) = submission(conn, &key)? {
        let existing = match Claim::of_existing(existing, now, lease_micros) {
            ControlFlow::Break(claim) => return Ok(claim),
            ControlFlow::Continue(existing) => existing,
        };
        // Fenced on the old claim time: of two instances re-claiming at once, one wins.
        let won = conn
            .prepare_cached(
                "UPDATE report_submissions SET claimed_at = ?5
                  WHERE holdername = ?1 AND report = ?2 AND day = ?3 AND attempt = ?4
                    AND claimed_at = ?6",
            )?
            .execute(params![h, s.kind, day, attempt, now, existing.claimed_at])?;
        return Ok(Claim::reclaimed(existing, won == 1, now));
    }
    conn.prepare_cached(
        "INSERT INTO report_submissions (holdername, report, day, attempt, submission_id, status,
             reason, state, claimed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'sending', ?8)",
    )?
    .execute(params![
        h,
        s.kind,
        day,
        attempt,
        s.submission_id.map(|u| u.hyphenated().to_string()),
        s.status,
        s.reason,
        now
    ])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO report_parts (holdername, report, day, attempt, part, record_id, body, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'sending')",
    )?;
    for (i, (record_id, body)) in s.parts.iter().enumerate() {
        stmt.execute(params![
            h,
            s.kind,
            day,
            attempt,
            i as u32,
            record_id.hyphenated().to_string(),
            body
        ])?;
    }
    let stored = submission(conn, &key)?.ok_or(StoreError::Corrupt("report submission"))?;
    Ok(Claim::Claimed(stored))
}

/// Records the CAS's answer to one part, and sets the submission's state to its parts' worst.
pub(in crate::store) fn answer(
    conn: &Connection,
    a: &SubmissionAnswer,
    now: i64,
) -> Result<(), StoreError> {
    let (h, kind, day, attempt) = key_params(&a.key);
    conn.prepare_cached(
        "UPDATE report_parts SET state = ?6, http_status = ?7, answer = ?8, answered_at = ?9
          WHERE holdername = ?1 AND report = ?2 AND day = ?3 AND attempt = ?4 AND part = ?5",
    )?
    .execute(params![
        h,
        kind,
        day,
        attempt,
        a.part,
        a.state,
        a.http_status,
        a.answer,
        now
    ])?;
    conn.prepare_cached(
        "UPDATE report_submissions SET state = (
             SELECT CASE WHEN sum(state = 'refused') > 0 THEN 'refused'
                         WHEN sum(state = 'sending') > 0 THEN 'sending'
                         ELSE 'accepted' END
               FROM report_parts p
              WHERE p.holdername = ?1 AND p.report = ?2 AND p.day = ?3 AND p.attempt = ?4)
          WHERE holdername = ?1 AND report = ?2 AND day = ?3 AND attempt = ?4",
    )?
    .execute(params![h, kind, day, attempt])?;
    Ok(())
}

/// Submissions of days from `since` on (every day when `None`), by day, holdername, report,
/// attempt.
pub(in crate::store) fn submissions(
    conn: &Connection,
    since: Option<chrono::NaiveDate>,
) -> Result<Vec<StoredSubmission>, StoreError> {
    let since = since.map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string());
    let mut stmt = conn.prepare_cached(
        "SELECT holdername, report, day, attempt FROM report_submissions WHERE day >= ?1
          ORDER BY day, holdername, report, attempt",
    )?;
    let keys = stmt
        .query_map([since], |r| {
            Ok(SubmissionKey {
                holdername: guid(&r.get::<_, String>(0)?)?,
                kind: r.get(1)?,
                day: date(Some(r.get(2)?)).unwrap_or_default(),
                attempt: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.extend(submission(conn, &k)?);
    }
    Ok(out)
}

/// Possible matches created in `[from, to)` (µs), with how they were resolved.
pub(in crate::store) fn possible_matches(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<Vec<PossibleMatch>, StoreError> {
    // A PeI registered possible and later resolved yes is `match-yes` now: its review says
    // what it was.
    let mut stmt = conn.prepare_cached(
        "SELECT p.holdername, p.created_at, coalesce(r.review, p.review), r.resolved_at
           FROM peis p LEFT JOIN report_reviews r ON r.pei = p.pei
          WHERE (p.match_status = 'match-possible' OR p.review IS NOT NULL OR r.pei IS NOT NULL)
            AND p.created_at >= ?1 AND p.created_at < ?2
          ORDER BY p.holdername, p.created_at",
    )?;
    let rows = stmt.query_map(params![from, to], |r| {
        let review: Option<ReviewState> = r.get(2)?;
        Ok(PossibleMatch {
            holdername: guid(&r.get::<_, String>(0)?)?,
            created_at: r.get(1)?,
            review: review.filter(|r| *r != ReviewState::Pending),
            resolved_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
