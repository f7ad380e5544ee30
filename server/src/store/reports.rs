//! The Store's PDP reporting API (issue #13): facts recorded as they happen, announced
//! unavailability, and the claim/answer bookkeeping that makes each holdername's day submitted
//! once across restarts and instances (see `sqlite/reports.rs`). A handful of typed methods; the
//! SQL is in each backend's `reports.rs`, the schema in `schema/V4__reports.sql`.

use std::time::Duration;

use super::model::{
    Claim, DayFacts, NewSubmission, NewUnavailability, PossibleMatch, ReportFact, StoredSubmission,
    SubmissionAnswer, Unavailability,
};
use super::{Store, StoreError};

// === impl Store ===

impl Store {
    /// Records a reporting fact (a view, a calculation started, a possible match resolved).
    pub async fn record_fact(&self, fact: ReportFact) -> Result<(), StoreError> {
        self.db().record_fact(fact).await
    }

    /// Stores an announced period of unavailability; returns its id. The notice rule
    /// (CoCo2.2.1) is the caller's: the store keeps what it is given.
    pub async fn announce_unavailability(
        &self,
        window: NewUnavailability,
    ) -> Result<i64, StoreError> {
        self.db().announce_unavailability(window).await
    }

    /// Announced periods of unavailability overlapping `[from, to)` (µs), earliest first.
    pub async fn unavailability(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<Unavailability>, StoreError> {
        self.db().unavailability(from, to).await
    }

    /// Everything a reporting period `[from, to)` (µs) is built from.
    pub async fn report_facts(&self, from: i64, to: i64) -> Result<DayFacts, StoreError> {
        self.db().report_facts(from, to).await
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
        self.db()
            .claim_submission(submission, crate::now_micros(), lease)
            .await
    }

    /// Records the CAS's answer to one part of a submission: its status and its answer (the
    /// `datetimestamp` of a `202`, or the problem details).
    pub async fn record_submission_answer(
        &self,
        answer: SubmissionAnswer,
    ) -> Result<(), StoreError> {
        self.db()
            .record_submission_answer(answer, crate::now_micros())
            .await
    }

    /// Submissions of reporting days from `since` on (all when `None`).
    pub async fn submissions(
        &self,
        since: Option<chrono::NaiveDate>,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        self.db().submissions(since).await
    }

    /// Possible matches created in `[from, to)` (µs) and how each was resolved.
    pub async fn possible_matches(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<PossibleMatch>, StoreError> {
        self.db().possible_matches(from, to).await
    }
}
