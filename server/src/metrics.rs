//! Metric names, units and SLA buckets, described once (wire contract §7).
//!
//! Names follow Prometheus conventions: `pdp_` prefix, base units, `_seconds`, `_total`. Each
//! latency histogram has bucket bounds at its recommended target and its code-of-connection limit.
//! Every metric has a help text (`describe`), checked by `promtool check metrics` in
//! `tests/prometheus.rs`.
//!
//! Label values are closed sets, spelled as enums: [`Standard`] (the code of connection's, in
//! [`crate::coco`]), [`FindFailure`], [`TlsRefusal`], [`ViewOutcome`] and
//! [`CAS_RETRY_ENDPOINTS`]. The counters over them are exported at 0 from [`install`] on, so that
//! `increase()` sees their first event: a series born at 1 looks to Prometheus like a series that
//! was always 1.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use strum::{IntoStaticStr, VariantArray};

use crate::coco::Standard;

/// ACK latency, receipt to `202` (CoCo2.1.1: target 250 ms, limit 2 s).
pub const FIND_ACK_SECONDS: &str = "pdp_find_ack_seconds";
/// Find requests answered, by `outcome` (`ack`, `duplicate`, `shed`, `invalid`, `error`).
pub const FIND_REQUESTS_TOTAL: &str = "pdp_find_requests_total";
/// Inbound HTTP responses by `endpoint` and `status`.
pub const HTTP_RESPONSES_TOTAL: &str = "pdp_http_responses_total";
/// SLA breaches by `standard` (e.g. `CoCo2.1.1`).
pub const SLA_BREACHES_TOTAL: &str = "pdp_sla_breaches_total";
/// Find requests stored and not yet at an end.
pub const QUEUE_DEPTH: &str = "pdp_find_queue_depth";
/// Operator actions on schemes (suspend, resume, sever), by the state set.
pub const SCHEME_ACTIONS_TOTAL: &str = "pdp_scheme_actions_total";
/// Schemes suspended or severed.
pub const SCHEMES_INACTIVE: &str = "pdp_schemes_inactive";
/// Reloads of keys and certificates, by part and outcome (`reloaded`, `refused`).
pub const RELOADS_TOTAL: &str = "pdp_reloads_total";
/// Member records the match index could not open or read (a data key missing, corruption).
pub const MEMBERS_UNREADABLE_TOTAL: &str = "pdp_members_unreadable_total";
/// Members in the match index.
pub const MEMBERS_INDEXED: &str = "pdp_members_indexed";
/// The member data version the match index has applied (compare across instances).
pub const MEMBER_DATA_VERSION: &str = "pdp_member_data_version";
/// Requests refused because the client identity may not call the endpoint, by endpoint.
pub const ACCESS_REFUSED_TOTAL: &str = "pdp_access_refused_total";
/// Requests refused before their handler and over their client identity's rate (answered
/// `429`), by endpoint family ([`LIMITED_ENDPOINTS`]).
pub const REQUESTS_LIMITED_TOTAL: &str = "pdp_requests_limited_total";
/// `accept()` failures (file descriptors exhausted and the like); the listener backs off.
pub const ACCEPT_FAILURES_TOTAL: &str = "pdp_accept_failures_total";
/// Journal commit latency (one transaction, one fsync).
pub const JOURNAL_COMMIT_SECONDS: &str = "pdp_journal_commit_seconds";
/// Records per journal commit.
pub const JOURNAL_BATCH_RECORDS: &str = "pdp_journal_batch_records";
/// Audit records dropped because the writer was saturated.
pub const AUDIT_DROPPED_TOTAL: &str = "pdp_audit_dropped_total";
/// TLS handshakes refused, by `reason`.
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "pdp_tls_handshake_failures_total";
/// Open ecosystem connections.
pub const OPEN_CONNECTIONS: &str = "pdp_open_connections";

/// PDP reporting calls by `report` (the endpoint's path) and `outcome` (`accepted`, `refused`,
/// `retried`, `pending`: left for a later run).
pub const REPORT_SUBMISSIONS_TOTAL: &str = "pdp_report_submissions_total";

