//! Aggregate audit records: many rate-limited requests of one client identity in one record.
//!
//! A request refused before its handler and over its identity's rate ([`crate::http::limit`])
//! has no row of its own. Those of one identity, endpoint and refusal in one summary window are
//! one record instead:
//!
//! - `party`: the client certificate's subject, as in every inbound record;
//! - `endpoint`: the requests' own audit name with ` (limited)` after it (`* unknown (limited)`),
//!   so that no service-level query over an endpoint's records counts it as one answer;
//! - `status`: `429`, the answer every one of them got;
//! - `outcome`: `rate_limited <refusal> x<count>`, e.g. `rate_limited not_found x9412`, where
//!   `<refusal>` is the outcome the request would have had under the rate (`not_found`,
//!   `forbidden`, `method_not_allowed`, ...);
//! - `received_at`, `responded_at`: when the first of them arrived and when the last arrived;
//! - `transaction_id`: one of ours (the requests' own X-Request-IDs are not kept);
//!   `request_id`: none.
//!
//! The audit schema is unchanged: the count rides in `outcome`.

use super::{AuditRecord, Direction};

/// What follows a limited request's audit name in its aggregate record's `endpoint`.
pub const LIMITED_SUFFIX: &str = " (limited)";

/// The outcome's first word in an aggregate record.
pub const LIMITED_OUTCOME: &str = "rate_limited";

/// Rate-limited requests of one identity, endpoint and refusal, for one aggregate record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited<'a> {
    /// The client certificate's subject.
    pub party: &'a str,
    /// The requests' audit name, e.g. `* unknown`.
    pub endpoint: &'a str,
    /// The outcome they would have had under the rate, e.g. `not_found`.
    pub refusal: &'a str,
    /// How many were answered `429`.
    pub count: u64,
    /// When the first arrived, µs since the epoch.
    pub first_at: i64,
    /// When the last arrived, µs since the epoch.
    pub last_at: i64,
}

// === impl Limited ===

impl Limited<'_> {
    /// The aggregate audit record.
    pub fn record(&self) -> AuditRecord {
        AuditRecord {
            transaction_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            request_id: None,
            direction: Direction::Inbound,
            party: self.party.to_owned(),
            endpoint: format!("{}{LIMITED_SUFFIX}", self.endpoint),
            received_at: self.first_at,
            responded_at: self.last_at.max(self.first_at),
            status: 429,
            outcome: format!("{LIMITED_OUTCOME} {} x{}", self.refusal, self.count),
        }
    }
}

/// The number of requests an audit record stands for: the count of an aggregate record, 1 for
/// any other.
pub fn requests_of(record: &AuditRecord) -> u64 {
    limited_count(&record.outcome).unwrap_or(1)
}

/// The count of an aggregate record's outcome (`rate_limited not_found x9412` → 9412).
pub fn limited_count(outcome: &str) -> Option<u64> {
    let rest = outcome.strip_prefix(LIMITED_OUTCOME)?.strip_prefix(' ')?;
    let (_, count) = rest.rsplit_once(" x")?;
    count.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregate_record_carries_its_count_and_reads_back() {
        let r = Limited {
            party: "CN=dashboard",
            endpoint: "* unknown",
            refusal: "not_found",
            count: 9412,
            first_at: 10,
            last_at: 70,
        }
        .record();
        assert_eq!(r.endpoint, "* unknown (limited)");
        assert_eq!(r.outcome, "rate_limited not_found x9412");
        assert_eq!((r.status, r.latency_micros()), (429, 60));
        assert_eq!(r.request_id, None);
        assert_eq!(requests_of(&r), 9412);
        assert_eq!(limited_count("not_found"), None);
        assert_eq!(limited_count("rate_limited forbidden x"), None);
        let plain = AuditRecord {
            outcome: "not_found".into(),
            ..r
        };
        assert_eq!(requests_of(&plain), 1);
    }
}
