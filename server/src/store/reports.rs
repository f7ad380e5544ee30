//! The Store's PDP reporting: facts recorded as they happen, announced unavailability, and the
//! claim/answer bookkeeping that makes each holdername's day submitted once across restarts and
//! instances (schema: `schema/V4__reports.sql`).
//!
//! The claim is the invariant: a submission's row and its parts (bodies final, IDs chosen) are
//! written in one transaction before anything is sent, under the primary key (holdername,
//! report, day, attempt). A second instance, or this one after a restart, finds the row: it
//! sends nothing when the row is answered, waits while another holds its lease, and resends the
//! same bodies (same `record_id`, same `submission_id`) when a crash left it `sending`. The holder
//! renews its claim before each call and releases it when its retries are spent, both fenced on
//! the claim time it holds.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::time::Duration;

use uuid::Uuid;

use super::sql::{params, Access, Row, Tx, Value};
use super::{Result, Store, StoreError};
use crate::model::{
    CalculationFact, Claim, DayFacts, NewSubmission, NewUnavailability, PossibleMatch, ReportFact,
    ReviewState, StoredPart, StoredSubmission, SubmissionAnswer, SubmissionKey, SubmissionState,
    SubmissionStatus, Unavailability, ViewFact,
};

// === impl Store ===

impl Store {
    /// Records a reporting fact (a view, a calculation started, a possible match resolved).
    pub async fn record_fact(&self, fact: ReportFact) -> Result<(), StoreError> {
        self.run(Access::Single, move |tx| {
            Box::pin(async move { record_fact(tx, &fact).await })
        })
        .await
    }

    /// Stores an announced period of unavailability; returns its id. The notice rule
    /// (CoCo2.2.1) is the caller's: the store keeps what it is given.
    pub async fn announce_unavailability(
        &self,
        window: NewUnavailability,
    ) -> Result<i64, StoreError> {
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                let w = &window;
                tx.value(
                    "INSERT INTO unavailability (service, holdername, starts_at, ends_at, reason,
                         emergency, announced_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &params![
                        w.service,
                        w.holdername.map(|h| h.hyphenated().to_string()),
                        w.starts_at,
                        w.ends_at,
                        &w.reason,
                        w.emergency,
                        w.announced_at
                    ],
                )
                .await
            })
        })
        .await
    }

    /// Announced periods of unavailability overlapping `[from, to)` (µs), earliest first.
    pub async fn unavailability(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<Unavailability>, StoreError> {
        self.read(move |tx| Box::pin(async move { unavailability(tx, from, to).await }))
            .await
    }

    /// Everything a reporting period `[from, to)` (µs) is built from.
    pub async fn report_facts(&self, from: i64, to: i64) -> Result<DayFacts, StoreError> {
        self.run(Access::Snapshot, move |tx| {
            Box::pin(async move { day_facts(tx, from, to).await })
        })
        .await
    }

    /// Claims a submission before anything of it is sent: written with its bodies and IDs, or
    /// found already written (answered, held by another instance within `lease`, or left
    /// `sending` by a crash and reclaimed).
    pub async fn claim_submission(
        &self,
        submission: NewSubmission,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let lease = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        let now = crate::now_micros();
        self.write(move |tx| Box::pin(async move { claim(tx, &submission, now, lease).await }))
            .await
    }

    /// Records the CAS's answer to one part of a submission: its status and its answer (the
    /// `datetimestamp` of a `202`, or the problem details).
    pub async fn record_submission_answer(
        &self,
        answer: SubmissionAnswer,
    ) -> Result<(), StoreError> {
        let now = crate::now_micros();
        self.write(move |tx| Box::pin(async move { record_answer(tx, &answer, now).await }))
            .await
    }

    /// Renews a claim this caller holds since `held` (µs): its lease starts again now, the new
    /// claim time returned. `None` when the claim is no longer this caller's (another instance
    /// re-claimed it past its lease) or the submission was answered: nothing more of it is sent.
    pub async fn renew_submission_claim(
        &self,
        key: SubmissionKey,
        held: i64,
    ) -> Result<Option<i64>, StoreError> {
        let now = crate::now_micros();
        self.write(move |tx| {
            Box::pin(async move {
                fence_claim(tx, &key, held, now)
                    .await
                    .map(|won| won.then_some(now))
            })
        })
        .await
    }

    /// Releases a claim this caller holds since `held` (µs) and leaves unanswered (its retries
    /// spent): the next run, on any instance, may claim it at once instead of waiting out the
    /// lease. A claim another instance took over meanwhile is left alone.
    pub async fn release_submission_claim(
        &self,
        key: SubmissionKey,
        held: i64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            Box::pin(async move { fence_claim(tx, &key, held, RELEASED).await.map(|_| ()) })
        })
        .await
    }

    /// Submissions of reporting days from `since` on (all when `None`), by day, holdername,
    /// report, attempt.
    pub async fn submissions(
        &self,
        since: Option<chrono::NaiveDate>,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        self.read(move |tx| Box::pin(async move { submissions(tx, since).await }))
            .await
    }

    /// Possible matches created in `[from, to)` (µs) and how each was resolved.
    pub async fn possible_matches(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<PossibleMatch>, StoreError> {
        self.read(move |tx| Box::pin(async move { possible_matches(tx, from, to).await }))
            .await
    }
}

