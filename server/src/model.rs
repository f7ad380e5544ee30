//! The domain's vocabulary: the states of a find, a PeI and a review, the kinds of calculation
//! and report, and the rows the store keeps and the rest of the crate reads and writes.
//!
//! Every state is an enum. Each is stored as its wire (or documented) spelling, and only this file
//! spells those strings: the store converts at its boundary and refuses a value it does not
//! know instead of guessing. This module imports nothing of the crate: the store, the wire
//! types, matching and metrics all take their words from here.

use std::ops::ControlFlow;

use strum::{Display, EnumString, IntoStaticStr, VariantArray};
use uuid::Uuid;

/// A stored enum: the derives every stored state has (its spelling from strum's attributes on
/// each variant), and `as_str` and `parse`.
macro_rules! stored_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[derive(IntoStaticStr, EnumString, Display, VariantArray)]
        pub enum $name { $($body)* }

        impl $name {
            /// The stored (and, where there is one, wire) spelling.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// Parses the stored spelling; `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                s.parse().ok()
            }
        }
    };
}

/// Calls `$mac!` with every stored enum: each backend derives its SQL conversions from this
/// one list.
macro_rules! for_each_stored_enum {
    ($mac:ident) => {
        $mac!(
            FindState,
            FindOutcome,
            MatchStatus,
            PeiState,
            ReviewState,
            CalculationKind,
            SchemeState,
            ReportKind,
            SubmissionStatus,
            SubmissionReason,
            SubmissionState,
            Service
        );
    };
}
pub(crate) use for_each_stored_enum;

stored_enum! {
    /// Where a find request is on its way to its end.
    pub enum FindState {
        /// Stored, waiting for the pipeline (matches and possible matches only).
        #[strum(serialize = "queued")]
        Queued,
        /// Claimed by the pipeline under a lease.
        #[strum(serialize = "working")]
        Working,
        /// At its end: matched and registered, or no match.
        #[strum(serialize = "done")]
        Done,
        /// At its end without registering: the reason says why (CoCo2.2.6).
        #[strum(serialize = "failed")]
        Failed,
    }
}

stored_enum! {
    /// A match between a find and one pension (`match_status`, wire contract §4.2).
    #[derive(serde::Serialize, serde::Deserialize)]
    pub enum MatchStatus {
        /// A definite match.
        #[strum(serialize = "match-yes")]
        #[serde(rename = "match-yes")]
        Yes,
        /// A possible match, kept for review.
        #[strum(serialize = "match-possible")]
        #[serde(rename = "match-possible")]
        Possible,
    }
}

stored_enum! {
    /// How a find request ended, once it did.
    pub enum FindOutcome {
        /// At least one definite match.
        #[strum(serialize = "match-yes")]
        MatchYes,
        /// Possible matches only.
        #[strum(serialize = "match-possible")]
        MatchPossible,
        /// Nothing matched: nothing was sent and no find data was kept (CoCo2.2.2).
        #[strum(serialize = "no-match")]
        NoMatch,
    }
}

stored_enum! {
    /// Where a PeI is.
    pub enum PeiState {
        /// Recorded from a match, not yet registered at the CAS.
        #[strum(serialize = "pending")]
        Pending,
        /// Registered; its views are served.
        #[strum(serialize = "registered")]
        Registered,
        /// Views stopped; the de-registration is being sent.
        #[strum(serialize = "deregistering")]
        Deregistering,
        /// De-registered at the CAS (or gone there).
        #[strum(serialize = "deregistered")]
        Deregistered,
        /// The CAS refused its PAT: never served again, PDP must be told (CoCo2.2.4).
        #[strum(serialize = "flagged")]
        Flagged,
    }
}

stored_enum! {
    /// A possible match's review (CoCo2.2.3).
    pub enum ReviewState {
        /// Waiting for a person.
        #[strum(serialize = "pending")]
        Pending,
        /// Resolved: it is the user's.
        #[strum(serialize = "yes")]
        Yes,
        /// Resolved: it is not.
        #[strum(serialize = "no")]
        No,
        /// Not resolved within the review window.
        #[strum(serialize = "timeout")]
        Timeout,
    }
}

stored_enum! {
    /// Which values a calculation owes (the 3/10 working-day rule).
    pub enum CalculationKind {
        /// Defined contribution: 3 working days.
        #[strum(serialize = "DCC")]
        Dcc,
        /// Defined benefit: 10 working days.
        #[strum(serialize = "DBC")]
        Dbc,
    }
}