/// CAS call latency by `endpoint`.
pub const CAS_CALL_SECONDS: &str = "pdp_cas_call_seconds";
/// CAS calls by `endpoint` and `status` (0: no answer).
pub const CAS_CALLS_TOTAL: &str = "pdp_cas_calls_total";
/// CAS call retries by `endpoint`.
pub const CAS_RETRIES_TOTAL: &str = "pdp_cas_retries_total";
/// Find completion: ACK to last PeI registered (CoCo2.1.2: target 15 s, limit 60 s).
pub const FIND_COMPLETION_SECONDS: &str = "pdp_find_completion_seconds";
/// Find requests at their end, by `outcome` (`match-yes`, `match-possible`, `no-match`, `failed`).
pub const FINDS_COMPLETED_TOTAL: &str = "pdp_finds_completed_total";
/// Failed find requests by `reason` (CoCo2.2.6).
pub const FINDS_FAILED_TOTAL: &str = "pdp_finds_failed_total";
/// Claimed finds whose lease could not be held (left to their next claim).
pub const FIND_LEASES_LOST_TOTAL: &str = "pdp_find_leases_lost_total";
/// PeIs registered, by `match_status`.
pub const PEIS_REGISTERED_TOTAL: &str = "pdp_peis_registered_total";
/// Workers busy on a find.
pub const WORKERS_BUSY: &str = "pdp_workers_busy";
/// Workers in the pool.
pub const WORKERS: &str = "pdp_workers";

/// View latency, receipt to answer, by `outcome` ([`ViewOutcome`]) (CoCo2.1.3: target 2 s,
/// limit 10 s).
pub const VIEW_SECONDS: &str = "pdp_view_seconds";
/// Views answered, by `outcome` (`ok`, `challenge`, `not_found`, `shed`, ...).
pub const VIEWS_TOTAL: &str = "pdp_views_total";
/// PeIs flagged "de-registration pending: notify PDP" (CoCo2.2.4).
pub const DEREGISTRATIONS_PENDING: &str = "pdp_deregistrations_pending";

/// Seconds until each configured certificate expires, by `certificate`.
pub const CERTIFICATE_EXPIRY_SECONDS: &str = "pdp_certificate_expiry_seconds";
/// Share of this calendar month's minutes since go-live that the endpoint was up and ready
/// (CoCo2.1.5): one series, no label; it starts again each month.
pub const AVAILABILITY_RATIO: &str = "pdp_availability_ratio";
/// Seconds since this process started serving.
pub const UPTIME_SECONDS: &str = "pdp_uptime_seconds";
/// Audit records purged past retention.
pub const AUDIT_PURGED_TOTAL: &str = "pdp_audit_purged_total";
/// When this process started, in seconds since the Unix epoch (the name every exporter uses).
pub const PROCESS_START_TIME_SECONDS: &str = "process_start_time_seconds";

/// Members whose latest stored record the data key does not open (or that does not parse), now:
/// while above 0 finds are refused (`503`) and the endpoint is not ready.
pub const MEMBERS_UNREADABLE: &str = "pdp_members_unreadable";
/// Members stored (across every instance sharing the store): compare with [`MEMBERS_INDEXED`].
/// Counted at start and each time member data changes are applied, not at every poll.
pub const MEMBERS_STORED: &str = "pdp_members_stored";
/// Age since its ACK of the oldest find queued or being worked, across every instance sharing
/// the store; 0 when none is open. Read every few seconds by the upkeep.
pub const FIND_OLDEST_OPEN_SECONDS: &str = "pdp_find_oldest_open_seconds";
/// 1 while the store answers, 0 while it does not: the readiness's store check.
pub const STORE_UP: &str = "pdp_store_up";
/// The start (seconds since the Unix epoch) of the newest reporting day whose submissions are
/// all answered; see [`crate::report::schedule`]. Exported while the server submits by itself
/// (`reporting.enabled`).
pub const REPORT_LAST_SUBMITTED_DAY_SECONDS: &str = "pdp_report_last_submitted_day_seconds";
/// Seconds until the active view signing key is due for replacement (negative once overdue).
///
/// The key is a bare PKCS#8 key: it has no validity of its own, and PDP publishes whatever JWK
/// set the provider gives it. Its expiry is therefore the end of its cryptoperiod,
/// [`crate::view_data::token::SIGNING_KEY_CRYPTOPERIOD`] (one year) after the key file was
/// last written (its modification time: when it was made or put in place; a `mv` keeps it, a
/// copy without `-p` restarts it). Rotation is the documented publish, wait, switch, retire.
pub const SIGNING_KEY_EXPIRY_SECONDS: &str = "pdp_signing_key_expiry_seconds";