// === units of work ===

/// A stored GUID.
fn guid(s: &str) -> Result<Uuid> {
    Uuid::try_parse(s).map_err(|_| StoreError::Corrupt("GUID"))
}

/// A GUID as stored.
fn stored(g: Uuid) -> String {
    g.hyphenated().to_string()
}

/// A small stored count (an attempt, a part, an HTTP status).
fn small<T: TryFrom<i64>>(n: i64, what: &'static str) -> Result<T> {
    T::try_from(n).map_err(|_| StoreError::Corrupt(what))
}

/// Records one fact.
async fn record_fact(tx: &mut dyn Tx, fact: &ReportFact) -> Result<()> {
    match fact {
        ReportFact::View(v) => {
            let mut values = params![stored(v.holdername), v.received_at, v.responded_at].to_vec();
            values.extend(v.flags().map(Value::from));
            tx.execute(
                "INSERT INTO report_views (holdername, received_at, responded_at, contact_scheme,
                     missing_admin, temp_error, eri_ano, eri_ppf, eri_trn, accrued_ano,
                     accrued_ppf, accrued_trn)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &values,
            )
            .await?;
        }
        ReportFact::CalculationStarted(s) => {
            tx.execute(
                "INSERT INTO report_calculations
                     (pei, holdername, value_code, eri, accrued, started_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (pei) DO NOTHING",
                &params![
                    &s.pei,
                    stored(s.holdername),
                    s.value_code,
                    s.eri,
                    s.accrued,
                    s.started_at
                ],
            )
            .await?;
        }
        ReportFact::Reviewed(r) => {
            tx.execute(
                "INSERT INTO report_reviews (pei, holdername, review, resolved_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (pei) DO UPDATE SET holdername = excluded.holdername,
                     review = excluded.review, resolved_at = excluded.resolved_at",
                &params![&r.pei, stored(r.holdername), r.review, r.at],
            )
            .await?;
        }
    }
    Ok(())
}

/// Announced periods overlapping `[from, to)` (µs), earliest first.
async fn unavailability(tx: &mut dyn Tx, from: i64, to: i64) -> Result<Vec<Unavailability>> {
    tx.query(
        "SELECT id, service, holdername, starts_at, ends_at, reason, emergency, announced_at
           FROM unavailability WHERE starts_at < $2 AND ends_at > $1 ORDER BY starts_at, id",
        &params![from, to],
    )
    .await?
    .iter()
    .map(unavailability_from)
    .collect()
}

