//! pdp-provider: a pension provider's live endpoint in the UK pensions dashboards ecosystem.
//!
//! # Layout
//!
//! Read the modules in the order a find request visits them:
//!
//! - [`config`]: the TOML config, as written and then validated; every bound and time-out.
//! - [`tls`]: mutual TLS for the ecosystem listener and the outbound identity; `certs init`.
//! - [`http`]: the inbound side. The accept loop, connection limits and time-outs, then one
//!   file per endpoint: `POST /find-requests`, and the ops listener.
//! - [`wire`]: the serde types of SPEC.md, the only place that spells field names; view data
//!   is checked against the data standard's own schema, vendored in `schemas/`.
//! - [`store`]: durable state behind one typed handle. One writer group-commits ACKs, audit
//!   records and every state change; reads use a pool. Personal data sealed with AES-256-GCM;
//!   SQLite is the embedded backend.
//! - [`members`]: member records: import (CSV, JSON lines; view data normalised, then valid
//!   against the data standard's schema) and synthetic generation.
//! - [`matching`]: normalisation, the configurable rules, the in-memory member indexes.
//! - [`pipeline`]: the CAS work of finds that matched at the ACK: PAT, PeI registration, many
//!   finds in flight at once.
//! - [`cas`]: the outbound CAS client (UAT to PAT, PeI registration), retries inside the budget.
//! - [`sim`]: the CAS simulator and a PFS driver for tests, the demo and load tests.
//! - [`view_data`]: the view payload, the 3/10 working-day values rule, the signed token.
//! - [`peis`]: operator actions on PeIs: de-registration, flagging (CoCo2.2.4).
//! - [`schemes`]: suspending and severing a scheme (CoCo3.2.5).
//! - [`audit`]: the audit record every call writes (CoCo2.1.6), never personal data.
//! - [`sla`]: the monthly SLA report from the audit trail and heartbeats.
//! - [`report`]: PDP reporting: per-holdername facts, planned downtime, the six daily
//!   submissions (claimed in the store before sending), Regulation 28(3) possible matches.
//! - [`metrics`]: metric names, units and the SLA buckets (CoCo2.1.1-2.1.5).
//! - [`upkeep`]: heartbeat (availability), certificate expiry, audit purge.
//! - [`keys`]: data key rotation (re-sealing what is stored under the new key).
//! - [`reload`]: keys and certificates replaced without a restart (`SIGHUP`, or a file change).
//! - [`shutdown`]: one cancellation signal and the drain deadline.
//! - [`console`]: the operator console on its own TLS listener: sign-in, the portal's roles,
//!   possible-match review, the pages operators and PDP's roles need (issue #18).
//! - [`app`]: wires the parts into a running endpoint; [`demo`] surrounds it with simulators.

pub mod app;
pub mod audit;
pub mod cas;
pub mod config;
pub mod console;
pub mod demo;
pub mod http;
pub mod keys;
pub mod load;
pub mod matching;
pub mod members;
pub mod metrics;
pub mod peis;
pub mod pipeline;
pub mod reload;
pub mod report;
pub mod schemes;
pub mod shutdown;
pub mod sim;
pub mod sla;
pub mod store;
pub mod tls;
pub mod upkeep;
pub mod view_data;
pub mod wire;

/// A progress bar on stderr for a long operator command, or a hidden one when `show` is false
/// (not a terminal, tests).
pub fn progress_bar(len: u64, template: &'static str, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(indicatif::ProgressStyle::with_template(template).expect("static template"));
    bar
}

/// Current time as microseconds since the Unix epoch, the unit every stored timestamp uses.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// RFC 3339 UTC timestamp with milliseconds, as PDP writes `datetimestamp`.
pub fn datetimestamp(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