stored_enum! {
    /// Whether a scheme (holdername) is served (CoCo3.2.5: PDP may direct an ISP to sever one).
    pub enum SchemeState {
        /// Matched and served.
        #[strum(serialize = "active")]
        Active,
        /// Not matched, views `404`, PeIs kept: reversible.
        #[strum(serialize = "suspended")]
        Suspended,
        /// As suspended, its PeIs de-registered and its members removed.
        #[strum(serialize = "severed")]
        Severed,
    }
}

impl From<MatchStatus> for FindOutcome {
    fn from(s: MatchStatus) -> Self {
        match s {
            MatchStatus::Yes => FindOutcome::MatchYes,
            MatchStatus::Possible => FindOutcome::MatchPossible,
        }
    }
}

/// A find request on its way into the store, at its ACK.
#[derive(Debug, Clone)]
pub struct NewFind {
    /// The find request ID (its X-Request-ID).
    pub request_id: String,
    /// When the request was received, µs since the epoch.
    pub received_at: i64,
    /// What matching decided before the commit.
    pub decided: Decided,
}

/// What matching decided for a find before its ACK.
#[derive(Debug, Clone)]
pub enum Decided {
    /// Nothing matched: stored as its ACK's audit record alone (outcome `no-match`), already
    /// at its end.
    NoMatch,
    /// Matches or possible matches: the find request (UAT and find data), to be sealed and
    /// queued for the CAS work.
    Matched(bytes::Bytes),
}

/// Whether an append created a new find request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// A new find request, now durable.
    Created,
    /// The request ID was already stored: the first request stands.
    Duplicate,
}

/// A find request as stored, for operators and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFind {
    /// The find request ID.
    pub request_id: String,
    /// Received, µs since the epoch.
    pub received_at: i64,
    /// ACKed (committed), µs since the epoch.
    pub acked_at: i64,
    /// Where it is.
    pub state: FindState,
    /// Whether sealed find data is still held.
    pub has_find_data: bool,
    /// How it ended, once it did.
    pub outcome: Option<FindOutcome>,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// When it reached its end (µs).
    pub completed_at: Option<i64>,
}

impl StoredFind {
    /// Milliseconds from ACK to end, once ended.
    pub fn completed_ms(&self) -> Option<f64> {
        self.completed_at
            .map(|c| (c - self.acked_at) as f64 / 1000.0)
    }
}

/// A find request the pipeline has claimed, its find data opened.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The find request ID.
    pub request_id: String,
    /// When it was ACKed (µs), the start of its completion budget.
    pub acked_at: i64,
    /// The find request as received; `None` if it was lost or cannot be opened.
    pub find_data: Option<Vec<u8>>,
    /// The PAT already obtained for it, if any.
    pub pat_id: Option<String>,
    /// Claims so far, this one included.
    pub attempts: i64,
}

/// What a match says of one pension: the PeI it gets, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeiMatch {
    /// The URN.
    pub pei: String,
    /// Its asset GUID.
    pub asset_guid: Uuid,
    /// Its holdername.
    pub holdername: Uuid,
    /// The pension's own asset GUID.
    pub pension_asset_guid: Uuid,
    /// The member.
    pub member_id: String,
    /// The scheme name (the registration's description).
    pub scheme_name: String,
    /// Yes or possible.
    pub match_status: MatchStatus,
    /// The rule's reason code; never sent to the CAS.
    pub reason: String,
}

/// A PeI a match produced, before it is stored.
#[derive(Debug, Clone)]
pub struct NewPei {
    /// The match.
    pub matched: PeiMatch,
    /// The rules version that decided it.
    pub rules_version: String,
}

/// A PeI as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPei {
    /// The match that produced it.
    pub matched: PeiMatch,
    /// The find that produced it.
    pub request_id: String,
    /// The PAT that registered it.
    pub pat_id: Option<String>,
    /// The CAS's resource id.
    pub resource_id: Option<String>,
    /// Where it is.
    pub state: PeiState,
    /// A possible match's review.
    pub review: Option<ReviewState>,
    /// When it was registered as a match (µs).
    pub registered_at: Option<i64>,
    /// Why it was (or is being) de-registered.
    pub deletion_reason: Option<String>,
}

