//! pdp-provider: a pension provider's live endpoint in the UK pensions dashboards ecosystem.
//!
//! # Layout
//!
//! The workspace holds four crates; this one is the server, and nothing in it knows of the
//! others:
//!
//! - `server/` (this crate, `pdp_provider`): the endpoint and everything an operator runs
//!   against its store. Its wire types ([`wire`]) and service levels ([`coco`]) are the ones
//!   the other crates use.
//! - `sim/` (`pdp_sim`): the ecosystem around the endpoint, simulated: the CAS, a PFS, the
//!   MaPS dashboard, and the demo that runs the endpoint among them.
//! - `load-tests/` (`pdp_load`): the load tool, its scenarios and scripts; HdrHistogram and
//!   plotters live there.
//! - the workspace root (`pdp-provider-cli`): the `pdp-provider` binary, wiring only
//!   (`src/main.rs`: every subcommand calls one of the three crates), and the integration tests
//!   (`tests/`), which run the binary beside the simulators.
//!
//! Read this crate's modules in the order a find request meets them:
//!
//! - [`config`]: the TOML config, as written and then validated; every bound and time-out.
//! - [`tls`]: mutual TLS for the ecosystem listener, and the one outbound mTLS client builder
//!   (CAS client, simulators, load tool); `certs init`.
//! - [`http`]: the inbound side. The accept loop, connection limits and time-outs, then one
//!   file per endpoint: `POST /find-requests`, the view, and the ops listener.
//! - [`wire`]: the serde types of the wire contract (`docs/wire-contract.md`), the only place
//!   that spells field names; view data is checked against the data standard's own schema,
//!   vendored in `schemas/`; a JWT's claims read unverified.
//! - [`store`]: durable state behind one typed handle over a backend: SQLite embedded (one
//!   instance), PostgreSQL for several instances on one database. Find ACKs and audit records
//!   ride group commits; personal data sealed with AES-256-GCM; the schema's migrations written
//!   once and rendered in each backend's dialect.
//! - [`model`]: the domain's vocabulary, below the store: the states as enums with their stored
//!   spellings, the rows the store keeps, the audit record.
//! - [`sealed`]: personal data sealed at rest (AES-256-GCM) under the data keys.
//! - [`matching`]: normalisation, the configurable rules, the in-memory member indexes.
//! - [`pipeline`]: the CAS work of finds that matched at the ACK: PAT, PeI registration, many
//!   finds in flight at once; `finds failed`.
//! - [`cas`]: the outbound CAS client (UAT to PAT, PeI registration, PDP reporting), and the one
//!   retry loop of every outbound call, inside its budget.
//! - [`view_data`]: the view payload, the 3/10 working-day values rule, the signed token;
//!   `values import|report`.
//! - [`audit`]: the audit record every call writes (CoCo2.1.6), never personal data; export.
//! - [`coco`]: the code of connection's limits and targets, and the one percentile.
//! - [`metrics`]: metric names, units and the SLA buckets (CoCo2.1.1-2.1.5).
//! - [`sla`]: the monthly SLA report from the audit trail and heartbeats.
//!
//! Beside the request path, what operators and time do:
//!
//! - [`members`]: member records: import (CSV, JSON lines; view data normalised, then valid
//!   against the data standard's schema) and synthetic generation.
//! - [`peis`]: operator actions on PeIs: de-registration, flagging (CoCo2.2.4).
//! - [`schemes`]: suspending and severing a scheme (CoCo3.2.5).
//! - [`report`]: PDP reporting: per-holdername facts, planned downtime, the six daily
//!   submissions (claimed in the store before sending), Regulation 28(3) possible matches.
//! - [`upkeep`]: heartbeat (availability), certificate expiry, the daily jobs (once across
//!   instances).
//! - [`backup`]: the server's own backups of its embedded store, on a schedule.
//! - [`keys`]: data keys: a new one, and rotation (re-sealing what is stored under the new key);
//!   the development keys and certificates (`certs init`).
//! - [`reload`]: keys and certificates replaced without a restart (`SIGHUP`, or a file change).
//! - [`shutdown`]: one cancellation signal and the drain deadline.
//! - [`console`]: the operator console on its own TLS listener: sign-in, the portal's roles,
//!   possible-match review, the pages operators and PDP's roles need.
//! - [`app`]: wires the parts into a running endpoint.