/// When the newest good backup of the embedded store was taken (seconds since the Unix epoch;
/// 0 while there is none). Exported while the server takes backups (`[backup]`).
pub const BACKUP_LAST_SUCCESS_SECONDS: &str = "pdp_backup_last_success_timestamp_seconds";
/// `backup.interval_s`: the alert on the newest backup's age is a multiple of it.
pub const BACKUP_INTERVAL_SECONDS: &str = "pdp_backup_interval_seconds";
/// Backups the server took, by `outcome` (`ok`, `failed`).
pub const BACKUPS_TOTAL: &str = "pdp_backups_total";

/// Why a find request failed, the `reason` label of [`FINDS_FAILED_TOTAL`]: the class of the
/// reason stored with the find (which keeps the step and the CAS status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum FindFailure {
    /// The sealed find data would not open.
    FindDataUnreadable,
    /// The find data no longer parses.
    FindDataInvalid,
    /// The UAT has no readable `sub`.
    UatNoSub,
    /// The CAS answered with a retryable status until the budget ran out.
    CasUnavailable,
    /// The CAS refused with a final status.
    CasRefused,
    /// The CAS answered `409` to a registration.
    CasConflict,
    /// The CAS did not answer.
    CasUnreachable,
    /// The CAS answered with a body we cannot read.
    CasMalformedAnswer,
    /// The completion budget ran out between retries.
    BudgetExhausted,
    /// A reason this list does not know (a new one: add it here).
    Other,
}

/// Why a TLS handshake was refused, the `reason` label of [`TLS_HANDSHAKE_FAILURES_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum TlsRefusal {
    /// The client presented no certificate.
    NoClientCertificate,
    /// The client certificate does not chain to the ecosystem CA.
    UntrustedClientCertificate,
    /// A TLS version older than 1.2.
    ProtocolVersion,
    /// Not TLS at all (plain HTTP, say).
    NotTls,
    /// The handshake did not finish within `server.tls_handshake_timeout_ms`.
    Timeout,
    /// Anything else.
    Other,
}

/// How a view request ended, the `outcome` label of [`VIEW_SECONDS`]: four classes, so that
/// fast `401` challenges do not flatter the latency of views served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum ViewOutcome {
    /// `200` with view data.
    Served,
    /// `401` with a UMA challenge: the first half of a view, not a view.
    Challenge,
    /// A client error: bad request, unknown or de-registered PeI, wrong method.
    Refused,
    /// We could not answer: `503` (CAS slow or down, time-out, shed) or `500`.
    Unavailable,
}

/// The CAS endpoints that are retried, the `endpoint` label of [`CAS_RETRIES_TOTAL`].
pub const CAS_RETRY_ENDPOINTS: &[&str] = &[
    "POST /token",
    "POST /rreguri",
    "PATCH /rreguri",
    "DELETE /rreguri",
];

// === impl FindFailure ===

impl FindFailure {
    /// The class of a stored failure reason: `uat_no_sub`, or `<step>: <CasError::reason>` such
    /// as `token: cas_unavailable_503`.
    pub fn of(reason: &str) -> Self {
        let reason = reason.rsplit(": ").next().unwrap_or(reason);
        // `cas_unavailable_503` → `cas_unavailable`: the status stays in the store and the log.
        let class = reason.trim_end_matches(|c: char| c.is_ascii_digit());
        let class = class.strip_suffix('_').unwrap_or(class);
        Self::VARIANTS
            .iter()
            .copied()
            .find(|v| <&str>::from(*v) == class)
            .unwrap_or(Self::Other)
    }
}

// === impl TlsRefusal ===

impl TlsRefusal {
    /// The class of a refusal label (`"timeout"`, `"not_tls"`, ...); `Other` for any other.
    pub fn of(label: &str) -> Self {
        Self::VARIANTS
            .iter()
            .copied()
            .find(|v| <&str>::from(*v) == label)
            .unwrap_or(Self::Other)
    }
}

// === impl ViewOutcome ===

impl ViewOutcome {
    /// The class of a view's audit outcome (`ok`, `challenge`, `shed`, `not_found`, ...): the
    /// one place that decides it.
    pub fn of(outcome: &str) -> Self {
        match outcome {
            "ok" => Self::Served,
            "challenge" => Self::Challenge,
            "shed" | "error" => Self::Unavailable,
            _ => Self::Refused,
        }
    }
}

/// View buckets: the 2 s target and the 10 s limit among them.
pub const VIEW_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0];