fn unavailability_from(r: &Row) -> Result<Unavailability> {
    Ok(Unavailability {
        id: r.get(0)?,
        window: NewUnavailability {
            service: r.get(1)?,
            holdername: r
                .get::<Option<String>>(2)?
                .as_deref()
                .map(guid)
                .transpose()?,
            starts_at: r.get(3)?,
            ends_at: r.get(4)?,
            reason: r.get(5)?,
            emergency: r.get(6)?,
            announced_at: r.get(7)?,
        },
    })
}

/// The facts of `[from, to)` (µs): holdernames, views, calculations ended, announced periods,
/// minutes up.
async fn day_facts(tx: &mut dyn Tx, from: i64, to: i64) -> Result<DayFacts> {
    let window = params![from, to];
    let holdernames = tx
        .column::<String>(
            "SELECT holdername FROM members
             UNION SELECT holdername FROM schemes
             UNION SELECT holdername FROM report_views
                    WHERE received_at >= $1 AND received_at < $2",
            &window,
        )
        .await?
        .iter()
        .map(|h| guid(h))
        .collect::<Result<BTreeSet<_>>>()?;
    let views = views(tx, from, to).await?;
    let calculations = tx
        .query(
            "SELECT r.holdername, r.value_code, r.eri, r.accrued, r.started_at, c.completed_at
               FROM report_calculations r JOIN calculations c ON c.pei = r.pei
              WHERE c.completed_at >= $1 AND c.completed_at < $2
              ORDER BY c.completed_at, r.pei",
            &window,
        )
        .await?
        .iter()
        .map(calculation_from)
        .collect::<Result<_>>()?;
    let up_minutes = tx
        .column(
            "SELECT minute FROM heartbeats WHERE minute >= $1 AND minute < $2 ORDER BY minute",
            &params![from / 60_000_000, to / 60_000_000],
        )
        .await?;
    Ok(DayFacts {
        holdernames: holdernames.into_iter().collect(),
        views,
        calculations,
        windows: unavailability(tx, from, to).await?,
        up_minutes,
    })
}

/// The views answered in `[from, to)`, oldest first.
pub(super) async fn views(tx: &mut dyn Tx, from: i64, to: i64) -> Result<Vec<ViewFact>> {
    tx.query(
        "SELECT holdername, received_at, responded_at, contact_scheme, missing_admin,
                temp_error, eri_ano, eri_ppf, eri_trn, accrued_ano, accrued_ppf, accrued_trn
           FROM report_views WHERE received_at >= $1 AND received_at < $2
          ORDER BY received_at, id",
        &params![from, to],
    )
    .await?
    .iter()
    .map(view_from)
    .collect()
}

fn view_from(r: &Row) -> Result<ViewFact> {
    let mut flags = [false; 9];
    for (i, f) in flags.iter_mut().enumerate() {
        *f = r.get(3 + i)?;
    }
    Ok(ViewFact::from_columns(
        guid(&r.get::<String>(0)?)?,
        r.get(1)?,
        r.get(2)?,
        flags,
    ))
}

fn calculation_from(r: &Row) -> Result<CalculationFact> {
    Ok(CalculationFact {
        holdername: guid(&r.get::<String>(0)?)?,
        value_code: r.get(1)?,
        eri: r.get(2)?,
        accrued: r.get(3)?,
        started_at: r.get(4)?,
        ended_at: r.get(5)?,
    })
}

/// A submission's key columns (holdername, report, day, attempt: its `$1` to `$4`), then
/// `more`.
fn keyed<const N: usize>(k: &SubmissionKey, more: [Value; N]) -> Vec<Value> {
    let mut out = params![stored(k.holdername), k.kind, k.day, k.attempt].to_vec();
    out.extend(more);
    out
}

