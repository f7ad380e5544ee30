//! The boundary between the typed store and a database: [`Backend`], and the rows that cross it.
//!
//! A backend spells SQL, applies the schema's migrations in its dialect ([`super::schema`]), and
//! makes writes durable; it never seals or opens (values arrive sealed and leave sealed:
//! [`super::Store`] holds the key). Two implement it: [`super::sqlite`] (embedded, one instance) and [`super::postgres`] (several
//! instances on one database). Both pass the same behaviour tests (`store/tests.rs`), written
//! once against [`super::Store`].
//!
//! Each method is one unit of work: it commits as a whole or not at all. Where a unit needs the
//! key in the middle (a PAT refresh, a re-seal), the store hands the backend a closure that
//! seals, so that the backend still never sees the key.

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::console::{
    ConsoleUser, OrgDetail, OrgDetailChange, SignInAttempt, UserCheck, UserSaved,
};
use super::model::{
    Applied, AppliedChange, Calculation, Claim, DayFacts, FailedFind, FindOutcome, FindState,
    MatchStatus, NewPei, NewSubmission, NewUnavailability, PeiState, PossibleMatch, ReportFact,
    ReviewState, SchemeState, SlaSamples, StoredFind, StoredPei, StoredSubmission,
    SubmissionAnswer, Unavailability,
};
use super::{ResealCursor, Resealed, Result};
use crate::audit::AuditRecord;

/// What an implementation of [`Backend`] names: the trait, the rows that cross it, the model's
/// types and the store's result.
pub(super) mod prelude {
    pub(in crate::store) use super::{
        AuditQuery, Backend, CalculatedValues, ClaimedRow, DailyRun, DataChangeRow, EndRow,
        MatchesRow, MemberBatches, MemberChanges, PatRefresh, PeiMove, PeiQuery, ResealStep,
        Resealer, SealedChange, Sealer, StoredPensionRow, SEALED,
    };
    pub(in crate::store) use crate::audit::AuditRecord;
    pub(in crate::store) use crate::store::console::{
        ConsoleUser, OrgDetail, OrgDetailChange, SignInAttempt, UserCheck, UserSaved,
    };
    pub(in crate::store) use crate::store::db::Database;
    pub(in crate::store) use crate::store::group_commit::{Front, GroupCommit};
    pub(in crate::store) use crate::store::model::{
        Applied, AppliedChange, Calculation, Claim, DayFacts, FailedFind, MatchStatus,
        NewSubmission, NewUnavailability, PeiState, PossibleMatch, ReportFact, ReviewState,
        SchemeState, SlaSamples, StoredFind, StoredPei, StoredSubmission, SubmissionAnswer,
        Unavailability,
    };
    pub(in crate::store) use crate::store::sql::{Access, Dialect, Erased, Work};
    pub(in crate::store) use crate::store::{Resealed, Result, StoreError};
}

pub(super) use super::group_commit::FindRow;

/// A claimed find, its find data still sealed.
pub(super) struct ClaimedRow {
    pub request_id: String,
    pub acked_at: i64,
    pub sealed: Option<Vec<u8>>,
    pub pat_id: Option<String>,
    pub attempts: i64,
}

/// How a working find ends.
#[derive(Debug, Clone)]
pub(super) enum End {
    /// With an outcome.
    Done(FindOutcome),
    /// With a reason (never personal data).
    Failed(String),
}

impl End {
    /// The find's columns at its end: its state, outcome and reason.
    pub(super) fn columns(&self) -> (FindState, Option<FindOutcome>, Option<&str>) {
        match self {
            End::Done(o) => (FindState::Done, Some(*o), None),
            End::Failed(r) => (FindState::Failed, None, Some(r.as_str())),
        }
    }
}

/// A find's matches, the rules versions that decided them and the PAT its UAT was swapped
/// for: one commit.
pub(super) struct MatchesRow {
    pub request_id: String,
    pub peis: Vec<NewPei>,
    pub versions: String,
    pub pat: Option<PatRow>,
    pub now: i64,
}