// The server's functions stay short enough to read whole (clippy.toml: 100 lines).
#![warn(clippy::too_many_lines)]

pub mod app;
pub mod audit;
pub mod backup;
pub mod cas;
pub mod coco;
pub mod config;
pub mod console;
pub mod http;
pub mod keys;
pub mod matching;
pub mod members;
pub mod metrics;
pub mod model;
pub mod peis;
pub mod pipeline;
pub mod reload;
pub mod report;
pub mod schemes;
pub mod sealed;
pub mod shutdown;
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

/// An operator command's table: the header line, a line a row, then the closing line.
pub fn table(header: String, rows: impl IntoIterator<Item = String>, footer: String) -> String {
    let mut t = header + "\n";
    for row in rows {
        t.push_str(&row);
        t.push('\n');
    }
    if !footer.is_empty() {
        t.push_str(&footer);
        t.push('\n');
    }
    t
}

/// Current time as microseconds since the Unix epoch, the unit every stored timestamp uses.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A day's start, 00:00 UTC, in µs since the Unix epoch.
pub fn day_start(day: chrono::NaiveDate) -> i64 {
    day.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_micros()
}

/// `%Y-%m-%d` as chrono reads it, spelled out once: `NaiveDate::parse_from_str` reads its
/// format string again at every call (1.5% of the durable ACK's CPU, two dates a find).
const YMD: [chrono::format::Item<'static>; 5] = {
    use chrono::format::{Item, Numeric, Pad};
    [
        Item::Numeric(Numeric::Year, Pad::Zero),
        Item::Literal("-"),
        Item::Numeric(Numeric::Month, Pad::Zero),
        Item::Literal("-"),
        Item::Numeric(Numeric::Day, Pad::Zero),
    ]
};

/// A `YYYY-MM-DD` date, read exactly as `NaiveDate::parse_from_str(s, "%Y-%m-%d")` reads it.
/// Ten bytes of that form (every date a find or a member record should hold) are read by hand;
/// any other string by chrono.
pub fn parse_ymd(s: &str) -> Option<chrono::NaiveDate> {
    if let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = s.as_bytes() {
        let digits = [y0, y1, y2, y3, m0, m1, d0, d1];
        if digits.iter().all(u8::is_ascii_digit) {
            let n = |ds: &[u8]| ds.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
            let year = i32::try_from(n(&digits[..4])).ok()?;
            return chrono::NaiveDate::from_ymd_opt(year, n(&digits[4..6]), n(&digits[6..]));
        }
    }
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, s, YMD.iter()).ok()?;
    parsed.to_naive_date().ok()
}

/// RFC 3339 UTC timestamp with milliseconds, as PDP writes `datetimestamp`.
pub fn datetimestamp(micros: i64) -> String {
    // `%Y-%m-%dT%H:%M:%S%.3fZ`, without parsing a format string each call.
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_date_is_read_as_chrono_reads_its_format() {
        let items: Vec<_> = chrono::format::StrftimeItems::new("%Y-%m-%d").collect();
        assert_eq!(items, super::YMD);
        for s in [
            "1970-04-21",
            "1970-4-21",
            "1970-04-2",
            " 1970-04-21",
            "1970-04-21 ",
            "1970 -04-21",
            "+1970-04-21",
            "-0001-01-01",
            "0000-01-01",
            "19700-04-21",
            "1970-02-30",
            "2024-02-29",
            "1970-04-21x",
            "1970/04/21",
            "21/04/1970",
            "",
            "1970-04-",
        ] {
            let chrono = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
            assert_eq!(super::parse_ymd(s), chrono, "{s:?}");
        }
        // Every ten bytes of digits and dashes in the places that matter, by hand and by chrono.
        let mut n = 0u32;
        for y in ["0000", "0001", "1890", "1970", "2024", "9999", "2O24"] {
            for m in ["00", "01", "02", "09", "12", "13", "1-"] {
                for d in ["00", "01", "28", "29", "30", "31", "32", " 1"] {
                    let s = format!("{y}-{m}-{d}");
                    let chrono = chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok();
                    assert_eq!(super::parse_ymd(&s), chrono, "{s:?}");
                    n += u32::from(chrono.is_some());
                }
            }
        }
        assert!(n > 100, "{n}");
        assert_eq!(
            super::parse_ymd("1970-04-21"),
            chrono::NaiveDate::from_ymd_opt(1970, 4, 21)
        );
    }
}