/// A value calculation owed for a PeI (the 3/10 working-day rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calculation {
    /// The PeI whose view showed it pending.
    pub pei: String,
    /// The pension.
    pub pension_asset_guid: Uuid,
    /// DC or DB.
    pub kind: CalculationKind,
    /// The day the PeI was registered as a match.
    pub started_on: chrono::NaiveDate,
    /// When the values are due.
    pub due_on: chrono::NaiveDate,
    /// When the values were imported (µs), once they were.
    pub completed_at: Option<i64>,
}

/// A failed find request, for operators (CoCo2.2.6).
#[derive(Debug, Clone)]
pub struct FailedFind {
    /// The find request ID.
    pub request_id: String,
    /// ACKed (µs).
    pub acked_at: i64,
    /// Failed (µs).
    pub completed_at: i64,
    /// Why.
    pub reason: String,
}

/// A member on its way into the store: its match record as JSON, its pensions.
#[derive(Debug, Clone)]
pub struct NewMember {
    /// The provider's member ID.
    pub member_id: String,
    /// The holdername.
    pub holdername: Uuid,
    /// What matching needs of the member, as JSON (sealed at rest).
    pub match_record: Vec<u8>,
    /// The member's look-up keys in the match index (keyed hashes of the match record's keys).
    pub match_keys: MatchKeys,
    /// The member's pensions.
    pub pensions: Vec<NewPension>,
}

/// A member's look-up keys in the match index: each the keyed hash of one key (the NINO's
/// first 8 characters, or a name with the date of birth) under the index key
/// ([`crate::sealed::IndexKey`]); never a value. Stored as 8 little-endian bytes each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchKeys(pub Vec<u64>);

impl MatchKeys {
    /// As stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|k| k.to_le_bytes()).collect()
    }

    /// From what was stored; `None` when it is not a whole number of keys.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        Some(Self(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
        ))
    }
}

/// A change to one member, from an import.
#[derive(Debug, Clone)]
pub enum MemberChange {
    /// Add the member, or replace it (pensions absent from the new record are removed).
    Upsert(NewMember),
    /// Remove the member and its pensions.
    Remove(String),
    /// As `Upsert`, and a pension another member holds moves to this one: it is first taken
    /// from the other member's record and its PeIs retired (`asset-removed`).
    UpsertMoving(NewMember),
}

/// What applying one [`MemberChange`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new member.
    Added,
    /// An existing member, changed.
    Updated,
    /// An existing member, exactly as imported before: nothing written.
    Unchanged,
    /// Removed.
    Removed,
    /// A removal of a member not stored.
    NotFound,
    /// Refused, nothing written: a pension of the record is another member's
    /// ([`AppliedChange::held_by`]).
    PensionHeld,
}

/// The result of one [`MemberChange`].
#[derive(Debug, Clone)]
pub struct AppliedChange {
    /// The member.
    pub member_id: String,
    /// What happened.
    pub applied: Applied,
    /// Pensions that are gone (removed with the member, or absent from its new record): their
    /// PeIs must be de-registered.
    pub removed_pensions: Vec<Uuid>,
    /// Pensions of the record that another member held, with that member: the change was
    /// refused for them, or ([`MemberChange::UpsertMoving`]) they were taken from that member.
    pub held_by: Vec<(Uuid, String)>,
}

impl AppliedChange {
    /// A change that wrote nothing.
    pub(crate) fn unchanged(member_id: &str, applied: Applied) -> Self {
        Self {
            member_id: member_id.to_owned(),
            applied,
            removed_pensions: Vec::new(),
            held_by: Vec::new(),
        }
    }

    /// A change that wrote, with the pensions it removed.
    pub(crate) fn new(member_id: &str, applied: Applied, removed_pensions: Vec<Uuid>) -> Self {
        Self {
            member_id: member_id.to_owned(),
            applied,
            removed_pensions,
            held_by: Vec::new(),
        }
    }
}

/// A change a running endpoint applies to its match index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataChange {
    /// A member was added, changed or removed.
    Member(String),
    /// Members were added together, under the slots `first..=last` (those still stored).
    Added { first: i64, last: i64 },
    /// A member was removed: its slot in the match index is free (never given again).
    SlotFreed(i64),
    /// A scheme's state changed.
    Scheme(Uuid),
}