/// A working find's end with the registrations it made (`(pei, resource_id)`), fenced by the
/// claim's attempt number when given.
pub(super) struct EndRow {
    pub request_id: String,
    pub claim: Option<i64>,
    pub end: End,
    pub registered: Vec<(String, String)>,
    pub pat_id: Option<String>,
    pub now: i64,
}

/// A PeI's move to `to` if it is in one of `from`, with the deletion's reason and time.
pub(super) struct PeiMove {
    pub pei: String,
    pub from: &'static [PeiState],
    pub to: PeiState,
    pub deletion: Option<(String, i64)>,
}

/// A refreshed PAT for every stored copy of the previous one (found by SHA-256).
pub(super) struct PatRefresh {
    pub previous_sha256: String,
    pub new_sha256: String,
    pub new_pat: Vec<u8>,
    pub expires_at: Option<i64>,
}

/// Where a re-seal step starts and how far it goes: values sealed with a key other than the
/// one whose sealed values begin with `prefix`.
pub(super) struct ResealStep {
    pub cursor: ResealCursor,
    pub prefix: Vec<u8>,
    pub limit: usize,
}

/// A daily job's run for a day (`YYYY-MM-DD`), at `now`.
pub(super) struct DailyRun {
    pub job: String,
    pub day: String,
    pub now: i64,
}

impl DailyRun {
    /// `job`'s run for `day`, now.
    pub(super) fn new(job: &str, day: chrono::NaiveDate) -> Self {
        Self {
            job: job.to_owned(),
            day: day.to_string(),
            now: crate::now_micros(),
        }
    }
}

/// A data change as stored: `(version, kind, key)`.
pub(super) type DataChangeRow = (i64, String, String);

/// New view data for a pension, from its calculation: `update` turns the stored (opened) view
/// data into the new one.
pub(super) struct CalculatedValues {
    pub asset_guid: String,
    pub calculation_date: chrono::NaiveDate,
    pub update: ViewDataUpdate,
}

/// Member changes to apply in one commit; with `dry_run` rolled back once answered.
pub(super) struct MemberChanges {
    pub changes: Vec<SealedChange>,
    pub dry_run: bool,
    pub now: i64,
}

/// Audit records received in `[from, to)` (µs), optionally for one transaction or request ID.
pub(super) struct AuditQuery {
    pub from: i64,
    pub to: i64,
    pub id: Option<String>,
}

/// A PAT as stored: its ID, its SHA-256 (to find it again on refresh), the PAT sealed.
pub(super) struct PatRow {
    pub pat_id: String,
    pub sha256: String,
    pub sealed: Vec<u8>,
    pub expires_at: Option<i64>,
}

/// A member row, sealed parts already sealed.
pub(super) struct MemberRow {
    pub member_id: String,
    pub holdername: String,
    pub sealed: Vec<u8>,
    /// SHA-256 of what was imported (match record and pensions, in the clear), to tell an
    /// update from a repeat without opening anything.
    pub content_sha256: String,
    pub pensions: Vec<PensionRow>,
}

impl MemberRow {
    /// What writing this row does to the member as stored (`before`: its content hash, `None`
    /// when not stored): `None` when it is stored exactly so, and nothing is to be written.
    pub(super) fn applied_over(&self, before: Option<Option<String>>) -> Option<Applied> {
        match before {
            None => Some(Applied::Added),
            Some(h) if h.as_deref() == Some(self.content_sha256.as_str()) => None,
            Some(_) => Some(Applied::Updated),
        }
    }

    /// Of the member's stored pensions (asset GUIDs), those this row no longer has.
    pub(super) fn dropped(&self, stored: Vec<String>) -> Vec<String> {
        let kept: std::collections::HashSet<&str> = self
            .pensions
            .iter()
            .map(|p| p.asset_guid.as_str())
            .collect();
        stored
            .into_iter()
            .filter(|g| !kept.contains(g.as_str()))
            .collect()
    }
}