/// Completion buckets: the 15 s target and the 60 s limit among them.
pub const COMPLETION_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0,
];
/// CAS call buckets.
pub const CAS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// ACK buckets: the 250 ms target and the 2 s limit among them.
pub const ACK_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
];
/// Commit buckets.
pub const COMMIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Batch-size buckets.
pub const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Installs the global Prometheus recorder once per process and returns its handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(FIND_ACK_SECONDS.into()), ACK_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(JOURNAL_COMMIT_SECONDS.into()),
                        COMMIT_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(JOURNAL_BATCH_RECORDS.into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(FIND_COMPLETION_SECONDS.into()),
                        COMPLETION_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(CAS_CALL_SECONDS.into()), CAS_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(VIEW_SECONDS.into()), VIEW_BUCKETS)
                })
                .expect("bucket lists are non-empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            register_known();
            handle
        })
        .clone()
}

/// The endpoints with an access list (`pdp_access_refused_total`'s labels).
pub const ACCESS_CHECKED_ENDPOINTS: &[&str] =
    &["POST /find-requests", "GET /view-data", "POST /pat-refresh"];

/// The endpoint families of `pdp_requests_limited_total` (`unknown`: no route).
pub const LIMITED_ENDPOINTS: &[&str] = &["find", "view", "pat_refresh", "unknown"];

/// Exports every counter over a known label set at 0, and the process start time.
fn register_known() {
    for s in Standard::VARIANTS {
        counter!(SLA_BREACHES_TOTAL, "standard" => <&str>::from(*s)).increment(0);
    }
    for f in FindFailure::VARIANTS {
        counter!(FINDS_FAILED_TOTAL, "reason" => <&str>::from(*f)).increment(0);
    }
    for e in CAS_RETRY_ENDPOINTS {
        counter!(CAS_RETRIES_TOTAL, "endpoint" => *e).increment(0);
    }
    for r in TlsRefusal::VARIANTS {
        counter!(TLS_HANDSHAKE_FAILURES_TOTAL, "reason" => <&str>::from(*r)).increment(0);
    }
    for e in ACCESS_CHECKED_ENDPOINTS {
        counter!(ACCESS_REFUSED_TOTAL, "endpoint" => *e).increment(0);
    }
    counter!(ACCEPT_FAILURES_TOTAL).increment(0);
    for e in LIMITED_ENDPOINTS {
        counter!(REQUESTS_LIMITED_TOTAL, "endpoint" => *e).increment(0);
    }
    counter!(MEMBERS_UNREADABLE_TOTAL).increment(0);
    counter!(AUDIT_DROPPED_TOTAL).increment(0);
    counter!(FIND_LEASES_LOST_TOTAL).increment(0);
    for report in <crate::model::ReportKind as VariantArray>::VARIANTS {
        for outcome in ["accepted", "refused", "retried", "pending"] {
            counter!(REPORT_SUBMISSIONS_TOTAL, "report" => report.as_str(), "outcome" => outcome)
                .increment(0);
        }
    }
    counter!(AUDIT_PURGED_TOTAL).increment(0);
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    gauge!(PROCESS_START_TIME_SECONDS).set(start.as_secs_f64());
}