/// A pension on its way into the store.
#[derive(Debug, Clone)]
pub struct NewPension {
    /// The pension's stable asset GUID.
    pub asset_guid: Uuid,
    /// The scheme name.
    pub scheme_name: String,
    /// The view data, as JSON (sealed at rest).
    pub view_data: Vec<u8>,
    /// Date of the statement the values come from.
    pub statement_date: Option<chrono::NaiveDate>,
    /// Date of the calculation the values come from.
    pub calculation_date: Option<chrono::NaiveDate>,
}

/// A pension's stored row, its view data opened.
#[derive(Debug, Clone)]
pub struct StoredPension {
    /// The pension's asset GUID.
    pub asset_guid: Uuid,
    /// Its member.
    pub member_id: String,
    /// Its holdername.
    pub holdername: Uuid,
    /// The scheme name.
    pub scheme_name: String,
    /// The view data (opened).
    pub view_data: serde_json::Value,
    /// Date of the statement the values come from.
    pub statement_date: Option<chrono::NaiveDate>,
    /// Date of the calculation the values come from.
    pub calculation_date: Option<chrono::NaiveDate>,
}

/// The raw samples of one month's service levels (CoCo2.1.1-2.1.5), for the SLA report.
#[derive(Debug, Clone, Default)]
pub struct SlaSamples {
    /// ACK latencies of `202`s, µs.
    pub ack: Vec<i64>,
    /// ACK-to-end of finds that matched and completed, µs.
    pub completion: Vec<i64>,
    /// Failed finds.
    pub failed: u64,
    /// Latencies of views that ended (not their `401` challenges), µs.
    pub view: Vec<i64>,
    /// Inbound answers by endpoint and outcome, and finds by outcome or state.
    pub counts: Vec<(String, u64)>,
    /// Minutes the endpoint was up (heartbeats) in the window.
    pub minutes_up: u64,
    /// Each holdername's samples: the completion of the matching finds ACKed in the window
    /// that registered PeIs in it, and the views of its PeIs answered with a payload.
    pub by_holdername: std::collections::BTreeMap<uuid::Uuid, SchemeSamples>,
}

/// One holdername's service-level samples in a window, µs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemeSamples {
    /// ACK to completion of its matching finds.
    pub completion: Vec<i64>,
    /// Its views' latencies.
    pub view: Vec<i64>,
}

// --- PDP reporting ---

stored_enum! {
    /// One of the six daily submissions of PDP's reporting API v2.1, stored as its path.
    #[derive(PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
    pub enum ReportKind {
        /// Views received.
        #[strum(serialize = "/view-response/request-number")]
        #[serde(rename = "/view-response/request-number")]
        RequestNumber,
        /// Views answered after more than 10 s.
        #[strum(serialize = "/view-response/response-time")]
        #[serde(rename = "/view-response/response-time")]
        ResponseTime,
        /// Value calculations that ended.
        #[strum(serialize = "/view-response/calculations")]
        #[serde(rename = "/view-response/calculations")]
        Calculations,
        /// Payloads served with a status flag or an unavailable reason.
        #[strum(serialize = "/view-response/unavailable")]
        #[serde(rename = "/view-response/unavailable")]
        Unavailable,
        /// Find service unavailability.
        #[strum(serialize = "/service-availability/find")]
        #[serde(rename = "/service-availability/find")]
        FindAvailability,
        /// View service unavailability.
        #[strum(serialize = "/service-availability/view")]
        #[serde(rename = "/service-availability/view")]
        ViewAvailability,
    }
}

stored_enum! {
    /// `submission_status` of a submission, as the reporting API spells it.
    #[derive(serde::Serialize, serde::Deserialize)]
    pub enum SubmissionStatus {
        /// Submitted by the end of the day after the reporting day (UTC).
        #[strum(serialize = "on time")]
        #[serde(rename = "on time")]
        OnTime,
        /// A resubmission that corrects an earlier one.
        #[strum(serialize = "correction")]
        #[serde(rename = "correction")]
        Correction,
        /// Submitted later than on time.
        #[strum(serialize = "late")]
        #[serde(rename = "late")]
        Late,
    }
}

stored_enum! {
    /// `submission_reason` of a submission, as the reporting API spells it.
    #[derive(serde::Serialize, serde::Deserialize)]
    pub enum SubmissionReason {
        /// The first submission of a holdername's day.
        #[strum(serialize = "initial submission")]
        #[serde(rename = "initial submission")]
        Initial,
        /// A later one, replacing it.
        #[strum(serialize = "resubmission")]
        #[serde(rename = "resubmission")]
        Resubmission,
        /// Nothing to report (`submission_id` null); never for `/view-response/unavailable`.
        #[strum(serialize = "null submission")]
        #[serde(rename = "null submission")]
        Null,
    }
}