/// One stored submission with its parts.
async fn submission(tx: &mut dyn Tx, k: &SubmissionKey) -> Result<Option<StoredSubmission>> {
    let key = keyed(k, []);
    let Some(head) = tx
        .query_opt(
            "SELECT submission_id, status, reason, state, claimed_at FROM report_submissions
              WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4",
            &key,
        )
        .await?
    else {
        return Ok(None);
    };
    let parts = tx
        .query(
            "SELECT part, record_id, body, state, http_status, answer, answered_at
               FROM report_parts
              WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4
              ORDER BY part",
            &key,
        )
        .await?
        .iter()
        .map(part_from)
        .collect::<Result<_>>()?;
    Ok(Some(StoredSubmission {
        key: k.clone(),
        submission_id: head
            .get::<Option<String>>(0)?
            .as_deref()
            .map(guid)
            .transpose()?,
        status: head.get(1)?,
        reason: head.get(2)?,
        state: head.get(3)?,
        claimed_at: head.get(4)?,
        parts,
    }))
}

fn part_from(r: &Row) -> Result<StoredPart> {
    Ok(StoredPart {
        part: small(r.get(0)?, "report part")?,
        record_id: guid(&r.get::<String>(1)?)?,
        body: r.get(2)?,
        state: r.get(3)?,
        http_status: r
            .get::<Option<i64>>(4)?
            .map(|s| small(s, "HTTP status"))
            .transpose()?,
        answer: r.get(5)?,
        answered_at: r.get(6)?,
    })
}

/// Claims a submission (see the module's top). An initial submission (or a null one in its
/// place) is attempt 0; a correction (resubmission, or a null submission correcting one)
/// resumes the latest attempt still `sending`, or else is the next attempt. The day's rows are
/// locked first (`FOR UPDATE` on what exists; the primary key on what is new), so that two
/// instances claiming at once serialise and one of them wins.
async fn claim(tx: &mut dyn Tx, s: &NewSubmission, now: i64, lease: i64) -> Result<Claim> {
    let attempt = if s.status == SubmissionStatus::Correction {
        let latest = tx
            .query_opt(
                "SELECT attempt, state FROM report_submissions
                  WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt > 0
                  ORDER BY attempt DESC LIMIT 1 {for_update}",
                &params![stored(s.holdername), s.kind, s.day],
            )
            .await?;
        let latest = match latest {
            Some(r) => Some((small(r.get(0)?, "report attempt")?, r.get(1)?)),
            None => None,
        };
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
    // Written unless it exists; whoever inserts it (or finds it) holds its row until commit.
    let inserted = tx
        .execute(
            "INSERT INTO report_submissions (holdername, report, day, attempt, submission_id,
                 status, reason, state, claimed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (holdername, report, day, attempt) DO NOTHING",
            &keyed(
                &key,
                params![
                    s.submission_id.map(stored),
                    s.status,
                    s.reason,
                    SubmissionState::Sending,
                    now
                ],
            ),
        )
        .await?;
    if inserted == 1 {
        for (i, (record_id, body)) in s.parts.iter().enumerate() {
            tx.execute(
                "INSERT INTO report_parts (holdername, report, day, attempt, part, record_id,
                     body, state)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &keyed(
                    &key,
                    params![i, stored(*record_id), body, SubmissionState::Sending],
                ),
            )
            .await?;
        }
        let stored = submission(tx, &key)
            .await?
            .ok_or(StoreError::Corrupt("report submission"))?;
        return Ok(Claim::Claimed(stored));
    }
    let existing = submission(tx, &key)
        .await?
        .ok_or(StoreError::Corrupt("report submission"))?;
    let existing = match Claim::of_existing(existing, now, lease) {
        ControlFlow::Break(claim) => return Ok(claim),
        ControlFlow::Continue(existing) => existing,
    };
    // Fenced on the old claim time: of two instances re-claiming at once, one wins.
    let won = tx
        .execute(
            "UPDATE report_submissions SET claimed_at = $5
              WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4
                AND claimed_at = $6",
            &keyed(&key, params![now, existing.claimed_at]),
        )
        .await?;
    Ok(Claim::reclaimed(existing, won == 1, now))
}

