//! Metric names, units and SLA buckets, described once (SPEC §7).
//!
//! Names follow Prometheus conventions: `pdp_` prefix, base units, `_seconds`, `_total`. Each
//! latency histogram has bucket bounds at its recommended target and its code-of-connection limit.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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
/// Requests refused because the client identity may not call the endpoint, by endpoint.
pub const ACCESS_REFUSED_TOTAL: &str = "pdp_access_refused_total";
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
/// PeIs registered, by `match_status`.
pub const PEIS_REGISTERED_TOTAL: &str = "pdp_peis_registered_total";
/// Workers busy on a find.
pub const WORKERS_BUSY: &str = "pdp_workers_busy";
/// Workers in the pool.
pub const WORKERS: &str = "pdp_workers";

/// View latency, receipt to answer (CoCo2.1.3: target 2 s, limit 10 s).
pub const VIEW_SECONDS: &str = "pdp_view_seconds";
/// Views answered, by `outcome` (`ok`, `challenge`, `not_found`, `shed`, ...).
pub const VIEWS_TOTAL: &str = "pdp_views_total";
/// PeIs flagged "de-registration pending: notify PDP" (CoCo2.2.4).
pub const DEREGISTRATIONS_PENDING: &str = "pdp_deregistrations_pending";

/// Days until each configured certificate expires, by `certificate`.
pub const CERTIFICATE_EXPIRY_DAYS: &str = "pdp_certificate_expiry_days";
/// Share of this calendar month's minutes the endpoint was up and ready, by `month` (CoCo2.1.5).
pub const AVAILABILITY_RATIO: &str = "pdp_availability_ratio";
/// Seconds since this process started serving.
pub const UPTIME_SECONDS: &str = "pdp_uptime_seconds";
/// Audit records purged past retention.
pub const AUDIT_PURGED_TOTAL: &str = "pdp_audit_purged_total";

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
            handle
        })
        .clone()
}

fn describe() {
    describe_histogram!(
        FIND_ACK_SECONDS,
        Unit::Seconds,
        "Find request receipt to 202 ACK (CoCo2.1.1)"
    );
    describe_counter!(
        FIND_REQUESTS_TOTAL,
        Unit::Count,
        "Find requests answered, by outcome"
    );
    describe_counter!(
        HTTP_RESPONSES_TOTAL,
        Unit::Count,
        "Ecosystem responses by endpoint and status"
    );
    describe_counter!(
        ACCESS_REFUSED_TOTAL,
        Unit::Count,
        "Requests refused (403) because the client identity may not call the endpoint"
    );
    describe_counter!(
        ACCEPT_FAILURES_TOTAL,
        Unit::Count,
        "accept() failures on either listener; each backs off"
    );
    describe_counter!(
        SLA_BREACHES_TOTAL,
        Unit::Count,
        "Requests outside a code-of-connection limit, by standard"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        Unit::Count,
        "Find requests stored and not yet at an end"
    );
    describe_histogram!(
        JOURNAL_COMMIT_SECONDS,
        Unit::Seconds,
        "One group commit: transaction and fsync"
    );
    describe_histogram!(
        JOURNAL_BATCH_RECORDS,
        Unit::Count,
        "Records per group commit"
    );
    describe_counter!(
        AUDIT_DROPPED_TOTAL,
        Unit::Count,
        "Audit records dropped under saturation"
    );
    describe_counter!(
        TLS_HANDSHAKE_FAILURES_TOTAL,
        Unit::Count,
        "TLS handshakes refused, by reason"
    );
    describe_gauge!(OPEN_CONNECTIONS, Unit::Count, "Open ecosystem connections");
    describe_histogram!(
        CAS_CALL_SECONDS,
        Unit::Seconds,
        "CAS call latency by endpoint"
    );
    describe_counter!(
        CAS_CALLS_TOTAL,
        Unit::Count,
        "CAS calls by endpoint and status (0: no answer)"
    );
    describe_counter!(
        CAS_RETRIES_TOTAL,
        Unit::Count,
        "CAS call retries by endpoint"
    );
    describe_histogram!(
        FIND_COMPLETION_SECONDS,
        Unit::Seconds,
        "ACK to last PeI registered (CoCo2.1.2)"
    );
    describe_counter!(
        FINDS_COMPLETED_TOTAL,
        Unit::Count,
        "Find requests at their end, by outcome"
    );
    describe_counter!(
        FINDS_FAILED_TOTAL,
        Unit::Count,
        "Failed find requests by reason (CoCo2.2.6)"
    );
    describe_counter!(
        PEIS_REGISTERED_TOTAL,
        Unit::Count,
        "PeIs registered at the CAS, by match status"
    );
    describe_gauge!(WORKERS_BUSY, Unit::Count, "Workers busy on a find request");
    describe_gauge!(WORKERS, Unit::Count, "Workers in the pool");
    describe_histogram!(
        VIEW_SECONDS,
        Unit::Seconds,
        "View request receipt to answer (CoCo2.1.3)"
    );
    describe_counter!(VIEWS_TOTAL, Unit::Count, "Views answered, by outcome");
    describe_gauge!(
        DEREGISTRATIONS_PENDING,
        Unit::Count,
        "PeIs flagged: de-registration pending, notify PDP (CoCo2.2.4)"
    );
}