stored_enum! {
    /// Where one call (part) of a submission is, and so the submission (its parts' worst).
    pub enum SubmissionState {
        /// Claimed (written before the first byte is sent) and not yet answered finally: a crash or
        /// a CAS that kept answering 429/5xx leaves it here, and it is sent again, identical.
        #[strum(serialize = "sending")]
        Sending,
        /// `202 ACCEPTED`.
        #[strum(serialize = "accepted")]
        Accepted,
        /// Another 4xx: kept with the problem details, for operators.
        #[strum(serialize = "refused")]
        Refused,
    }
}

stored_enum! {
    /// A service an unavailability period is about.
    #[derive(serde::Serialize)]
    pub enum Service {
        /// The find endpoint.
        #[strum(serialize = "find")]
        Find,
        /// The view endpoint.
        #[strum(serialize = "view")]
        View,
        /// Both.
        #[strum(serialize = "both")]
        Both,
    }
}

impl Service {
    /// Whether a period about `self` covers `other` (find or view).
    pub fn covers(self, other: Service) -> bool {
        self == Service::Both || self == other
    }
}

/// Which of the data standard's unavailable codes a payload carried (ANO, PPF, TRN).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnavailableCodes {
    /// `ANO`.
    pub ano: bool,
    /// `PPF`.
    pub ppf: bool,
    /// `TRN`.
    pub trn: bool,
}

/// One view answered with a payload, for a holdername: no personal data, no PeI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewFact {
    /// The scheme.
    pub holdername: Uuid,
    /// Request received (µs).
    pub received_at: i64,
    /// Answer ready (µs).
    pub responded_at: i64,
    /// Item 2.004 `contactScheme` true.
    pub contact_scheme: bool,
    /// Item 2.005 `administrativeDetailsNotAvailable` true.
    pub missing_admin: bool,
    /// Item 2.006 `temporarySystemError` true.
    pub temp_error: bool,
    /// Item 2.301, ERI unavailable codes.
    pub eri: UnavailableCodes,
    /// Item 2.401, accrued unavailable codes.
    pub accrued: UnavailableCodes,
}

impl ViewFact {
    /// Its flags in `report_views`' column order: `contact_scheme`, `missing_admin`,
    /// `temp_error`, then the ERI and the accrued codes (`ano`, `ppf`, `trn` each).
    pub fn flags(&self) -> [bool; 9] {
        let (e, a) = (&self.eri, &self.accrued);
        [
            self.contact_scheme,
            self.missing_admin,
            self.temp_error,
            e.ano,
            e.ppf,
            e.trn,
            a.ano,
            a.ppf,
            a.trn,
        ]
    }

    /// A view fact from its stored columns, the flags in [`ViewFact::flags`]' order.
    pub fn from_columns(
        holdername: Uuid,
        received_at: i64,
        responded_at: i64,
        f: [bool; 9],
    ) -> Self {
        Self {
            holdername,
            received_at,
            responded_at,
            contact_scheme: f[0],
            missing_admin: f[1],
            temp_error: f[2],
            eri: UnavailableCodes {
                ano: f[3],
                ppf: f[4],
                trn: f[5],
            },
            accrued: UnavailableCodes {
                ano: f[6],
                ppf: f[7],
                trn: f[8],
            },
        }
    }
}

/// A fact recorded as it happens, for PDP reporting and Regulation 28(3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportFact {
    /// A view answered with a payload.
    View(ViewFact),
    /// Values withheld for a calculation (kept once per PeI).
    CalculationStarted(CalculationStart),
    /// A possible match resolved (yes, no or timeout).
    Reviewed(ReviewFact),
}

/// Values withheld for a calculation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalculationStart {
    /// The PeI (its calculation is keyed by it).
    pub pei: String,
    /// The scheme.
    pub holdername: Uuid,
    /// DBC or DCC.
    pub value_code: CalculationKind,
    /// ERI values were withheld.
    pub eri: bool,
    /// Accrued values were withheld.
    pub accrued: bool,
    /// When the calculation started: the PeI's registration as a match (µs).
    pub started_at: i64,
}

/// A possible match's resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewFact {
    /// The PeI.
    pub pei: String,
    /// The scheme.
    pub holdername: Uuid,
    /// How.
    pub review: ReviewState,
    /// When (µs).
    pub at: i64,
}