/// What kind of series a metric is, for [`DESCRIPTIONS`].
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric's kind, unit and help text, described once at start.
const DESCRIPTIONS: &[(&str, Kind, Option<Unit>, &str)] = &[
    (FIND_ACK_SECONDS, Kind::Histogram, Some(Unit::Seconds), "Find request receipt to 202 ACK (CoCo2.1.1)"),
    (FIND_REQUESTS_TOTAL, Kind::Counter, Some(Unit::Count), "Find requests answered, by outcome"),
    (HTTP_RESPONSES_TOTAL, Kind::Counter, Some(Unit::Count), "Ecosystem responses by endpoint and status"),
    (MEMBERS_INDEXED, Kind::Gauge, Some(Unit::Count), "Members in the match index"),
    (MEMBERS_UNREADABLE_TOTAL, Kind::Counter, Some(Unit::Count), "Member records the match index could not open or read; not indexed"),
    (RELOADS_TOTAL, Kind::Counter, Some(Unit::Count), "Reloads of keys and certificates without a restart, by part and outcome"),
    (SCHEMES_INACTIVE, Kind::Gauge, Some(Unit::Count), "Schemes (holdernames) suspended or severed: not matched, views 404"),
    (SCHEME_ACTIONS_TOTAL, Kind::Counter, Some(Unit::Count), "Operator actions on schemes, by the state set (CoCo3.2.5)"),
    (MEMBER_DATA_VERSION, Kind::Gauge, Some(Unit::Count), "The member data change the match index has applied last"),
    (ACCESS_REFUSED_TOTAL, Kind::Counter, Some(Unit::Count), "Requests refused (403) because the client identity may not call the endpoint"),
    (ACCEPT_FAILURES_TOTAL, Kind::Counter, Some(Unit::Count), "accept() failures on either listener; each backs off"),
    (SLA_BREACHES_TOTAL, Kind::Counter, Some(Unit::Count), "Requests outside a code-of-connection limit, by standard"),
    (QUEUE_DEPTH, Kind::Gauge, Some(Unit::Count), "Find requests stored and not yet at an end"),
    (JOURNAL_COMMIT_SECONDS, Kind::Histogram, Some(Unit::Seconds), "One group commit: transaction and fsync"),
    (JOURNAL_BATCH_RECORDS, Kind::Histogram, Some(Unit::Count), "Records per group commit"),
    (AUDIT_DROPPED_TOTAL, Kind::Counter, Some(Unit::Count), "Audit records dropped under saturation"),
    (REQUESTS_LIMITED_TOTAL, Kind::Counter, Some(Unit::Count), "Requests refused before their handler over the client identity's rate, answered 429, by endpoint"),
    (TLS_HANDSHAKE_FAILURES_TOTAL, Kind::Counter, Some(Unit::Count), "TLS handshakes refused, by reason"),
    (OPEN_CONNECTIONS, Kind::Gauge, Some(Unit::Count), "Open ecosystem connections"),
    (CAS_CALL_SECONDS, Kind::Histogram, Some(Unit::Seconds), "CAS call latency by endpoint"),
    (CAS_CALLS_TOTAL, Kind::Counter, Some(Unit::Count), "CAS calls by endpoint and status (0: no answer)"),
    (CAS_RETRIES_TOTAL, Kind::Counter, Some(Unit::Count), "CAS call retries by endpoint"),
    (FIND_COMPLETION_SECONDS, Kind::Histogram, Some(Unit::Seconds), "ACK to last PeI registered, by holdername matched (CoCo2.1.2)"),
    (FINDS_COMPLETED_TOTAL, Kind::Counter, Some(Unit::Count), "Find requests at their end, by outcome"),
    (FINDS_FAILED_TOTAL, Kind::Counter, Some(Unit::Count), "Failed find requests by reason (CoCo2.2.6)"),
    (FIND_LEASES_LOST_TOTAL, Kind::Counter, Some(Unit::Count), "Claimed find requests whose lease could not be held; another claim finishes them"),
    (PEIS_REGISTERED_TOTAL, Kind::Counter, Some(Unit::Count), "PeIs registered at the CAS, by match status"),
    (WORKERS_BUSY, Kind::Gauge, Some(Unit::Count), "Workers busy on a find request"),
    (WORKERS, Kind::Gauge, Some(Unit::Count), "Workers in the pool"),
    (VIEW_SECONDS, Kind::Histogram, Some(Unit::Seconds), "View request receipt to answer, by outcome (served, challenge, refused, unavailable) and holdername (CoCo2.1.3)"),
    (VIEWS_TOTAL, Kind::Counter, Some(Unit::Count), "Views answered, by outcome and holdername"),
    (DEREGISTRATIONS_PENDING, Kind::Gauge, Some(Unit::Count), "PeIs flagged: de-registration pending, notify PDP (CoCo2.2.4)"),
    (CERTIFICATE_EXPIRY_SECONDS, Kind::Gauge, Some(Unit::Seconds), "Seconds until the certificate expires (its earliest in the file), by certificate"),
    (AVAILABILITY_RATIO, Kind::Gauge, None, "Share of this month's minutes since go-live the endpoint was up and ready (CoCo2.1.5: 0.995)"),
    (UPTIME_SECONDS, Kind::Gauge, Some(Unit::Seconds), "Seconds since this process started serving"),
    (AUDIT_PURGED_TOTAL, Kind::Counter, Some(Unit::Count), "Audit records purged past audit.retention_days (CoCo2.1.6)"),
    (PROCESS_START_TIME_SECONDS, Kind::Gauge, Some(Unit::Seconds), "Start time of the process since the Unix epoch in seconds"),
    (REPORT_SUBMISSIONS_TOTAL, Kind::Counter, Some(Unit::Count), "PDP reporting calls by report and outcome: accepted, refused, retried, pending"),
    (MEMBERS_UNREADABLE, Kind::Gauge, Some(Unit::Count), "Members whose latest stored record the data key does not open or that does not parse, now; finds are refused while above 0"),
    (MEMBERS_STORED, Kind::Gauge, Some(Unit::Count), "Members stored, read at start and when member data changes are applied; compare with pdp_members_indexed"),
    (FIND_OLDEST_OPEN_SECONDS, Kind::Gauge, Some(Unit::Seconds), "Age since its ACK of the oldest find queued or being worked (0: none); CoCo2.1.2 allows 60 s"),
    (STORE_UP, Kind::Gauge, None, "1 while the store answers, 0 while it does not (the readiness's store check)"),
    (REPORT_LAST_SUBMITTED_DAY_SECONDS, Kind::Gauge, Some(Unit::Seconds), "Start of the newest reporting day whose submissions are all answered, in seconds since the Unix epoch"),
    (BACKUP_LAST_SUCCESS_SECONDS, Kind::Gauge, Some(Unit::Seconds), "When the newest good backup of the embedded store was taken, in seconds since the Unix epoch (0: none)"),
    (BACKUP_INTERVAL_SECONDS, Kind::Gauge, Some(Unit::Seconds), "backup.interval_s: seconds between the server's backups of its embedded store"),
    (BACKUPS_TOTAL, Kind::Counter, Some(Unit::Count), "Backups of the embedded store the server took, by outcome (ok, failed)"),
    (SIGNING_KEY_EXPIRY_SECONDS, Kind::Gauge, Some(Unit::Seconds), "Seconds until the view signing key's one-year cryptoperiod ends, counted from its file's modification time"),
];