/// Records one view's answer.
pub fn view_answered(outcome: &'static str, status: u16, elapsed: Duration) {
    counter!(VIEWS_TOTAL, "outcome" => outcome).increment(1);
    http_response("view", status);
    let secs = elapsed.as_secs_f64();
    histogram!(VIEW_SECONDS).record(secs);
    if secs > 10.0 {
        counter!(SLA_BREACHES_TOTAL, "standard" => "CoCo2.1.3").increment(1);
    }
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
/// matches only.
pub fn find_completed(outcome: &'static str, completion: Option<Duration>) {
    counter!(FINDS_COMPLETED_TOTAL, "outcome" => outcome).increment(1);
    if let Some(d) = completion {
        let secs = d.as_secs_f64();
        histogram!(FIND_COMPLETION_SECONDS).record(secs);
        if secs > 60.0 {
            counter!(SLA_BREACHES_TOTAL, "standard" => "CoCo2.1.2").increment(1);
        }
    }
}

/// Counts a failed find request by reason.
pub fn find_failed(reason: &str) {
    counter!(FINDS_COMPLETED_TOTAL, "outcome" => "failed").increment(1);
    counter!(FINDS_FAILED_TOTAL, "reason" => reason.to_owned()).increment(1);
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

/// Records one find request's answer.
pub fn find_answered(outcome: &'static str, status: u16, elapsed: Duration) {
    counter!(FIND_REQUESTS_TOTAL, "outcome" => outcome).increment(1);
    http_response("find", status);
    if status == 202 {
        let secs = elapsed.as_secs_f64();
        histogram!(FIND_ACK_SECONDS).record(secs);
        if secs > 2.0 {
            counter!(SLA_BREACHES_TOTAL, "standard" => "CoCo2.1.1").increment(1);
        }
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

/// Counts a refused handshake.
pub fn tls_handshake_failed(reason: &'static str) {
    counter!(TLS_HANDSHAKE_FAILURES_TOTAL, "reason" => reason).increment(1);
}

/// Tracks open connections.
pub fn open_connections(delta: f64) {
    gauge!(OPEN_CONNECTIONS).increment(delta);
}

/// Sets a certificate's days to expiry.
pub fn certificate_expiry(name: &'static str, days: f64) {
    gauge!(CERTIFICATE_EXPIRY_DAYS, "certificate" => name).set(days);
}

/// Sets this month's availability and the uptime.
pub fn availability(month: &str, ratio: f64, uptime: Duration) {
    gauge!(AVAILABILITY_RATIO, "month" => month.to_owned()).set(ratio);
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

/// Counts a failed `accept()` (the listener backs off).
pub fn accept_failed() {
    counter!(ACCEPT_FAILURES_TOTAL).increment(1);
}