/// A period of unavailability an operator announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUnavailability {
    /// Find, view or both.
    pub service: Service,
    /// One scheme, or every scheme (`None`).
    pub holdername: Option<Uuid>,
    /// From (µs).
    pub starts_at: i64,
    /// To (µs).
    pub ends_at: i64,
    /// The reason, as reported (`^[a-zA-Z0-9_ .-]*$`).
    pub reason: String,
    /// Announced with less than the code of connection's notice: reported as unscheduled.
    pub emergency: bool,
    /// When it was announced (µs).
    pub announced_at: i64,
}

/// A stored period of announced unavailability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailability {
    /// Its id.
    pub id: i64,
    /// What was announced.
    pub window: NewUnavailability,
}

/// A calculation whose values were withheld, with its end once values were imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalculationFact {
    /// The scheme.
    pub holdername: Uuid,
    /// DBC or DCC.
    pub value_code: CalculationKind,
    /// ERI values withheld.
    pub eri: bool,
    /// Accrued values withheld.
    pub accrued: bool,
    /// Started (µs).
    pub started_at: i64,
    /// Ended (µs), once it did.
    pub ended_at: Option<i64>,
}

/// Everything a reporting day's submissions are built from.
#[derive(Debug, Clone, Default)]
pub struct DayFacts {
    /// Every scheme the endpoint holds (pensions, schemes set by operators, facts recorded).
    pub holdernames: Vec<Uuid>,
    /// Views received in the day.
    pub views: Vec<ViewFact>,
    /// Calculations that ended in the day.
    pub calculations: Vec<CalculationFact>,
    /// Announced periods that overlap the day.
    pub windows: Vec<Unavailability>,
    /// Minutes (since the epoch) of the day in which the endpoint was up.
    pub up_minutes: Vec<i64>,
}

/// Which submission: a holdername's report for a day, and its attempt (0: the initial one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubmissionKey {
    /// The scheme.
    pub holdername: Uuid,
    /// Which report.
    pub kind: ReportKind,
    /// The reporting day (UTC).
    pub day: chrono::NaiveDate,
    /// 0 for the initial submission, then 1, 2... for resubmissions.
    pub attempt: u32,
}

/// The CAS's answer to one part of a submission.
#[derive(Debug, Clone)]
pub struct SubmissionAnswer {
    /// The submission.
    pub key: SubmissionKey,
    /// Which of its calls (item limits split one into several).
    pub part: u32,
    /// What the answer makes of it.
    pub state: SubmissionState,
    /// The HTTP status, when there was an answer.
    pub http_status: Option<u16>,
    /// The `datetimestamp` of a `202`, or the problem details.
    pub answer: Option<String>,
}

/// A submission to claim: its bodies are final before anything is sent.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    /// Holdername, report, day; the attempt is decided by the claim.
    pub holdername: Uuid,
    /// Which report.
    pub kind: ReportKind,
    /// The reporting day.
    pub day: chrono::NaiveDate,
    /// `submission_id`, null for a null submission.
    pub submission_id: Option<Uuid>,
    /// On time, late or correction.
    pub status: SubmissionStatus,
    /// Initial, resubmission or null.
    pub reason: SubmissionReason,
    /// One body per call (item limits split a submission), each with its own `record_id`.
    pub parts: Vec<(Uuid, String)>,
}

/// One call of a stored submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// 0-based.
    pub part: u32,
    /// Its `record_id`.
    pub record_id: Uuid,
    /// The JSON body, exactly as sent (and sent again).
    pub body: String,
    /// Where it is.
    pub state: SubmissionState,
    /// The CAS's last status, if it answered.
    pub http_status: Option<u16>,
    /// The CAS's last answer: its `datetimestamp` on `202`, the problem details otherwise.
    pub answer: Option<String>,
    /// When it was answered (µs).
    pub answered_at: Option<i64>,
}

/// A stored submission and its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubmission {
    /// Which.
    pub key: SubmissionKey,
    /// `submission_id`.
    pub submission_id: Option<Uuid>,
    /// `submission_status`.
    pub status: SubmissionStatus,
    /// `submission_reason`.
    pub reason: SubmissionReason,
    /// Its parts' worst state.
    pub state: SubmissionState,
    /// When it was (last) claimed (µs).
    pub claimed_at: i64,
    /// Its calls.
    pub parts: Vec<StoredPart>,
}