/// Help texts and units, once.
fn describe() {
    for &(name, kind, unit, help) in DESCRIPTIONS {
        match (kind, unit) {
            (Kind::Counter, Some(u)) => describe_counter!(name, u, help),
            (Kind::Counter, None) => describe_counter!(name, help),
            (Kind::Gauge, Some(u)) => describe_gauge!(name, u, help),
            (Kind::Gauge, None) => describe_gauge!(name, help),
            (Kind::Histogram, Some(u)) => describe_histogram!(name, u, help),
            (Kind::Histogram, None) => describe_histogram!(name, help),
        }
    }
}

/// Counts one PDP reporting call's outcome.
pub fn report_submission(report: &'static str, outcome: &'static str) {
    counter!(REPORT_SUBMISSIONS_TOTAL, "report" => report, "outcome" => outcome).increment(1);
}

/// Records one view's answer: `outcome` is its audit outcome, counted as it is in
/// [`VIEWS_TOTAL`] and by its [`ViewOutcome`] class in [`VIEW_SECONDS`]. A challenge is half a
/// view: it is timed under its own class and is never a CoCo2.1.3 breach, as in `sla report`.
///
/// Both carry the `holdername` of the PeI viewed (a scheme GUID; holdernames are few), or
/// `none` when the answer came before a PeI was found (a bad request, an unknown asset GUID).
pub fn view_answered(
    outcome: &'static str,
    status: u16,
    elapsed: Duration,
    holdername: Option<uuid::Uuid>,
) {
    let holdername = holdername.map_or_else(|| "none".to_owned(), |h| h.to_string());
    counter!(VIEWS_TOTAL, "outcome" => outcome, "holdername" => holdername.clone()).increment(1);
    http_response("view", status);
    let class = ViewOutcome::of(outcome);
    let secs = elapsed.as_secs_f64();
    histogram!(VIEW_SECONDS, "outcome" => <&str>::from(class), "holdername" => holdername)
        .record(secs);
    if crate::coco::VIEW.breached_by(elapsed) && class != ViewOutcome::Challenge {
        sla_breach(Standard::View);
    }
}

/// Counts an answer past a code-of-connection limit.
fn sla_breach(standard: Standard) {
    counter!(SLA_BREACHES_TOTAL, "standard" => <&str>::from(standard)).increment(1);
}

/// Sets the de-registrations pending gauge.
pub fn deregistrations_pending(n: usize) {
    gauge!(DEREGISTRATIONS_PENDING).set(n as f64);
}

/// Records one CAS call.
pub fn cas_call(endpoint: &'static str, status: u16, elapsed: Duration) {
    histogram!(CAS_CALL_SECONDS, "endpoint" => endpoint).record(elapsed.as_secs_f64());
    counter!(CAS_CALLS_TOTAL, "endpoint" => endpoint, "status" => status.to_string()).increment(1);
}

/// Counts a retry.
pub fn cas_retry(endpoint: &'static str) {
    counter!(CAS_RETRIES_TOTAL, "endpoint" => endpoint).increment(1);
}