/// The claim time of a released claim: older than any lease, so the next claimant takes it.
const RELEASED: i64 = 0;

/// Moves a `sending` claim held since `held` to `to` (a renewal: now; a release:
/// [`RELEASED`]); false when the claim is no longer held since `held`.
async fn fence_claim(tx: &mut dyn Tx, k: &SubmissionKey, held: i64, to: i64) -> Result<bool> {
    let changed = tx
        .execute(
            "UPDATE report_submissions SET claimed_at = $5
              WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4
                AND claimed_at = $6 AND state = $7",
            &keyed(k, params![to, held, SubmissionState::Sending]),
        )
        .await?;
    Ok(changed == 1)
}

/// Records the CAS's answer to one part, and sets the submission's state to its parts' worst.
async fn record_answer(tx: &mut dyn Tx, a: &SubmissionAnswer, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE report_parts SET state = $6, http_status = $7, answer = $8, answered_at = $9
          WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4 AND part = $5",
        &keyed(
            &a.key,
            params![
                a.part,
                a.state,
                a.http_status.map(u32::from),
                &a.answer,
                now
            ],
        ),
    )
    .await?;
    tx.execute(
        "UPDATE report_submissions SET state = (
             SELECT CASE WHEN sum(CASE WHEN p.state = 'refused' THEN 1 ELSE 0 END) > 0
                         THEN 'refused'
                         WHEN sum(CASE WHEN p.state = 'sending' THEN 1 ELSE 0 END) > 0
                         THEN 'sending'
                         ELSE 'accepted' END
               FROM report_parts p
              WHERE p.holdername = $1 AND p.report = $2 AND p.day = $3 AND p.attempt = $4)
          WHERE holdername = $1 AND report = $2 AND day = $3 AND attempt = $4",
        &keyed(&a.key, []),
    )
    .await?;
    Ok(())
}

/// Submissions of days from `since` on (every day when `None`), by day, holdername, report,
/// attempt.
async fn submissions(
    tx: &mut dyn Tx,
    since: Option<chrono::NaiveDate>,
) -> Result<Vec<StoredSubmission>> {
    let since = since.map_or_else(String::new, |d| d.to_string());
    let keys = tx
        .query(
            "SELECT holdername, report, day, attempt FROM report_submissions WHERE day >= $1
              ORDER BY day, holdername, report, attempt",
            &params![since],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(SubmissionKey {
                holdername: guid(&r.get::<String>(0)?)?,
                kind: r.get(1)?,
                day: r.get(2)?,
                attempt: small(r.get(3)?, "report attempt")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.extend(submission(tx, &k).await?);
    }
    Ok(out)
}

/// Possible matches created in `[from, to)` (µs), with how they were resolved.
async fn possible_matches(tx: &mut dyn Tx, from: i64, to: i64) -> Result<Vec<PossibleMatch>> {
    // A PeI registered possible and later resolved yes is `match-yes` now: its review says
    // what it was.
    tx.query(
        "SELECT p.holdername, p.created_at, coalesce(r.review, p.review), r.resolved_at
           FROM peis p LEFT JOIN report_reviews r ON r.pei = p.pei
          WHERE (p.match_status = 'match-possible' OR p.review IS NOT NULL OR r.pei IS NOT NULL)
            AND p.created_at >= $1 AND p.created_at < $2
          ORDER BY p.holdername, p.created_at",
        &params![from, to],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(PossibleMatch {
            holdername: guid(&r.get::<String>(0)?)?,
            created_at: r.get(1)?,
            review: r
                .get::<Option<ReviewState>>(2)?
                .filter(|r| *r != ReviewState::Pending),
            resolved_at: r.get(3)?,
        })
    })
    .collect()
}