/// A pension row.
pub(super) struct PensionRow {
    pub asset_guid: String,
    pub scheme_name: String,
    pub sealed_view_data: Vec<u8>,
    pub statement_date: Option<chrono::NaiveDate>,
    pub calculation_date: Option<chrono::NaiveDate>,
}

/// A pension row as read, view data still sealed.
pub(super) struct StoredPensionRow {
    pub member_id: String,
    pub holdername: String,
    pub scheme_name: String,
    pub sealed_view_data: Vec<u8>,
    pub statement_date: Option<chrono::NaiveDate>,
    pub calculation_date: Option<chrono::NaiveDate>,
}

/// A member change with its secrets sealed.
pub(super) enum SealedChange {
    Upsert(MemberRow),
    Remove(String),
}

/// Which PeIs to read.
#[derive(Debug, Clone)]
pub(super) enum PeiQuery {
    All,
    Request(String),
    Pension(String),
    Holdername(String),
    State(PeiState),
    /// Registered possible matches still waiting for review, created before this (µs).
    UnreviewedBefore(i64),
}

/// Seals a value for a row ID (the seal's associated data).
pub(super) type Sealer = Box<dyn Fn(&str, &[u8]) -> Vec<u8> + Send + Sync>;

/// Re-seals a value sealed with another key; `None` when no configured key opens it.
pub(super) type Resealer = Box<dyn Fn(&str, &[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// Replaces a pension's sealed view data with the sealed new one.
pub(super) type ViewDataUpdate = Box<dyn FnOnce(&[u8]) -> Result<Vec<u8>> + Send>;

/// Batches of members' sealed match records, streamed to the store's opening threads.
pub(super) type MemberBatches = mpsc::Sender<Vec<(String, Vec<u8>)>>;

/// The sealed columns, in the order a re-seal goes through them: the table, its row ID (the
/// seal's associated data), the column, and a condition that narrows the rows with a value to an
/// index (only open finds keep find data).
pub(super) const SEALED: [(&str, &str, &str, &str); 4] = [
    (
        "find_requests",
        "request_id",
        "find_data",
        "state IN ('queued', 'working')",
    ),
    ("pats", "pat_id", "sealed", "TRUE"),
    ("members", "member_id", "sealed", "TRUE"),
    ("pensions", "asset_guid", "view_data", "TRUE"),
];

/// A database that holds the store. See the module documentation.
#[async_trait]
pub(super) trait Backend: super::db::Database {
    // --- the pipeline ---

    /// Finds stored and not at an end, across every instance.
    async fn open_count(&self) -> Result<u64>;

    /// Single instance: finds a previous process was working on are queued again. A backend
    /// shared by several instances leaves them to their leases (0).
    async fn requeue_working(&self) -> Result<u64>;

    /// Claims up to `limit` finds: expired leases first, then the oldest queued; never one that
    /// another claim holds.
    async fn claim(&self, now: i64, lease: i64, limit: usize) -> Result<Vec<ClaimedRow>>;

    /// Extends a working find's lease to `until` if the claim `attempts` still holds it; false
    /// when it does not (the lease ran out and another claim took it, or it ended).
    async fn renew_lease(&self, request_id: String, attempts: i64, until: i64) -> Result<bool>;

    /// Records the PeIs a find produced (idempotent), the rules versions, and the PAT its UAT
    /// was swapped for; returns the find's PeIs still pending.
    async fn record_matches(&self, row: MatchesRow) -> Result<Vec<StoredPei>>;

    /// A sealed PAT.
    async fn pat(&self, pat_id: String) -> Result<Vec<u8>>;

    /// Records registrations and ends a working find (fenced by the claim's attempt number);
    /// false when it was no longer this claim's to end.
    async fn end(&self, row: EndRow) -> Result<bool>;

    /// One find by ID.
    async fn find_request(&self, request_id: String) -> Result<Option<StoredFind>>;

    /// Every find, oldest first.
    async fn find_requests(&self) -> Result<Vec<StoredFind>>;

    /// Failed finds, newest first.
    async fn failed(&self) -> Result<Vec<FailedFind>>;

    // --- PeIs, PATs, calculations ---

    /// PeIs, by `query`.
    async fn peis(&self, query: PeiQuery) -> Result<Vec<StoredPei>>;

    /// One PeI by asset GUID.
    async fn pei_by_asset_guid(&self, asset_guid: String) -> Result<Option<StoredPei>>;

    /// Moves a PeI to `to` if it is in one of `from`; whether it moved.
    async fn move_pei(&self, change: PeiMove) -> Result<bool>;

    /// Records a review and the match status it leaves.
    async fn set_review(&self, id: String, review: ReviewState, status: MatchStatus) -> Result<()>;

    /// Replaces every stored PAT whose SHA-256 is `previous_sha256` with the new PAT, sealed per
    /// row by `seal`; how many.
    async fn refresh_pat(&self, refresh: PatRefresh, seal: Sealer) -> Result<u64>;

    /// Whether a calculation is recorded for a PeI.
    async fn has_calculation(&self, pei: String) -> Result<bool>;

    /// Records a calculation (once).
    async fn insert_calculation(&self, calc: Calculation) -> Result<()>;

    /// Calculations, open ones first by due date.
    async fn calculations(&self) -> Result<Vec<Calculation>>;

    /// Replaces a pension's view data through `update`, sets its calculation date and closes its
    /// open calculations: how many, `None` when no such pension.
    async fn set_calculated_values(&self, values: CalculatedValues) -> Result<Option<u64>>;

    // --- members and schemes ---

    /// Applies member changes in one commit (each noted as a data change); with `dry_run` the
    /// same answers and nothing kept.
    async fn apply_members(&self, batch: MemberChanges) -> Result<Vec<AppliedChange>>;

    /// Member IDs, optionally of one holdername.
    async fn member_ids(&self, holdername: Option<String>) -> Result<Vec<String>>;

    /// Members' sealed match records (`None`: not stored).
    async fn members_sealed(&self, ids: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>>;

    /// Sends every member's sealed match record, in batches.
    async fn member_batches(&self, batch: usize, to: MemberBatches) -> Result<()>;

    /// Members stored.
    async fn member_count(&self) -> Result<u64>;

    /// One pension by asset GUID.
    async fn pension(&self, asset_guid: String) -> Result<Option<StoredPensionRow>>;

    /// The newest data change's version (0: none).
    async fn data_version(&self) -> Result<i64>;

    /// Data changes after `version`, oldest first: `(version, kind, key)`.
    async fn data_changes_since(&self, version: i64, limit: usize) -> Result<Vec<DataChangeRow>>;

    /// Forgets data changes before `before` (µs), keeping the newest.
    async fn purge_data_changes(&self, before: i64) -> Result<u64>;

    /// Sets a scheme's state and notes the change.
    async fn set_scheme(&self, holdername: String, state: SchemeState, now: i64) -> Result<()>;

    /// Schemes not active.
    async fn inactive_schemes(&self) -> Result<Vec<(String, SchemeState)>>;

    /// One scheme's state (active when never set).
    async fn scheme(&self, holdername: String) -> Result<SchemeState>;

    // --- data keys ---

    /// Stored values not sealed with the key whose sealed values begin with `prefix`.
    async fn count_not_sealed_with(&self, prefix: Vec<u8>) -> Result<u64>;

    /// One step of a re-seal (see [`super::Store::reseal`]), in one commit.
    async fn reseal(&self, step: ResealStep, reseal: Resealer) -> Result<Resealed>;

    // --- audit, availability, service levels, daily jobs ---

    /// Audit records received in `[from, to)`, optionally for one ID.
    async fn audit_records(&self, query: AuditQuery) -> Result<Vec<AuditRecord>>;

    /// Moves the retention cutoff forward and deletes older records.
    async fn purge_audit(&self, cutoff: i64) -> Result<u64>;

    /// Records that an endpoint is up in this minute (minutes since the epoch).
    async fn heartbeat(&self, minute: i64) -> Result<()>;

    /// Minutes up in `[from, to)` (minutes since the epoch).
    async fn minutes_up(&self, from: i64, to: i64) -> Result<u64>;

    /// The first minute with a heartbeat.
    async fn first_heartbeat(&self) -> Result<Option<i64>>;

    /// The service levels' samples for `[from, to)` (µs), but the minutes up.
    async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples>;

    /// Matching finds ACKed in `[from, to)` (µs) and completed: ACK to completion (µs), once for
    /// each holdername the find registered PeIs in.
    async fn completions_by_holdername(&self, from: i64, to: i64) -> Result<Vec<(String, i64)>>;

    /// Takes a daily job's run for `day` if no one has finished it and no one holds it (a holder
    /// that stopped without finishing loses it when `lease_until` passes): whether this caller
    /// has it.
    async fn begin_daily(&self, run: DailyRun, lease_until: i64) -> Result<bool>;

    /// Marks a daily job's run for `day` finished.
    async fn finish_daily(&self, run: DailyRun) -> Result<()>;

    // --- PDP reporting (see `reports.rs`) ---

    /// Records a reporting fact.
    async fn record_fact(&self, fact: ReportFact) -> Result<()>;

    /// Stores an announced period of unavailability; its id.
    async fn announce_unavailability(&self, window: NewUnavailability) -> Result<i64>;

    /// Announced periods overlapping `[from, to)` (µs), earliest first.
    async fn unavailability(&self, from: i64, to: i64) -> Result<Vec<Unavailability>>;

    /// Everything a reporting period `[from, to)` (µs) is built from.
    async fn report_facts(&self, from: i64, to: i64) -> Result<DayFacts>;

    /// Claims a submission before anything of it is sent (one commit: its row, bodies and IDs,
    /// or the row another claim wrote).
    async fn claim_submission(&self, new: NewSubmission, now: i64, lease: i64) -> Result<Claim>;

    /// Records the CAS's answer to one part of a submission.
    async fn record_submission_answer(&self, answer: SubmissionAnswer, now: i64) -> Result<()>;

    /// Submissions of reporting days from `since` on.
    async fn submissions(&self, since: Option<chrono::NaiveDate>) -> Result<Vec<StoredSubmission>>;

    /// Possible matches created in `[from, to)` (µs) and how each was resolved.
    async fn possible_matches(&self, from: i64, to: i64) -> Result<Vec<PossibleMatch>>;

    // --- The operator console (see `console.rs`) ---

    /// Every console user, by username.
    async fn console_users(&self) -> Result<Vec<ConsoleUser>>;

    /// Adds (`id == 0`) or replaces a console user in one transaction, if `check` passes on
    /// every user as they would then be.
    async fn save_console_user(&self, user: ConsoleUser, check: UserCheck) -> Result<UserSaved>;

    /// The organisation's registration data, by key.
    async fn org_details(&self) -> Result<Vec<OrgDetail>>;

    /// Sets an item of the organisation's registration data.
    async fn set_org_detail(&self, change: OrgDetailChange, now: i64) -> Result<()>;

    /// Counts a sign-in attempt ([`SignInAttempt`]): the username's attempts in a row, this one
    /// included.
    async fn sign_in_attempt(&self, attempt: SignInAttempt) -> Result<u32>;

    /// Forgets a username's counted attempts.
    async fn sign_in_succeeded(&self, username: String) -> Result<()>;
}