/// Records a find request reaching its end. `completion` is ACK to last registration, for
/// matches only: observed once for each holdername the find matched in (its PeIs were
/// registered for each of those schemes within that time; holdernames are few).
pub fn find_completed(
    outcome: &'static str,
    completion: Option<Duration>,
    holdernames: &[uuid::Uuid],
) {
    counter!(FINDS_COMPLETED_TOTAL, "outcome" => outcome).increment(1);
    if let Some(d) = completion {
        let secs = d.as_secs_f64();
        for h in holdernames {
            histogram!(FIND_COMPLETION_SECONDS, "holdername" => h.to_string()).record(secs);
        }
        if crate::coco::COMPLETION.breached_by(d) {
            sla_breach(Standard::Completion);
        }
    }
}

/// Counts a failed find request by the class of its stored reason ([`FindFailure::of`]).
pub fn find_failed(reason: &str) {
    counter!(FINDS_COMPLETED_TOTAL, "outcome" => "failed").increment(1);
    let class = FindFailure::of(reason);
    counter!(FINDS_FAILED_TOTAL, "reason" => <&str>::from(class)).increment(1);
}

/// Counts a find whose lease was lost while it was worked.
pub fn find_lease_lost() {
    counter!(FIND_LEASES_LOST_TOTAL).increment(1);
}

/// Counts a registered PeI.
pub fn pei_registered(status: &'static str) {
    counter!(PEIS_REGISTERED_TOTAL, "match_status" => status).increment(1);
}

/// Sets worker gauges.
pub fn workers(total: usize, busy_delta: f64) {
    gauge!(WORKERS).set(total as f64);
    gauge!(WORKERS_BUSY).increment(busy_delta);
}

/// The series every find ACK moves, looked up once: a look-up in the recorder's registry
/// hashes the name and labels (and formats the status) each time, 2.5% of the ACK path's CPU.
struct AckSeries {
    ack: Counter,
    duplicate: Counter,
    accepted: Counter,
    latency: Histogram,
    no_match: Counter,
}

impl AckSeries {
    /// The handles, of the recorder [`install`] sets (installed first if it is not yet, as a
    /// handle taken before would count nowhere).
    fn get() -> &'static Self {
        static SERIES: std::sync::OnceLock<AckSeries> = std::sync::OnceLock::new();
        SERIES.get_or_init(|| {
            install();
            Self {
                ack: counter!(FIND_REQUESTS_TOTAL, "outcome" => "ack"),
                duplicate: counter!(FIND_REQUESTS_TOTAL, "outcome" => "duplicate"),
                accepted: counter!(HTTP_RESPONSES_TOTAL, "endpoint" => "find", "status" => "202"),
                latency: histogram!(FIND_ACK_SECONDS),
                no_match: counter!(
                    FINDS_COMPLETED_TOTAL,
                    "outcome" => crate::model::FindOutcome::NoMatch.as_str()
                ),
            }
        })
    }
}

/// Counts a find at its end at its ACK: a no-match (nothing is sent, CoCo2.2.2).
pub fn no_match_completed() {
    AckSeries::get().no_match.increment(1);
}

/// Records one find request's answer.
pub fn find_answered(outcome: &'static str, status: u16, elapsed: Duration) {
    let series = AckSeries::get();
    match (outcome, status) {
        ("ack", 202) => series.ack.increment(1),
        ("duplicate", 202) => series.duplicate.increment(1),
        _ => counter!(FIND_REQUESTS_TOTAL, "outcome" => outcome).increment(1),
    }
    if status == 202 {
        series.accepted.increment(1);
        series.latency.record(elapsed.as_secs_f64());
        if crate::coco::ACK.breached_by(elapsed) {
            sla_breach(Standard::Ack);
        }
    } else {
        http_response("find", status);
    }
}

/// Counts a response on an ecosystem endpoint.
pub fn http_response(endpoint: &'static str, status: u16) {
    counter!(HTTP_RESPONSES_TOTAL, "endpoint" => endpoint, "status" => status.to_string())
        .increment(1);
}

/// Sets the queue depth gauge.
pub fn queue_depth(n: u64) {
    gauge!(QUEUE_DEPTH).set(n as f64);
}

/// Records one journal commit.
pub fn journal_commit(elapsed: Duration, records: usize) {
    histogram!(JOURNAL_COMMIT_SECONDS).record(elapsed.as_secs_f64());
    histogram!(JOURNAL_BATCH_RECORDS).record(records as f64);
}

/// Counts a dropped audit record.
pub fn audit_dropped() {
    counter!(AUDIT_DROPPED_TOTAL).increment(1);
}

/// Counts a refused handshake, by its [`TlsRefusal`] class.
pub fn tls_handshake_failed(reason: &'static str) {
    let class = TlsRefusal::of(reason);
    counter!(TLS_HANDSHAKE_FAILURES_TOTAL, "reason" => <&str>::from(class)).increment(1);
}