/// What claiming a submission gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller sends it: freshly written, or left `sending` by a crash and past its lease.
    /// Parts already answered are not sent again.
    Claimed(StoredSubmission),
    /// Another instance claimed it within its lease.
    Busy(StoredSubmission),
    /// It was answered already (accepted or refused): nothing to send.
    Done(StoredSubmission),
}

// === impl Claim ===

impl Claim {
    /// The attempt a correction claims, given the day's latest attempt above 0 and its state:
    /// that one while still `sending` (a crash left it), the next otherwise; 1 when none exists.
    pub(crate) fn correction_attempt(latest: Option<(u32, SubmissionState)>) -> u32 {
        match latest {
            Some((a, SubmissionState::Sending)) => a,
            Some((a, _)) => a + 1,
            None => 1,
        }
    }

    /// What an existing submission gives a claimant before any write: `Done` once answered,
    /// `Busy` within the claim's lease; `Continue` when the lease lapsed, to be re-claimed with
    /// an update fenced on its `claimed_at` ([`Claim::reclaimed`]).
    pub(crate) fn of_existing(
        existing: StoredSubmission,
        now: i64,
        lease_micros: i64,
    ) -> ControlFlow<Claim, StoredSubmission> {
        if existing.state != SubmissionState::Sending {
            ControlFlow::Break(Claim::Done(existing))
        } else if existing.claimed_at + lease_micros > now {
            ControlFlow::Break(Claim::Busy(existing))
        } else {
            ControlFlow::Continue(existing)
        }
    }

    /// A fenced re-claim's outcome: this caller's when its update `won`, another's otherwise.
    pub(crate) fn reclaimed(existing: StoredSubmission, won: bool, now: i64) -> Claim {
        if won {
            Claim::Claimed(StoredSubmission {
                claimed_at: now,
                ..existing
            })
        } else {
            Claim::Busy(existing)
        }
    }
}

/// A possible match, for the Regulation 28(3) report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PossibleMatch {
    /// The scheme.
    pub holdername: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Its review, when resolved.
    pub review: Option<ReviewState>,
    /// When it was resolved (µs).
    pub resolved_at: Option<i64>,
}

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A call an ecosystem party made to us.
    Inbound,
    /// A call we made to the CAS.
    Outbound,
    /// An operator's action (scheme suspended, severed, ...).
    Operator,
}

impl Direction {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Operator => "operator",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            "operator" => Some(Direction::Operator),
            _ => None,
        }
    }
}

/// One audited call.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// The call's transaction ID (its X-Request-ID, or ours when it had none).
    pub transaction_id: String,
    /// The find request this call belongs to, when there is one.
    pub request_id: Option<String>,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The other party: the client certificate's subject inbound, `cas` outbound.
    pub party: String,
    /// Method and path template, e.g. `POST /find-requests`.
    pub endpoint: String,
    /// When the call was received (inbound) or sent (outbound), µs since the epoch.
    pub received_at: i64,
    /// When it was answered, µs since the epoch. For a find ACK the journal fills this in at
    /// commit time, just before the `202` leaves.
    pub responded_at: i64,
    /// HTTP status (0 when no response came: a connection error or time-out).
    pub status: u16,
    /// A short machine-readable outcome (`ack`, `duplicate`, an error code, ...).
    pub outcome: String,
}

impl AuditRecord {
    /// Latency in microseconds.
    pub fn latency_micros(&self) -> i64 {
        self.responded_at - self.received_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_back_and_unknown_ones_do_not() {
        for s in FindState::VARIANTS {
            assert_eq!(FindState::parse(s.as_str()), Some(*s));
        }
        for s in PeiState::VARIANTS {
            assert_eq!(PeiState::parse(s.as_str()), Some(*s));
        }
        for s in ReviewState::VARIANTS {
            assert_eq!(ReviewState::parse(s.as_str()), Some(*s));
        }
        for s in FindOutcome::VARIANTS {
            assert_eq!(FindOutcome::parse(s.as_str()), Some(*s));
        }
        assert_eq!(MatchStatus::parse("match-yes"), Some(MatchStatus::Yes));
        assert_eq!(CalculationKind::parse("DBC"), Some(CalculationKind::Dbc));
        assert_eq!(MatchStatus::parse("Match-Yes"), None);
        assert_eq!(PeiState::parse(""), None);
    }
}