/// Tracks open connections.
pub fn open_connections(delta: f64) {
    gauge!(OPEN_CONNECTIONS).increment(delta);
}

/// Sets a certificate's seconds to expiry (negative once expired).
pub fn certificate_expiry(name: &'static str, seconds: f64) {
    gauge!(CERTIFICATE_EXPIRY_SECONDS, "certificate" => name).set(seconds);
}

/// Sets this month's availability and the uptime.
pub fn availability(ratio: f64, uptime: Duration) {
    gauge!(AVAILABILITY_RATIO).set(ratio);
    gauge!(UPTIME_SECONDS).set(uptime.as_secs_f64());
}

/// Counts purged audit records.
pub fn audit_purged(n: u64) {
    counter!(AUDIT_PURGED_TOTAL).increment(n);
}

/// Counts a request refused because the client identity may not call the endpoint.
pub fn access_refused(endpoint: &'static str) {
    counter!(ACCESS_REFUSED_TOTAL, "endpoint" => endpoint).increment(1);
}

/// Counts a request answered `429` for its identity's rate of refused requests.
pub fn request_limited(endpoint: &'static str) {
    counter!(REQUESTS_LIMITED_TOTAL, "endpoint" => endpoint).increment(1);
}

/// Counts a failed `accept()` (the listener backs off).
pub fn accept_failed() {
    counter!(ACCEPT_FAILURES_TOTAL).increment(1);
}

#[cfg(test)]
mod tests;

/// The match index's size and the data version it has applied.
pub fn member_index(members: usize, version: i64) {
    gauge!(MEMBERS_INDEXED).set(members as f64);
    gauge!(MEMBER_DATA_VERSION).set(version as f64);
}

/// Counts an operator action on a scheme, by the state it set.
pub fn scheme_action(state: &'static str) {
    counter!(SCHEME_ACTIONS_TOTAL, "state" => state).increment(1);
}

/// Schemes suspended or severed, as the match index has them.
pub fn schemes_inactive(n: usize) {
    gauge!(SCHEMES_INACTIVE).set(n as f64);
}

/// Counts a reload of keys and certificates, by part and whether it took.
pub fn reload(part: &'static str, ok: bool) {
    let outcome = if ok { "reloaded" } else { "refused" };
    counter!(RELOADS_TOTAL, "part" => part, "outcome" => outcome).increment(1);
}

/// Counts a member record the match index could not open or read.
pub fn member_unreadable() {
    counter!(MEMBERS_UNREADABLE_TOTAL).increment(1);
}

/// Members whose latest stored record does not open or parse, now.
pub fn members_unreadable(n: usize) {
    gauge!(MEMBERS_UNREADABLE).set(n as f64);
}

/// Members stored.
pub fn members_stored(n: u64) {
    gauge!(MEMBERS_STORED).set(n as f64);
}

/// The age since its ACK of the oldest open find (zero when none is open).
pub fn find_oldest_open(age: Duration) {
    gauge!(FIND_OLDEST_OPEN_SECONDS).set(age.as_secs_f64());
}

/// Whether the store answers.
pub fn store_up(up: bool) {
    gauge!(STORE_UP).set(if up { 1.0 } else { 0.0 });
}

/// The newest reporting day whose submissions are all answered.
pub fn report_last_submitted_day(day: chrono::NaiveDate) {
    gauge!(REPORT_LAST_SUBMITTED_DAY_SECONDS).set(crate::day_start(day) as f64 / 1e6);
}

/// Seconds until the view signing key is due for replacement (negative once overdue).
pub fn signing_key_expiry(seconds: f64) {
    gauge!(SIGNING_KEY_EXPIRY_SECONDS).set(seconds);
}

/// Backups on: their interval, and each outcome counted from 0.
pub fn backups_on(interval: Duration) {
    gauge!(BACKUP_INTERVAL_SECONDS).set(interval.as_secs_f64());
    for outcome in ["ok", "failed"] {
        counter!(BACKUPS_TOTAL, "outcome" => outcome).increment(0);
    }
}

/// When the newest good backup was taken (seconds since the Unix epoch; 0: none).
pub fn backup_last_success(at_s: f64) {
    gauge!(BACKUP_LAST_SUCCESS_SECONDS).set(at_s);
}

/// Counts a backup the server took.
pub fn backup_taken(ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    counter!(BACKUPS_TOTAL, "outcome" => outcome).increment(1);
}
